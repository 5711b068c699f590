"""Run the hub through a realistic day on an embedded cluster, printing what an operator sees.

The cluster is the test Kubernetes API server on loopback; Spark users are spark8t 1.6.0's own
registry; Juju is stood in for by ops.testing, which runs the real charm for every event. The
charm's lightkube client finds the cluster through `KUBECONFIG`, exactly as it would find a
real one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "lib"), str(ROOT)]

from tests.kube_server import KubeServer  # noqa: E402

APP = "spark-integration-hub-k8s"


def banner(text: str) -> None:
    """Print a step heading."""
    print(f"\n\033[1m== {text}\033[0m")


class Demo:
    """The charm under ops.testing, a test cluster and spark8t, side by side."""

    def __init__(self, server: KubeServer, workdir: Path) -> None:
        from ops import testing

        from charm import SparkIntegrationHubCharm

        def load(name: str) -> dict[str, Any]:
            return yaml.safe_load((ROOT / name).read_text())

        self.server = server
        self.testing = testing
        self.ctx = testing.Context(
            SparkIntegrationHubCharm,
            meta=load("charmcraft.yaml"),
            config=load("config.yaml"),
            actions=load("actions.yaml"),
            app_name=APP,
        )
        self.state = testing.State(
            leader=True,
            model=testing.Model(name="spark", uuid="6f1c1a4e-0000-4000-8000-00000000d3e0"),
            storages={testing.Storage("hub-state")},
            containers={testing.Container("integration-hub", can_connect=True)},
        )
        from spark8t.domain import Defaults, ServiceAccount
        from spark8t.kube_interface.lightkube import LightKubeInterface
        from spark8t.registry.k8s import K8sServiceAccountRegistry
        from spark8t.utils import PropertyFile

        self.kube = LightKubeInterface(os.environ["KUBECONFIG"], Defaults({}))
        self.registry = K8sServiceAccountRegistry(self.kube)
        self._account = lambda name, ns: ServiceAccount(
            name, ns, self.kube.api_server, extra_confs=PropertyFile({})
        )

    def spark_client_create(self, namespace: str, name: str) -> None:
        """`spark-client.service-account-registry create` (the CLI creates the namespace)."""
        if self.server.get("Namespace", namespace) is None:
            self.server.put(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        self.registry.create(self._account(name, namespace))
        print(
            "$ spark-client.service-account-registry create "
            f"--username {name} --namespace {namespace}"
        )

    def run(self, event: str, **config: Any) -> None:
        """Deliver one Juju event (with config changes) to the charm."""
        if config:
            self.state = dataclasses.replace(self.state, config={**self.state.config, **config})
        self.server.clear_requests()
        self.state = self.ctx.run(getattr(self.ctx.on, event)(), self.state)
        writes = sum(self.server.count(m) for m in ("POST", "PUT", "DELETE"))
        print(f"[{event}] API requests: {len(self.server.requests)}, writes: {writes}")

    def status(self) -> None:
        """What `juju status` shows for the unit."""
        status = self.state.unit_status
        print(f"$ juju status\n  {APP}/0*  {status.name:<11} {status.message}")

    def action(self, name: str, **params: Any) -> dict[str, Any]:
        """`juju run spark-integration-hub-k8s/0 <name>`."""
        shown = " ".join(f"{k}={v}" for k, v in params.items())
        print(f"$ juju run {APP}/0 {name} {shown}".rstrip())
        self.state = self.ctx.run(self.ctx.on.action(name, params=params), self.state)
        results = self.ctx.action_results or {}
        for key, value in results.items():
            text = value if isinstance(value, str) else json.dumps(value)
            print(f"  {key}: " + text.replace("\n", "\n    "))
        return results

    def spark_sees(self, account: str) -> None:
        """What spark-submit gets for an account (spark8t's merged view)."""
        props = self.registry.get(account).configurations.props
        namespace, name = account.split(":")
        print(
            "$ spark-client.service-account-registry get-config "
            f"--username {name} --namespace {namespace}"
        )
        for key, value in sorted(props.items()):
            print(f"  {key}={value}")

    def tamper(self, namespace: str, name: str) -> None:
        """Someone edits an account's hub Secret by hand."""
        secret = self.server.get("Secret", f"integrator-hub-conf-{name}", namespace)
        assert secret is not None
        secret["data"] = {"spark.executor.memory": "MWc=", "spark.hacked": "eWVz"}
        self.server.put(secret)
        print(
            f"$ kubectl -n {namespace} edit secret integrator-hub-conf-{name}"
            "   # memory=1g, spark.hacked=yes"
        )

    def close(self) -> None:
        """Close spark8t's client."""
        self.kube.client.close()


def main() -> int:
    """Run the demo; returns a process exit code."""
    with KubeServer() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ["KUBECONFIG"] = str(server.write_kubeconfig(Path(tmp) / "kubeconfig"))
        demo = Demo(server, Path(tmp))
        try:
            script(demo)
        finally:
            demo.close()
    return 0


def script(demo: Demo) -> None:
    """The sequence of the demo."""
    banner("Two data engineers already have Spark accounts")
    demo.spark_client_create("team-a", "alice")
    demo.spark_client_create("team-b", "bob")

    banner("juju deploy spark-integration-hub-k8s --trust")
    demo.run("install")
    demo.status()

    banner(
        "juju config spark-integration-hub-k8s enable-dynamic-allocation=true "
        'spark-properties="spark.executor.memory=4g ..."'
    )
    demo.run(
        "config_changed",
        **{
            "spark-properties": (
                "# team defaults\nspark.executor.memory=4g\nspark.executorEnv.TEAM_NAME=analytics"
            ),
            "enable-dynamic-allocation": True,
        },
    )
    demo.status()
    demo.spark_sees("team-a:alice")

    banner("A new account appears (the watcher's Pebble notice wakes the charm)")
    demo.spark_client_create("team-a", "carol")
    demo.run("update_status")
    demo.action("list-accounts")

    banner("Someone edits alice's Secret by hand; the next pass repairs only that one")
    demo.tamper("team-a", "alice")
    demo.run("update_status")
    demo.spark_sees("team-a:alice")

    banner("A bad config line blocks, naming the line, and writes nothing")
    demo.run(
        "config_changed", **{"spark-properties": "spark.executor.memory=4g\nexecutor.cores 2"}
    )
    demo.status()

    banner("The operator removes a property")
    demo.run("config_changed", **{"spark-properties": "spark.executor.memory=4g"})
    demo.status()
    demo.action("get-config", account="team-a:carol")
    demo.action("reconcile", **{"dry-run": True})


if __name__ == "__main__":
    sys.exit(main())
