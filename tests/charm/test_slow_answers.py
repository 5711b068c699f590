"""An answer trickled a byte at a time ends the hook inside its budget, on the wall clock.

httpx's timeouts are per read, so an answer whose every byte comes just in time is never cut
by them; the hub bounds each request by a wall-clock deadline from the hook's budget
(`k8s.transport.RequestDeadline`). Real time here: the clock is what is being tested.
"""

from __future__ import annotations

import json
import time

import pytest
from ops import testing

from tests.kube_server import Fault, RawAnswer

BUDGET = 10
MARGIN = 2.0
"""Seconds past the budget a hook may end: recording the pass and closing connections."""
LIST = json.dumps(
    {"kind": "ServiceAccountList", "apiVersion": "v1", "metadata": {}, "items": []}
).encode()


def trickled(method: str, path: str) -> Fault:
    """Answer the request with a valid, ~100-byte answer, one byte every 0.4 s (40 s)."""
    answer = RawAnswer(200, LIST, {"Content-Type": "application/json"})
    return Fault(method=method, path_contains=path, answer=answer, trickle=0.4, times=-1)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/serviceaccounts"), ("PUT", "/secrets/integrator-hub-conf-bob")],
    ids=["account list", "secret write"],
)
def test_a_trickled_answer_ends_the_hook_within_its_budget(ctx, base_state, cluster, method, path):
    config = {"spark-properties": "spark.executor.memory=4g", "hook-time-budget": BUDGET}
    first = ctx.run(ctx.on.config_changed(), base_state(config=config))
    assert first.unit_status.name == "active"
    cluster.inject(trickled(method, path))
    changed = config | {"spark-properties": "spark.executor.memory=5g"}

    started = time.monotonic()
    out = ctx.run(ctx.on.config_changed(), base_state(config=changed))
    took = time.monotonic() - started

    assert took < BUDGET + MARGIN, f"the hook took {took:.1f} s with a {BUDGET} s budget"
    assert out.unit_status.name == "maintenance", out.unit_status
    assert "budget" in out.unit_status.message or "unreachable" in out.unit_status.message
    print(f"trickled {method} {path}: hook ended after {took:.2f} s (budget {BUDGET} s)")
    cluster.clear_faults()
    settled = ctx.run(ctx.on.update_status(), base_state(config=changed))
    assert isinstance(settled.unit_status, testing.ActiveStatus)
