"""Every edge of the state machine, driven through the charm by real Juju events."""

import pytest
from ops import testing

from machine import TRANSITIONS
from store import Store
from tests.cluster.helpers import add_account
from tests.kube_server import Fault

TRIGGER_CONFIG = {
    "block": {"spark-properties": "not-a-property"},
    "wait": {},
    "reconcile": {"spark-properties": "spark.a=1"},
    "converge": {"spark-properties": "spark.a=1"},
}
EXPECTED_STATUS = {
    "blocked": testing.BlockedStatus,
    "waiting-for-integrations": testing.WaitingStatus,
    "reconciling": testing.MaintenanceStatus,
    "active": testing.ActiveStatus,
}


def edges():
    for row in TRANSITIONS:
        for source in row["source"] if isinstance(row["source"], list) else [row["source"]]:
            yield pytest.param(
                source, row["trigger"], row["dest"], id=f"{source}-{row['trigger']}"
            )


@pytest.mark.parametrize(("source", "trigger", "dest"), list(edges()))
def test_edge(ctx, base_state, storage, kube_server, kubeconfig, source, trigger, dest):
    add_account(kube_server, "team-a", "alice")
    store = Store.open(storage.get_filesystem(ctx) / "hub.sqlite3")
    store.machine_state = source
    store.close()
    if trigger == "reconcile":  # the pass cannot finish: it stays reconciling
        kube_server.inject(Fault(method="POST", status=500, times=-1))
    out = ctx.run(ctx.on.update_status(), base_state(config=TRIGGER_CONFIG[trigger]))
    logged = [line.message for line in ctx.juju_log]
    assert f"hub state {source} --{trigger}--> {dest}" in logged
    final = "active" if trigger == "converge" else dest
    assert isinstance(out.unit_status, EXPECTED_STATUS[final])
