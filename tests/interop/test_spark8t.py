"""spark8t 1.6.0 creates the accounts and reads, through its own code, what the hub wrote."""

import pytest

from machine import HubState
from tests.cluster.helpers import hub_secret, make_hub, options, run

HUB = {
    "spark.executor.memory": "4g",
    "spark.executorEnv.LOKI_URL": "http://loki.cos:3100/loki/api/v1/push",
    "spark.metrics.conf.*.sink.prometheus.class": (
        "org.apache.spark.banzaicloud.metrics.sink.PrometheusSink"
    ),
    "spark.hadoop.fs.s3a.path.style.access": "true",
    "spark.driver.extraJavaOptions": "-Dlog4j.configuration=file:/etc/log4j.properties",
}


@pytest.fixture
def namespaces(kube_server):
    for name in ("team-a", "team-b"):
        kube_server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


@pytest.fixture
def hub(tmp_path, kubeconfig):
    hub = make_hub(tmp_path / "hub.sqlite3")
    yield hub
    hub.close()


def hub_layer(configurations: dict[str, str]) -> dict[str, str]:
    """What spark-submit sees, less what spark8t adds itself (account and namespace)."""
    return {k: v for k, v in configurations.items() if not k.startswith("spark.kubernetes.")}


def test_spark8t_sees_exactly_the_hubs_properties(namespaces, spark8t, hub):
    spark8t.create("alice", "team-a")
    spark8t.create("bob", "team-b")
    report = run(hub, options(**HUB))
    assert report.message == "2 accounts in sync"
    for account in ("team-a:alice", "team-b:bob"):
        assert hub_layer(spark8t.registry.get(account).configurations.props) == HUB


def test_the_accounts_own_configuration_overrides_the_hub(namespaces, spark8t, hub):
    spark8t.create("alice", "team-a")
    run(hub, options(**HUB))
    spark8t.registry.set_configurations(
        "team-a:alice", spark8t.PropertyFile({"spark.executor.memory": "8g"})
    )
    seen = spark8t.registry.get("team-a:alice").configurations.props
    assert seen["spark.executor.memory"] == "8g"
    assert seen["spark.executorEnv.LOKI_URL"] == HUB["spark.executorEnv.LOKI_URL"]


def test_primary_relabel_keeps_the_config_and_delete_removes_it(
    kube_server, namespaces, spark8t, hub
):
    spark8t.create("alice", "team-a")
    spark8t.create("bob", "team-a")
    run(hub, options(**HUB))
    spark8t.registry.set_primary("team-a:alice", "team-a")
    kube_server.clear_requests()
    report = run(hub, options(**HUB))
    assert report.state is HubState.ACTIVE
    assert kube_server.count("PUT") == kube_server.count("POST") == 0
    assert hub_layer(spark8t.registry.get("team-a:alice").configurations.props) == HUB
    spark8t.registry.delete("team-a:bob")
    run(hub, options(**HUB))
    assert hub_secret(kube_server, "team-a", "bob") is None
    assert [row["account"] for row in hub.accounts()] == ["team-a:alice"]


def test_a_property_removed_is_gone_for_spark8t(namespaces, spark8t, hub):
    spark8t.create("alice", "team-a")
    run(hub, options(**HUB))
    fewer = {k: v for k, v in HUB.items() if k != "spark.executorEnv.LOKI_URL"}
    run(hub, options(**fewer))
    assert hub_layer(spark8t.registry.get("team-a:alice").configurations.props) == fewer
