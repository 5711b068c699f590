"""The hub on a real Juju model and Kubernetes cluster (skipped where there is none).

The tests run in order on one model: each builds on the state the previous one left.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jubilant
import pytest
from lightkube import codecs
from lightkube.resources.core_v1 import Secret

from tests.integration.helpers import (
    GCS_INTEGRATOR_CHANNEL,
    HUB,
    POSTGRESQL_CHANNEL,
    S3_INTEGRATOR_CHANNEL,
    Minio,
    Spark8t,
    create_namespace,
    eventually,
    fake_gcs_key,
    hub_secret_names,
    kube,
)

pytestmark = pytest.mark.integration
NAMESPACE = "spark-it"
ALICE = f"{NAMESPACE}:alice"
BOB = f"{NAMESPACE}:bob"


def hub_active(status: jubilant.Status) -> bool:
    return jubilant.all_active(status, HUB)


def properties_once(
    spark8t: Spark8t, account: str, key: str, timeout: float = 120
) -> dict[str, str]:
    """The account's properties once they hold `key` ({} if they never do)."""

    def holding() -> dict[str, str]:
        props = spark8t.properties(account)
        return props if key in props else {}

    return eventually(holding, timeout)


def test_config_reaches_a_new_spark8t_account(juju: jubilant.Juju):
    create_namespace(NAMESPACE)
    spark8t = Spark8t()
    spark8t.create(NAMESPACE, "alice")
    juju.config(HUB, {"spark-properties": "spark.executor.memory=4g"})
    juju.wait(hub_active, error=jubilant.any_error)
    seen = eventually(lambda: spark8t.properties(ALICE).get("spark.executor.memory"))
    assert seen == "4g"


def test_the_watcher_serves_a_new_account_without_any_hook(juju: jubilant.Juju):
    """update-status every hour and no config change: only the watcher's notice can do it."""
    juju.model_config({"update-status-hook-interval": "60m"})
    juju.wait(jubilant.all_agents_idle, error=jubilant.any_error)
    spark8t = Spark8t()
    spark8t.create(NAMESPACE, "bob")
    seen = eventually(lambda: spark8t.properties(BOB).get("spark.executor.memory"), timeout=90)
    assert seen == "4g"
    juju.model_config(reset="update-status-hook-interval")


def test_a_tampered_secret_is_repaired_by_the_reconcile_action(juju: jubilant.Juju):
    client = kube()
    secret = client.get(Secret, "integrator-hub-conf-alice", namespace=NAMESPACE)
    secret.data = {"spark.executor.memory": base64.b64encode(b"1g").decode()}
    client.replace(secret)
    task = juju.run(f"{HUB}/leader", "reconcile")
    assert task.results["state"] == "active"
    assert Spark8t().properties(ALICE)["spark.executor.memory"] == "4g"


def test_scope_serves_only_the_accounts_it_names(juju: jubilant.Juju):
    juju.config(HUB, {"monitored-service-accounts": ALICE})
    juju.wait(hub_active, error=jubilant.any_error)
    remaining = eventually(lambda: hub_secret_names(NAMESPACE) == {"integrator-hub-conf-alice"})
    assert remaining, hub_secret_names(NAMESPACE)
    juju.config(HUB, reset="monitored-service-accounts")
    juju.wait(hub_active, error=jubilant.any_error)
    assert eventually(lambda: len(hub_secret_names(NAMESPACE)) == 2)


def test_s3_credentials_of_our_own_minio_reach_the_account(juju: jubilant.Juju, minio: Minio):
    juju.deploy("s3-integrator", channel=S3_INTEGRATOR_CHANNEL)
    secret = juju.add_secret(
        "s3-creds", {"access-key": minio.access_key, "secret-key": minio.secret_key}
    )
    juju.grant_secret("s3-creds", "s3-integrator")
    juju.config(
        "s3-integrator",
        {"bucket": "spark-it", "endpoint": minio.endpoint, "credentials": str(secret)},
    )
    juju.integrate(HUB, "s3-integrator")
    juju.wait(
        lambda status: jubilant.all_active(status, HUB, "s3-integrator"), error=jubilant.any_error
    )
    spark8t = Spark8t()
    props = properties_once(spark8t, ALICE, "spark.eventLog.dir")
    assert props
    assert props["spark.eventLog.dir"].startswith("s3a://spark-it")
    assert props["spark.hadoop.fs.s3a.endpoint"] == minio.endpoint
    assert props["spark.hadoop.fs.s3a.access.key"] == minio.access_key
    listed = juju.run(f"{HUB}/leader", "list-accounts", {"namespace": NAMESPACE})
    assert {account["state"] for account in json.loads(listed.results["accounts"])} == {"in-sync"}
    shown = juju.run(f"{HUB}/leader", "get-config")
    assert minio.secret_key not in shown.results["properties"]


def test_gcs_credentials_reach_the_account(juju: jubilant.Juju):
    juju.deploy("gcs-integrator", channel=GCS_INTEGRATOR_CHANNEL)
    secret = juju.add_secret("gcs-creds", {"secret-key": fake_gcs_key()})
    juju.grant_secret("gcs-creds", "gcs-integrator")
    juju.config("gcs-integrator", {"bucket": "spark-it-gcs", "credentials": str(secret)})
    juju.integrate(HUB, "gcs-integrator")
    juju.wait(
        lambda status: jubilant.all_active(status, HUB, "gcs-integrator"), error=jubilant.any_error
    )
    spark8t = Spark8t()
    props = properties_once(spark8t, ALICE, "spark.hadoop.fs.gs.auth.service.account.email")
    assert props
    assert props["spark.hadoop.fs.gs.auth.service.account.email"].startswith("hub-it@")
    juju.remove_relation(HUB, "gcs-integrator")
    juju.wait(hub_active, error=jubilant.any_error)


def test_the_metastore_reaches_the_account(juju: jubilant.Juju):
    juju.deploy("postgresql-k8s", channel=POSTGRESQL_CHANNEL, trust=True)
    juju.integrate(f"{HUB}:metastore", "postgresql-k8s")
    juju.wait(
        lambda status: jubilant.all_active(status, HUB, "postgresql-k8s"), error=jubilant.any_error
    )
    spark8t = Spark8t()
    url = eventually(
        lambda: spark8t.properties(ALICE).get("spark.hadoop.javax.jdo.option.ConnectionURL"),
        timeout=300,
    )
    assert url and url.startswith("jdbc:postgresql://") and url.endswith("/hive_metastore")
    assert spark8t.properties(ALICE)["spark.sql.catalogImplementation"] == "hive"


def test_a_kyuubi_like_requirer_in_the_hubs_model_gets_its_account(
    juju: jubilant.Juju, charms: tuple[Path, Path]
):
    """Kyuubi asks for `<its model>:kyuubi-spark-engine`: granted at the default config."""
    account = f"{juju.model}:kyuubi-spark-engine"
    juju.deploy(charms[1], "kyuubi", config={"service-account": account})
    juju.integrate(HUB, "kyuubi")
    juju.wait(lambda status: jubilant.all_active(status, HUB, "kyuubi"), error=jubilant.any_error)
    spark8t = Spark8t()
    assert spark8t.exists(account)
    assert eventually(lambda: spark8t.properties(account).get("spark.executor.memory")) == "4g"

    # a second application asking for the same account is refused, naming the fix
    juju.deploy(charms[1], "thief", config={"service-account": account})
    juju.integrate(HUB, "thief")
    status = juju.wait(
        lambda status: jubilant.all_blocked(status, HUB), error=jubilant.any_error, timeout=600
    )
    message = next(iter(status.apps[HUB].units.values())).workload_status.message
    assert "service-account-sharing=true" in message, message
    juju.remove_application("thief")
    juju.wait(hub_active, error=jubilant.any_error)

    juju.remove_relation(HUB, "kyuubi")
    juju.wait(jubilant.all_agents_idle, error=jubilant.any_error)
    assert eventually(lambda: not spark8t.exists(account))


def test_a_kubeflow_like_requirer_is_answered_and_its_dispatched_account_served(
    juju: jubilant.Juju, charms: tuple[Path, Path]
):
    """skip-creation: the hub creates nothing; the manifest, applied, is a served account."""
    profile = "spark-it-profile"
    juju.deploy(
        charms[1],
        "kubeflow",
        config={"service-account": f"{profile}:spark", "skip-creation": True},
    )
    juju.integrate(HUB, "kubeflow")
    juju.wait(
        lambda status: jubilant.all_active(status, HUB, "kubeflow"), error=jubilant.any_error
    )
    spark8t = Spark8t()
    assert not spark8t.exists(f"{profile}:spark")
    manifest = juju.run("kubeflow/leader", "manifest").results["manifest"]
    create_namespace(profile)
    client = kube()
    for document in codecs.load_all_yaml(manifest):
        client.apply(document, field_manager="resource-dispatcher")
    props = properties_once(spark8t, f"{profile}:spark", "spark.executor.memory", timeout=180)
    assert props.get("spark.executor.memory") == "4g"
    juju.remove_relation(HUB, "kubeflow")
    juju.wait(hub_active, error=jubilant.any_error)


def test_without_trust_the_hub_blocks_naming_the_fix(juju: jubilant.Juju):
    juju.trust(HUB, remove=True, scope="cluster")
    status = juju.wait(
        lambda status: jubilant.all_blocked(status, HUB), error=jubilant.any_error, timeout=600
    )
    message = next(iter(status.apps[HUB].units.values())).workload_status.message
    assert f"juju trust {HUB}" in message, message
    juju.trust(HUB, scope="cluster")
    juju.wait(hub_active, error=jubilant.any_error)


def test_removing_the_application_removes_its_secrets(juju: jubilant.Juju):
    assert hub_secret_names(NAMESPACE)
    juju.remove_application(HUB, destroy_storage=True)
    juju.wait(lambda status: HUB not in status.apps, error=jubilant.any_error)
    assert eventually(lambda: not hub_secret_names(NAMESPACE)), hub_secret_names(NAMESPACE)
    assert Spark8t().exists(ALICE)  # the accounts themselves are not the hub's
