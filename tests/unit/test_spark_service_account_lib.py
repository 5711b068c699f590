"""The `spark_service_account` v0 library, both sides, with small test charms (ops.testing)."""

from __future__ import annotations

import json

import ops
import pytest
from charms.spark_integration_hub_k8s.v0 import hub_service_account as lib
from charms.spark_integration_hub_k8s.v0.hub_service_account import (
    AccountGoneEvent,
    AccountGrantedEvent,
    AccountReleasedEvent,
    AccountRequestedEvent,
    AccountRequestInvalidEvent,
    InvalidServiceAccountError,
    PropertiesChangedEvent,
    ServiceAccountRequest,
    SparkServiceAccountProvider,
    SparkServiceAccountRequirer,
)
from ops import testing

ENDPOINT = "spark-service-account"
PROPERTIES = {"spark.executor.memory": "4g", "spark.hadoop.fs.s3a.access.key": "AKIA"}
MANIFEST = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: alice\n"


class ProviderCharm(ops.CharmBase):
    """Grants every valid request with fixed properties and manifest."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.accounts = SparkServiceAccountProvider(self, ENDPOINT)
        framework.observe(self.accounts.on.account_requested, self._on_requested)

    def _on_requested(self, event: AccountRequestedEvent) -> None:
        if self.unit.is_leader():
            properties = json.loads(str(self.config.get("properties") or json.dumps(PROPERTIES)))
            self.accounts.grant(
                event.relation,
                event.request,
                spark_properties=properties,
                resource_manifest=MANIFEST,
            )


class RequirerCharm(ops.CharmBase):
    """Asks for `spark:alice` and remembers what it read."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.account = SparkServiceAccountRequirer(
            self, ENDPOINT, service_account="spark:alice", skip_creation=False
        )
        self.read: dict | None = None
        for event in (self.account.on.account_granted, self.account.on.properties_changed):
            framework.observe(event, self._on_answer)

    def _on_answer(self, _: ops.EventBase) -> None:
        self.read = self.account.spark_properties()


PROVIDER_META = {
    "name": "hub",
    "provides": {ENDPOINT: {"interface": "spark_service_account"}},
}
REQUIRER_META = {
    "name": "kyuubi",
    "requires": {ENDPOINT: {"interface": "spark_service_account"}},
}


@pytest.fixture
def provider_ctx():
    return testing.Context(
        ProviderCharm,
        meta=PROVIDER_META,
        config={"options": {"properties": {"type": "string", "default": ""}}},
    )


@pytest.fixture
def requirer_ctx():
    return testing.Context(RequirerCharm, meta=REQUIRER_META)


def request_data(value: str = "spark:alice", skip: str = "false") -> dict[str, str]:
    return {
        "service-account": value,
        "skip-creation": skip,
        "requested-secrets": '["spark-properties","resource-manifest"]',
    }


def events_of(ctx: testing.Context, kind: type) -> list:
    return [e for e in ctx.emitted_events if isinstance(e, kind)]


def only_secret(state: testing.State) -> testing.Secret:
    (secret,) = state.secrets
    return secret


# -- the request model ------------------------------------------------------------------------


def test_request_round_trips_through_the_databag():
    request = ServiceAccountRequest.parse("spark:alice", skip_creation=True)
    data = request.to_databag()
    assert data == {
        "service-account": "spark:alice",
        "skip-creation": "true",
        "requested-secrets": '["spark-properties","resource-manifest"]',
    }
    assert ServiceAccountRequest.from_databag(data) == request
    assert ServiceAccountRequest.from_databag({}) is None


@pytest.mark.parametrize(
    "value",
    [
        "alice",
        "spark:",
        ":alice",
        "spark:alice:bob",
        "Spark:alice",
        "spark:Alice",
        "sp_ark:alice",
        "spark:al_ice",
        "-spark:alice",
        "spark:alice-",
        "n" * 64 + ":alice",
        "spark:" + "a" * 234,
    ],
)
def test_malformed_service_accounts_are_rejected_with_a_fix(value):
    with pytest.raises(InvalidServiceAccountError) as raised:
        ServiceAccountRequest.parse(value)
    assert "set it" in str(raised.value) or "use lower-case" in str(raised.value)


def test_longest_valid_names_are_accepted():
    request = ServiceAccountRequest.parse("n" * 63 + ":" + "a.b" * 77 + "ab")
    assert len(request.username) == 233


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("skip-creation", "yes"),
        ("requested-secrets", "spark-properties"),
        ("requested-secrets", "[1]"),
    ],
)
def test_malformed_flags_are_rejected(field, value):
    data = request_data() | {field: value}
    with pytest.raises(InvalidServiceAccountError, match=field):
        ServiceAccountRequest.from_databag(data)


# -- provider ---------------------------------------------------------------------------------


def test_provider_gets_the_parsed_request_and_grants_it(provider_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=request_data())
    out = provider_ctx.run(
        provider_ctx.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}),
    )
    (event,) = events_of(provider_ctx, AccountRequestedEvent)
    assert (event.namespace, event.username, event.skip_creation) == ("spark", "alice", False)
    assert event.requested_secrets == ("spark-properties", "resource-manifest")
    assert event.service_account == "spark:alice"

    secret = only_secret(out)
    databag = out.get_relation(relation.id).local_app_data
    assert databag["service-account"] == "spark:alice"
    assert databag["secret-extra"] == secret.id
    assert secret.owner == "app"
    assert secret.label == f"{ENDPOINT}.{relation.id}.secret-extra"
    assert relation.id in secret.remote_grants
    content = secret.latest_content or secret.tracked_content
    assert json.loads(content["spark-properties"]) == PROPERTIES
    assert content["resource-manifest"] == MANIFEST


def test_provider_grant_writes_nothing_when_nothing_changed(provider_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=request_data())
    first = provider_ctx.run(
        provider_ctx.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}),
    )
    secret = only_secret(first)
    again = provider_ctx.run(
        provider_ctx.on.relation_changed(first.get_relation(relation.id)), first
    )
    assert only_secret(again) == secret
    assert again.get_relation(relation.id).local_app_data == (
        first.get_relation(relation.id).local_app_data
    )


def test_provider_updates_the_secret_when_properties_change(provider_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=request_data())
    first = provider_ctx.run(
        provider_ctx.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}),
    )
    changed = testing.State(
        leader=True,
        relations=first.relations,
        secrets=first.secrets,
        config={"properties": json.dumps({"spark.a": "1"})},
    )
    out = provider_ctx.run(
        provider_ctx.on.relation_changed(first.get_relation(relation.id)), changed
    )
    secret = only_secret(out)
    assert secret.id == only_secret(first).id
    assert json.loads((secret.latest_content or {})["spark-properties"]) == {"spark.a": "1"}


def test_provider_honours_requested_secrets(provider_ctx):
    data = request_data() | {"requested-secrets": '["spark-properties"]'}
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=data)
    out = provider_ctx.run(
        provider_ctx.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}),
    )
    content = only_secret(out).latest_content or only_secret(out).tracked_content
    assert set(content) == {"spark-properties"}


@pytest.mark.parametrize(
    "data",
    [
        request_data("not-an-account"),
        request_data("Spark:alice"),
        request_data("spark:alice", skip="maybe"),
    ],
)
def test_provider_reports_malformed_requests_and_writes_nothing(provider_ctx, data):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=data)
    out = provider_ctx.run(
        provider_ctx.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}),
    )
    assert not events_of(provider_ctx, AccountRequestedEvent)
    (invalid,) = events_of(provider_ctx, AccountRequestInvalidEvent)
    assert invalid.service_account == data["service-account"]
    assert invalid.reason
    assert not out.secrets
    assert out.get_relation(relation.id).local_app_data == {}


def test_provider_waits_for_a_request(provider_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi")
    out = provider_ctx.run(
        provider_ctx.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}),
    )
    assert not events_of(provider_ctx, AccountRequestedEvent)
    assert not events_of(provider_ctx, AccountRequestInvalidEvent)
    assert not out.secrets


def test_follower_gets_the_event_but_does_not_grant(provider_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=request_data())
    out = provider_ctx.run(
        provider_ctx.on.relation_changed(relation),
        testing.State(leader=False, relations={relation}),
    )
    assert len(events_of(provider_ctx, AccountRequestedEvent)) == 1
    assert not out.secrets


def test_release_removes_the_secret_and_names_the_last_request(provider_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=request_data())
    granted = provider_ctx.run(
        provider_ctx.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}),
    )
    out = provider_ctx.run(
        provider_ctx.on.relation_broken(granted.get_relation(relation.id)), granted
    )
    (released,) = events_of(provider_ctx, AccountReleasedEvent)
    assert released.service_account == "spark:alice"
    assert released.relation.id == relation.id
    assert not out.secrets


def test_release_without_history_still_fires(provider_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=request_data())
    provider_ctx.run(
        provider_ctx.on.relation_broken(relation), testing.State(leader=True, relations={relation})
    )
    (released,) = events_of(provider_ctx, AccountReleasedEvent)
    assert released.service_account is None


def test_unused_revisions_are_removed(provider_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=request_data())
    state = testing.State(leader=True, relations={relation})
    for number in range(3):  # revisions 1, 2, 3
        config = {"properties": json.dumps({"spark.a": str(number)})}
        state = provider_ctx.run(
            provider_ctx.on.relation_changed(state.get_relation(relation.id)),
            testing.State(
                leader=True, relations=state.relations, secrets=state.secrets, config=config
            ),
        )
    provider_ctx.run(provider_ctx.on.secret_remove(only_secret(state), revision=2), state)
    assert provider_ctx.removed_secret_revisions == [2]


def test_revoke_withdraws_the_answer(provider_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=request_data())
    granted = provider_ctx.run(
        provider_ctx.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}),
    )
    with provider_ctx(provider_ctx.on.update_status(), granted) as manager:
        charm = manager.charm
        charm.accounts.revoke(charm.model.get_relation(ENDPOINT, relation.id))
        out = manager.run()
    assert not out.secrets
    assert out.get_relation(relation.id).local_app_data == {}


def test_deferred_request_keeps_its_values(provider_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="kyuubi", remote_app_data=request_data())
    state = testing.State(leader=True, relations={relation})
    with provider_ctx(provider_ctx.on.relation_changed(relation), state) as manager:
        event = AccountRequestedEvent(
            ops.Handle(None, "x", "1"),
            manager.charm.model.get_relation(ENDPOINT, relation.id),
            None,
            None,
            service_account="ns:u",
            skip_creation=True,
            requested_secrets=["spark-properties"],
        )
        snapshot = event.snapshot()
        restored = AccountRequestedEvent(
            ops.Handle(None, "x", "2"), manager.charm.model.get_relation(ENDPOINT, relation.id)
        )
        restored.framework = manager.charm.framework
        restored.restore(snapshot)
        manager.run()
    assert restored.request == ServiceAccountRequest("ns", "u", True, ("spark-properties",))


# -- requirer ---------------------------------------------------------------------------------


def test_requirer_asks_on_relation_created(requirer_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="hub")
    out = requirer_ctx.run(
        requirer_ctx.on.relation_created(relation),
        testing.State(leader=True, relations={relation}),
    )
    assert out.get_relation(relation.id).local_app_data == request_data()


def test_follower_requirer_does_not_write(requirer_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="hub")
    out = requirer_ctx.run(
        requirer_ctx.on.relation_created(relation),
        testing.State(leader=False, relations={relation}),
    )
    assert out.get_relation(relation.id).local_app_data == {}


def test_requirer_can_change_its_request(requirer_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="hub", local_app_data=request_data())
    state = testing.State(leader=True, relations={relation})
    with requirer_ctx(requirer_ctx.on.update_status(), state) as manager:
        request = manager.charm.account.request("other:bob", skip_creation=True)
        with pytest.raises(InvalidServiceAccountError):
            manager.charm.account.request("nope")
        out = manager.run()
    assert request.service_account == "other:bob"
    assert out.get_relation(relation.id).local_app_data == request_data("other:bob", "true")


def granted_state(leader: bool = True, properties: dict | None = None) -> testing.State:
    content = {
        "spark-properties": lib.properties_json(PROPERTIES if properties is None else properties),
        "resource-manifest": MANIFEST,
    }
    secret = testing.Secret(tracked_content=content, latest_content=content)
    relation = testing.Relation(
        ENDPOINT,
        remote_app_name="hub",
        local_app_data=request_data(),
        remote_app_data={"service-account": "spark:alice", "secret-extra": secret.id},
    )
    return testing.State(leader=leader, relations={relation}, secrets={secret})


def test_requirer_sees_the_grant_and_reads_the_properties(requirer_ctx):
    state = granted_state()
    (relation,) = state.relations
    with requirer_ctx(requirer_ctx.on.relation_changed(relation), state) as manager:
        manager.run()
        charm = manager.charm
        assert charm.read == PROPERTIES
        assert charm.account.resource_manifest() == MANIFEST
        assert charm.account.is_granted()
        assert charm.account.granted_service_account() == "spark:alice"
        assert charm.account.requested() == ServiceAccountRequest("spark", "alice")
    (granted,) = events_of(requirer_ctx, AccountGrantedEvent)
    assert granted.service_account == "spark:alice"


def test_requirer_ignores_an_answer_to_another_request(requirer_ctx):
    state = granted_state()
    (granted,) = state.relations
    assert isinstance(granted, testing.Relation)
    relation = testing.Relation(
        ENDPOINT,
        id=granted.id,
        remote_app_name="hub",
        local_app_data=request_data("spark:bob"),
        remote_app_data=dict(granted.remote_app_data),
    )
    state = testing.State(leader=True, relations={relation}, secrets=state.secrets)
    requirer_ctx.run(requirer_ctx.on.relation_changed(relation), state)
    assert not events_of(requirer_ctx, AccountGrantedEvent)


def test_requirer_follows_new_properties(requirer_ctx):
    state = granted_state()
    (relation,) = state.relations
    first = requirer_ctx.run(requirer_ctx.on.relation_changed(relation), state)
    (secret,) = first.secrets
    assert secret.label == f"{ENDPOINT}.{relation.id}.secret-extra"
    updated = testing.Secret(
        id=secret.id,
        label=secret.label,
        tracked_content=secret.tracked_content,
        latest_content={**secret.tracked_content, "spark-properties": '{"spark.a": "2"}'},
    )
    later = testing.State(leader=True, relations=first.relations, secrets={updated})
    with requirer_ctx(requirer_ctx.on.secret_changed(updated), later) as manager:
        manager.run()
        assert manager.charm.read == {"spark.a": "2"}
    assert len(events_of(requirer_ctx, PropertiesChangedEvent)) == 1


def test_requirer_follows_new_properties_before_it_ever_read_them(requirer_ctx):
    state = granted_state()
    (secret,) = state.secrets
    updated = testing.Secret(
        id=secret.id,
        tracked_content=secret.tracked_content,
        latest_content={**secret.tracked_content, "spark-properties": '{"spark.a": "3"}'},
    )
    later = testing.State(leader=True, relations=state.relations, secrets={updated})
    with requirer_ctx(requirer_ctx.on.secret_changed(updated), later) as manager:
        manager.run()
        assert manager.charm.read == {"spark.a": "3"}


def test_requirer_ignores_foreign_secrets(requirer_ctx):
    state = granted_state()
    other = testing.Secret(tracked_content={"a": "b"}, label="something-else")
    later = testing.State(leader=True, relations=state.relations, secrets={*state.secrets, other})
    requirer_ctx.run(requirer_ctx.on.secret_changed(other), later)
    assert not events_of(requirer_ctx, PropertiesChangedEvent)


def test_requirer_before_the_answer_reads_nothing(requirer_ctx):
    relation = testing.Relation(ENDPOINT, remote_app_name="hub", local_app_data=request_data())
    state = testing.State(leader=True, relations={relation})
    with requirer_ctx(requirer_ctx.on.relation_changed(relation), state) as manager:
        manager.run()
        assert manager.charm.account.spark_properties() is None
        assert manager.charm.account.resource_manifest() is None
        assert not manager.charm.account.is_granted()
    assert not events_of(requirer_ctx, AccountGrantedEvent)


def test_requirer_sees_the_relation_go(requirer_ctx):
    state = granted_state()
    (relation,) = state.relations
    requirer_ctx.run(requirer_ctx.on.relation_broken(relation), state)
    assert len(events_of(requirer_ctx, AccountGoneEvent)) == 1


# -- both sides, wired by hand ----------------------------------------------------------------


def test_round_trip_between_the_two_sides(provider_ctx, requirer_ctx):
    created = testing.Relation(ENDPOINT, id=7, remote_app_name="hub")
    asked = requirer_ctx.run(
        requirer_ctx.on.relation_created(created), testing.State(leader=True, relations={created})
    )
    request = asked.get_relation(7).local_app_data
    on_provider = testing.Relation(
        ENDPOINT, id=7, remote_app_name="kyuubi", remote_app_data=request
    )
    answered = provider_ctx.run(
        provider_ctx.on.relation_changed(on_provider),
        testing.State(leader=True, relations={on_provider}),
    )
    provided = only_secret(answered)
    content = provided.latest_content or provided.tracked_content
    on_requirer = testing.Relation(
        ENDPOINT,
        id=7,
        remote_app_name="hub",
        local_app_data=request,
        remote_app_data=answered.get_relation(7).local_app_data,
    )
    observed = testing.Secret(id=provided.id, tracked_content=content, latest_content=content)
    with requirer_ctx(
        requirer_ctx.on.relation_changed(on_requirer),
        testing.State(leader=False, relations={on_requirer}, secrets={observed}),
    ) as manager:
        manager.run()
        assert manager.charm.read == PROPERTIES
