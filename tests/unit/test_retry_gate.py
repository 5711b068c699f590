"""The shared `Retry-After` gate spends its pauses from the hook's budget, never beyond it."""

import pytest

from k8s import BreakerOpenError, HookBudget
from k8s.transport import SharedGate


class Clock:
    """A clock that moves only when the gate pauses on it (or the test moves it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def time(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def test_a_pause_that_fits_the_budget_is_waited_and_one_that_does_not_fails_at_once():
    clock = Clock()
    budget = HookBudget(10, clock=clock.time, pause=clock.pause)
    gate = SharedGate(budget)
    gate.enter()
    gate.leave(limited=True, retry_after=4)  # closed until 4 s
    gate.enter()
    assert clock.pauses == [4]
    gate.leave(limited=True, retry_after=4)  # closed until 8 s; 6 s of the budget left
    clock.now = 9.0
    gate.enter()  # open again
    gate.leave(limited=True, retry_after=4)  # closed until 13 s; 1 s left
    with pytest.raises(BreakerOpenError, match=r"hook time budget spent \(10 s\)"):
        gate.enter()
    assert clock.pauses == [4]  # the 4 s the budget could not cover were never waited
    assert budget.cause is not None


def test_without_a_budget_every_pause_is_waited():
    clock = Clock()
    gate = SharedGate(HookBudget(float("inf"), clock=clock.time, pause=clock.pause))
    gate.enter()
    gate.leave(limited=True, retry_after=30)
    gate.enter()
    assert clock.pauses == [30]
