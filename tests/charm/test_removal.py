"""Removal during an outage never succeeds silently with credentials left behind.

The `remove` hook of the last unit deletes every Secret the hub wrote and every account it
created; while any of that cannot be done (the API answers 503, drops connections, or asks to
wait longer than the hook may), the hook fails, saying what is left and how to remove it after
a forced removal, so Juju runs it again.
"""

from __future__ import annotations

import pytest
from ops import testing

from tests.charm.conftest import MODEL
from tests.charm.test_real_requirers import KYUUBI, juju_model, pod, requirer
from tests.cluster.helpers import hub_secret
from tests.kube_server import Fault

CONFIG = {"spark-properties": "spark.hadoop.fs.s3a.secret.key=s3cr3t", "hook-time-budget": 10}
OUTAGES = {
    "503": lambda: Fault(status=503, times=-1),
    "dropped connections": lambda: Fault(drop_connection=True, times=-1),
    "429 past the budget": lambda: Fault(status=429, retry_after=3600, times=-1),
}


@pytest.fixture
def served(ctx, base_state, cluster):
    """The hub converged, with one account provided to Kyuubi; returns the relation."""
    juju_model(cluster, MODEL.name)
    pod(cluster, MODEL.name, "kyuubi")
    kyuubi = requirer("kyuubi", KYUUBI)
    out = ctx.run(ctx.on.relation_changed(kyuubi), base_state(config=CONFIG, relations={kyuubi}))
    assert out.unit_status.name == "active"
    assert hub_secret(cluster, MODEL.name, "kyuubi-spark-engine") is not None
    return kyuubi


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_removal_in_an_outage_fails_saying_what_is_left_then_finishes(
    ctx, base_state, cluster, served, outage
):
    cluster.inject(OUTAGES[outage]())
    last_unit = base_state(config=CONFIG, relations={served}, planned_units=0)

    with pytest.raises(testing.errors.UncaughtCharmError, match="CleanupIncompleteError"):
        ctx.run(ctx.on.remove(), last_unit)

    log = "\n".join(line.message for line in ctx.juju_log)
    assert "removal incomplete" in log
    assert "kubectl delete secrets --all-namespaces -l app.kubernetes.io/managed-by" in log
    assert "s3cr3t" not in log
    assert hub_secret(cluster, "team-a", "bob") is not None  # left, and said so

    cluster.clear_faults()  # Juju runs the hook again once the API answers
    ctx.run(ctx.on.remove(), last_unit)
    assert hub_secret(cluster, "team-a", "bob") is None
    assert hub_secret(cluster, MODEL.name, "kyuubi-spark-engine") is None
    assert cluster.get("ServiceAccount", "kyuubi-spark-engine", MODEL.name) is None
    assert cluster.get("Role", "kyuubi-spark-engine-role", MODEL.name) is None


def test_everything_the_hub_made_carries_the_label_the_cleanup_command_selects(cluster, served):
    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        name = {"ServiceAccount": "kyuubi-spark-engine"}.get(
            kind, f"kyuubi-spark-engine-{kind.lower().replace('rolebinding', 'role-binding')}"
        )
        labels = cluster.get(kind, name, MODEL.name)["metadata"]["labels"]
        assert labels["integration-hub/provided-by"] == "spark-integration-hub-k8s", kind
    labels = hub_secret(cluster, "team-a", "bob")["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "integration-hub"
    assert labels["integration-hub/app"] == "spark-integration-hub-k8s"
