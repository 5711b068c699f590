"""A change converging across hooks under a time budget, with the watcher's follow-up between.

Each pass is what one hook does: a new `KubeGateway` with its own `HookBudget`, the real `Hub`
on the unit's store. A pass cut short leaves the follow-up request the charm pushes
(`workload.request_follow_up`'s JSON) and the next pass starts when the watcher's own
`FollowUp.due()`, polled at the watcher's tick, answers it. What is not run here is Juju's
dispatch of the notice to a hook (a real controller's latency, not the hub's).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.config import Scope
from hub import Hub
from k8s import HookBudget
from k8s.gateway import REQUEST_TIMEOUT
from machine import HubState
from tests.bench.cluster import BenchCluster, Counts, accounts
from tests.bench.scenarios import PATIENT, desired, merged, open_hub
from tests.cluster.helpers import options
from watcher.followup import FollowUp
from watcher.service import TICK
from workload import FOLLOW_UP_AFTER

BUDGET_SECONDS = 10.0
"""The budget of each pass: the smallest `hook-time-budget` the charm accepts."""
MAX_PASSES = 50
"""A run that has not converged after this many passes is reported as not converged."""


@dataclass
class BudgetRun:
    """Every pass of one change, from the change to all accounts converged.

    Attributes:
        passes: each pass's wall seconds, in order.
        gaps: seconds from the end of a cut-short pass to the start of the next.
        total: seconds from the change to the end of the converged pass.
        counts: what the server saw over the whole run.
        wrong: accounts whose Secret is not the changed data at the end.
        converged: whether the last pass left the hub active.
    """

    size: int
    latency_ms: int
    budget: float
    passes: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    total: float = 0.0
    counts: Counts | None = None
    wrong: int = 0
    converged: bool = False

    @property
    def overshoot(self) -> float:
        """The most any pass ran past its budget (0 when none did)."""
        return max([0.0, *(seconds - self.budget for seconds in self.passes)])


def _hook(store_path: Path, budget: float) -> Hub:
    """The hub as one hook builds it: a new client whose budget starts now."""
    return open_hub(store_path, PATIENT, budget=HookBudget(budget))


def _follow_up_due(request: Path) -> None:
    """Wait as the watcher does: poll `FollowUp.due()` once per tick until it answers."""
    follow_up = FollowUp(request, time.time)
    while follow_up.due() is None:
        time.sleep(TICK)


def budget_run(size: int, latency_ms: int, budget: float, workdir: Path) -> BudgetRun:
    """Change one property at `size` accounts; run budgeted passes until converged."""
    run = BudgetRun(size, latency_ms, budget)
    store_path, request = workdir / "hub-budget.sqlite3", workdir / "follow-up.json"
    cluster = BenchCluster(size, workdir, separate_process=True)
    try:
        cluster.activate()
        cluster.server.latency = latency_ms / 1000
        hub = _hook(store_path, float("inf"))
        hub.run_pass(options(**desired(1)), Scope(), trigger="bench", leader=True)
        hub.close()
        cluster.clear()
        changed = ended = time.perf_counter()
        for _ in range(MAX_PASSES):
            if run.passes:
                _follow_up_due(request)
                run.gaps.append(time.perf_counter() - ended)
            started = time.perf_counter()
            hub = _hook(store_path, budget)
            try:
                report = hub.run_pass(options(**desired(2)), Scope(), trigger="bench", leader=True)
            finally:
                hub.close()
            ended = time.perf_counter()
            run.passes.append(ended - started)
            if report.state is not HubState.RECONCILING:
                run.converged = report.state is HubState.ACTIVE
                break
            request.write_text(json.dumps({"after": FOLLOW_UP_AFTER, "reason": report.message}))
        run.total = ended - changed
        run.counts = cluster.measure()
        run.wrong = len(cluster.wrong_secrets(merged(2), accounts(size)))
    finally:
        cluster.close()
    return run


def budget_table(run: BudgetRun) -> str:
    """One row per pass: its time, how far past the budget, and the gap before it."""
    lines = ["| pass | wall time | past its budget | wait for the follow-up before it |"]
    lines.append("|---|---|---|---|")
    for index, seconds in enumerate(run.passes):
        gap = f"{run.gaps[index - 1]:.2f} s" if index else "— (the change)"
        past = max(0.0, seconds - run.budget)
        lines.append(f"| {index + 1} | {seconds:.2f} s | {past:.3f} s | {gap} |")
    return "\n".join(lines)


def budget_bars(run: BudgetRun) -> list[tuple[str, str, str]]:
    """The issue's budget bar: (bar, measured, PASS/FAIL)."""
    counts = run.counts
    assert counts is not None
    slowest_gap = max(run.gaps, default=0.0)
    ok = (
        run.converged
        and run.overshoot <= REQUEST_TIMEOUT
        and slowest_gap <= FOLLOW_UP_AFTER + 2 * TICK
        and counts.writes == run.size
        and counts.deletes == 0
        and run.wrong == 0
    )
    return [
        (
            f"{run.size:,} accounts, {run.latency_ms} ms, {run.budget:g} s budget: a pass never "
            f"exceeds its budget by more than one request's timeout ({REQUEST_TIMEOUT:g} s), the "
            f"follow-up pass starts within seconds (requested after {FOLLOW_UP_AFTER:g} s)",
            f"{len(run.passes)} passes, at most {run.overshoot:.3f} s past the budget; follow-up "
            f"after at most {slowest_gap:.2f} s; change → converged {run.total:.1f} s; "
            f"{counts.writes:,} writes, {counts.deletes} deletes, {run.wrong} wrong",
            "PASS" if ok else "FAIL",
        )
    ]
