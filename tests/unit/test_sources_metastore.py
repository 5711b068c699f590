"""The metastore through `dpcharmlibs-interfaces`, with data written by the real provider.

The hub (`tests.relations.SourcesProbe`, a tiny charm building `IntegrationSources`) requests
its database on relation-created; `ResourceProviderEventHandler` — what PostgreSQL charms use —
answers in its own `ops.testing` context (`tests.relations.metastore`); its databag and secrets
come back to the hub.
"""

import dataclasses
import json
import logging
from typing import Any

import pytest
from ops import testing

from core.inputs import Incomplete, Invalid
from core.properties import Contribution, Source
from sources import ENDPOINTS
from tests import relations
from tests.relations import META, PASSWORD
from tests.relations import SourcesProbe as Hub


def metastore_result(event, state: testing.State) -> tuple[Any, testing.State]:
    ctx = testing.Context(Hub, meta=META)
    with ctx(event, state) as manager:
        out = manager.run()
        charm = manager.charm
        assert isinstance(charm, Hub)
        return charm.reads[-1][ENDPOINTS.index(Source.METASTORE)], out


def relate(answer: dict[str, Any] | None = None, relation_id: int = 7):
    """Relate the hub to the real provider; the hub's relation (answered) and its secrets."""
    return relations.metastore(answer, relation_id).pair()


def test_the_hub_requests_the_configured_database_on_relation_created(monkeypatch):
    monkeypatch.setattr(Hub, "database", "warehouse_meta")
    relation = testing.Relation("metastore", id=7, remote_app_name="postgresql-k8s")
    hub = testing.Context(Hub, meta=META)
    state = hub.run(
        hub.on.relation_created(relation), testing.State(leader=True, relations={relation})
    )
    data = state.get_relation(7).local_app_data
    assert data["version"] == "v1"
    (request,) = json.loads(data["requests"])
    assert request["resource"] == "warehouse_meta"


def test_related_with_a_created_database():
    relation, secrets = relate()
    metastore, _ = metastore_result(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    assert isinstance(metastore, Contribution)
    assert metastore.properties == {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            "jdbc:postgresql://postgresql-k8s-primary.dev.svc.cluster.local:5432/hive_metastore"
        ),
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "spark.hadoop.javax.jdo.option.ConnectionUserName": "relation_id_7",
        "spark.hadoop.javax.jdo.option.ConnectionPassword": PASSWORD,
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
    }
    assert metastore.sensitive == {"spark.hadoop.javax.jdo.option.ConnectionPassword"}


def test_tls_from_the_provider_turns_on_sslmode_require():
    relation, secrets = relate({"tls": True, "tls_ca": "-----BEGIN CERTIFICATE-----"})
    metastore, _ = metastore_result(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    assert isinstance(metastore, Contribution)
    assert metastore.properties["spark.hadoop.javax.jdo.option.ConnectionURL"].endswith(
        "/hive_metastore?sslmode=require"
    )


def test_before_the_provider_answers_it_is_incomplete():
    relation = testing.Relation("metastore", id=7, remote_app_name="postgresql-k8s")
    hub = testing.Context(Hub, meta=META)
    metastore, _ = metastore_result(
        hub.on.relation_created(relation), testing.State(leader=True, relations={relation})
    )
    assert metastore == Incomplete(
        "metastore", "waiting for postgresql-k8s to create database 'hive_metastore'"
    )


def test_an_answer_without_endpoints_is_incomplete():
    relation, secrets = relate({"endpoints": None})
    metastore, _ = metastore_result(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    assert metastore == Incomplete("metastore", "waiting for `endpoints` from postgresql-k8s")


def test_a_user_secret_not_granted_yet_is_incomplete():
    relation, _ = relate()
    ctx = testing.Context(Hub, meta=META)
    with ctx(ctx.on.update_status(), testing.State(leader=True, relations={relation})) as manager:
        assert isinstance(manager.charm, Hub)
        metastore = manager.charm.sources.read()[ENDPOINTS.index(Source.METASTORE)]
        manager.run()
    assert isinstance(metastore, Incomplete)
    assert "not readable yet" in metastore.reason


def test_malformed_endpoints_are_invalid_and_named():
    relation, secrets = relate({"endpoints": "postgresql-k8s-primary:port"})
    metastore, _ = metastore_result(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    assert isinstance(metastore, Invalid)
    assert metastore.message.startswith("`endpoints` from postgresql-k8s:")
    assert PASSWORD not in str(metastore)


def test_a_database_name_changed_after_relating_is_invalid_with_the_fix(monkeypatch):
    relation, secrets = relate()
    monkeypatch.setattr(Hub, "database", "other_db")  # the operator changed the option
    ctx = testing.Context(Hub, meta=META)
    state = testing.State(leader=True, relations={relation}, secrets=secrets)
    with ctx(ctx.on.config_changed(), state) as manager:
        assert isinstance(manager.charm, Hub)
        metastore = manager.charm.sources.read()[ENDPOINTS.index(Source.METASTORE)]
        manager.run()
    assert isinstance(metastore, Invalid)
    assert "'hive_metastore'" in metastore.message
    assert "metastore-database-name is 'other_db'" in metastore.message
    assert "remove and re-add the relation" in metastore.message


def test_not_a_v1_answer_is_invalid():
    relation = testing.Relation(
        "metastore",
        id=7,
        remote_app_name="postgresql-k8s",
        remote_app_data={"version": "v1", "requests": json.dumps([{"resource": 5, "salt": []}])},
    )
    ctx = testing.Context(Hub, meta=META)
    with ctx(ctx.on.update_status(), testing.State(leader=True, relations={relation})) as manager:
        assert isinstance(manager.charm, Hub)
        metastore = manager.charm.sources.read()[ENDPOINTS.index(Source.METASTORE)]
        manager.run()
    assert isinstance(metastore, Invalid)
    assert "`requests` from postgresql-k8s" in metastore.message


def test_password_rotation_through_secret_changed():
    relation, secrets = relate()
    ctx = testing.Context(Hub, meta=META)
    _, state = metastore_result(
        ctx.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    user = next(s for s in state.secrets if "password" in s.tracked_content)
    rotated = dataclasses.replace(
        user, latest_content=dict(user.tracked_content) | {"password": "N3wPassw0rd"}
    )
    state = dataclasses.replace(
        state, secrets={s for s in state.secrets if s.id != user.id} | {rotated}
    )
    metastore, _ = metastore_result(ctx.on.secret_changed(rotated), state)
    assert isinstance(metastore, Contribution)
    assert (
        metastore.properties["spark.hadoop.javax.jdo.option.ConnectionPassword"] == "N3wPassw0rd"
    )


def test_relation_broken_no_longer_counts():
    relation, secrets = relate()
    metastore, _ = metastore_result(
        testing.Context(Hub, meta=META).on.relation_broken(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    assert metastore is None


def test_the_password_never_reaches_the_logs(caplog):
    caplog.set_level(logging.DEBUG)
    relation, secrets = relate()
    caplog.clear()
    metastore_result(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("leader", [True, False])
def test_every_unit_reads_the_metastore(leader):
    relation, secrets = relate()
    metastore, _ = metastore_result(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=leader, relations={relation}, secrets=secrets),
    )
    assert isinstance(metastore, Contribution)
