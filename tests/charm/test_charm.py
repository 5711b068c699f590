"""Every event, action and status of the charm, with ops.testing standing in for Juju.

The charm talks to the test API server through the real lightkube client (KUBECONFIG).
"""

import dataclasses
import json
from pathlib import Path

import ops
import pytest
from ops import testing

import k8s.gateway
from store import Store
from tests import relations
from tests.charm.conftest import MODEL, workload
from tests.cluster.helpers import add_account, decoded, hub_secret

APP = "spark-integration-hub-k8s"
MEMORY = {"spark-properties": "spark.executor.memory=4g"}


@pytest.fixture
def cluster(kube_server, kubeconfig):
    add_account(kube_server, "team-a", "alice")
    add_account(kube_server, "team-b", "bob")
    return kube_server


def store_of(ctx, storage) -> Store:
    return Store.open(storage.get_filesystem(ctx) / "hub.sqlite3")


def test_install_without_config_waits(ctx, base_state, cluster):
    out = ctx.run(ctx.on.install(), base_state())
    assert out.unit_status == testing.WaitingStatus(
        "nothing to distribute: relate an integration or set spark-properties"
    )
    assert cluster.count("POST", "/secrets") == 0


def test_config_reaches_every_account_in_one_hook(ctx, base_state, cluster):
    out = ctx.run(ctx.on.config_changed(), base_state(config=MEMORY))
    assert out.unit_status == testing.ActiveStatus("2 accounts in sync")
    assert decoded(hub_secret(cluster, "team-a", "alice")) == {"spark.executor.memory": "4g"}
    assert decoded(hub_secret(cluster, "team-b", "bob")) == {"spark.executor.memory": "4g"}
    owner = hub_secret(cluster, "team-a", "alice")["metadata"]["annotations"]
    assert owner["integration-hub/owner"] == f"{MODEL.uuid}/{APP}"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"spark-properties": "spark.a=1\nspark.b"},
            "config: spark-properties line 2: expected `spark.<name>=<value>`, found no `=`",
        ),
        (
            {"spark-properties": "spark.a=1", "max-concurrent-writes": 0},
            "config: max-concurrent-writes: Input should be greater than or equal to 1",
        ),
        (
            {"monitored-service-accounts": "team-a"},
            "config: monitored-service-accounts entry 'team-a': expected "
            "`namespace:account`, lower-case names, `*` as wildcard",
        ),
    ],
)
def test_bad_config_blocks_naming_the_fix_and_writes_nothing(
    ctx, base_state, cluster, config, message
):
    out = ctx.run(ctx.on.config_changed(), base_state(config=config))
    assert out.unit_status == testing.BlockedStatus(message)
    assert cluster.count("POST") == cluster.count("PUT") == 0


@pytest.mark.parametrize(("writers", "peak"), [(1, 1), (8, 2)])
def test_max_concurrent_writes_bounds_the_writes_in_flight(
    ctx, base_state, cluster, writers, peak
):
    cluster.latency = 0.1  # every write is still in flight when the next one may start
    config = MEMORY | {"max-concurrent-writes": writers}
    out = ctx.run(ctx.on.config_changed(), base_state(config=config))
    assert out.unit_status == testing.ActiveStatus("2 accounts in sync")
    assert cluster.count("POST", "/secrets") == 2
    assert cluster.peak_in_flight == peak


def test_a_non_leader_never_writes(ctx, base_state, cluster):
    out = ctx.run(ctx.on.config_changed(), base_state(config=MEMORY, leader=False))
    assert out.unit_status == testing.ActiveStatus("standby: the leader distributes")
    assert len(cluster.requests) == 0


def test_a_followers_update_status_builds_no_kubernetes_client(ctx, base_state, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a hook with nothing to send built a Kubernetes gateway")

    monkeypatch.setattr(k8s.gateway, "KubeGateway", refuse)
    out = ctx.run(ctx.on.update_status(), base_state(config=MEMORY, leader=False))
    assert out.unit_status == testing.ActiveStatus("standby: the leader distributes")


def test_without_storage_the_charm_waits(ctx, base_state, cluster):
    out = ctx.run(ctx.on.config_changed(), base_state(config=MEMORY, storages=set()))
    assert out.unit_status == testing.WaitingStatus("waiting for storage hub-state")
    with pytest.raises(testing.ActionFailed, match="storage hub-state is not attached"):
        ctx.run(ctx.on.action("list-accounts"), base_state(storages=set()))


NOTICE = testing.Notice("canonical.com/spark-integration-hub/changed")
WORKLOAD = workload(notices=[NOTICE])


@pytest.mark.parametrize(
    ("event", "trigger"),
    [
        (lambda on, _: on.install(), "install"),
        (lambda on, _: on.leader_elected(), "leader-elected"),
        (lambda on, _: on.upgrade_charm(), "upgrade-charm"),
        (lambda on, _: on.update_status(), "update-status"),
        (lambda on, _: on.pebble_ready(WORKLOAD), "integration-hub-pebble-ready"),
        (
            lambda on, _: on.pebble_custom_notice(WORKLOAD, NOTICE),
            "integration-hub-pebble-custom-notice",
        ),
        (lambda on, storage: on.storage_attached(storage), "hub-state-storage-attached"),
    ],
)
def test_every_event_runs_the_same_pass(ctx, base_state, storage, cluster, event, trigger):
    state = base_state(config=MEMORY, containers={WORKLOAD})
    out = ctx.run(event(ctx.on, storage), state)
    assert out.unit_status == testing.ActiveStatus("2 accounts in sync")
    store = store_of(ctx, storage)
    assert store.journal(1)[0].trigger == trigger
    store.close()


def test_a_tampered_secret_is_repaired_on_update_status(ctx, base_state, cluster):
    ctx.run(ctx.on.config_changed(), base_state(config=MEMORY))
    tampered = hub_secret(cluster, "team-a", "alice")
    tampered["data"] = {"spark.executor.memory": "MWc="}
    cluster.put(tampered)
    cluster.clear_requests()
    out = ctx.run(ctx.on.update_status(), base_state(config=MEMORY))
    assert out.unit_status == testing.ActiveStatus("2 accounts in sync")
    assert decoded(hub_secret(cluster, "team-a", "alice")) == {"spark.executor.memory": "4g"}
    assert cluster.count("PUT") == 1


# -- actions ---------------------------------------------------------------------------------


def test_reconcile_dry_run_plans_without_writing(ctx, base_state, cluster):
    ctx.run(ctx.on.action("reconcile", params={"dry-run": True}), base_state(config=MEMORY))
    results = ctx.action_results
    assert json.loads(results["summary"]) == {"create": 2}
    assert {row["account"] for row in json.loads(results["plan"])} == {
        "team-a:alice",
        "team-b:bob",
    }
    assert cluster.count("POST") == 0


def test_reconcile_runs_a_pass(ctx, base_state, cluster):
    ctx.run(ctx.on.action("reconcile"), base_state(config=MEMORY))
    assert ctx.action_results["state"] == "active"
    assert ctx.action_results["writes"] == 2


def test_reconcile_on_a_non_leader_fails_with_a_reason(ctx, base_state, cluster):
    with pytest.raises(testing.ActionFailed, match="only the leader unit writes"):
        ctx.run(ctx.on.action("reconcile"), base_state(config=MEMORY, leader=False))


def test_list_accounts_with_filters(ctx, base_state, cluster):
    ctx.run(ctx.on.config_changed(), base_state(config=MEMORY))
    ctx.run(ctx.on.action("list-accounts", params={"namespace": "team-a"}), base_state())
    (row,) = json.loads(ctx.action_results["accounts"])
    assert row["account"] == "team-a:alice"
    assert row["state"] == "in-sync"
    assert len(row["hash"]) == 12
    assert row["last-error"] == ""
    ctx.run(ctx.on.action("list-accounts", params={"state": "conflict"}), base_state())
    assert ctx.action_results["count"] == 0
    with pytest.raises(testing.ActionFailed, match="unknown state: use one of"):
        ctx.run(ctx.on.action("list-accounts", params={"state": "lost"}), base_state())


SECRET_CONFIG = {
    "spark-properties": "spark.executor.memory=4g\nspark.hadoop.fs.s3a.secret.key=hunter2"
}


def test_get_config_masks_credentials_unless_revealed(ctx, base_state, cluster):
    ctx.run(ctx.on.config_changed(), base_state(config=SECRET_CONFIG))
    ctx.run(ctx.on.action("get-config"), base_state(config=SECRET_CONFIG))
    shown = json.loads(ctx.action_results["properties"])
    assert shown["spark.hadoop.fs.s3a.secret.key"] == {
        "value": "*****",
        "source": "spark-properties",
    }
    assert "hunter2" not in json.dumps(ctx.action_results)
    assert all("hunter2" not in line.message for line in ctx.juju_log)
    state = base_state(config=SECRET_CONFIG)
    ctx.run(ctx.on.action("get-config", params={"reveal": True}), state)
    shown = json.loads(ctx.action_results["properties"])
    assert shown["spark.hadoop.fs.s3a.secret.key"]["value"] == "hunter2"


def test_get_config_of_an_account_reads_its_secret(ctx, base_state, cluster):
    ctx.run(ctx.on.config_changed(), base_state(config=SECRET_CONFIG))
    ctx.run(ctx.on.action("get-config", params={"account": "team-b:bob"}), base_state())
    shown = json.loads(ctx.action_results["properties"])
    assert shown == {"spark.executor.memory": "4g", "spark.hadoop.fs.s3a.secret.key": "*****"}
    with pytest.raises(testing.ActionFailed, match="has no hub Secret"):
        ctx.run(ctx.on.action("get-config", params={"account": "team-b:nobody"}), base_state())
    with pytest.raises(testing.ActionFailed, match="expected `namespace:name`"):
        ctx.run(ctx.on.action("get-config", params={"account": "bob"}), base_state())


# -- the watcher -----------------------------------------------------------------------------


def test_pebble_ready_installs_the_watcher(ctx, base_state, cluster):
    bare = testing.Container("integration-hub", can_connect=True)
    out = ctx.run(ctx.on.pebble_ready(bare), base_state(config=MEMORY, containers={bare}))
    container = out.get_container("integration-hub")
    layer = container.layers["hub-watcher"].to_dict()
    service = layer["services"]["hub-watcher"]
    assert service["environment"]["HUB_WATCHER_OWNER"] == f"{MODEL.uuid}/{APP}"
    assert container.service_statuses["hub-watcher"] == ops.pebble.ServiceStatus.ACTIVE
    pushed = container.get_filesystem(ctx) / "opt/hub-watcher/watcher/__main__.py"
    assert pushed.exists()
    assert out.unit_status == testing.ActiveStatus("2 accounts in sync")


def test_a_notice_of_another_key_runs_no_pass(ctx, base_state, cluster):
    other = testing.Notice("example.com/other")
    container = workload(notices=[other])
    ctx.run(ctx.on.pebble_custom_notice(container, other), base_state(containers={container}))
    assert len(cluster.requests) == 0


def test_a_stopped_watcher_shows_in_the_active_status(ctx, base_state, cluster):
    stopped = workload(service_statuses={"hub-watcher": ops.pebble.ServiceStatus.INACTIVE})
    out = ctx.run(ctx.on.update_status(), base_state(config=MEMORY, containers={stopped}))
    assert out.unit_status == testing.ActiveStatus(
        "2 accounts in sync; watcher not running (changes seen at update-status only)"
    )


def test_a_steady_charm_pass_is_three_lists_and_no_write(ctx, base_state, cluster):
    ctx.run(ctx.on.config_changed(), base_state(config=MEMORY))
    cluster.clear_requests()
    ctx.run(ctx.on.update_status(), base_state(config=MEMORY))
    # accounts, hub Secrets, and the accounts this hub created for other charms
    assert [(r.method, r.path) for r in cluster.requests] == [
        ("GET", "/api/v1/serviceaccounts"),
        ("GET", "/api/v1/serviceaccounts"),
        ("GET", "/api/v1/secrets"),
    ]


ROCK_LAYER = ops.pebble.Layer((Path(__file__).parent / "rock_layer.yaml").read_text())


@pytest.mark.parametrize("was_running", [False, True], ids=["fresh", "upgraded-from-old-charm"])
def test_the_rocks_own_service_never_runs_beside_the_watcher(
    ctx, base_state, cluster, was_running
):
    """The image's `integration-hub` (delete-then-create of every Secret) stays down."""
    statuses = {"integration-hub": ops.pebble.ServiceStatus.ACTIVE} if was_running else {}
    rock = testing.Container(
        "integration-hub",
        can_connect=True,
        layers={"rock": ROCK_LAYER},
        service_statuses=statuses,
    )
    out = ctx.run(ctx.on.pebble_ready(rock), base_state(config=MEMORY, containers={rock}))
    container = out.get_container("integration-hub")
    running = {
        name
        for name, status in container.service_statuses.items()
        if status == ops.pebble.ServiceStatus.ACTIVE
    }
    assert running == {"hub-watcher"}
    rock_service = container.plan.services["integration-hub"]
    assert rock_service.startup == "disabled"
    assert "monitor_sa" not in rock_service.command
    # Every Secret in the cluster is the hub's own, written through its reconciler.
    for account in ("team-a:alice", "team-b:bob"):
        namespace, name = account.split(":")
        assert decoded(hub_secret(cluster, namespace, name))["spark.executor.memory"] == "4g"
    assert out.unit_status == testing.ActiveStatus("2 accounts in sync")


# -- the workload's own logs, and the watcher's check events ------------------------------------


def log_targets(container: testing.Container) -> dict[str, dict]:
    return {
        name: target.to_dict()
        for name, target in container.plan.log_targets.items()
        if name.startswith("hub-loki-")
    }


def test_the_workloads_logs_go_to_every_loki_unit(ctx, base_state, cluster):
    logging = relations.logging_relation(
        {0: relations.loki_databag(0), 1: relations.loki_databag(1), 2: {"endpoint": "{"}}
    )
    state = base_state(config=MEMORY, relations={logging})
    out = ctx.run(ctx.on.relation_changed(logging, remote_unit=1), state)
    targets = log_targets(out.get_container("integration-hub"))
    assert {name: target["location"] for name, target in targets.items()} == {
        "hub-loki-0": relations.loki_url(0),
        "hub-loki-1": relations.loki_url(1),
    }
    assert all(target["services"] == ["all"] for target in targets.values())
    assert targets["hub-loki-0"]["labels"] == {
        "juju_model": MODEL.name,
        "juju_model_uuid": MODEL.uuid,
        "juju_application": APP,
        "juju_unit": f"{APP}/0",
        "juju_charm": APP,
    }
    # The malformed unit is skipped for logs; Spark's properties use the first unit.
    assert out.unit_status == testing.ActiveStatus("2 accounts in sync")


def test_loki_gone_switches_its_log_target_off(ctx, base_state, cluster):
    logging = relations.logging_relation({0: relations.loki_databag(0)})
    out = ctx.run(ctx.on.relation_changed(logging), base_state(config=MEMORY, relations={logging}))
    assert log_targets(out.get_container("integration-hub"))["hub-loki-0"]["services"] == ["all"]
    broken = ctx.run(ctx.on.relation_broken(logging), out)
    after = log_targets(broken.get_container("integration-hub"))
    assert after == {
        "hub-loki-0": {
            "override": "replace",
            "type": "loki",
            "location": relations.loki_url(0),
            "services": ["-all"],
        }
    }
    again = ctx.run(ctx.on.update_status(), broken)
    assert (
        again.get_container("integration-hub").layers
        == broken.get_container("integration-hub").layers
    )


def test_a_failing_watcher_check_shows_at_once(ctx, base_state, cluster):
    down = testing.CheckInfo(
        "hub-watcher-alive", level="alive", status=ops.pebble.CheckStatus.DOWN, failures=3
    )
    failing = workload(check_infos={down})
    settled = ctx.run(ctx.on.config_changed(), base_state(config=MEMORY, containers={failing}))
    out = ctx.run(ctx.on.pebble_check_failed(failing, down), settled)
    assert out.unit_status == testing.ActiveStatus(
        "2 accounts in sync; watcher check failing: 3 consecutive failures"
        " (changes seen at update-status only)"
    )
    assert any(
        line.level == "WARNING"
        and line.message == "watcher check failed: watcher check failing: 3 consecutive failures"
        for line in ctx.juju_log
    )
    up = testing.CheckInfo("hub-watcher-alive", level="alive", status=ops.pebble.CheckStatus.UP)
    recovered = workload(check_infos={up})
    out = ctx.run(
        ctx.on.pebble_check_recovered(recovered, up),
        dataclasses.replace(settled, containers={recovered}),
    )
    assert out.unit_status == testing.ActiveStatus("2 accounts in sync")
    assert any(line.message == "watcher check recovered: watcher healthy" for line in ctx.juju_log)
