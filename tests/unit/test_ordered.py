"""The ordered worker pool: results in order, bounded concurrency and lookahead, clean stops."""

from __future__ import annotations

import threading
import time

import pytest

from ordered import OrderedPool


class Tracker:
    """Work that records how many items run at once and how far ahead of the consumer."""

    def __init__(self, delays: dict[int, float] | None = None) -> None:
        self.delays = delays or {}
        self.running = 0
        self.most_running = 0
        self.started: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, item: int) -> int:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.started.append(item)
        time.sleep(self.delays.get(item, 0.001))
        with self._lock:
            self.running -= 1
        return item * 10


def test_results_come_back_in_order_whatever_order_the_work_ends_in():
    work = Tracker({0: 0.05, 3: 0.02})
    with OrderedPool(work, iter(range(20)), workers=4, lookahead=8) as pool:
        results = list(pool)
    assert results == [(item, item * 10) for item in range(20)]
    assert work.most_running == 4


def test_a_stalled_item_holds_back_at_most_the_lookahead():
    gate = threading.Event()
    started: list[int] = []

    def work(item: int) -> int:
        started.append(item)
        if item == 0:
            gate.wait(5)
        return item

    with OrderedPool(work, iter(range(50)), workers=3, lookahead=6) as pool:
        results = iter(pool)
        time.sleep(0.2)  # the free workers run ahead until the lookahead stops them
        ahead = len(started)
        gate.set()
        consumed = [item for item, _ in results]
    assert ahead == 6
    assert consumed == list(range(50))


def test_stop_starts_nothing_new_and_hands_back_every_item_started():
    items = iter(range(100))
    work = Tracker()
    seen = []
    with OrderedPool(work, items, workers=4, lookahead=4) as pool:
        for item, _ in pool:
            seen.append(item)
            if item == 10:
                pool.stop()
    assert seen == list(range(len(seen)))
    assert sorted(work.started) == seen  # every started item was handed back
    assert len(seen) <= 11 + 3
    assert next(items) == len(seen)  # the rest is left in the iterator


def test_an_error_is_raised_in_order_after_the_items_before_it():
    def work(item: int) -> int:
        if item == 5:
            raise ValueError("item 5")
        return item

    seen = []
    with pytest.raises(ValueError, match="item 5"):
        with OrderedPool(work, iter(range(100)), workers=4, lookahead=8) as pool:
            for item, _ in pool:
                seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_a_failing_iterator_is_raised_after_the_items_it_gave():
    def items():
        yield from range(3)
        raise RuntimeError("no more plan")

    seen = []
    with pytest.raises(RuntimeError, match="no more plan"):
        with OrderedPool(lambda item: item, items(), workers=2, lookahead=2) as pool:
            seen.extend(item for item, _ in pool)
    assert seen == [0, 1, 2]


def test_no_items_ends_at_once_and_leaves_no_thread():
    before = threading.active_count()
    with OrderedPool(lambda item: item, iter(()), workers=8, lookahead=16) as pool:
        assert list(pool) == []
    assert threading.active_count() == before
