"""Every integration through the real charm, with relation data written by the providers' code.

The relation data and Juju secrets come from `tests.relations` (the libraries' own providers, or
the exact databags of the providers without a library); the charm runs in `ops.testing` and
writes, through the real lightkube client, to the test API server, whose request log gives the
cost of every hook. Three Spark accounts in two namespaces: every change must cost exactly one
write per account, a rotation must replace (never delete, never re-create) each Secret, and
waiting or blocked hubs write nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from ops import testing

from core.values import unescape_value
from tests import relations
from tests.cluster.helpers import add_account, decoded, hub_secret
from tests.relations import (
    ACCESS_KEY,
    ACCOUNT_KEY,
    AZURE_PAYLOAD,
    GATEWAY,
    GCS_PAYLOAD,
    GCS_PRIVATE_KEY_BODY,
    GCS_PRIVATE_KEY_ID,
    PASSWORD,
    S3_PAYLOAD,
    SECRET_KEY,
)

ACCOUNTS = (("team-a", "alice"), ("team-a", "carol"), ("team-b", "bob"))
N = len(ACCOUNTS)
BASE = {"spark-properties": "spark.executor.memory=4g"}
MEMORY = {"spark.executor.memory": "4g"}
IN_SYNC = testing.ActiveStatus(f"{N} accounts in sync")

# -- what each provider delivers, then changes, then rotates ------------------------------------

S3_CHANGED = S3_PAYLOAD | {
    "endpoint": "https://s3.eu-west-1.amazonaws.com",
    "bucket": "spark-2",
    "region": "eu-west-1",
}
S3_ROTATED = S3_CHANGED | {
    "access-key": "AKIAROTATED0000000000",
    "secret-key": "r0tated/S3cret+Key",
}
AZURE_CHANGED = AZURE_PAYLOAD | {"container": "spark-2", "path": "events-2"}
ACCOUNT_KEY_ROTATED = "cm90YXRlZC1henVyZS1hY2NvdW50LWtleQ=="
AZURE_ROTATED = AZURE_CHANGED | {"secret-key": ACCOUNT_KEY_ROTATED}
GCS_CHANGED = GCS_PAYLOAD | {"bucket": "spark-gcs-2"}
GCS_KEY_BODY_ROTATED = "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCROTATED"
GCS_KEY_ID_ROTATED = "fedcba9876543210"
GCS_ROTATED = GCS_CHANGED | {
    "secret-key": relations.gcs_key(
        f"-----BEGIN PRIVATE KEY-----\n{GCS_KEY_BODY_ROTATED}\n-----END PRIVATE KEY-----\n",
        GCS_KEY_ID_ROTATED,
    )
}
PG_CHANGED = {"endpoints": "postgresql-k8s-primary.prod.svc.cluster.local:5433"}
PASSWORD_ROTATED = "N3w-Rotated-Passw0rd"
PG_ROTATED = PG_CHANGED | {"password": PASSWORD_ROTATED}
GATEWAY_CHANGED = "https://pushgateway.cos.example.com/gateway"
LOKI_CHANGED = relations.loki_url(0, "loki-2")

CREDENTIALS = (
    ACCESS_KEY,
    SECRET_KEY,
    ACCOUNT_KEY,
    GCS_PRIVATE_KEY_BODY,
    GCS_PRIVATE_KEY_ID,
    PASSWORD,
    S3_ROTATED["access-key"],
    S3_ROTATED["secret-key"],
    ACCOUNT_KEY_ROTATED,
    GCS_KEY_BODY_ROTATED,
    GCS_KEY_ID_ROTATED,
    PASSWORD_ROTATED,
)


def s3_properties(payload: dict[str, Any]) -> dict[str, str]:
    bucket, endpoint = payload["bucket"], payload["endpoint"]
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.access.key": payload["access-key"],
        "spark.hadoop.fs.s3a.secret.key": payload["secret-key"],
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https:")).lower(),
        "spark.hadoop.fs.s3a.endpoint.region": payload["region"],
        **locations(f"s3a://{bucket}/", payload["path"]),
    }


def azure_properties(payload: dict[str, Any]) -> dict[str, str]:
    host = f"{payload['storage-account']}.dfs.core.windows.net"
    return {
        f"spark.hadoop.fs.azure.account.key.{host}": payload["secret-key"],
        **locations(f"abfss://{payload['container']}@{host}/", payload["path"]),
    }


def gcs_properties(payload: dict[str, Any]) -> dict[str, str]:
    key = json.loads(payload["secret-key"])
    return {
        "spark.hadoop.fs.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.gs.impl": (
            "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS"
        ),
        "spark.hadoop.fs.gs.project.id": "spark-project",
        "spark.hadoop.fs.gs.auth.service.account.enable": "true",
        "spark.hadoop.fs.gs.auth.service.account.email": key["client_email"],
        "spark.hadoop.fs.gs.auth.service.account.private.key.id": key["private_key_id"],
        "spark.hadoop.fs.gs.auth.service.account.private.key": (
            key["private_key"].strip().replace("\n", "\\n")
        ),
        **locations(f"gs://{payload['bucket']}/", payload["path"]),
    }


def metastore_properties(answer: dict[str, Any]) -> dict[str, str]:
    answer = relations.POSTGRESQL_ANSWER | answer
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:postgresql://{answer['endpoints']}/hive_metastore"
        ),
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "spark.hadoop.javax.jdo.option.ConnectionUserName": "relation_id_7",
        "spark.hadoop.javax.jdo.option.ConnectionPassword": answer["password"],
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
    }


def pushgateway_properties(url: str) -> dict[str, str]:
    scheme, _, address = url.partition("://")
    sink = "spark.metrics.conf.*.sink.prometheus."
    return {
        f"{sink}pushgateway-address": address,
        f"{sink}pushgateway-address-protocol": scheme,
        f"{sink}class": "org.apache.spark.banzaicloud.metrics.sink.PrometheusSink",
        f"{sink}enable-dropwizard-collector": "true",
        f"{sink}period": "5",
        f"{sink}metrics-name-capture-regex": "([a-z0-9]*_[a-z0-9]*_[a-z0-9]*_)(.+)",
        f"{sink}metrics-name-replacement": "$2",
    }


def loki_properties(url: str) -> dict[str, str]:
    return {"spark.executorEnv.LOKI_URL": url, "spark.kubernetes.driverEnv.LOKI_URL": url}


def locations(base: str, path: str) -> dict[str, str]:
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"{base}{path}",
        "spark.history.fs.logDirectory": f"{base}{path}",
        "spark.kubernetes.file.upload.path": base,
        "spark.sql.warehouse.dir": f"{base}warehouse",
    }


@dataclasses.dataclass(frozen=True)
class Case:
    """One integration: how to relate it, change it and rotate it, and what each gives."""

    endpoint: str
    relate: Callable[[], Any]
    related: dict[str, str]
    change: Any
    changed: dict[str, str]
    rotate: Any = None
    rotated: dict[str, str] | None = None
    rotated_field: str = ""

    def __str__(self) -> str:
        return self.endpoint


CASES = [
    Case(
        "s3-credentials",
        relations.s3,
        s3_properties(S3_PAYLOAD),
        S3_CHANGED,
        s3_properties(S3_CHANGED),
        S3_ROTATED,
        s3_properties(S3_ROTATED),
        "access-key",
    ),
    Case(
        "azure-storage-credentials",
        relations.azure,
        azure_properties(AZURE_PAYLOAD),
        AZURE_CHANGED,
        azure_properties(AZURE_CHANGED),
        AZURE_ROTATED,
        azure_properties(AZURE_ROTATED),
        "secret-key",
    ),
    Case(
        "gcs-credentials",
        relations.gcs,
        gcs_properties(GCS_PAYLOAD),
        GCS_CHANGED,
        gcs_properties(GCS_CHANGED),
        GCS_ROTATED,
        gcs_properties(GCS_ROTATED),
        "secret-key",
    ),
    Case(
        "metastore",
        relations.metastore,
        metastore_properties({}),
        PG_CHANGED,
        metastore_properties(PG_CHANGED),
        PG_ROTATED,
        metastore_properties(PG_ROTATED),
        "password",
    ),
    Case(
        "cos",
        relations.published_pushgateway,
        pushgateway_properties(GATEWAY),
        GATEWAY_CHANGED,
        pushgateway_properties(GATEWAY_CHANGED),
    ),
    Case(
        "logging",
        relations.published_loki,
        loki_properties(relations.loki_url(0)),
        LOKI_CHANGED,
        loki_properties(LOKI_CHANGED),
    ),
]
ROTATING = [case for case in CASES if case.rotate is not None]


# -- the cluster and its request log ------------------------------------------------------------


@pytest.fixture
def cluster(kube_server, kubeconfig):
    for namespace, name in ACCOUNTS:
        add_account(kube_server, namespace, name)
    return kube_server


def writes(server) -> dict[str, int]:
    """The writes the server received since the log was last cleared."""
    return {method: server.count(method) for method in ("POST", "PUT", "DELETE")}


def replaced(n: int = N) -> dict[str, int]:
    return {"POST": 0, "PUT": n, "DELETE": 0}


NONE = {"POST": 0, "PUT": 0, "DELETE": 0}


def contents(server) -> dict[str, str]:
    """The properties every account's Secret holds (they must all be the same)."""
    seen = [decoded(hub_secret(server, namespace, name)) for namespace, name in ACCOUNTS]
    assert all(one == seen[0] for one in seen), "accounts got different properties"
    return seen[0]


def versions(server) -> dict[tuple[str, str], tuple[str, str]]:
    """(uid, resourceVersion) of every account's Secret."""
    return {
        (namespace, name): (
            hub_secret(server, namespace, name)["metadata"]["uid"],
            hub_secret(server, namespace, name)["metadata"]["resourceVersion"],
        )
        for namespace, name in ACCOUNTS
    }


class Hook:
    """Runs the charm's hooks with one integration in its state, measuring each one's writes."""

    def __init__(self, ctx, base_state, server, config: dict[str, str] | None = None) -> None:
        self.ctx = ctx
        self.base_state = base_state
        self.server = server
        self.config = BASE if config is None else config
        self.writes: dict[str, int] = {}

    def state(self, *linked: Any) -> testing.State:
        """The hub's state with the config and `linked` relations (and their secrets)."""
        return self.base_state(
            config=self.config,
            relations={link.relation for link in linked},
            secrets={secret for link in linked for secret in link.secrets},
        )

    def run(self, event: Callable[[Any], Any], *linked: Any) -> testing.State:
        """Run `event(ctx.on)` with `linked` relations (and their secrets) in the state."""
        state = self.state(*linked)
        self.server.clear_requests()
        out = self.ctx.run(event(self.ctx.on), state)
        self.writes = writes(self.server)
        return out


@pytest.fixture
def hook(ctx, base_state, cluster):
    return Hook(ctx, base_state, cluster)


def prime(hook: Hook) -> dict[tuple[str, str], tuple[str, str]]:
    """The hub already serves the operator's properties: one Secret per account."""
    out = hook.run(lambda on: on.config_changed())
    assert out.unit_status == IN_SYNC
    assert hook.writes == {"POST": N, "PUT": 0, "DELETE": 0}
    assert contents(hook.server) == MEMORY
    return versions(hook.server)


def changed(link: Any) -> Callable[[Any], Any]:
    return lambda on: on.relation_changed(link.relation, remote_unit=0)


# -- relate, change, rotate, remove: N writes each ----------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_relating_to_a_fresh_cluster_creates_one_secret_per_account(case, hook):
    hook.config = {}
    link = case.relate()
    out = hook.run(changed(link), link)
    assert out.unit_status == IN_SYNC
    assert hook.writes == {"POST": N, "PUT": 0, "DELETE": 0}
    assert contents(hook.server) == case.related


@pytest.mark.parametrize("case", CASES, ids=str)
def test_relate_change_remove_each_cost_one_write_per_account(case, hook):
    before = prime(hook)

    link = case.relate()
    out = hook.run(changed(link), link)
    assert out.unit_status == IN_SYNC
    assert hook.writes == replaced()
    assert contents(hook.server) == MEMORY | case.related
    link = link.after(out)

    out = hook.run(changed(link), link)  # the same data again: nothing to do
    assert hook.writes == NONE

    link = link.answer(case.change).after(out)
    out = hook.run(changed(link), link)
    assert out.unit_status == IN_SYNC
    assert hook.writes == replaced()
    assert contents(hook.server) == MEMORY | case.changed
    link = link.after(out)

    out = hook.run(lambda on: on.relation_broken(link.relation), link)
    assert out.unit_status == IN_SYNC
    assert hook.writes == replaced()
    assert contents(hook.server) == MEMORY
    after = versions(hook.server)
    assert {key: uid for key, (uid, _) in after.items()} == {
        key: uid for key, (uid, _) in before.items()
    }


@pytest.mark.parametrize("case", ROTATING, ids=str)
def test_rotation_replaces_every_secret_in_place(case, hook):
    prime(hook)
    link = case.relate()
    out = hook.run(changed(link), link)
    link = link.answer(case.change).after(out)
    out = hook.run(changed(link), link)
    link = link.after(out)
    before = versions(hook.server)

    link = link.answer(case.rotate)
    secret = link.secret(case.rotated_field)
    assert secret.latest_content != secret.tracked_content  # a new revision, not seen yet
    out = hook.run(lambda on: on.secret_changed(secret), link)

    assert out.unit_status == IN_SYNC
    assert hook.writes == replaced()  # no DELETE, no POST: no moment without a Secret
    assert hook.server.count("GET", "/secrets/") == 0  # no per-account read either
    assert contents(hook.server) == MEMORY | case.rotated
    after = versions(hook.server)
    for account in before:
        assert after[account][0] == before[account][0]  # the same object, replaced
        assert after[account][1] != before[account][1]


def test_removing_an_integration_while_another_serves_rewrites_once(hook):
    prime(hook)
    s3, cos = relations.s3(), relations.published_pushgateway()
    out = hook.run(changed(s3), s3, cos)
    assert hook.writes == replaced()
    s3, cos = s3.after(out), cos.after(out)
    out = hook.run(lambda on: on.relation_broken(cos.relation), s3, cos)
    assert out.unit_status == IN_SYNC
    assert hook.writes == replaced()
    assert contents(hook.server) == MEMORY | s3_properties(S3_PAYLOAD)


def test_removing_the_only_integration_takes_its_credentials_away(hook):
    hook.config = {}
    link = relations.s3()
    out = hook.run(changed(link), link)
    assert contents(hook.server) == s3_properties(S3_PAYLOAD)
    link = link.after(out)
    out = hook.run(lambda on: on.relation_broken(link.relation), link)
    served = contents(hook.server)
    assert ACCESS_KEY not in served.values(), "the removed relation's keys are still served"
    assert SECRET_KEY not in served.values()
    assert served == {}
    assert out.unit_status == testing.ActiveStatus(
        "3 accounts in sync (nothing to distribute: relate an integration or set spark-properties)"
    )
    assert hook.server.count("DELETE") == 0


# -- incomplete data: waiting, nothing written ----------------------------------------------------


def as_link(relation: testing.Relation) -> relations.Published:
    """A relation whose provider publishes nothing more in the test."""
    return relations.Published(relation, lambda _: relation)


def _without(payload: dict[str, Any], *fields: str) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key not in fields}


INCOMPLETE = [
    pytest.param(
        lambda: relations.s3(_without(S3_PAYLOAD, "access-key", "secret-key")),
        "s3-credentials: waiting for `access-key`, `secret-key` from s3-credentials-integrator",
        id="s3-no-secret-yet",
    ),
    pytest.param(
        lambda: relations.azure(_without(AZURE_PAYLOAD, "secret-key")),
        "azure-storage-credentials: waiting for `secret-key` from "
        "azure-storage-credentials-integrator",
        id="azure-no-secret-yet",
    ),
    pytest.param(
        lambda: relations.gcs(_without(GCS_PAYLOAD, "secret-key")),
        "gcs-credentials: waiting for `secret-key` from gcs-credentials-integrator",
        id="gcs-no-secret-yet",
    ),
    pytest.param(
        lambda: relations.metastore({"endpoints": None}),
        "metastore: waiting for `endpoints` from postgresql-k8s",
        id="metastore-no-endpoints",
    ),
    pytest.param(
        lambda: as_link(relations.pushgateway(None)),
        "cos: waiting for `push-endpoint` from prometheus-pushgateway-k8s",
        id="cos-no-endpoint-yet",
    ),
    pytest.param(
        lambda: as_link(relations.logging_relation({0: {}})),
        "logging: waiting for a Loki unit to publish its push `endpoint`",
        id="logging-no-endpoint-yet",
    ),
]


@pytest.mark.parametrize(("relate", "reason"), INCOMPLETE)
def test_incomplete_data_waits_naming_the_endpoint_and_writes_nothing(relate, reason, hook):
    before = prime(hook)
    link = relate()
    out = hook.run(changed(link), link)
    assert out.unit_status == testing.WaitingStatus(f"waiting for {reason}")
    assert hook.writes == NONE
    assert versions(hook.server) == before


def test_a_secret_not_readable_yet_waits_and_writes_nothing(hook):
    before = prime(hook)
    link = relations.s3()
    link = dataclasses.replace(link, secrets=frozenset())  # published, not granted yet
    out = hook.run(lambda on: on.update_status(), link)
    assert out.unit_status == testing.WaitingStatus(
        "waiting for s3-credentials: the credentials secret of s3-credentials-integrator "
        "is not readable yet"
    )
    assert hook.writes == NONE
    assert versions(hook.server) == before


def test_a_secret_not_readable_yet_on_relation_changed_waits_without_a_hook_error(hook):
    prime(hook)
    link = dataclasses.replace(relations.s3(), secrets=frozenset())
    out = hook.run(changed(link), link)
    assert isinstance(out.unit_status, testing.WaitingStatus)
    assert hook.writes == NONE


def test_metastore_before_the_database_is_created_waits(hook):
    before = prime(hook)
    link = relations.metastore()
    unanswered = dataclasses.replace(link.relation, remote_app_data={})
    out = hook.run(
        lambda on: on.relation_created(unanswered),
        dataclasses.replace(link, relation=unanswered, secrets=frozenset()),
    )
    assert out.unit_status == testing.WaitingStatus(
        "waiting for metastore: waiting for postgresql-k8s to create database 'hive_metastore'"
    )
    assert hook.writes == NONE
    assert versions(hook.server) == before


def test_an_integration_going_incomplete_leaves_its_properties_in_place(hook):
    prime(hook)
    link = relations.s3()
    out = hook.run(changed(link), link)
    link = link.after(out)
    before = versions(hook.server)
    pending = dataclasses.replace(link, secrets=frozenset())
    out = hook.run(lambda on: on.update_status(), pending)
    assert isinstance(out.unit_status, testing.WaitingStatus)
    assert hook.writes == NONE
    assert versions(hook.server) == before
    assert contents(hook.server) == MEMORY | s3_properties(S3_PAYLOAD)


# -- malformed data: blocked, naming the endpoint and the field, nothing written -----------------


MALFORMED = [
    pytest.param(
        lambda: relations.s3(S3_PAYLOAD | {"endpoint": "ftp://minio:21"}),
        "s3-credentials: `endpoint` from s3-credentials-integrator:",
        id="s3-bad-endpoint-url",
    ),
    pytest.param(
        lambda: relations.s3(_without(S3_PAYLOAD, "bucket")),
        "s3-credentials: `bucket` from s3-credentials-integrator:",
        id="s3-no-bucket",
    ),
    pytest.param(
        lambda: relations.azure(AZURE_PAYLOAD | {"connection-protocol": "nfs"}),
        "azure-storage-credentials: `connection-protocol` from "
        "azure-storage-credentials-integrator:",
        id="azure-unknown-protocol",
    ),
    pytest.param(
        lambda: relations.gcs(GCS_PAYLOAD | {"secret-key": f"not a key {GCS_PRIVATE_KEY_ID}"}),
        "gcs-credentials: `secret-key` from gcs-credentials-integrator:",
        id="gcs-not-a-key",
    ),
    pytest.param(
        lambda: relations.metastore({"endpoints": "postgresql-k8s-primary:port"}),
        "metastore: `endpoints` from postgresql-k8s:",
        id="metastore-bad-endpoints",
    ),
    pytest.param(
        lambda: as_link(relations.pushgateway(raw="http://10.1.38.86:9091")),
        "cos: `push-endpoint` from prometheus-pushgateway-k8s: not JSON",
        id="cos-non-json-push-endpoint",
    ),
    pytest.param(
        lambda: as_link(relations.logging_relation({0: {"endpoint": "http://loki-0:3100"}})),
        "logging: `endpoint` of loki/0 (loki): not JSON",
        id="logging-non-json-endpoint",
    ),
    pytest.param(
        lambda: relations.s3(S3_PAYLOAD | {"secret-key": f"{SECRET_KEY}\ninjected=1"}),
        "s3-credentials: `secret-key` from s3-credentials-integrator:",
        id="s3-multi-line-credential",
    ),
]


@pytest.mark.parametrize(("relate", "message"), MALFORMED)
def test_malformed_data_blocks_naming_endpoint_and_field(relate, message, hook):
    before = prime(hook)
    link = relate()
    out = hook.run(changed(link), link)  # no hook error: `run` would raise
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(message), out.unit_status.message
    assert hook.writes == NONE
    assert versions(hook.server) == before
    for credential in CREDENTIALS:
        assert credential not in out.unit_status.message


# -- several object stores ----------------------------------------------------------------------


def test_s3_and_azure_both_give_credentials_and_s3_gives_the_locations(hook):
    hook.config = {}
    s3, azure = relations.s3(), relations.azure()
    out = hook.run(changed(azure), s3, azure)
    assert out.unit_status == IN_SYNC
    assert hook.writes == {"POST": N, "PUT": 0, "DELETE": 0}
    azure_key = "spark.hadoop.fs.azure.account.key.sparkaccount.dfs.core.windows.net"
    assert contents(hook.server) == s3_properties(S3_PAYLOAD) | {azure_key: ACCOUNT_KEY}

    s3, azure = s3.after(out), azure.after(out)
    out = hook.run(lambda on: on.relation_broken(s3.relation), s3, azure)
    assert out.unit_status == IN_SYNC
    assert hook.writes == replaced()  # Azure is the primary store now
    assert contents(hook.server) == azure_properties(AZURE_PAYLOAD)


def test_a_waiting_s3_keeps_the_locations_from_moving_to_azure(hook):
    before = prime(hook)
    s3 = relations.s3(_without(S3_PAYLOAD, "access-key", "secret-key"))
    azure = relations.azure()
    out = hook.run(changed(azure), s3, azure)
    assert isinstance(out.unit_status, testing.WaitingStatus)
    assert "s3-credentials" in out.unit_status.message
    assert hook.writes == NONE
    assert versions(hook.server) == before


# -- all six, precedence and get-config's sources -----------------------------------------------


def all_six() -> list[Any]:
    return [
        relations.s3(),
        relations.azure(),
        relations.gcs(),
        relations.metastore(),
        relations.published_pushgateway(),
        relations.published_loki(),
    ]


OVERRIDES = {
    "spark.hadoop.fs.s3a.endpoint": "http://override.minio:9000",
    "spark.eventLog.dir": "s3a://audit/logs",
    "spark.executorEnv.LOKI_URL": "http://loki.override:3100/loki/api/v1/push",
}


def test_operator_properties_win_and_get_config_shows_each_source(hook):
    lines = "\n".join(f"{key}={value}" for key, value in OVERRIDES.items())
    hook.config = {"spark-properties": f"spark.executor.memory=4g\n{lines}"}
    links = all_six()
    out = hook.run(changed(links[0]), *links)
    assert out.unit_status == IN_SYNC
    assert hook.writes == {"POST": N, "PUT": 0, "DELETE": 0}
    served = contents(hook.server)
    for key, value in OVERRIDES.items():
        assert served[key] == value
    assert served["spark.hadoop.fs.s3a.access.key"] == ACCESS_KEY
    assert served["spark.kubernetes.driverEnv.LOKI_URL"] == relations.loki_url(0)

    hook.ctx.run(hook.ctx.on.action("get-config"), hook.state(*links))
    shown = json.loads(hook.ctx.action_results["properties"])
    assert set(shown) == set(served)
    for key in OVERRIDES:  # the operator's values are masked unless allowlisted (sizes, ...)
        assert shown[key] == {"value": "*****", "source": "spark-properties"}
    assert shown["spark.executor.memory"] == {"value": "4g", "source": "spark-properties"}
    expected_sources = {
        "s3-credentials": s3_properties(S3_PAYLOAD),
        "azure-storage-credentials": azure_properties(AZURE_PAYLOAD),
        "gcs-credentials": gcs_properties(GCS_PAYLOAD),
        "metastore": metastore_properties({}),
        "cos": pushgateway_properties(GATEWAY),
        "logging": loki_properties(relations.loki_url(0)),
    }
    for source, properties in expected_sources.items():
        for key in properties:
            if key in OVERRIDES or (source != "s3-credentials" and key in locations("", "")):
                continue
            assert shown[key]["source"] == source, key
    for key in (
        "spark.hadoop.fs.s3a.access.key",
        "spark.hadoop.fs.s3a.secret.key",
        "spark.hadoop.fs.azure.account.key.sparkaccount.dfs.core.windows.net",
        "spark.hadoop.fs.gs.auth.service.account.private.key",
        "spark.hadoop.fs.gs.auth.service.account.private.key.id",
        "spark.hadoop.javax.jdo.option.ConnectionPassword",
    ):
        assert shown[key]["value"] == "*****", key

    state = hook.state(*links)
    hook.ctx.run(hook.ctx.on.action("get-config", params={"reveal": True}), state)
    revealed = json.loads(hook.ctx.action_results["properties"])
    jvm_values = {key: unescape_value(value) for key, value in served.items()}
    assert {key: row["value"] for key, row in revealed.items()} == jvm_values


# -- secrets hygiene ----------------------------------------------------------------------------


def assert_no_credential(*texts: str) -> None:
    for text in texts:
        for credential in CREDENTIALS:
            assert credential not in text, f"a credential leaked into: {text[:200]}"


def log_text(ctx) -> str:
    return "\n".join(line.message for line in ctx.juju_log)


def test_no_credential_in_logs_statuses_or_action_output(hook):
    prime(hook)
    links = all_six()
    statuses: list[str] = []
    out = hook.run(changed(links[0]), *links)
    statuses.append(out.unit_status.message)
    links = [link.after(out) for link in links]
    for index, case in enumerate(CASES):
        if case.rotate is None:
            continue
        links[index] = links[index].answer(case.rotate)
        secret = links[index].secret(case.rotated_field)
        out = hook.run(lambda on, secret=secret: on.secret_changed(secret), *links)
        statuses.append(out.unit_status.message)
        links = [link.after(out) for link in links]
    assert contents(hook.server)["spark.hadoop.javax.jdo.option.ConnectionPassword"] == (
        PASSWORD_ROTATED
    )

    hook.ctx.run(hook.ctx.on.action("get-config"), hook.state(*links))
    desired = json.dumps(hook.ctx.action_results)
    hook.ctx.run(
        hook.ctx.on.action("get-config", params={"account": "team-b:bob"}), hook.base_state()
    )
    live = json.dumps(hook.ctx.action_results)
    hook.ctx.run(hook.ctx.on.action("list-accounts"), hook.base_state())
    listed = json.dumps(hook.ctx.action_results)
    hook.ctx.run(hook.ctx.on.action("reconcile", params={"dry-run": True}), hook.base_state())
    planned = json.dumps(hook.ctx.action_results)

    logged = log_text(hook.ctx)
    assert "pass after s3-credentials-relation-changed" in logged  # every hook's log is here
    assert "pass after secret-changed" in logged
    assert_no_credential(logged, desired, live, listed, planned, *statuses)
    assert json.loads(json.loads(live)["properties"])["spark.hadoop.fs.s3a.secret.key"] == "*****"


def test_a_reader_exception_quoting_a_credential_stays_out_of_status_and_logs(hook, monkeypatch):
    prime(hook)

    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError(f"boom {ACCESS_KEY} {SECRET_KEY}")

    monkeypatch.setattr("sources.read_s3", explode)
    link = relations.s3()
    out = hook.run(changed(link), link)
    assert out.unit_status == testing.BlockedStatus(
        "s3-credentials: unexpected RuntimeError reading the relation data; see `juju debug-log`"
    )
    assert hook.writes == NONE
    assert_no_credential(log_text(hook.ctx))
    assert "RuntimeError" in log_text(hook.ctx)
