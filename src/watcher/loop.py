"""One resource's list-then-watch loop, run in its own thread.

LIST (paginated) gives a resourceVersion; WATCH from it streams events, each filtered into a
wake-up or nothing; the last resourceVersion seen is kept, so a stream that ends (the server's
`timeoutSeconds`, a dropped connection, a 5xx) is resumed from it without missing anything.
Only when the server says that version is gone (410, as an HTTP status or an `ERROR` event) is
the collection listed again, and the charm notified once, since things may have changed while
not watching. Failures back off exponentially (0.2 s to 30 s); an attempt that delivered an
event, or stayed connected for half a second, resets the backoff.

Every event and listed object is checked (`watcher.events`) before a filter sees it: a
malformed one is logged by kind of problem (never a value; each kind at most once a minute)
and skipped, and the stream goes on. Anything else that goes wrong in the thread is a bug: the
thread records it (`failure`) and tells the service, which exits so Pebble restarts the whole
process at once, instead of leaving a process alive with one watch dead.
"""

from __future__ import annotations

import http.client
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import closing
from typing import Any, Protocol

from watcher.events import MalformedError, check_event, check_object
from watcher.kube import Client, GoneError, KubeError, StreamError

logger = logging.getLogger(__name__)

HEALTHY_AFTER = 0.5
"""An attempt connected for this long counts as a success (resets the backoff)."""
MALFORMED_LOG_EVERY = 60.0
"""Each kind of malformed event is logged at most once in this many seconds (then counted)."""

FAILURES = (KubeError, StreamError, OSError, http.client.HTTPException, ValueError)


class Filter(Protocol):
    """Decides which events of one resource wake the charm (see `watcher.filters`)."""

    name: str
    kind: str
    resource: str
    selector: str

    def reset(self) -> None:
        """Forget what a previous list taught."""

    def seed(self, obj: Mapping[str, Any]) -> None:
        """Learn from a listed object."""

    def reason(self, kind: str, obj: Mapping[str, Any]) -> str | None:
        """Why the event must wake the charm, or None."""


class Backoff:
    """Exponential backoff: `initial`, doubling up to `maximum`; `reset` after a success."""

    def __init__(self, initial: float = 0.2, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._failures = 0

    def next(self) -> float:
        """The delay before the next attempt, and count one more failure."""
        delay = min(self.maximum, self.initial * 2**self._failures)
        self._failures += 1
        return delay

    def reset(self) -> None:
        """Start again from `initial`."""
        self._failures = 0


def describe(error: BaseException) -> str:
    """A short, data-free description of a failure, for logs and the health check."""
    if isinstance(error, KubeError):
        return str(error)
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def describe_crash(error: BaseException) -> str:
    """An unexpected exception: its type and where it was raised, never its message.

    The message of an exception nobody expected may quote anything, Secret data included.
    """
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    return (
        f"{type(error).__name__} in {last.name} ({os.path.basename(last.filename)}:{last.lineno})"
    )


class WatchLoop(threading.Thread):
    """Lists and watches one resource until stopped, waking the charm on relevant events.

    Args:
        client: the API client.
        filter_: which events matter.
        wake: called with a reason when the charm must be woken.
        on_listed: called once, after the first successful list.
        watch_timeout: `timeoutSeconds` of each watch request.
        page_size: `limit` of each list page.
        backoff: the retry delays.
        on_failure: called with the loop's name when the thread dies of an unexpected
            exception (after `failure` is set).
    """

    def __init__(
        self,
        client: Client,
        filter_: Filter,
        wake: Callable[[str], None],
        on_listed: Callable[[str], None],
        watch_timeout: int = 300,
        page_size: int = 500,
        backoff: Backoff | None = None,
        on_failure: Callable[[str], None] = lambda name: None,
    ) -> None:
        super().__init__(name=f"watch-{filter_.name}", daemon=True)
        self.client = client
        self.filter = filter_
        self.wake = wake
        self.on_listed = on_listed
        self.watch_timeout = watch_timeout
        self.page_size = page_size
        self.backoff = backoff or Backoff()
        self.stopping = threading.Event()
        self.connected = False
        self.state = "starting"
        self.resource_version: str | None = None
        self._listed_once = False
        self._relist_reason: str | None = None
        self._healthy = False
        self._connected_since: float | None = None
        self.on_failure = on_failure
        self.failure: str | None = None
        """Set when the thread died of an unexpected exception: its type and place."""
        self.malformed = 0
        """Events and listed objects skipped as malformed."""
        self._malformed_logged: dict[str, float] = {}

    def stop(self) -> None:
        """Ask the loop to end (the caller also closes the client's connections)."""
        self.stopping.set()

    def run(self) -> None:
        """Watch until stopped; an unexpected exception ends the thread and is reported."""
        try:
            self._watch_forever()
        except BaseException as error:  # a bug: the process must go down, not limp on
            if self.stopping.is_set():
                return
            self.failure = describe_crash(error)
            self.connected = False
            self.state = f"failed: {self.failure}"
            logger.critical("%s watch thread failed: %s", self.filter.name, self.failure)
            self.on_failure(self.filter.name)

    def _watch_forever(self) -> None:
        """Loop: (re)list when needed, watch, and back off after failures."""
        while not self.stopping.is_set():
            self._healthy = False
            try:
                rv = self.resource_version or self._list()
                self._watch(rv)
                outcome = "stream ended"
            except GoneError as error:
                self.resource_version = None
                self._relist_reason = "410 Gone"
                outcome = describe(error)
            except FAILURES as error:
                outcome = describe(error)
            if self.stopping.is_set():
                return
            self._pause(outcome)

    def _pause(self, outcome: str) -> None:
        if self._healthy:
            self.backoff.reset()
            delay = 0.0
        else:
            delay = self.backoff.next()
        self.state = f"reconnecting after {outcome}"
        logger.info(
            "%s watch: %s; reconnecting in %.1fs from resourceVersion %s",
            self.filter.name,
            outcome,
            delay,
            self.resource_version or "(re-list)",
        )
        self.stopping.wait(delay)

    def _list(self) -> str:
        self.state = "listing"
        self.filter.reset()
        rv = self.client.list(
            self.filter.resource, self.filter.selector, self.page_size, self._seed
        )
        if not rv:
            raise StreamError("list answered without a resourceVersion")
        self.resource_version = rv
        if not self._listed_once:
            self._listed_once = True
            self.on_listed(self.filter.name)
        elif self._relist_reason:
            self.wake(f"{self.filter.name} re-listed after {self._relist_reason}")
        self._relist_reason = None
        return rv

    def _connected(self) -> None:
        self.connected = True
        self._connected_since = time.monotonic()
        self.state = "watching"

    def _watch(self, rv: str) -> None:
        self._connected_since = None
        events = self.client.watch(
            self.filter.resource,
            self.filter.selector,
            rv,
            self.watch_timeout,
            on_connected=self._connected,
        )
        try:
            with closing(events):
                for event in events:
                    self._healthy = True
                    self._dispatch_event(event)
        finally:
            self.connected = False
            since = self._connected_since
            if since is not None and time.monotonic() - since >= HEALTHY_AFTER:
                self._healthy = True

    def _seed(self, item: Any) -> None:
        """Teach the filter a listed object, or skip it if it is malformed."""
        try:
            obj = check_object(item, self.filter.kind)
        except MalformedError as error:
            self._skip("listed object", error.problem)
            return
        self.filter.seed(obj)

    def _dispatch_event(self, event: Mapping[str, Any] | MalformedError) -> None:
        if isinstance(event, MalformedError):
            self._skip("event", event.problem)
            return
        try:
            checked = check_event(event, self.filter.kind)
        except MalformedError as error:
            self._skip("event", error.problem)
            return
        if checked.resource_version:
            self.resource_version = checked.resource_version
        if checked.type == "BOOKMARK":
            return
        reason = self.filter.reason(checked.type, checked.object)
        if reason is not None:
            self.wake(reason)

    def _skip(self, what: str, problem: str) -> None:
        """Count a malformed event or object; log each kind of problem once a minute at most."""
        self.malformed += 1
        now = time.monotonic()
        last = self._malformed_logged.get(f"{what}: {problem}")
        if last is not None and now - last < MALFORMED_LOG_EVERY:
            return
        self._malformed_logged[f"{what}: {problem}"] = now
        logger.warning(
            "%s watch: skipped a malformed %s (%s); %d skipped since start",
            self.filter.name,
            what,
            problem,
            self.malformed,
        )
