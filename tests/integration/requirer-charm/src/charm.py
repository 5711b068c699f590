#!/usr/bin/env python3
"""A test charm that asks the hub for a Spark account and reports the answer in its status."""

import json

import ops
from charms.spark_integration_hub_k8s.v0.hub_service_account import (
    SparkServiceAccountRequirer,
)


class RequirerCharm(ops.CharmBase):
    """Requests `config.service-account`; active once granted, with the property count."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.account = SparkServiceAccountRequirer(self, "spark-service-account")
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(
            self.on["spark-service-account"].relation_created, self._on_config_changed
        )
        framework.observe(self.account.on.account_granted, self._on_answer)
        framework.observe(self.account.on.properties_changed, self._on_answer)
        framework.observe(self.account.on.account_gone, self._on_answer)
        framework.observe(self.on.manifest_action, self._on_manifest_action)

    def _on_config_changed(self, _: ops.EventBase) -> None:
        if self.unit.is_leader():
            self.account.request(
                str(self.config["service-account"]),
                skip_creation=bool(self.config["skip-creation"]),
            )
        self._on_answer(None)

    def _on_answer(self, _: object) -> None:
        properties = self.account.spark_properties()
        if properties is None:
            self.unit.status = ops.WaitingStatus("waiting for the hub")
            return
        self.unit.status = ops.ActiveStatus(f"granted: {len(properties)} properties")
        self.unit.set_workload_version(json.dumps(sorted(properties))[:40])

    def _on_manifest_action(self, event: ops.ActionEvent) -> None:
        manifest = self.account.resource_manifest()
        if manifest is None:
            event.fail("not granted yet")
            return
        event.set_results({"manifest": manifest})


if __name__ == "__main__":  # pragma: nocover
    ops.main(RequirerCharm)
