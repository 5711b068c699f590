"""One time budget and one breaker per hook, through the real charm and the test API server.

Waits are not slept: the budget's clock and sleep are replaced by a fake clock that a wait
advances, so a test counts the requests and reads the seconds a hook would have waited.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops import testing

import k8s.gateway
import k8s.policy
import k8s.transport
from tests.kube_server import Fault
from workload import FOLLOW_UP_AFTER, FOLLOW_UP_FILE

MEMORY = {"spark-properties": "spark.executor.memory=4g"}


class FakeClock:
    """A monotonic clock that only moves when something waits on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waited = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.waited += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(k8s.policy, "monotonic", fake.time)
    monkeypatch.setattr(k8s.policy, "sleep", fake.sleep)
    return fake


def requirers(count: int) -> set[testing.Relation]:
    return {
        testing.Relation(
            "spark-service-account",
            remote_app_name=f"kyuubi{index}",
            remote_app_data={
                "service-account": f"team-x:user{index}",
                "skip-creation": "false",
                "requested-secrets": '["spark-properties","resource-manifest"]',
            },
        )
        for index in range(count)
    }


def run_update_status(ctx, base_state, count: int, **config) -> testing.State:
    state = base_state(config={**MEMORY, **config}, relations=requirers(count))
    return ctx.run(ctx.on.update_status(), state)


@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_long_retry_after_costs_one_request_whatever_the_requirers(
    ctx, base_state, cluster, clock, count
):
    cluster.inject(Fault(status=429, retry_after=60, times=-1))
    out = run_update_status(ctx, base_state, count)
    assert len(cluster.requests) == 1  # the breaker answers every later call
    assert clock.waited == 0  # Retry-After 60 s does not fit in a 60 s budget: stop now
    if count == 0:
        assert isinstance(out.unit_status, testing.MaintenanceStatus)
    assert "rate-limited, retry after 60 s" in out.unit_status.message
    assert "juju trust" not in out.unit_status.message


@pytest.mark.parametrize("count", [0, 1, 3])
def test_an_unavailable_api_costs_one_request_of_retries_per_hook(
    ctx, base_state, cluster, clock, count
):
    cluster.inject(Fault(status=503, times=-1))
    out = run_update_status(ctx, base_state, count)
    assert len(cluster.requests) == k8s.policy.RetryPolicy().attempts  # one request's retries
    assert clock.waited < 60
    assert "API unavailable (503" in out.unit_status.message


def test_retries_stop_when_the_next_wait_overruns_the_budget(ctx, base_state, cluster, clock):
    cluster.inject(Fault(status=429, retry_after=4, times=-1))
    run_update_status(ctx, base_state, 3, **{"hook-time-budget": 10})
    # waits of 4 s: after two of them 2 s remain, less than the next 4 s wait
    assert len(cluster.requests) == 3
    assert clock.waited == 8


def test_install_during_an_outage_names_the_outage_not_trust(ctx, base_state, cluster, clock):
    cluster.inject(Fault(drop_connection=True, times=-1))
    out = ctx.run(ctx.on.install(), base_state(config=MEMORY))
    assert isinstance(out.unit_status, testing.MaintenanceStatus)
    assert "API unreachable" in out.unit_status.message
    assert "juju trust" not in out.unit_status.message
    assert clock.waited < 60


def test_zero_requirers_leave_no_provider_message(ctx, base_state, cluster, clock):
    cluster.inject(Fault(method="GET", path_contains="serviceaccounts", status=503, times=-1))
    out = run_update_status(ctx, base_state, 0)
    assert "spark-service-account" not in out.unit_status.message
    assert "provided accounts" not in out.unit_status.message


def test_a_spent_budget_fails_the_rest_of_the_hook_fast(ctx, base_state, cluster, clock):
    # every request is answered only after 7 s (fake time): the 10 s budget ends after two
    slow = Fault(status=500, times=1)
    cluster.inject(slow)

    original = k8s.transport.RetryingTransport._send

    def slow_send(self, request):
        clock.now += 7
        return original(self, request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(k8s.transport.RetryingTransport, "_send", slow_send)
        out = run_update_status(ctx, base_state, 3, **{"hook-time-budget": 10})
    assert len(cluster.requests) == 2
    assert "hook time budget spent (10 s)" in out.unit_status.message


def test_the_budget_option_is_validated(ctx, base_state, cluster, clock):
    out = run_update_status(ctx, base_state, 0, **{"hook-time-budget": 1})
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "hook-time-budget" in out.unit_status.message


def follow_up_request(ctx, out: testing.State) -> Path:
    root = out.get_container("integration-hub").get_filesystem(ctx)
    return root / FOLLOW_UP_FILE.lstrip("/")


def test_a_cut_short_pass_asks_the_watcher_for_a_prompt_follow_up(ctx, base_state, cluster, clock):
    cluster.inject(Fault(status=503, times=-1))
    out = run_update_status(ctx, base_state, 0)
    request = json.loads(follow_up_request(ctx, out).read_text())
    assert request["after"] == FOLLOW_UP_AFTER
    assert "API unavailable" in request["reason"]
    cluster.clear_faults()
    converged = ctx.run(ctx.on.update_status(), out)
    assert isinstance(converged.unit_status, testing.ActiveStatus)
    assert not follow_up_request(ctx, converged).exists()
