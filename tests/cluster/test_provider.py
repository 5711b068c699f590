"""The spark-service-account provider through real lightkube against the test API server.

`AccountManager` (the cluster side) is driven directly; a small charm around `AccountProvider`
(ops.testing, same real gateway) covers the Juju side: relation changed → account + answer,
relation broken in a fresh process → release. spark8t 1.6.0 reads the result with its own code.
"""

from __future__ import annotations

import json

import ops
import pytest
import yaml
from ops import testing

from core.cluster import AccountRef, Owner
from core.config import AccountPolicy, HubConfig
from core.manifest import (
    CREATED_BY_ANNOTATION,
    PROVIDED_LABEL,
    RELATION_ANNOTATION,
    render_manifest,
)
from k8s import ForbiddenError
from k8s.gateway import KubeGateway
from provider import AccountManager, AccountProvider, Want
from tests.cluster.helpers import FAST, OWNER, SPARK8T, make_hub, options, run
from tests.kube_server import Fault

OPEN_POLICY = AccountPolicy(namespaces=("*",), create_namespaces=True, adopt_existing=True)
"""Every namespace listed (tests of creation and release; the policy has tests of its own)."""

ALICE = AccountRef("team-x", "alice")
ENDPOINT = "spark-service-account"
RELATION = f"{ENDPOINT}:3"
SPARK8T_ONLY = {"app.kubernetes.io/generated-by": "spark8t"}


def want(ref: AccountRef = ALICE, **kwargs) -> Want:
    return Want(ref, f"{RELATION} (kyuubi)", RELATION, "kyuubi", **kwargs)


def writes(server) -> int:
    return sum(server.count(method) for method in ("POST", "PUT", "PATCH", "DELETE"))


def objects_of(server, ref: AccountRef) -> dict[tuple[str, str], dict]:
    """Every object of the account that exists, by (kind, name)."""
    names = [
        ("ServiceAccount", ref.name),
        ("Role", f"{ref.name}-role"),
        ("RoleBinding", f"{ref.name}-role-binding"),
        ("Secret", f"spark8t-sa-conf-{ref.name}"),
        ("Secret", f"integrator-hub-conf-{ref.name}"),
    ]
    found = {(kind, name): server.get(kind, name, ref.namespace) for kind, name in names}
    return {key: obj for key, obj in found.items() if obj is not None}


@pytest.fixture
def gateways(kubeconfig):
    """Makes gateways to the test server, and closes them all after the test."""
    made: list[KubeGateway] = []

    def make() -> KubeGateway:
        made.append(KubeGateway(retry=FAST))
        return made[-1]

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture
def hub(kubeconfig, tmp_path):
    """The hub itself (its pass writes `integrator-hub-conf-<name>`)."""
    hub = make_hub(tmp_path / "hub.sqlite3")
    yield hub
    hub.store.close()
    hub.gateway.close()


@pytest.fixture
def manager(kube_server, gateways) -> AccountManager:
    return AccountManager(gateways(), OWNER, OPEN_POLICY)


@pytest.fixture
def spark8t(kubeconfig):
    """spark8t's registry over the test server (imported after KUBECONFIG is set)."""
    from spark8t.domain import Defaults
    from spark8t.kube_interface.lightkube import LightKubeInterface
    from spark8t.registry.k8s import K8sServiceAccountRegistry

    kube = LightKubeInterface(str(kubeconfig), Defaults({}))
    registry = K8sServiceAccountRegistry(kube)
    yield registry
    kube.client.close()


def spark8t_account(registry, ref: AccountRef):
    from spark8t.domain import ServiceAccount
    from spark8t.utils import PropertyFile

    return ServiceAccount(
        ref.name, ref.namespace, registry.kube_interface.api_server, extra_confs=PropertyFile({})
    )


def spark8t_create(registry, ref: AccountRef) -> None:
    registry.create(spark8t_account(registry, ref))


def without_server_fields(obj: dict, drop_marks: bool = True) -> dict:
    """An object as spark8t would compare it: no server fields, none of the hub's marks."""
    obj = json.loads(json.dumps(obj))
    meta = obj["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "namespace", "managedFields"):
        meta.pop(key, None)
    if drop_marks:
        meta.pop("annotations", None)
        meta["labels"].pop(PROVIDED_LABEL, None)
    obj.pop("type", None)
    return obj


# -- request ------------------------------------------------------------------------------------


def test_request_creates_the_namespace_and_the_account_spark8t_reads(
    kube_server, manager, spark8t
):
    assert kube_server.get("Namespace", "team-x") is None
    assert manager.reconcile([want()]) == []

    namespace = kube_server.get("Namespace", "team-x")
    assert namespace["metadata"]["annotations"][CREATED_BY_ANNOTATION] == OWNER.annotation
    objects = objects_of(kube_server, ALICE)
    assert set(objects) == {
        ("ServiceAccount", "alice"),
        ("Role", "alice-role"),
        ("RoleBinding", "alice-role-binding"),
        ("Secret", "spark8t-sa-conf-alice"),
    }
    for obj in objects.values():
        assert obj["metadata"]["annotations"][CREATED_BY_ANNOTATION] == OWNER.annotation
        assert obj["metadata"]["annotations"][RELATION_ANNOTATION] == RELATION
    account = objects[("ServiceAccount", "alice")]["metadata"]["labels"]
    assert account == SPARK8T | {PROVIDED_LABEL: OWNER.app}
    assert objects[("Secret", "spark8t-sa-conf-alice")]["metadata"]["labels"] == SPARK8T_ONLY

    found = spark8t.get("team-x:alice")
    assert found is not None and found.id == "team-x:alice"
    assert [a.id for a in spark8t.all()] == ["team-x:alice"]


def test_the_hub_makes_exactly_what_spark8t_makes(kube_server, manager, spark8t):
    kube_server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "by-spark8t"}})
    spark8t_create(spark8t, AccountRef("by-spark8t", "alice"))
    manager.reconcile([want(AccountRef("by-hub", "alice"))])

    theirs = objects_of(kube_server, AccountRef("by-spark8t", "alice"))
    ours = objects_of(kube_server, AccountRef("by-hub", "alice"))
    assert set(theirs) == set(ours)
    for key, obj in theirs.items():
        expected = without_server_fields(obj)
        mine = without_server_fields(ours[key])
        if key[0] == "RoleBinding":  # the subject names the account's own namespace
            for subject in expected["subjects"]:
                subject["namespace"] = "by-hub"
        assert mine == expected, key


def test_re_request_writes_nothing(kube_server, manager):
    manager.reconcile([want()])
    kube_server.clear_requests()
    assert manager.reconcile([want()], full=True) == []
    assert writes(kube_server) == 0
    kube_server.clear_requests()
    assert manager.reconcile([want()], full=False) == []
    assert writes(kube_server) == 0
    assert len(kube_server.requests) == 1  # steady: the list (the policy is checked when full)


def test_missing_pieces_are_repaired_on_a_full_pass(kube_server, manager):
    manager.reconcile([want()])
    kube_server.delete("Role", "alice-role", "team-x")
    kube_server.clear_requests()
    manager.reconcile([want()], full=False)
    assert writes(kube_server) == 0
    manager.reconcile([want()], full=True)
    assert kube_server.count("POST") == 1
    assert kube_server.get("Role", "alice-role", "team-x") is not None


def test_an_existing_spark8t_account_is_adopted_as_it_is(kube_server, manager, spark8t):
    kube_server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-x"}})
    spark8t_create(spark8t, ALICE)
    before = objects_of(kube_server, ALICE)
    kube_server.clear_requests()

    assert manager.reconcile([want()]) == []
    assert writes(kube_server) == 0
    kube_server.clear_requests()
    assert manager.reconcile([want()], full=False) == []
    assert len(kube_server.requests) == 3  # the list, the namespace, the adopted account

    assert manager.reconcile([]) == []  # released: an adopted account is never deleted
    assert objects_of(kube_server, ALICE) == before
    assert spark8t.get("team-x:alice") is not None


def test_an_account_spark8t_makes_meanwhile_is_adopted(kube_server, manager):
    kube_server.inject(Fault(method="GET", path_contains="/serviceaccounts/alice", status=404))
    kube_server.put(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "alice", "namespace": "team-x", "labels": SPARK8T},
        }
    )
    assert manager.reconcile([want()]) == []  # its POST got 409 AlreadyExists: adopted
    account = kube_server.get("ServiceAccount", "alice", "team-x")
    assert CREATED_BY_ANNOTATION not in (account["metadata"].get("annotations") or {})


def test_a_service_account_that_is_not_spark8t_is_a_problem(kube_server, manager):
    kube_server.put(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "alice", "namespace": "team-x"},
        }
    )
    kube_server.clear_requests()
    (problem,) = manager.reconcile([want()])
    assert "spark-service-account:3 (kyuubi)" in problem
    assert "not a Spark account" in problem
    assert writes(kube_server) == 0


# -- change ------------------------------------------------------------------------------------


def test_a_changed_service_account_releases_the_old_and_creates_the_new(
    kube_server, manager, spark8t
):
    manager.reconcile([want()])
    bob = AccountRef("team-y", "bob")
    assert manager.reconcile([want(bob)]) == []
    assert objects_of(kube_server, ALICE) == {}
    assert set(objects_of(kube_server, bob)) == {
        ("ServiceAccount", "bob"),
        ("Role", "bob-role"),
        ("RoleBinding", "bob-role-binding"),
        ("Secret", "spark8t-sa-conf-bob"),
    }
    assert [a.id for a in spark8t.all()] == ["team-y:bob"]
    assert kube_server.get("Namespace", "team-x") is not None  # namespaces are left


OTHER = Want(ALICE, "spark-service-account:4 (notebook)", "spark-service-account:4", "notebook")


def test_an_account_belongs_to_the_relation_that_asked_first(kube_server, manager):
    manager.reconcile([want()])
    (problem,) = manager.reconcile([want(), OTHER])
    assert problem.startswith(f"{OTHER.source}: account team-x:alice belongs to {RELATION}")
    assert "service-account-sharing=true" in problem
    assert manager.granted == {RELATION}  # answered to its own relation only

    # its relation goes: released, though another still asks; the next pass makes a new one
    manager.reconcile([OTHER])
    account = kube_server.get("ServiceAccount", "alice", "team-x")
    assert account["metadata"]["annotations"][RELATION_ANNOTATION] == OTHER.relation


def test_a_shared_account_lives_until_both_relations_are_gone(kube_server, manager):
    manager.policy = OPEN_POLICY.model_copy(update={"share": True})
    assert manager.reconcile([want(), OTHER]) == []
    manager.reconcile([OTHER])
    assert kube_server.get("ServiceAccount", "alice", "team-x") is not None
    manager.reconcile([])
    assert kube_server.get("ServiceAccount", "alice", "team-x") is None


def test_a_kept_account_is_neither_created_nor_released(kube_server, manager):
    manager.reconcile([want()])
    kube_server.clear_requests()
    assert manager.reconcile([want(kept=True)]) == []
    assert writes(kube_server) == 0
    assert manager.reconcile([want(AccountRef("team-z", "zed"), kept=True)]) == []
    assert kube_server.get("ServiceAccount", "zed", "team-z") is None


# -- skip-creation ------------------------------------------------------------------------------


def test_skip_creation_is_answered_at_once_and_reads_nothing_but_the_list(kube_server, gateways):
    manager = AccountManager(gateways(), OWNER)  # the default policy: no namespace listed
    kube_server.clear_requests()
    assert manager.reconcile([want(skip_creation=True)]) == []
    assert manager.granted == {RELATION}
    assert [(r.method, r.path) for r in kube_server.requests] == [
        ("GET", "/api/v1/serviceaccounts")  # the hub's provided accounts, to release
    ]
    assert kube_server.get("Namespace", "team-x") is None


def test_skip_creation_of_an_existing_account_writes_nothing(kube_server, manager, spark8t):
    kube_server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-x"}})
    spark8t_create(spark8t, ALICE)
    kube_server.clear_requests()
    assert manager.reconcile([want(skip_creation=True)]) == []
    assert writes(kube_server) == 0


# -- release ------------------------------------------------------------------------------------


def test_release_deletes_only_what_the_hub_created(kube_server, manager, hub):
    manager.reconcile([want()])
    run(hub, options(**{"spark.executor.memory": "4g"}))  # writes integrator-hub-conf-alice
    assert ("Secret", "integrator-hub-conf-alice") in objects_of(kube_server, ALICE)
    bystander = kube_server.put(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mine", "namespace": "team-x"}}
    )

    assert manager.reconcile([]) == []
    assert objects_of(kube_server, ALICE) == {}
    assert (
        kube_server.get("Secret", "mine", "team-x")["metadata"]["uid"]
        == (bystander["metadata"]["uid"])
    )
    assert kube_server.get("Namespace", "team-x") is not None
    assert manager.release(ALICE) == []  # already gone: nothing to do


def test_release_leaves_objects_without_our_annotation(kube_server, manager):
    manager.reconcile([want()])
    role = kube_server.get("Role", "alice-role", "team-x")
    del role["metadata"]["annotations"][CREATED_BY_ANNOTATION]  # e.g. re-created by a user
    kube_server.put(role)
    assert manager.release(ALICE) == [
        "RoleBinding/alice-role-binding",
        "Secret/spark8t-sa-conf-alice",
        "ServiceAccount/alice",
    ]
    assert kube_server.get("Role", "alice-role", "team-x") is not None


def test_another_hubs_accounts_are_not_released(kube_server, manager, gateways):
    other = AccountManager(gateways(), Owner(OWNER.app, "another-model-uuid"), OPEN_POLICY)
    other.reconcile([want()])
    assert manager.reconcile([]) == []
    assert set(objects_of(kube_server, ALICE)) == {
        ("ServiceAccount", "alice"),
        ("Role", "alice-role"),
        ("RoleBinding", "alice-role-binding"),
        ("Secret", "spark8t-sa-conf-alice"),
    }


def test_a_restart_in_the_middle_of_a_release_is_finished_by_a_new_manager(
    kube_server, manager, gateways
):
    manager.reconcile([want()])
    kube_server.inject(
        Fault(method="DELETE", path_contains="/serviceaccounts/alice", status=500, times=-1)
    )
    # an outage is no problem to show (the hub's own status names it): the release waits
    assert manager.reconcile([]) == []
    assert set(objects_of(kube_server, ALICE)) == {("ServiceAccount", "alice")}

    kube_server.clear_faults()
    restarted = AccountManager(gateways(), OWNER, OPEN_POLICY)  # nothing in memory
    assert restarted.reconcile([]) == []
    assert objects_of(kube_server, ALICE) == {}


def test_a_restart_in_the_middle_of_a_creation_is_finished_by_a_new_manager(
    kube_server, manager, gateways
):
    kube_server.inject(Fault(method="POST", path_contains="/rolebindings", status=503, times=-1))
    assert manager.reconcile([want()]) == []  # an outage: waited for, not shown as Blocked
    assert manager.granted == set()  # and nothing is answered meanwhile
    kube_server.clear_faults()
    restarted = AccountManager(gateways(), OWNER, OPEN_POLICY)
    assert restarted.reconcile([want()], full=True) == []
    assert len(objects_of(kube_server, ALICE)) == 4


def test_an_error_that_is_not_an_outage_is_a_problem_naming_the_account(kube_server, manager):
    kube_server.inject(Fault(method="POST", path_contains="/rolebindings", status=422, times=-1))
    (problem,) = manager.reconcile([want()])
    assert "cannot create account team-x:alice yet" in problem


def test_forbidden_is_raised_for_the_trust_status(kube_server, manager):
    kube_server.denied = {("create", "serviceaccounts")}
    with pytest.raises(ForbiddenError):
        manager.reconcile([want()])


# -- the manifest -------------------------------------------------------------------------------


def test_the_manifest_is_what_spark8t_makes_and_the_hubs_empty_secret(spark8t):
    text = render_manifest(ALICE, OWNER)
    documents = list(yaml.safe_load_all(text))
    theirs = list(
        yaml.safe_load_all(spark8t.create(spark8t_account(spark8t, ALICE), dry_run=True))
    )
    by_kind = {doc["kind"]: doc for doc in theirs}
    for document in documents[:3]:  # ServiceAccount, Role, RoleBinding
        expected = without_server_fields(by_kind[document["kind"]], drop_marks=False)
        # as spark8t labels them right after creating them: so spark8t (and the hub) list the
        # account as soon as it is applied
        expected["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "spark8t"
        assert without_server_fields(document, drop_marks=False) == expected
    hub = documents[3]
    assert (hub["kind"], hub["metadata"]["name"]) == ("Secret", "integrator-hub-conf-alice")
    assert hub["metadata"]["labels"] == OWNER.labels
    assert len(documents) == 4 and "data" not in hub


# -- the Juju side ------------------------------------------------------------------------------


class HubLike(ops.CharmBase):
    """The wiring the real charm is expected to have, around the real provider."""

    make_gateway = staticmethod(lambda: KubeGateway(retry=FAST))

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        owner = Owner(self.app.name, self.model.uuid)
        self.provider = AccountProvider(self, HubLike.make_gateway, owner)
        self.problems: list[str] = []
        for event in self.provider.events:
            framework.observe(event, self._on_pass)

    def _on_pass(self, _: ops.EventBase) -> None:
        self.problems = self.provider.ensure_accounts(HubConfig.from_options(self.config))
        self.provider.publish(None, None)


@pytest.fixture
def juju(gateways, monkeypatch):
    monkeypatch.setattr(HubLike, "make_gateway", staticmethod(gateways))
    return testing.Context(
        HubLike,
        meta={"name": "hub", "provides": {ENDPOINT: {"interface": "spark_service_account"}}},
        app_name=OWNER.app,
        config={
            "options": {
                "service-account-namespaces": {"type": "string"},
                "service-account-create-namespaces": {"type": "boolean"},
            }
        },
    )


CREATE = {"service-account-namespaces": "team-x", "service-account-create-namespaces": True}


def test_relation_flow_creates_answers_and_releases_across_restarts(kube_server, juju, spark8t):
    relation = testing.Relation(
        ENDPOINT,
        remote_app_name="kyuubi",
        remote_app_data={"service-account": "team-x:alice", "skip-creation": "false"},
    )
    model = testing.Model(uuid=OWNER.model_uuid)
    state = testing.State(leader=True, relations={relation}, model=model, config=CREATE)
    answered = juju.run(juju.on.relation_changed(relation), state)

    assert spark8t.get("team-x:alice") is not None
    (secret,) = answered.secrets
    content = secret.latest_content or secret.tracked_content
    assert json.loads(content["spark-properties"]) == {}
    kinds = [d["kind"] for d in yaml.safe_load_all(content["resource-manifest"])]
    assert kinds == ["ServiceAccount", "Role", "RoleBinding", "Secret"]
    databag = answered.get_relation(relation.id).local_app_data
    assert databag == {"service-account": "team-x:alice", "secret-extra": secret.id}

    # A fresh process (nothing in memory) handles the break: the account is released.
    juju.run(juju.on.relation_broken(answered.get_relation(relation.id)), answered)
    assert objects_of(kube_server, ALICE) == {}
    assert spark8t.get("team-x:alice") is None


def test_a_malformed_request_is_a_problem_and_keeps_the_old_account(kube_server, juju):
    relation = testing.Relation(
        ENDPOINT, remote_app_name="kyuubi", remote_app_data={"service-account": "team-x:alice"}
    )
    model = testing.Model(uuid=OWNER.model_uuid)
    answered = juju.run(
        juju.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, model=model, config=CREATE),
    )
    broken = testing.Relation(
        ENDPOINT,
        id=relation.id,
        remote_app_name="kyuubi",
        remote_app_data={"service-account": "Team X/alice"},
        local_app_data=dict(answered.get_relation(relation.id).local_app_data),
    )
    later = testing.State(
        leader=True, relations={broken}, model=model, config=CREATE, secrets=answered.secrets
    )
    with juju(juju.on.relation_changed(broken), later) as manager:
        manager.run()
        (problem,) = manager.charm.problems
    assert problem.startswith(f"{ENDPOINT}:{relation.id} (kyuubi): service-account is")
    assert "`<namespace>:<username>`" in problem
    assert kube_server.get("ServiceAccount", "alice", "team-x") is not None
