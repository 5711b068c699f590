"""Values that would not reach Spark exactly are escaped or refused, through the real charm.

spark8t copies each Secret value unchanged into the `key=value` file `spark-submit` loads with
`java.util.Properties` (see `core.values`); tests/interop/test_jvm_properties.py loads that
file with a real JVM. Here: what the hub writes, or that it refuses — blocked, naming the
source and the field, never the value, and writing nothing.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest
from ops import testing

from store import Store
from tests import relations
from tests.charm.test_integrations import NONE, Hook, contents, prime, versions
from tests.cluster.helpers import add_account, decoded, hub_secret
from tests.kube_server.faults import Fault
from tests.relations import PASSWORD, S3_PAYLOAD, SECRET_KEY


@pytest.fixture
def cluster(kube_server, kubeconfig):
    for namespace, name in (("team-a", "alice"), ("team-a", "carol"), ("team-b", "bob")):
        add_account(kube_server, namespace, name)
    return kube_server


@pytest.fixture
def hook(ctx, base_state, cluster):
    return Hook(ctx, base_state, cluster)


def config_changed(on):
    return on.config_changed()


def test_a_backslash_is_escaped_so_the_next_property_survives(hook):
    hook.config = {
        "spark-properties": "spark.hadoop.x.password=ends\\\nspark.hadoop.x.url=jdbc:x\\y"
    }
    out = hook.run(config_changed)
    assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
    assert contents(hook.server) == {
        "spark.hadoop.x.password": "ends\\\\",
        "spark.hadoop.x.url": "jdbc:x\\\\y",
    }


REFUSED_CONFIG = [
    pytest.param(
        {"driver-pod-template": "/t.yaml\nspark.kubernetes.container.image=evil"},
        "config: driver-pod-template contains a line break (U+000A)",
        id="newline-in-pod-template",
    ),
    pytest.param(
        {"executor-pod-template": "/t.yaml\rspark.evil=1"},
        "config: executor-pod-template contains a line break (U+000D)",
        id="cr-in-pod-template",
    ),
    pytest.param(
        {"spark-image": "spark:3\x0cspark.evil=1"},
        "config: spark-image contains a control character (U+000C)",
        id="form-feed-in-image",
    ),
    pytest.param(
        {"spark-properties": "spark.a:b=1"},
        "config: spark-properties line 1: 'spark.a…' is not a Spark property key",
        id="colon-in-key",
    ),
    pytest.param(
        {"spark-properties": "spark.a=1\u2028spark.evil=1"},
        "spark-properties: the value of `spark.a` contains a line separator (U+2028)",
        id="line-separator-in-value",
    ),
    pytest.param(
        {"spark-properties": "spark.a=x\x00y"},
        "spark-properties: the value of `spark.a` contains a control character (U+0000)",
        id="nul-in-value",
    ),
    pytest.param(
        {"spark-properties": "spark.a=1\nspark.b=2\nspark.a=3"},
        "config: spark-properties lines 1 and 3 both set `spark.a`: keep one",
        id="duplicate-key",
    ),
    pytest.param(
        {"spark-properties": "spark.kubernetes.authenticate.driver.serviceAccountName=admin"},
        "config: spark-properties line 1: `spark.kubernetes.authenticate.driver."
        "serviceAccountName` is an identity key",
        id="identity-service-account",
    ),
    pytest.param(
        {"spark-properties": "spark.kubernetes.authenticate.submission.oauthToken=t0ken"},
        "config: spark-properties line 1: `spark.kubernetes.authenticate.submission."
        "oauthToken` is an identity key",
        id="identity-token",
    ),
    pytest.param(
        {"spark-properties": "spark.kubernetes.namespace=kube-system"},
        "config: spark-properties line 1: `spark.kubernetes.namespace` is an identity key",
        id="identity-namespace",
    ),
    pytest.param(
        {"spark-properties": "spark.driver.extraJavaOptions=-Da=1 -XX:+Evil"},
        "spark-properties: the value of `spark.driver.extraJavaOptions` must be `-Dname=value`",
        id="java-options-spark8t-would-mangle",
    ),
    pytest.param(
        {"spark-properties": "spark." + "x" * 260 + "=1"},
        "spark-properties: property key 'spark.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' is too long",
        id="key-too-long-for-a-secret",
    ),
]


@pytest.mark.parametrize(("config", "message"), REFUSED_CONFIG)
def test_hostile_config_blocks_naming_the_field_and_writes_nothing(hook, config, message):
    before = prime(hook)
    hook.config = config
    out = hook.run(config_changed)
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(message), out.unit_status.message
    assert "evil" not in out.unit_status.message and "t0ken" not in out.unit_status.message
    assert hook.writes == NONE
    assert versions(hook.server) == before


REFUSED_S3 = [
    pytest.param({"secret-key": ""}, "`secret-key` from s3-credentials-integrator: is empty"),
    pytest.param(
        {"secret-key": "   "},
        "`secret-key` from s3-credentials-integrator: is blank (only whitespace)",
    ),
    pytest.param(
        {"secret-key": f"{SECRET_KEY} "},
        "`secret-key` from s3-credentials-integrator: has leading or trailing whitespace, "
        "which spark-client would strip",
    ),
    pytest.param(
        {"access-key": "AKIA\u2028spark.evil=1"},
        "`access-key` from s3-credentials-integrator: must be a single line of text "
        "(a line separator (U+2028))",
    ),
    pytest.param(
        {"bucket": "spark\x00"},
        "`bucket` from s3-credentials-integrator: must be a single line of text "
        "(a control character (U+0000))",
    ),
]


@pytest.mark.parametrize(("change", "message"), REFUSED_S3)
def test_hostile_credentials_block_naming_the_relation_and_field(hook, change, message):
    before = prime(hook)
    link = relations.s3(S3_PAYLOAD | change)
    out = hook.run(lambda on: on.relation_changed(link.relation, remote_unit=0), link)
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message == f"s3-credentials: {message}", out.unit_status.message
    assert hook.writes == NONE
    assert versions(hook.server) == before


def test_a_secret_over_the_kubernetes_limit_blocks_naming_the_largest_source(hook):
    before = prime(hook)
    hook.config = {
        "spark-properties": "\n".join(f"spark.big.k{n}={'v' * 60_000}" for n in range(20))
    }
    out = hook.run(config_changed)
    assert out.unit_status == testing.BlockedStatus(
        "the properties make a Secret of 1,200,250 bytes, over Kubernetes' limit of 1,048,576; "
        "the largest source is spark-properties (1,200,250 bytes): shrink it"
    )
    assert hook.writes == NONE
    assert versions(hook.server) == before


def test_the_api_servers_refusal_blocks_instead_of_retrying_forever(hook, cluster):
    prime_versions = prime(hook)
    cluster.inject(Fault(method="PUT", path_contains="/secrets/", status=422, times=-1))
    hook.config = {"spark-properties": "spark.executor.memory=8g"}
    out = hook.run(config_changed)
    assert isinstance(out.unit_status, testing.BlockedStatus), out.unit_status
    assert "the API server refused the Secret of 3 accounts" in out.unit_status.message
    assert versions(hook.server) == prime_versions
    blocked = out.unit_status
    add_account(hook.server, "team-b", "dave")  # every other account is still served
    out = hook.run(lambda on: on.update_status())  # the same data would be refused again
    assert out.unit_status == blocked
    assert hook.server.count("PUT") == 0
    assert hook.server.count("POST", "/secrets") == 1
    assert hub_secret(hook.server, "team-b", "dave") is not None
    hook.server.clear_faults()
    hook.config = {"spark-properties": "spark.executor.memory=6g"}  # a change: written again
    out = hook.run(config_changed)
    assert out.unit_status == testing.ActiveStatus("4 accounts in sync")


# -- the store keeps no value ---------------------------------------------------------------------


def store_bytes(ctx, storage) -> bytes:
    directory = storage.get_filesystem(ctx)
    return b"".join(path.read_bytes() for path in directory.glob("hub.sqlite3*"))


def test_the_store_file_holds_no_credential(hook, ctx, storage):
    hook.config = {"spark-properties": "spark.hadoop.fs.s3a.session.token=t0kenVALUE"}
    links = [relations.s3(), relations.metastore()]
    out = hook.run(lambda on: on.relation_changed(links[0].relation, remote_unit=0), *links)
    assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
    assert hub_secret(hook.server, "team-a", "alice") is not None
    data = store_bytes(ctx, storage)
    for credential in (SECRET_KEY, S3_PAYLOAD["access-key"], PASSWORD, "t0kenVALUE"):
        assert credential.encode() not in data


def test_an_older_store_loses_its_stored_values_on_upgrade(hook, ctx, storage):
    path = storage.get_filesystem(ctx) / "hub.sqlite3"
    Store.open(path).close()
    db = sqlite3.connect(path)
    stored = [  # what schema 2 kept: every value, credentials included
        {"key": "spark.hadoop.fs.s3a.secret.key", "value": SECRET_KEY},
    ]
    stored[0] |= {"source": "s3-credentials", "sensitive": True}
    db.execute("INSERT OR REPLACE INTO meta VALUES ('desired', ?)", [json.dumps(stored)])
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    assert SECRET_KEY.encode() in store_bytes(ctx, storage)
    hook.config = {}  # a pass that distributes nothing: it rewrites no desired state
    out = hook.run(config_changed)
    assert isinstance(out.unit_status, testing.WaitingStatus), out.unit_status
    assert SECRET_KEY.encode() not in store_bytes(ctx, storage)


# -- malformed metastore provider data: the library's own handlers never crash the hook ----------

MALFORMED_REQUESTS = [
    "not json",
    "{}",
    '"x"',
    "null",
    "[1]",
    "[[]]",
    '[{"resource": 5}]',
    '[{"endpoints": 7}]',
    '[{"request-id": []}]',
    '[{"salt": {}, "resource": "hive_metastore"}]',
    '[{"resource": "hive_metastore", "endpoints": {"a": 1}, "secret-user": 3}]',
    "[" * 10_000 + "]" * 10_000,
]


@pytest.mark.parametrize("requests", MALFORMED_REQUESTS, ids=lambda text: text[:40])
@pytest.mark.parametrize("event", ["relation_changed", "secret_changed"])
def test_malformed_metastore_data_blocks_naming_the_relation(hook, requests, event):
    before = prime(hook)
    link = relations.metastore()
    relation = dataclasses.replace(
        link.relation, remote_app_data={**link.relation.remote_app_data, "requests": requests}
    )
    link = dataclasses.replace(link, relation=relation)
    if event == "relation_changed":
        out = hook.run(lambda on: on.relation_changed(relation, remote_unit=0), link)
    else:
        secret = next(iter(link.secrets))
        out = hook.run(lambda on: on.secret_changed(secret), link)
    assert isinstance(out.unit_status, testing.BlockedStatus), out.unit_status
    assert out.unit_status.message.startswith("metastore: "), out.unit_status.message
    assert hook.writes == NONE
    assert versions(hook.server) == before


# -- a store damaged inside (header intact) is set aside and rebuilt, writing nothing ----------


def damage_pages(path) -> None:
    """Overwrite every page after the first (the header page stays intact)."""
    data = bytearray(path.read_bytes())
    assert len(data) > 4096
    data[4096:] = b"\xa5" * (len(data) - 4096)
    path.write_bytes(bytes(data))


def test_a_store_damaged_inside_is_rebuilt_without_rewriting_in_sync_secrets(hook, ctx, storage):
    before = prime(hook)
    directory = storage.get_filesystem(ctx)
    path = directory / "hub.sqlite3"
    assert not list(directory.glob("hub.sqlite3-wal"))  # closed: everything is in the file
    damage_pages(path)
    out = hook.run(lambda on: on.update_status())
    assert out.unit_status == testing.ActiveStatus("3 accounts in sync")
    assert hook.writes == NONE
    assert versions(hook.server) == before
    assert not list(directory.glob("hub.sqlite3.corrupt-*"))  # removed once rebuilt
    store = Store.open(path)
    assert len(store.applied()) == 3
    store.close()


def test_until_a_rebuild_converges_only_the_latest_corrupt_copy_is_kept(hook, ctx, storage):
    prime(hook)
    directory = storage.get_filesystem(ctx)
    path = directory / "hub.sqlite3"
    hook.server.inject(Fault(status=403, times=-1))  # the rebuild cannot converge yet
    for _ in range(2):
        damage_pages(path) if path.stat().st_size > 4096 else path.write_bytes(b"x" * 8192)
        out = hook.run(lambda on: on.update_status())
        assert not isinstance(out.unit_status, testing.ActiveStatus)
        assert len(list(directory.glob("hub.sqlite3.corrupt-*"))) == 1
    hook.server.faults.clear()
    out = hook.run(lambda on: on.update_status())
    assert out.unit_status == testing.ActiveStatus("3 accounts in sync")
    assert not list(directory.glob("hub.sqlite3.corrupt-*"))


# -- a missing `watch` permission affects only the watcher ------------------------------------


def test_without_watch_permission_the_hub_still_serves_and_says_so(hook):
    hook.server.denied = {("watch", "secrets"), ("watch", "serviceaccounts")}
    out = hook.run(lambda on: on.install())
    assert out.unit_status == testing.ActiveStatus(
        "3 accounts in sync; the watcher cannot watch (missing: watch serviceaccounts, watch "
        "secrets), so changes are seen at update-status only: run "
        "`juju trust spark-integration-hub-k8s --scope=cluster`"
    )
    assert contents(hook.server) == {"spark.executor.memory": "4g"}
    hook.server.denied = set()
    out = hook.run(lambda on: on.update_status())
    assert out.unit_status == testing.ActiveStatus("3 accounts in sync")


# -- values come from this pass: a blocked pass keeps the requirer's last answer -----------------

ADOPT = {"service-account-adopt-existing": True}
"""team-a:alice is spark8t's own account, not one the hub created: answering for it is opt-in."""


def kyuubi_asking_for_alice() -> testing.Relation:
    """A requirer asking for spark8t's own team-a:alice (skip-creation) and its properties."""
    return testing.Relation(
        "spark-service-account",
        remote_app_name="kyuubi",
        remote_app_data={
            "service-account": "team-a:alice",
            "skip-creation": "true",
            "requested-secrets": '["spark-properties"]',
        },
    )


def test_a_blocked_pass_keeps_what_requirers_were_given(ctx, base_state, cluster):
    relation = kyuubi_asking_for_alice()
    config = {"spark-properties": "spark.executor.memory=4g", **ADOPT}
    first = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=config, relations={relation})
    )
    (given,) = [s for s in first.secrets if s.owner == "app"]
    content = dict(given.latest_content or given.tracked_content)
    assert json.loads(content["spark-properties"]) == {"spark.executor.memory": "4g"}
    bad = {"spark-properties": "spark.executor.memory=4g\nspark.executor.memory=8g", **ADOPT}
    state = base_state(config=bad, relations=first.relations, secrets=first.secrets)
    out = ctx.run(ctx.on.config_changed(), state)
    assert isinstance(out.unit_status, testing.BlockedStatus)
    (kept,) = [s for s in out.secrets if s.owner == "app"]
    assert dict(kept.latest_content or kept.tracked_content) == content


def test_requirers_get_each_value_in_its_properties_file_form(ctx, base_state, cluster):
    relation = kyuubi_asking_for_alice()
    config = {"spark-properties": "spark.hadoop.x.password=ends\\", **ADOPT}
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=config, relations={relation})
    )
    (given,) = [s for s in out.secrets if s.owner == "app"]
    content = dict(given.latest_content or given.tracked_content)
    published = json.loads(content["spark-properties"])
    assert published == {"spark.hadoop.x.password": "ends\\\\"}
    assert published == decoded(hub_secret(cluster, "team-a", "alice"))
