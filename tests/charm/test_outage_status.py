"""During an outage the status says so (Maintenance, naming the cause), however it is phrased.

Requirers related over `spark-service-account` wait for the API like every account does: an
outage is not something the operator must fix, so it never shows as Blocked; a `Retry-After`
the API sends is shown clamped and in words.
"""

from __future__ import annotations

import pytest

from tests.charm.conftest import MODEL
from tests.charm.test_real_requirers import KUBEFLOW, KYUUBI, juju_model, pod, requirer
from tests.kube_server import Fault, RawAnswer

CONFIG = {"spark-properties": "spark.executor.memory=4g", "hook-time-budget": 10}


@pytest.mark.parametrize(
    "outage",
    [
        Fault(status=503, times=-1),
        Fault(drop_connection=True, times=-1),
        Fault(answer=RawAnswer(429, b"", {"Retry-After": "99999"}), times=-1),
    ],
    ids=["503", "dropped connections", "429 for a day"],
)
def test_an_outage_with_requirers_related_is_maintenance_naming_it(
    ctx, base_state, cluster, outage
):
    juju_model(cluster, MODEL.name)
    pod(cluster, MODEL.name, "kyuubi")
    kyuubi = requirer("kyuubi", KYUUBI, relation_id=3)
    kubeflow = requirer("data-kubeflow-integrator", KUBEFLOW, relation_id=4)
    state = base_state(config=CONFIG, relations={kyuubi, kubeflow})
    first = ctx.run(ctx.on.config_changed(), state)
    assert first.unit_status.name == "active", first.unit_status

    cluster.inject(outage)
    later = base_state(config=CONFIG, relations=first.relations, secrets=first.secrets)
    out = ctx.run(ctx.on.update_status(), later)

    assert out.unit_status.name == "maintenance", out.unit_status
    assert "retrying" in out.unit_status.message or "API" in out.unit_status.message
    assert "e+" not in out.unit_status.message
    for relation in (kyuubi, kubeflow):  # the answers they had stand
        assert "secret-extra" in out.get_relation(relation.id).local_app_data


def test_a_huge_retry_after_is_phrased_not_printed(ctx, base_state, cluster):
    ctx.run(ctx.on.config_changed(), base_state(config=CONFIG))
    cluster.inject(Fault(answer=RawAnswer(429, b"", {"Retry-After": "999999"}), times=-1))
    out = ctx.run(
        ctx.on.config_changed(),
        base_state(config=CONFIG | {"spark-properties": "spark.executor.memory=5g"}),
    )
    assert "retry after an hour or more" in out.unit_status.message, out.unit_status
