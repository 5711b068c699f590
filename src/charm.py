#!/usr/bin/env python3
"""The Spark Integration Hub charm: wiring only.

Every event that can change what the hub distributes runs the same pass (`hub.Hub.run_pass`);
actions read what the passes recorded; collect-status shows the state machine's status. All
decisions live in `hub`, `machine`, `reconciler` and the renderers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import ops

from core.cluster import AccountRef, Owner, is_namespace_name
from core.config import ConfigError, HubConfig, Scope
from core.inputs import Invalid, SourceResult
from hub import Hub, PassReport, trust_message
from k8s import PROVIDER_PERMISSIONS, ForbiddenError, HookBudget, KubeError, UnavailableError
from machine import HubState
from provider import RELATION_NAME, AccountProvider, describe_problems
from reconciler import remove_owned
from render.options import render_options, render_spark_properties
from sources import IntegrationSources
from store import AccountState, Store
from workload import (
    CHECK,
    NOTICE_KEY,
    cancel_follow_up,
    install_watcher,
    request_follow_up,
    sync_log_targets,
    watcher_health,
)

if TYPE_CHECKING:
    from k8s.gateway import KubeGateway

logger = logging.getLogger(__name__)


class CleanupIncompleteError(RuntimeError):
    """The application is being removed, and something it wrote could not be deleted yet."""


MAX_LEFT_LOGGED = 20
"""How many things left behind a failed removal names one by one (then how many more)."""


def cleanup_commands(app: str) -> str:
    """What removes, by the hub's labels, everything it leaves after a forced removal."""
    return (
        "kubectl delete secrets --all-namespaces "
        f"-l app.kubernetes.io/managed-by=integration-hub,integration-hub/app={app}; "
        "kubectl delete serviceaccounts,roles,rolebindings --all-namespaces "
        f"-l integration-hub/provided-by={app}"
    )


STORE_FILE = "hub.sqlite3"
WORKLOAD = "integration-hub"
"""The workload container, where Pebble runs the watcher."""
LOGGING = "logging"
"""The `loki_push_api` endpoint: Spark's Loki properties, and where the workload's logs go."""
ACCESS_CHECK_EVENTS = ("install", "upgrade_charm", "leader_elected")
"""Events after which the hub re-checks its permissions (they change with trust or upgrade)."""
RECHECK_CONFLICTS_EVENTS = ("update-status", "leader-elected", "upgrade-charm")
"""Passes that try again to create Secrets whose name an unlabelled Secret had taken."""


class SparkIntegrationHubCharm(ops.CharmBase):
    """Distributes Spark properties to every Spark service account in scope."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self._opened: Hub | None = None
        self._kube: KubeGateway | None = None
        self._parsed: HubConfig | Invalid | None = None
        config = self._config()
        database = config.metastore_database if isinstance(config, HubConfig) else None
        self.sources = IntegrationSources(self, database or HubConfig().metastore_database)
        self.accounts = AccountProvider(self, self._gateway, self._owner)
        passes = [
            self.on.install,
            self.on.config_changed,
            self.on.leader_elected,
            self.on.update_status,
            self.on.hub_state_storage_attached,
            *self.sources.events,
            *self.accounts.events,
        ]
        for event in passes:
            framework.observe(event, self._on_pass)
        framework.observe(self.on[WORKLOAD].pebble_ready, self._on_workload_changed)
        framework.observe(self.on.upgrade_charm, self._on_workload_changed)
        framework.observe(self.on[WORKLOAD].pebble_custom_notice, self._on_notice)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.reconcile_action, self._on_reconcile_action)
        framework.observe(self.on.list_accounts_action, self._on_list_accounts_action)
        framework.observe(self.on.get_config_action, self._on_get_config_action)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)
        framework.observe(framework.on.commit, self._on_commit)
        for event in (
            self.on[WORKLOAD].pebble_ready,
            self.on.upgrade_charm,
            self.on[LOGGING].relation_changed,
            self.on[LOGGING].relation_departed,
            self.on[LOGGING].relation_broken,
        ):
            framework.observe(event, self._on_log_forwarding_changed)
        framework.observe(self.on[WORKLOAD].pebble_check_failed, self._on_watcher_check)
        framework.observe(self.on[WORKLOAD].pebble_check_recovered, self._on_watcher_check)

    # -- inputs -------------------------------------------------------------------------------

    def _config(self) -> HubConfig | Invalid:
        """The config, parsed once per hook (it cannot change during one)."""
        if self._parsed is None:
            try:
                self._parsed = HubConfig.from_options(self.config)
            except ConfigError as error:
                self._parsed = Invalid("config", str(error))
        return self._parsed

    def _inputs(self) -> tuple[list[SourceResult], Scope]:
        config = self._config()
        if isinstance(config, Invalid):
            return [config], Scope()
        options = [render_options(config), render_spark_properties(config)]
        return [*options, *self.sources.read()], config.scope

    def _valid_config(self) -> HubConfig:
        """The config, or the defaults while it is invalid (the pass then shows it blocked)."""
        config = self._config()
        return config if isinstance(config, HubConfig) else HubConfig()

    @property
    def _owner(self) -> Owner:
        return Owner(self.app.name, self.model.uuid)

    def _hub(self) -> Hub | None:
        """The hub over this unit's store, opened once per hook; None until storage is attached."""
        if self._opened is None:
            storages = self.model.storages["hub-state"]
            if not storages:
                return None
            store = Store.open(Path(storages[0].location) / STORE_FILE)
            writers = self._valid_config().max_concurrent_writes
            self._opened = Hub(store, self._gateway, self._owner, writers)
        return self._opened

    def _gateway(self) -> KubeGateway:
        """The Kubernetes gateway, built on first use in a hook, with the hook's one budget.

        The hub's pass and every spark-service-account relation's work share it, so an outage
        costs one bounded wait per hook, not one per call.
        """
        if self._kube is None:
            seconds = self._valid_config().hook_time_budget
            from k8s.gateway import KubeGateway  # here, not above: a hook with no request skips it

            self._kube = KubeGateway(budget=HookBudget(seconds))
        return self._kube

    # -- the pass -----------------------------------------------------------------------------

    def _on_pass(self, event: ops.EventBase) -> None:
        hub = self._hub()
        if hub is None:
            return
        results, scope = self._inputs()
        name = _event_name(event)
        was = hub.store.machine_state
        problems = self._ensure_accounts()
        truststore = self.sources.truststore()
        report = hub.run_pass(
            results,
            scope,
            trigger=name,
            leader=self.unit.is_leader(),
            check_access=name.replace("-", "_") in ACCESS_CHECK_EVENTS,
            truststore=truststore,
            recheck_conflicts=name in RECHECK_CONFLICTS_EVENTS,
        )
        hub.record_problems(problems)
        self.accounts.publish(report.desired, truststore)
        logger.info("pass after %s: %s %s", name, report.state.value, report.message)
        self._follow_up(report, was)

    def _follow_up(self, report: PassReport, was: str | None) -> None:
        """Ask the watcher to wake the charm soon while the hub is not converged.

        A pass cut short by the hook's budget (or an outage) leaves accounts pending; the next
        pass then starts seconds later instead of at `update-status`. Costs no Pebble call
        when the hub was and stays settled.
        """
        container = self.unit.get_container(WORKLOAD)
        reconciling = report.state is HubState.RECONCILING and self.unit.is_leader()
        if not reconciling and was != HubState.RECONCILING.value:
            return
        if not container.can_connect():
            return
        try:
            if reconciling:
                request_follow_up(container, report.message)
            else:
                cancel_follow_up(container)
        except ops.pebble.Error as error:  # update-status runs a pass anyway
            logger.warning("could not update the follow-up request: %s", type(error).__name__)

    def _ensure_accounts(self) -> list[str]:
        """Create or release the accounts other charms ask for; the problems to show."""
        try:
            config = self._config()
            return self.accounts.ensure_accounts(config if isinstance(config, HubConfig) else None)
        except ForbiddenError as error:
            try:
                missing: list[object] = list(
                    self._gateway().missing_permissions(PROVIDER_PERMISSIONS)
                )
            except UnavailableError as outage:  # named by the hub's own status
                logger.warning("cannot review the provider's access: %s", outage.reason)
                return []
            except KubeError as review:
                return [f"{RELATION_NAME}: cannot manage requested accounts yet ({review.reason})"]
            if not missing:  # a 403 the review does not explain (a quota, an admission hook)
                return [f"{RELATION_NAME}: cannot manage requested accounts yet ({error.reason})"]
            return [f"{RELATION_NAME}: " + trust_message(self.app.name, missing)]
        except UnavailableError as error:  # named by the hub's own status
            logger.warning("cannot manage requested accounts yet: %s", error.reason)
            return []
        except KubeError as error:
            return [f"{RELATION_NAME}: cannot manage requested accounts yet ({error.reason})"]

    def _on_workload_changed(self, event: ops.EventBase) -> None:
        """(Re)install the watcher in the workload container, then run a pass."""
        container = self.unit.get_container(WORKLOAD)
        if container.can_connect():
            try:
                install_watcher(container, self._owner.annotation)
            except ops.pebble.Error as error:  # shown by collect-status as the watcher's health
                logger.warning("could not install the watcher: %s", type(error).__name__)
        self._on_pass(event)

    def _on_notice(self, event: ops.PebbleCustomNoticeEvent) -> None:
        """The watcher saw the cluster change: run a pass."""
        if event.notice.key == NOTICE_KEY:
            self._on_pass(event)

    def _on_log_forwarding_changed(self, _: ops.EventBase) -> None:
        """Forward the workload's own logs (the watcher's) to every related Loki unit."""
        container = self.unit.get_container(WORKLOAD)
        if not container.can_connect():
            return  # pebble-ready comes later and syncs them
        labels = {
            "juju_model": self.model.name,
            "juju_model_uuid": self.model.uuid,
            "juju_application": self.app.name,
            "juju_unit": self.unit.name,
            "juju_charm": self.meta.name,
        }
        try:
            sync_log_targets(container, self.sources.loki_push_urls(), labels)
        except ops.pebble.Error as error:
            logger.warning("could not update the log targets: %s", type(error).__name__)

    def _on_watcher_check(self, event: ops.PebbleCheckEvent) -> None:
        """The watcher's check went down or up: say so now (collect-status shows it too)."""
        if event.info.name != CHECK:
            return
        health = watcher_health(event.workload)
        if isinstance(event, ops.PebbleCheckFailedEvent):
            logger.warning("watcher check failed: %s", health or "recovered since")
        else:
            logger.info("watcher check recovered: %s", health or "watcher healthy")

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        """Delete our Secrets only when the whole application is going, never on a restart.

        Any unit may do it then (leadership, and the store's storage, may already be gone
        during teardown): what is ours is read from the cluster, and deletes are idempotent.
        While anything is left (an outage, a refusal) the hook fails, saying what is left, so
        Juju runs it again; credentials are never left behind silently.

        Raises:
            CleanupIncompleteError: something of ours could not be deleted yet.
        """
        if self.app.planned_units() > 0:
            return
        left: list[str] = []
        try:
            left += self.accounts.manager.release_all()
        except KubeError as error:
            left.append(f"the provided accounts (cannot list them: {error.reason})")
        try:
            left += remove_owned(self._gateway(), self._owner)
        except KubeError as error:
            left.append(f"every Secret of this hub (cannot list them: {error.reason})")
        if left:
            for item in left[:MAX_LEFT_LOGGED]:
                logger.error("removal incomplete, left: %s", item)
            more = len(left) - MAX_LEFT_LOGGED
            if more > 0:
                logger.error("removal incomplete, and %d more left", more)
            logger.error(
                "after a forced removal, delete them with: %s", cleanup_commands(self.app.name)
            )
            self._close()  # the hook fails, so there is no commit: close what it opened now
            raise CleanupIncompleteError(f"{len(left)} things of this hub left: see the log")

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        hub = self._hub()
        if hub is None:
            event.add_status(ops.WaitingStatus("waiting for storage hub-state"))
            return
        status = hub.status()
        message = status.message
        if status.name == "active":
            lost = watcher_health(self.unit.get_container(WORKLOAD))
            message += f"; {lost} (changes seen at update-status only)" if lost else ""
        event.add_status(ops.StatusBase.from_name(status.name, message))
        if problems := hub.problems:
            event.add_status(ops.BlockedStatus(describe_problems(problems)))

    def _on_commit(self, _: ops.EventBase) -> None:
        self._close()

    def _close(self) -> None:
        """Close the store and the gateway this hook opened."""
        if self._opened is not None:
            self._opened.store.close()
            self._opened = None
        if self._kube is not None:
            self._kube.close()
            self._kube = None

    # -- actions ------------------------------------------------------------------------------

    def _on_reconcile_action(self, event: ops.ActionEvent) -> None:
        hub = self._require_hub(event)
        if hub is None:
            return
        if not self.unit.is_leader():
            event.fail("only the leader unit writes; run the action on the leader")
            return
        results, scope = self._inputs()
        try:
            if event.params.get("dry-run", False):
                report = hub.dry_run(results, scope, self.sources.truststore())
            else:
                report = hub.run_pass(
                    results,
                    scope,
                    trigger="reconcile-action",
                    leader=True,
                    truststore=self.sources.truststore(),
                    recheck_conflicts=True,
                )
        except KubeError as error:
            event.fail(f"cannot reach the Kubernetes API: {error.reason}")
            return
        event.set_results(_report_results(report))

    def _on_list_accounts_action(self, event: ops.ActionEvent) -> None:
        hub = self._require_hub(event)
        if hub is None:
            return
        state = event.params.get("state")
        if state is not None and state not in {s.value for s in AccountState}:
            event.fail(f"unknown state: use one of {[s.value for s in AccountState]}")
            return
        namespace = event.params.get("namespace")
        if namespace is not None and not is_namespace_name(str(namespace)):
            event.fail("namespace: expected a namespace name (a DNS-1123 label, at most 63)")
            return
        accounts = hub.accounts(namespace=namespace, state=state)
        event.set_results({"count": len(accounts), "accounts": json.dumps(accounts, indent=1)})

    def _on_get_config_action(self, event: ops.ActionEvent) -> None:
        hub = self._require_hub(event)
        if hub is None:
            return
        reveal = bool(event.params.get("reveal", False))
        account = event.params.get("account")
        if account is not None and not isinstance(account, str):
            event.fail("account: expected `namespace:name`")
            return
        if not account:
            shown = hub.desired_config(self._inputs()[0], reveal)
            event.set_results({"count": len(shown), "properties": json.dumps(shown, indent=1)})
            return
        try:
            ref = AccountRef.parse(account)
            live = hub.account_config(ref, reveal)
        except ValueError as error:
            event.fail(f"account: {error}")
            return
        except KubeError as error:
            event.fail(f"cannot read the account's Secret: {error.reason}")
            return
        if live is None:
            event.fail(f"account {ref} has no hub Secret written by this hub (see list-accounts)")
            return
        event.set_results({"count": len(live), "properties": json.dumps(live, indent=1)})

    def _require_hub(self, event: ops.ActionEvent) -> Hub | None:
        hub = self._hub()
        if hub is None:
            event.fail("storage hub-state is not attached yet")
        return hub


def _event_name(event: ops.EventBase) -> str:
    return event.handle.kind.removesuffix("_action").replace("_", "-")


def _report_results(report: PassReport) -> dict[str, object]:
    planned: dict[str, int] = {}
    for step in report.plan:
        planned[step.action.value] = planned.get(step.action.value, 0) + 1
    results: dict[str, object] = {
        "state": report.state.value,
        "message": report.message,
        "plan": json.dumps([step.describe() for step in report.plan], indent=1),
        "summary": json.dumps(planned, sort_keys=True),
    }
    if report.outcome is not None:
        results["writes"] = report.outcome.writes
        results["deletes"] = report.outcome.deletes
    return results


if __name__ == "__main__":  # pragma: nocover
    ops.main(SparkIntegrationHubCharm)
