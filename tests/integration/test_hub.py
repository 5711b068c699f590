"""The hub on a real Juju model and Kubernetes cluster (skipped where there is none)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import jubilant
import pytest

from tests.integration.conftest import HUB

pytestmark = pytest.mark.integration
NAMESPACE = "spark-it"


def spark8t_registry():
    """spark8t's registry for the test cluster (imported late: it reads the environment)."""
    from spark8t.domain import Defaults
    from spark8t.kube_interface.lightkube import LightKubeInterface
    from spark8t.registry.k8s import K8sServiceAccountRegistry

    kube = LightKubeInterface(os.environ["KUBECONFIG"], Defaults({}))
    return kube, K8sServiceAccountRegistry(kube)


def hub_properties(registry, account: str) -> dict[str, str]:
    return registry.get(account).configurations.props


def eventually(check, timeout: float = 120.0):
    """Poll `check` until it returns a truthy value (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(2)


def test_config_reaches_a_new_spark8t_account(juju: jubilant.Juju):
    from lightkube import Client
    from lightkube.resources.core_v1 import Namespace

    Client().create(Namespace(metadata={"name": NAMESPACE}))
    kube, registry = spark8t_registry()
    from spark8t.domain import ServiceAccount
    from spark8t.utils import PropertyFile

    registry.create(
        ServiceAccount("alice", NAMESPACE, kube.api_server, extra_confs=PropertyFile({}))
    )
    juju.config(HUB, {"spark-properties": "spark.executor.memory=4g"})
    juju.wait(lambda status: jubilant.all_active(status, HUB))
    seen = eventually(
        lambda: hub_properties(registry, f"{NAMESPACE}:alice").get("spark.executor.memory")
    )
    assert seen == "4g"


def test_a_tampered_secret_is_repaired_by_the_reconcile_action(juju: jubilant.Juju):
    from lightkube import Client
    from lightkube.resources.core_v1 import Secret

    client = Client()
    secret = client.get(Secret, "integrator-hub-conf-alice", namespace=NAMESPACE)
    secret.data = {"spark.executor.memory": base64.b64encode(b"1g").decode()}
    client.replace(secret)
    task = juju.run(f"{HUB}/leader", "reconcile")
    assert task.results["state"] == "active"
    _, registry = spark8t_registry()
    assert hub_properties(registry, f"{NAMESPACE}:alice")["spark.executor.memory"] == "4g"


def test_s3_credentials_reach_the_account(juju: jubilant.Juju):
    juju.deploy("s3-integrator", channel="2/edge")
    secret = juju.add_secret("s3-creds", {"access-key": "it-access", "secret-key": "it-secret"})
    juju.cli("grant-secret", "s3-creds", "s3-integrator")
    juju.config(
        "s3-integrator",
        {"bucket": "spark-it", "endpoint": "http://minio.minio:9000", "credentials": str(secret)},
    )
    juju.integrate(HUB, "s3-integrator")
    juju.wait(lambda status: jubilant.all_active(status, HUB))
    _, registry = spark8t_registry()
    props = eventually(
        lambda: (
            hub_properties(registry, f"{NAMESPACE}:alice").get("spark.eventLog.dir")
            and hub_properties(registry, f"{NAMESPACE}:alice")
        )
    )
    assert props["spark.eventLog.dir"].startswith("s3a://spark-it")
    assert props["spark.hadoop.fs.s3a.access.key"] == "it-access"
    listed = juju.run(f"{HUB}/leader", "list-accounts", {"namespace": NAMESPACE})
    assert json.loads(listed.results["accounts"])[0]["state"] == "in-sync"
    shown = juju.run(f"{HUB}/leader", "get-config")
    assert "it-secret" not in shown.results["properties"]


def test_a_requirer_charm_gets_an_account(juju: jubilant.Juju):
    path = os.environ.get("REQUIRER_CHARM_PATH")
    if not path or not Path(path).exists():
        pytest.skip("REQUIRER_CHARM_PATH does not name the packed test requirer charm")
    juju.deploy(Path(path), "requirer", config={"service-account": "spark-req:kyuubi"})
    juju.integrate(HUB, "requirer")
    juju.wait(lambda status: jubilant.all_active(status, HUB, "requirer"))
    _, registry = spark8t_registry()
    assert registry.get("spark-req:kyuubi") is not None
    juju.remove_relation(HUB, "requirer")
    juju.wait(lambda status: jubilant.all_agents_idle(status))
    assert eventually(lambda: registry.get("spark-req:kyuubi") is None)
