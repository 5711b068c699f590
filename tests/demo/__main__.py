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
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "lib"), str(ROOT)]

from tests import relations  # noqa: E402
from tests.kube_server import KubeServer  # noqa: E402
from workload import NOTICE_KEY  # noqa: E402

APP = "spark-integration-hub-k8s"


def banner(text: str) -> None:
    """Print a step heading."""
    print(f"\n\033[1m== {text}\033[0m")


class Demo:
    """The charm under ops.testing, a test cluster and spark8t, side by side."""

    def __init__(self, server: KubeServer, workdir: Path) -> None:
        from ops import testing

        from charm import SparkIntegrationHubCharm

        self.server = server
        self.testing = testing
        self.watcher: subprocess.Popen | None = None
        self.notices = Path(os.devnull)
        self.ctx = testing.Context(
            SparkIntegrationHubCharm,
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

    def run(self, event: str, trigger: Any = None, **config: Any) -> None:
        """Deliver one Juju event (`ctx.on.<event>()` unless `trigger` is given) to the charm."""
        if config:
            self.state = dataclasses.replace(self.state, config={**self.state.config, **config})
        self.server.clear_requests()
        self.state = self.ctx.run(trigger or getattr(self.ctx.on, event)(), self.state)
        counts = Counter(
            r.method
            for r in self.server.requests
            if r.method in ("POST", "PUT", "PATCH", "DELETE") and "accessreviews" not in r.path
        )
        writes = ", ".join(f"{n} {m}" for m, n in sorted(counts.items())) or "none"
        print(f"[{event}] API requests: {len(self.server.requests)}, writes: {writes}")

    def relate(self, link: Any) -> None:
        """Put a relation (and the provider's Juju secrets) into the model."""
        relations = {r for r in self.state.relations if r.id != link.relation.id}
        secrets = {s for s in self.state.secrets if s.id not in {x.id for x in link.secrets}}
        self.state = dataclasses.replace(
            self.state, relations=relations | {link.relation}, secrets=secrets | set(link.secrets)
        )

    def unrelate(self, link: Any) -> None:
        """Take a relation out of the model, after its relation-broken hook."""
        relations = {r for r in self.state.relations if r.id != link.relation.id}
        self.state = dataclasses.replace(self.state, relations=relations)

    def start_watcher(self, workdir: Path) -> None:
        """Run the real watcher process against the cluster; its `pebble notify` is recorded."""
        self.notices = workdir / "notices"
        pebble = workdir / "pebble"
        pebble.write_text(
            f"#!{sys.executable} -S\nimport sys, time\n"
            f"open({str(self.notices)!r}, 'a').write(f'{{time.time()}} {{sys.argv[1:]}}\\n')\n"
        )
        pebble.chmod(0o755)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HUB_WATCHER_SERVER": self.server.url,
            "HUB_WATCHER_OWNER": f"{self.state.model.uuid}/{APP}",
            "HUB_WATCHER_PEBBLE": str(pebble),
            "HUB_WATCHER_HEARTBEAT": str(workdir / "heartbeat"),
        }
        self.watcher = subprocess.Popen(
            [sys.executable, "-S", "-m", "watcher"],
            cwd=ROOT / "src",
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_for_notice(0)

    def notices_sent(self) -> list[str]:
        """The notices the watcher has sent so far."""
        return self.notices.read_text().splitlines() if self.notices.exists() else []

    def wait_for_notice(self, seen: int, timeout: float = 10.0) -> float:
        """Wait for the watcher's next notice; returns when it was sent (UNIX time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = self.notices_sent()
            if len(sent) > seen:
                return float(sent[seen].split()[0])
            time.sleep(0.01)
        raise RuntimeError("the watcher sent no notice")

    def notice(self) -> None:
        """The watcher's Pebble notice reaches the charm."""
        notice = self.testing.Notice(NOTICE_KEY)
        container = dataclasses.replace(
            self.state.get_container("integration-hub"), notices=[notice]
        )
        containers = {c for c in self.state.containers if c.name != container.name}
        self.state = dataclasses.replace(self.state, containers=containers | {container})
        self.run("pebble-custom-notice", self.ctx.on.pebble_custom_notice(container, notice))

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

    def juju_application(self, model: str, app: str) -> None:
        """A Juju model's namespace with one pod of `app` (as Juju labels them)."""
        juju = {"app.kubernetes.io/managed-by": "juju", "model.juju.is/name": model}
        self.server.put(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": model, "labels": juju}}
        )
        labels = {"app.kubernetes.io/name": app}
        meta = {"name": f"{app}-0", "namespace": model, "labels": labels}
        spec = {"containers": [{"name": "charm", "image": f"{app}-charm"}]}
        self.server.put({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})

    def requirer(self, app: str, account: str, skip_creation: bool) -> Any:
        """Relate `app`, which asks as its vendored library does; returns the relation."""
        secrets = ["username", "password", "tls", "tls-ca", "uris", "read-only-uris"]
        data = {
            "requested-secrets": json.dumps([*secrets, "spark-properties", "resource-manifest"]),
            "provided-secrets": json.dumps(["mtls-cert"]),
            "service-account": account,
            "skip-creation": str(skip_creation).lower(),
        }
        relation = self.testing.Relation(
            "spark-service-account", remote_app_name=app, remote_app_data=data
        )
        self.state = dataclasses.replace(self.state, relations=self.state.relations | {relation})
        self.run(
            "spark-service-account-relation-changed",
            self.ctx.on.relation_changed(relation, remote_unit=0),
        )
        answer = self.state.get_relation(relation.id).local_app_data
        print(f"  {app} is answered: {dict(answer)}")
        return relation

    def dispatch(self, relation: Any, profiles: list[str]) -> None:
        """Apply the answer's manifest in each profile, as resource-dispatcher does."""
        import yaml

        local = self.state.get_relation(relation.id).local_app_data
        (secret,) = [s for s in self.state.secrets if s.id == local["secret-extra"]]
        manifest = (secret.latest_content or secret.tracked_content)["resource-manifest"]
        for profile in profiles:
            self.server.put(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": profile}}
            )
            for document in yaml.safe_load_all(manifest):
                document["metadata"]["namespace"] = profile
                for subject in document.get("subjects", []):
                    subject["namespace"] = profile
                self.server.put(document)
            print(
                f"  applied {profile}: "
                + ", ".join(
                    f"{d['kind']}/{d['metadata']['name']}" for d in yaml.safe_load_all(manifest)
                )
            )

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
        """Close spark8t's client and stop the watcher."""
        self.kube.client.close()
        if self.watcher is not None:
            self.watcher.terminate()
            self.watcher.wait(timeout=10)


def main() -> int:
    """Run the demo; returns a process exit code."""
    with KubeServer() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ["KUBECONFIG"] = str(server.write_kubeconfig(Path(tmp) / "kubeconfig"))
        demo = Demo(server, Path(tmp))
        try:
            demo.start_watcher(Path(tmp))
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
    container = demo.state.get_container("integration-hub")
    demo.run("integration-hub-pebble-ready", demo.ctx.on.pebble_ready(container))
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

    banner("juju integrate spark-integration-hub-k8s s3-integrator   # real S3Provider data")
    s3 = relations.s3()
    demo.relate(s3)
    demo.run(
        "s3-credentials-relation-changed", demo.ctx.on.relation_changed(s3.relation, remote_unit=0)
    )
    demo.status()
    demo.action("get-config")

    banner("s3-integrator rotates its keys (a new revision of its Juju secret)")
    s3 = s3.after(demo.state).answer(
        {**relations.S3_PAYLOAD, "access-key": "AKIAROTATED0000000001", "secret-key": "n3w"}
    )
    demo.relate(s3)
    demo.run("secret-changed", demo.ctx.on.secret_changed(s3.secret("access-key")))
    demo.spark_sees("team-b:bob")

    banner("A new account appears; the watcher's Pebble notice wakes the charm")
    seen = len(demo.notices_sent())
    created = time.time()
    demo.spark_client_create("team-a", "carol")
    latency = demo.wait_for_notice(seen) - created
    reason = demo.notices_sent()[seen].split("'reason=", 1)[-1].rstrip("']")
    print(
        f"  watcher: `pebble notify {NOTICE_KEY}` ({reason}) {latency * 1000:.0f} ms after the"
        " create (at most one notice a second: changes within a second are coalesced)"
    )
    demo.notice()
    demo.action("list-accounts")

    banner("Kyuubi, deployed in the hub's model, asks for a Spark account (its exact request)")
    demo.juju_application("spark", "kyuubi")
    demo.requirer("kyuubi", "spark:kyuubi-spark-engine", skip_creation=False)
    demo.status()  # its own namespace: granted at the default config
    demo.spark_sees("spark:kyuubi-spark-engine")

    banner("data-kubeflow-integrator asks for `spark` in every profile (skip-creation: true)")
    kubeflow = demo.requirer("data-kubeflow-integrator", "spark:spark", skip_creation=True)
    print("  the hub created nothing; resource-dispatcher applies its manifest in each profile:")
    demo.dispatch(kubeflow, ["kubeflow-alice", "kubeflow-bob"])
    demo.notice()
    demo.spark_sees("kubeflow-bob:spark")

    banner("Someone edits alice's Secret by hand; the next pass repairs only that one")
    demo.tamper("team-a", "alice")
    demo.run("update_status")
    demo.spark_sees("team-a:alice")

    banner("A bad config line blocks, naming the line, and writes nothing")
    demo.run(
        "config_changed", **{"spark-properties": "spark.executor.memory=4g\nexecutor.cores 2"}
    )
    demo.status()

    banner("The operator removes a property; then s3-integrator is removed")
    demo.run("config_changed", **{"spark-properties": "spark.executor.memory=4g"})
    demo.status()
    s3 = s3.after(demo.state)
    demo.run("s3-credentials-relation-broken", demo.ctx.on.relation_broken(s3.relation))
    demo.unrelate(s3)
    demo.action("get-config", account="team-a:carol")
    demo.action("reconcile", **{"dry-run": True})


if __name__ == "__main__":
    sys.exit(main())
