"""What spark8t 1.6.0 hands to `spark-submit` for each integration the real charm translates.

spark8t creates three accounts in two namespaces; the charm (in `ops.testing`) is related with
relation data written by the providers' own code (`tests.relations`) and writes its Secrets to
the test API server; spark8t then reads every account's configuration through its own registry
(`registry.get(account).configurations.props`).
"""

from __future__ import annotations

import pytest
from ops import testing

from tests import relations
from tests.charm.conftest import MODEL, make_context, workload
from tests.charm.test_integrations import (
    CASES,
    ROTATING,
    S3_PAYLOAD,
    azure_properties,
    loki_properties,
    s3_properties,
)
from tests.relations import ACCOUNT_KEY, AZURE_PAYLOAD

ACCOUNTS = ("team-a:alice", "team-a:carol", "team-b:bob")
SPARK8T_OWN = {
    "spark.kubernetes.authenticate.driver.serviceAccountName",
    "spark.kubernetes.namespace",
}
"""What spark8t adds itself (the account and its namespace), above the hub's layer."""


@pytest.fixture
def accounts(kube_server, spark8t):
    for name in ("team-a", "team-b"):
        kube_server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    for account in ACCOUNTS:
        namespace, name = account.split(":")
        spark8t.create(name, namespace)
    return spark8t.registry


@pytest.fixture
def hub():
    ctx = make_context()
    storage = testing.Storage("hub-state")

    def run(event, *links, config: dict[str, str] | None = None) -> testing.State:
        state = testing.State(
            leader=True,
            model=MODEL,
            storages={storage},
            containers={workload()},
            config=config or {},
            relations={link.relation for link in links},
            secrets={secret for link in links for secret in link.secrets},
        )
        out = ctx.run(event(ctx.on), state)
        assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
        assert out.unit_status.message.startswith("3 accounts in sync"), out.unit_status
        return out

    return run


def seen_by_spark8t(registry) -> dict[str, str]:
    """The hub's layer as spark-submit gets it; every account must get the same."""
    layers = []
    for account in ACCOUNTS:
        props = registry.get(account).configurations.props
        assert (
            props["spark.kubernetes.authenticate.driver.serviceAccountName"]
            == (account.split(":")[1])
        )
        layers.append({k: v for k, v in props.items() if k not in SPARK8T_OWN})
    assert all(layer == layers[0] for layer in layers)
    return layers[0]


def changed(link):
    return lambda on: on.relation_changed(link.relation, remote_unit=0)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_spark8t_gets_each_integrations_properties(case, accounts, hub):
    link = case.relate()
    hub(changed(link), link)
    assert seen_by_spark8t(accounts) == case.related


@pytest.mark.parametrize("case", ROTATING, ids=str)
def test_after_rotation_spark8t_gets_the_new_credentials(case, accounts, hub):
    link = case.relate()
    out = hub(changed(link), link)
    link = link.after(out).answer(case.change)
    out = hub(changed(link), link)
    link = link.after(out).answer(case.rotate)
    hub(lambda on: on.secret_changed(link.secret(case.rotated_field)), link)
    assert seen_by_spark8t(accounts) == case.rotated


def test_spark8t_no_longer_gets_a_removed_integration(accounts, hub):
    s3, logging = relations.s3(), relations.published_loki()
    out = hub(changed(s3), s3, logging)
    assert seen_by_spark8t(accounts) == s3_properties(S3_PAYLOAD) | loki_properties(
        relations.loki_url(0)
    )
    s3, logging = s3.after(out), logging.after(out)
    hub(lambda on: on.relation_broken(s3.relation), s3, logging)
    assert seen_by_spark8t(accounts) == loki_properties(relations.loki_url(0))


def test_spark8t_gets_s3_locations_and_both_stores_credentials(accounts, hub):
    s3, azure = relations.s3(), relations.azure()
    out = hub(changed(azure), s3, azure)
    azure_key = "spark.hadoop.fs.azure.account.key.sparkaccount.dfs.core.windows.net"
    seen = seen_by_spark8t(accounts)
    assert seen == s3_properties(S3_PAYLOAD) | {azure_key: ACCOUNT_KEY}
    assert not [value for value in seen.values() if value.startswith("abfss://")]

    s3, azure = s3.after(out), azure.after(out)
    hub(lambda on: on.relation_broken(s3.relation), s3, azure)
    assert seen_by_spark8t(accounts) == azure_properties(AZURE_PAYLOAD)


def test_spark8t_gets_the_operators_override_over_the_integration(accounts, hub):
    s3 = relations.s3()
    override = "spark.hadoop.fs.s3a.endpoint=http://override.minio:9000"
    hub(changed(s3), s3, config={"spark-properties": override})
    seen = seen_by_spark8t(accounts)
    assert seen == s3_properties(S3_PAYLOAD) | {
        "spark.hadoop.fs.s3a.endpoint": "http://override.minio:9000"
    }


def test_the_accounts_own_configuration_still_wins_over_an_integration(accounts, spark8t, hub):
    s3 = relations.s3()
    hub(changed(s3), s3)
    own = spark8t.PropertyFile({"spark.hadoop.fs.s3a.endpoint": "http://alice.minio:9000"})
    accounts.set_configurations("team-a:alice", own)
    alice = accounts.get("team-a:alice").configurations.props
    assert alice["spark.hadoop.fs.s3a.endpoint"] == "http://alice.minio:9000"
    assert alice["spark.hadoop.fs.s3a.secret.key"] == S3_PAYLOAD["secret-key"]
    bob = accounts.get("team-b:bob").configurations.props
    assert bob["spark.hadoop.fs.s3a.endpoint"] == S3_PAYLOAD["endpoint"]
