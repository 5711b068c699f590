"""Units, leadership and removal: only the leader writes; cleanup only when the app is gone."""

from ops import testing

from tests.charm.conftest import MODEL, make_context
from tests.cluster.helpers import add_account, hub_secret

MEMORY = {"spark-properties": "spark.executor.memory=4g"}
FOREIGN = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {
        "name": "integrator-hub-conf-carol",
        "namespace": "team-a",
        "labels": {"app.kubernetes.io/managed-by": "integration-hub"},
        "annotations": {"integration-hub/owner": "other-model/other-hub"},
    },
    "data": {"spark.a": "MQ=="},
}


def seeded(kube_server):
    for name in ("alice", "bob", "carol"):
        add_account(kube_server, "team-a", name)
    kube_server.put(FOREIGN)


def test_removing_the_application_deletes_only_our_secrets(
    ctx, base_state, kube_server, kubeconfig
):
    seeded(kube_server)
    ctx.run(ctx.on.config_changed(), base_state(config=MEMORY))
    assert hub_secret(kube_server, "team-a", "alice") is not None
    # during teardown, leadership and the store's storage may already be gone
    gone = base_state(config=MEMORY, planned_units=0, leader=False, storages=set())
    ctx.run(ctx.on.remove(), gone)
    assert hub_secret(kube_server, "team-a", "alice") is None
    assert hub_secret(kube_server, "team-a", "bob") is None
    assert hub_secret(kube_server, "team-a", "carol")["data"] == {"spark.a": "MQ=="}


def test_a_pod_restart_or_scale_down_deletes_nothing(ctx, base_state, kube_server, kubeconfig):
    seeded(kube_server)
    ctx.run(ctx.on.config_changed(), base_state(config=MEMORY))
    kube_server.clear_requests()
    ctx.run(ctx.on.stop(), base_state(config=MEMORY, planned_units=1))
    ctx.run(ctx.on.remove(), base_state(config=MEMORY, planned_units=1))
    assert kube_server.count("DELETE") == 0
    assert hub_secret(kube_server, "team-a", "alice") is not None


def test_a_new_leader_takes_over_without_a_gap_or_a_write(
    ctx, base_state, kube_server, kubeconfig
):
    seeded(kube_server)
    ctx.run(ctx.on.config_changed(), base_state(config=MEMORY))
    kube_server.clear_requests()
    # Another unit, with its own (empty) store, becomes the leader.
    successor = make_context(unit_id=1)
    state = base_state(config=MEMORY, storages={testing.Storage("hub-state", index=1)})
    out = successor.run(successor.on.leader_elected(), state)
    assert out.unit_status == testing.ActiveStatus(
        "2 accounts in sync, 1 in conflict (see list-accounts)"
    )
    writes = sum(kube_server.count(m) for m in ("PUT", "DELETE"))
    assert writes == 0
    assert kube_server.count("POST", "/secrets") == 0
    assert (
        MODEL.uuid
        in hub_secret(kube_server, "team-a", "alice")["metadata"]["annotations"][
            "integration-hub/owner"
        ]
    )
