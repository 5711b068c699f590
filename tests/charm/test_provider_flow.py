"""The spark-service-account flow through the real charm (ops.testing + the test API server).

These tests assume the wiring described in `docs/reference/spark-service-account.md`
("Wiring in the charm"): the charm builds `AccountProvider` in `__init__`, runs its pass after
each of `AccountProvider.events`, calls `ensure_accounts()` before the hub's pass and
`publish(<the hub's desired properties>)` after it (leader), shows the problems as a Blocked
status naming the relation, and maps `ForbiddenError` to the `juju trust` Blocked status.
"""

from __future__ import annotations

import json

import pytest
import yaml
from ops import testing

from tests.charm.conftest import MODEL
from tests.cluster.helpers import decoded, hub_secret

ENDPOINT = "spark-service-account"
MEMORY = {
    "spark-properties": "spark.executor.memory=4g",
    "service-account-namespaces": "team-x,team-z,spark-jobs",
    "service-account-create-namespaces": True,
}
"""The operator lists the namespaces these requirers (which run elsewhere) may have accounts in."""


def request(value: str = "team-x:alice", skip: str = "false") -> testing.Relation:
    return testing.Relation(
        ENDPOINT,
        remote_app_name="kyuubi",
        remote_app_data={
            "service-account": value,
            "skip-creation": skip,
            "requested-secrets": '["spark-properties","resource-manifest"]',
        },
    )


def answer(out: testing.State, relation: testing.Relation) -> dict[str, str]:
    (secret,) = [s for s in out.secrets if s.owner == "app"]
    local = out.get_relation(relation.id).local_app_data
    assert local["secret-extra"] == secret.id
    return dict(secret.latest_content or secret.tracked_content)


def test_a_request_creates_the_account_serves_it_and_answers(ctx, base_state, cluster):
    relation = request()
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )

    assert cluster.get("ServiceAccount", "alice", "team-x") is not None
    served = hub_secret(cluster, "team-x", "alice")
    assert served is not None and decoded(served) == {"spark.executor.memory": "4g"}
    assert out.get_relation(relation.id).local_app_data["service-account"] == "team-x:alice"
    content = answer(out, relation)
    assert json.loads(content["spark-properties"]) == {"spark.executor.memory": "4g"}
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(content["resource-manifest"])]
    assert names == ["alice", "alice-role", "alice-role-binding", "integrator-hub-conf-alice"]
    assert isinstance(out.unit_status, testing.ActiveStatus)


def test_new_properties_reach_the_answer(ctx, base_state, cluster):
    relation = request()
    first = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    changed = base_state(
        config=MEMORY | {"spark-properties": "spark.executor.memory=8g"},
        relations=first.relations,
        secrets=first.secrets,
    )
    out = ctx.run(ctx.on.config_changed(), changed)
    content = answer(out, relation)
    assert json.loads(content["spark-properties"]) == {"spark.executor.memory": "8g"}


def test_a_steady_pass_writes_nothing(ctx, base_state, cluster):
    relation = request()
    first = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    cluster.clear_requests()
    again = base_state(config=MEMORY, relations=first.relations, secrets=first.secrets)
    out = ctx.run(ctx.on.update_status(), again)
    assert sum(cluster.count(m) for m in ("POST", "PUT", "PATCH", "DELETE")) == 0
    assert out.secrets == again.secrets


def test_relation_broken_releases_the_account(ctx, base_state, cluster):
    relation = request()
    first = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    out = ctx.run(ctx.on.relation_broken(first.get_relation(relation.id)), first)
    assert cluster.get("ServiceAccount", "alice", "team-x") is None
    assert hub_secret(cluster, "team-x", "alice") is None
    assert cluster.get("ServiceAccount", "bob", "team-a") is not None  # not ours: untouched
    assert not [s for s in out.secrets if s.owner == "app"]


def test_a_malformed_request_blocks_naming_the_relation_and_the_fix(ctx, base_state, cluster):
    relation = request("Team X/alice")
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert f"{ENDPOINT}:{relation.id} (kyuubi)" in out.unit_status.message
    assert "<namespace>:<username>" in out.unit_status.message
    assert cluster.count("POST", "/serviceaccounts") == 0


def test_skip_creation_of_a_missing_account_is_answered_and_creates_nothing(
    ctx, base_state, cluster
):
    relation = request("anywhere:alice", skip="true")
    config = {"spark-properties": "spark.executor.memory=4g"}  # no namespace listed
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=config, relations={relation})
    )
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert "secret-extra" in out.get_relation(relation.id).local_app_data
    assert cluster.get("ServiceAccount", "alice", "anywhere") is None
    assert sum(cluster.count(m) for m in ("POST", "PUT", "DELETE")) == 1  # bob's hub Secret


def test_missing_permissions_ask_for_trust(ctx, base_state, cluster):
    cluster.denied = {("create", "serviceaccounts")}
    relation = request()
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "juju trust" in out.unit_status.message


def test_the_model_is_the_owner(ctx, base_state, cluster):
    relation = request()
    ctx.run(ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation}))
    account = cluster.get("ServiceAccount", "alice", "team-x")
    created_by = account["metadata"]["annotations"]["integration-hub/created-by"]
    assert created_by == f"{MODEL.uuid}/spark-integration-hub-k8s"


# What Kyuubi's (and data-kubeflow-integrator's) vendored requirer writes: the upstream Charmhub
# library `charms.spark_integration_hub_k8s.v0.spark_service_account` (LIBID 55536ebf…), built on
# data_interfaces' RequirerData. On relation-created its leader writes `requested-secrets` (the
# data_interfaces SECRET_FIELDS plus the two of this interface), then `service-account` and
# `skip-creation`. It answers `account_granted` when the provider's `service-account` appears,
# and reads `spark-properties` / `resource-manifest` from the secret named by `secret-extra`.
UPSTREAM_REQUESTED_SECRETS = json.dumps(
    [
        "username",
        "password",
        "tls",
        "tls-ca",
        "uris",
        "read-only-uris",
        "spark-properties",
        "resource-manifest",
    ]
)


def test_the_upstream_librarys_requirer_gets_its_answer_on_the_wire(ctx, base_state, cluster):
    relation = testing.Relation(
        ENDPOINT,
        remote_app_name="kyuubi",
        remote_app_data={
            "requested-secrets": UPSTREAM_REQUESTED_SECRETS,
            "service-account": "spark-jobs:kyuubi",
            "skip-creation": "false",
        },
    )
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    provider_data = out.get_relation(relation.id).local_app_data
    # `account_granted` fires on the echo; `event.service_account` reads it.
    assert provider_data["service-account"] == "spark-jobs:kyuubi"
    # `fetch_relation_field(id, "spark-properties")` / `"resource-manifest"` read this secret.
    content = answer(out, relation)
    assert json.loads(content["spark-properties"]) == {"spark.executor.memory": "4g"}
    kinds = [d["kind"] for d in yaml.safe_load_all(content["resource-manifest"])]
    assert kinds[0] == "ServiceAccount"
    assert cluster.get("ServiceAccount", "kyuubi", "spark-jobs") is not None
    assert isinstance(out.unit_status, testing.ActiveStatus)


# -- confinement (issue 7) ------------------------------------------------------------------------


def refused(out: testing.State, relation: testing.Relation, cluster, namespace: str) -> str:
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert f"{ENDPOINT}:{relation.id} (kyuubi)" in out.unit_status.message
    assert cluster.count("POST", "/serviceaccounts") == 0
    assert cluster.count("POST", "/roles") == 0
    assert "secret-extra" not in out.get_relation(relation.id).local_app_data
    return out.unit_status.message


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "default", MODEL.name])
def test_reserved_namespaces_are_refused(ctx, base_state, cluster, namespace):
    cluster.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    relation = request(f"{namespace}:alice")
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    assert "service-account-namespaces" in refused(out, relation, cluster, namespace)


def test_another_juju_models_namespace_is_refused(ctx, base_state, cluster):
    labels = {"app.kubernetes.io/managed-by": "juju", "model.juju.is/name": "prod"}
    cluster.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "labels": labels}}
    )
    relation = request("prod:alice")
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    assert "service-account-namespaces" in refused(out, relation, cluster, "prod")


def test_a_reserved_namespace_named_exactly_is_allowed(ctx, base_state, cluster):
    relation = request(f"{MODEL.name}:alice")
    cluster.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MODEL.name}})
    config = MEMORY | {"service-account-namespaces": f"team-*,{MODEL.name}"}
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=config, relations={relation})
    )
    assert cluster.get("ServiceAccount", "alice", MODEL.name) is not None
    assert "secret-extra" in out.get_relation(relation.id).local_app_data


def test_a_missing_namespace_is_refused_unless_creation_is_allowed(ctx, base_state, cluster):
    relation = request("squat:alice")
    config = {
        "spark-properties": "spark.executor.memory=4g",
        "service-account-namespaces": "squat",
    }
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=config, relations={relation})
    )
    assert "service-account-create-namespaces" in refused(out, relation, cluster, "squat")
    assert cluster.get("Namespace", "squat", None) is None


def test_monitored_service_accounts_applies_to_provided_accounts(ctx, base_state, cluster):
    relation = request("team-x:alice")
    config = MEMORY | {"monitored-service-accounts": "team-a:*"}
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=config, relations={relation})
    )
    assert "monitored-service-accounts" in refused(out, relation, cluster, "team-x")


def test_a_foreign_binding_to_cluster_admin_is_never_made_live(ctx, base_state, cluster):
    cluster.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-x"}})
    cluster.put(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "alice-role-binding", "namespace": "team-x"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": "team-x"}],
        }
    )
    relation = request("team-x:alice")
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    assert "RoleBinding alice-role-binding" in refused(out, relation, cluster, "team-x")
    assert cluster.get("ServiceAccount", "alice", "team-x") is None


def test_an_account_the_hub_did_not_create_is_refused_unless_adoption_is_allowed(
    ctx, base_state, cluster
):
    relation = request("team-a:bob")
    config = MEMORY | {"service-account-namespaces": "team-a"}
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=config, relations={relation})
    )
    assert "service-account-adopt-existing" in out.unit_status.message
    assert "secret-extra" not in out.get_relation(relation.id).local_app_data


def test_one_hostile_requirer_does_not_stop_a_good_one(ctx, base_state, cluster):
    hostile = request("team-z:alice\n")
    good = request("team-x:carol")
    out = ctx.run(
        ctx.on.relation_changed(good), base_state(config=MEMORY, relations={hostile, good})
    )
    assert cluster.get("ServiceAccount", "carol", "team-x") is not None
    assert "secret-extra" in out.get_relation(good.id).local_app_data
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert f"{ENDPOINT}:{hostile.id}" in out.unit_status.message


def test_a_half_built_account_is_not_granted_and_is_repaired(ctx, base_state, cluster):
    cluster.denied = {("create", "roles")}
    relation = request()
    first = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    assert "secret-extra" not in first.get_relation(relation.id).local_app_data
    assert isinstance(first.unit_status, testing.BlockedStatus)
    cluster.denied = set()
    later = base_state(config=MEMORY, relations=first.relations, secrets=first.secrets)
    out = ctx.run(ctx.on.update_status(), later)
    assert cluster.get("Role", "alice-role", "team-x") is not None
    assert cluster.get("ServiceAccount", "alice", "team-x") is not None
    assert "secret-extra" in out.get_relation(relation.id).local_app_data


def test_the_manifest_carries_no_foreign_annotation(ctx, base_state, cluster):
    relation = request()
    ctx.run(ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation}))
    secret = cluster.get("Secret", "spark8t-sa-conf-alice", "team-x")
    secret["metadata"].setdefault("annotations", {})[
        "kubectl.kubernetes.io/last-applied-configuration"
    ] = '{"data": {"token": "c2VjcmV0"}}'
    cluster.put(secret)
    out = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    assert "last-applied-configuration" not in answer(out, relation)["resource-manifest"]


def test_removal_releases_accounts_but_keeps_a_users_configuration(ctx, base_state, cluster):
    relation = request()
    first = ctx.run(
        ctx.on.relation_changed(relation), base_state(config=MEMORY, relations={relation})
    )
    conf = cluster.get("Secret", "spark8t-sa-conf-alice", "team-x")
    conf["data"] = {"spark.app.name": "bXlqb2I="}
    cluster.put(conf)
    ctx.run(ctx.on.remove(), base_state(config=MEMORY, relations=first.relations, planned_units=0))
    assert cluster.get("ServiceAccount", "alice", "team-x") is None
    assert cluster.get("Role", "alice-role", "team-x") is None
    assert cluster.get("Secret", "spark8t-sa-conf-alice", "team-x") is not None
