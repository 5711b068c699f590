"""An ordered worker pool: items worked on by several threads, results handed back in order.

The applier writes up to `max_concurrent_writes` accounts at once but must merge their results
in plan order (the breaker, the rows and the status may not depend on which answer came first).
Workers pull the next item themselves, so a worker starts a new item the moment it is free,
not when the oldest item in flight is done; `lookahead` bounds how far the workers may run
ahead of the oldest result not yet handed back, so a stalled item holds back at most that many
finished ones. `stop()` starts no new item; every item already started is finished and handed
back, so no outcome is lost or guessed, and the items not started are left in the iterator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class OrderedPool(Generic[Item, Result]):
    """Run `work` on the items of an iterator in `workers` threads; iterate results in order.

    Use it as a context manager: leaving it stops the pool and joins every thread. An exception
    raised by `work` stops the pool and is raised, in order, where its result would have been.
    """

    def __init__(
        self,
        work: Callable[[Item], Result],
        items: Iterator[Item],
        workers: int,
        lookahead: int,
        name: str = "worker",
    ) -> None:
        """Create a pool; its threads start when the `with` block is entered.

        Args:
            work: what each item is given to (in a worker thread).
            items: the items, consumed one at a time by whichever worker is free.
            workers: threads (at most this many items are worked on at once).
            lookahead: items started but not yet handed back, at most (at least `workers`).
            name: the threads' name prefix.
        """
        self._work = work
        self._items = items
        self._lookahead = max(lookahead, workers)
        lock = threading.Lock()
        self._head_done = threading.Condition(lock)  # the consumer waits for the next result
        self._room = threading.Condition(lock)  # workers wait for the lookahead to allow more
        self._started = 0  # items taken from the iterator
        self._handed = 0  # results handed back, in order
        self._finished: dict[int, tuple[Item, Result | None, BaseException | None]] = {}
        self._exhausted = False
        self._unreadable: BaseException | None = None  # what `items` raised, if anything
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{index}") for index in range(workers)
        ]

    def __enter__(self) -> OrderedPool[Item, Result]:
        """Start the workers."""
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Stop the pool and wait for the items in flight (their results are dropped)."""
        self.stop()
        for thread in self._threads:
            thread.join()

    def stop(self) -> None:
        """Start no new item; the items started are still finished and handed back."""
        with self._room:
            self._stopped = True
            self._room.notify_all()
            self._head_done.notify_all()

    def __iter__(self) -> Iterator[tuple[Item, Result]]:
        """Each started item and its result, in the items' order, until none is left."""
        while True:
            with self._head_done:
                while self._handed not in self._finished:
                    if (self._stopped or self._exhausted) and self._handed == self._started:
                        if self._unreadable is not None:
                            raise self._unreadable
                        return
                    self._head_done.wait()
                item, result, error = self._finished.pop(self._handed)
                self._handed += 1
                self._room.notify()
            if error is not None:
                self.stop()
                raise error
            yield item, result  # type: ignore[misc]  # None only when `error` is set

    def _take(self) -> tuple[int, Item] | None:
        """The next item and its place, once the lookahead allows; None when there is none."""
        with self._room:
            while not self._stopped and self._started - self._handed >= self._lookahead:
                self._room.wait()
            if self._stopped or self._exhausted:
                return None
            try:
                item = next(self._items)
            except BaseException as error:  # StopIteration, or a failing iterator
                self._exhausted = True
                if not isinstance(error, StopIteration):
                    self._unreadable = error
                self._head_done.notify()  # the consumer may be waiting for the end
                return None
            self._started += 1
            return self._started - 1, item

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            index, item = taken
            try:
                finished = (item, self._work(item), None)
            except BaseException as error:  # handed back in order, raised by __iter__
                finished = (item, None, error)
            with self._head_done:
                self._finished[index] = finished
                if index == self._handed:  # only the next result in order wakes the consumer
                    self._head_done.notify()
