"""Watch streams: the events a real API server sends for ``?watch=true``.

A :class:`WatchStream` yields encoded event lines. It starts with an ``ADDED`` event per matching
object (no resourceVersion, or ``"0"``) or with the recorded events newer than the requested
resourceVersion (an ``ERROR`` event with a 410 ``Expired`` Status when that version has left the
history), then follows live changes until ``timeoutSeconds``, server stop, or client disconnect.
With selectors, a change that makes an object start matching is sent as ``ADDED`` and one that
makes it stop matching as ``DELETED`` (with its previous content), as the real watch cache does.

For tests of what a client does with an event no real server sends (an object that is not a
mapping, Secret ``data`` that is a list, a line that is not JSON), :func:`inject_line` queues a
hand-crafted line, sent once, as it is, by the next watch stream of its kind, ahead of the
store's events that follow it. Nothing changes for a server no line was injected into.
"""

from __future__ import annotations

import copy
import json
import time
import weakref
from typing import Any, Callable, Iterator

from tests.kube_server import errors
from tests.kube_server.resources import ResourceType
from tests.kube_server.selectors import Selector
from tests.kube_server.store import Entry, Event, Store, encode

DEFAULT_TIMEOUT = 300.0
MAX_TIMEOUT = 3600.0
POLL_INTERVAL = 0.25


def event_line(kind: str, raw_object: bytes) -> bytes:
    """Encode one watch event line (``{"type":...,"object":...}`` and a newline)."""
    return b'{"type":"' + kind.encode() + b'","object":' + raw_object + b"}\n"


def error_line(error: errors.StatusError) -> bytes:
    """Encode an ``ERROR`` event carrying a Status."""
    return event_line("ERROR", encode(error.status()))


_CRAFTED: weakref.WeakKeyDictionary[Store, list[tuple[str, bytes]]] = weakref.WeakKeyDictionary()
"""Hand-crafted lines waiting for a watch stream, per store: (kind, line)."""


def crafted_event(type_: Any, obj: Any) -> bytes:
    """Encode ``{"type": type_, "object": obj}`` and a newline, whatever the values are."""
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


def inject_line(store: Store, kind: str, line: bytes) -> None:
    """Queue ``line`` for the next watch stream of ``kind`` (any namespace, any selector).

    Args:
        store: the server's store (``KubeServer.store``).
        kind: the watched kind that receives it (``Secret``, ``ServiceAccount``).
        line: the bytes sent as one chunk, unchanged (end it with a newline to make it whole).
    """
    with store.cond:
        _CRAFTED.setdefault(store, []).append((kind, line))
        store.cond.notify_all()


def _take_crafted(store: Store, kind: str) -> list[bytes]:
    """The lines injected for ``kind`` (the caller holds ``store.cond``); they are sent once."""
    waiting = _CRAFTED.get(store)
    if not waiting:
        return []
    taken = [line for k, line in waiting if k == kind]
    waiting[:] = [(k, line) for k, line in waiting if k != kind]
    return taken


def _with_rv(entry: Entry, rv: int) -> bytes:
    obj = copy.deepcopy(entry.obj)
    obj["metadata"]["resourceVersion"] = str(rv)
    return encode(obj)


class WatchStream:
    """The event lines of one watch request.

    Args:
        store: the object store.
        rt: the watched resource type.
        namespace: the watched namespace, None for all.
        selector: the label and field selectors.
        resource_version: the ``resourceVersion`` parameter (None or "0": start with the state).
        timeout: the ``timeoutSeconds`` parameter, None for the default.
        client_gone: returns True once the client has closed its connection.
        end_early: stop right after the initial events (fault injection).
    """

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        selector: Selector,
        resource_version: str | None = None,
        timeout: float | None = None,
        client_gone: Callable[[], bool] = lambda: False,
        end_early: bool = False,
    ):
        self.store = store
        self.rt = rt
        self.namespace = namespace
        self.selector = selector
        self.resource_version = resource_version
        self.timeout = min(timeout if timeout and timeout > 0 else DEFAULT_TIMEOUT, MAX_TIMEOUT)
        self.client_gone = client_gone
        self.end_early = end_early
        self.cursor = 0

    def _in_scope(self, event: Event) -> bool:
        if event.kind != self.rt.kind:
            return False
        return (
            self.namespace is None or event.new.obj["metadata"].get("namespace") == self.namespace
        )

    def translate(self, event: Event) -> bytes | None:
        """Turn a store event into the line this watcher sees, or None when it sees nothing."""
        if not self._in_scope(event):
            return None
        was = event.old is not None and self.selector.matches(event.old.obj)
        if event.type == "DELETED":
            return event_line("DELETED", event.new.raw) if was else None
        now = self.selector.matches(event.new.obj)
        if now:
            return event_line("MODIFIED" if was else "ADDED", event.new.raw)
        if was and event.old is not None:
            return event_line("DELETED", _with_rv(event.old, event.rv))
        return None

    def _initial(self) -> tuple[list[bytes], bool]:
        """Compute the first lines; the boolean says whether the stream must end after them."""
        with self.store.cond:
            if self.resource_version in (None, "", "0"):
                self.cursor = self.store.resource_version
                keys = self.store.keys(self.rt.kind, self.namespace)
                entries = self.store.entries(self.rt.kind, keys)
                return [
                    event_line("ADDED", e.raw) for e in entries if self.selector.matches(e.obj)
                ], False
            try:
                requested = int(self.resource_version)
            except ValueError:
                error = errors.bad_request(f"invalid resource version: {self.resource_version!r}")
                return [error_line(error)], True
            return self._since(requested)

    def _since(self, requested: int) -> tuple[list[bytes], bool]:
        if requested < self.store.floor:
            return [error_line(errors.expired(requested, self.store.floor + 1))], True
        self.cursor = requested
        return self._drain(), False

    def _drain(self) -> list[bytes]:
        lines = []
        for event in self.store.events_after(self.cursor):
            self.cursor = event.rv
            line = self.translate(event)
            if line is not None:
                lines.append(line)
        return lines

    def _next_batch(self, deadline: float) -> tuple[list[bytes], bool]:
        """Drain new events, or wait a little for some; the boolean says whether to end."""
        with self.store.cond:
            if self.store.stopping:
                return [], True
            if self.cursor < self.store.floor:
                return [error_line(errors.expired(self.cursor, self.store.floor + 1))], True
            lines = _take_crafted(self.store, self.rt.kind) + self._drain()
            remaining = deadline - time.monotonic()
            if lines or remaining <= 0:
                return lines, remaining <= 0
            self.store.cond.wait(min(remaining, POLL_INTERVAL))
            return [], False

    def lines(self) -> Iterator[bytes]:
        """Yield the event lines until the stream ends."""
        deadline = time.monotonic() + self.timeout
        first, done = self._initial()
        yield from first
        if done or self.end_early:
            return
        while not self.client_gone():
            batch, done = self._next_batch(deadline)
            yield from batch
            if done:
                return
