"""The object store of the fake API server: objects, resourceVersions, events and GC.

One re-entrant lock (``Store.cond``) guards everything; watchers wait on the same condition.
Stored objects are never mutated: every write stores a new dict together with its JSON encoding,
so reads can hand out the encoded bytes without copying.

The store emulates three controllers synchronously: the owner-reference garbage collector (an
object whose owners are all gone is deleted), the namespace controller (deleting a Namespace
deletes everything in it), and ``propagationPolicy=Orphan`` (dependents lose the owner reference).
"""

from __future__ import annotations

import bisect
import copy
import json
import threading
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from tests.kube_server import resources

Key = tuple[str, str]  # (namespace or "", name)


def encode(obj: Any) -> bytes:
    """Encode a JSON document compactly."""
    return json.dumps(obj, separators=(",", ":")).encode()


def now() -> str:
    """The current time in RFC 3339, second precision, UTC."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Entry:
    """A stored object and its JSON encoding (never mutated)."""

    obj: dict[str, Any]
    raw: bytes

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Entry:
        """Wrap an object, encoding it once."""
        return cls(obj, encode(obj))


@dataclass(frozen=True)
class Event:
    """One change, as recorded in the event history.

    Attributes:
        rv: the resourceVersion of the change.
        kind: the object's kind.
        type: ``ADDED``, ``MODIFIED`` or ``DELETED``.
        new: the object after the change (for DELETED, the last state at the deletion's rv).
        old: the object before the change (None for ADDED).
    """

    rv: int
    kind: str
    type: str
    new: Entry
    old: Entry | None


def key_of(obj: dict[str, Any]) -> Key:
    """The store key of an object: (namespace or "", name)."""
    metadata = obj["metadata"]
    return metadata.get("namespace") or "", metadata["name"]


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Compare two objects ignoring their resourceVersion."""
    meta_a = {k: v for k, v in a.get("metadata", {}).items() if k != "resourceVersion"}
    meta_b = {k: v for k, v in b.get("metadata", {}).items() if k != "resourceVersion"}
    rest_a = {k: v for k, v in a.items() if k != "metadata"}
    rest_b = {k: v for k, v in b.items() if k != "metadata"}
    return meta_a == meta_b and rest_a == rest_b


class Store:
    """Thread-safe object store with a global resourceVersion counter and an event history.

    Callers that read-modify-write must hold ``cond`` (a Condition over an RLock) for the whole
    sequence; single calls take it themselves.
    """

    def __init__(self, history_size: int = 1000):
        self.cond = threading.Condition(threading.RLock())
        self.stopping = False
        self._rv = 0
        self._floor = 0
        self._history: deque[Event] = deque()
        self._history_size = history_size
        self._objects: dict[str, dict[Key, Entry]] = defaultdict(dict)
        self._keys: dict[str, list[Key]] = defaultdict(list)
        self._uids: dict[str, tuple[str, Key]] = {}
        self._dependents: dict[str, set[tuple[str, Key]]] = defaultdict(set)
        self.applied: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)

    # -- reading --------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The current value of the global resourceVersion counter."""
        return self._rv

    @property
    def floor(self) -> int:
        """The newest resourceVersion whose event has left the history (0 if none has)."""
        return self._floor

    def get(self, kind: str, namespace: str | None, name: str) -> Entry | None:
        """Return the stored entry of one object, or None."""
        with self.cond:
            return self._objects[kind].get((namespace or "", name))

    def keys(self, kind: str, namespace: str | None, after: Key | None = None) -> list[Key]:
        """Return the sorted keys of a kind, optionally in one namespace and after a key.

        Args:
            kind: the kind.
            namespace: restrict to this namespace (None: all).
            after: only keys strictly greater than this one.

        Returns:
            The keys in (namespace, name) order.
        """
        with self.cond:
            keys = self._keys[kind]
            start = bisect.bisect_right(keys, after) if after else 0
            if namespace is not None:
                start = max(start, bisect.bisect_left(keys, (namespace, "")))
                end = bisect.bisect_left(keys, (namespace + "\x00", ""))
                return keys[start:end]
            return keys[start:]

    def entries(self, kind: str, keys: list[Key]) -> Iterator[Entry]:
        """Yield the entries of existing keys (the caller should hold the lock)."""
        objects = self._objects[kind]
        for key in keys:
            entry = objects.get(key)
            if entry is not None:
                yield entry

    def events_after(self, rv: int) -> list[Event]:
        """Return the recorded events newer than ``rv``, oldest first."""
        with self.cond:
            newer = []
            for event in reversed(self._history):
                if event.rv <= rv:
                    break
                newer.append(event)
            newer.reverse()
            return newer

    def namespace_exists(self, namespace: str) -> bool:
        """Tell whether a Namespace object exists."""
        return self.get("Namespace", None, namespace) is not None

    # -- writing --------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _record(self, event: Event) -> None:
        self._history.append(event)
        while len(self._history) > self._history_size:
            self._floor = self._history.popleft().rv
        self.cond.notify_all()

    def _index(self, kind: str, key: Key, old: Entry | None, new: Entry | None) -> None:
        if old is None and new is not None:
            bisect.insort(self._keys[kind], key)
        elif old is not None and new is None:
            keys = self._keys[kind]
            del keys[bisect.bisect_left(keys, key)]
        for entry, add in ((old, False), (new, True)):
            if entry is None:
                continue
            uid = entry.obj["metadata"].get("uid")
            if uid:
                self._uids.pop(uid, None)
                if add:
                    self._uids[uid] = (kind, key)
            for ref in entry.obj["metadata"].get("ownerReferences") or []:
                self._link(ref.get("uid"), (kind, key), add)

    def _link(self, owner_uid: str, dependent: tuple[str, Key], add: bool) -> None:
        if add:
            self._dependents[owner_uid].add(dependent)
        elif owner_uid in self._dependents:
            self._dependents[owner_uid].discard(dependent)
            if not self._dependents[owner_uid]:
                del self._dependents[owner_uid]

    def write(self, kind: str, obj: dict[str, Any]) -> Entry:
        """Store an object (create or replace) unless it equals the stored one.

        The object must be complete (uid, creationTimestamp...) and is owned by the store from
        now on. A write that changes nothing keeps the resourceVersion and records no event.

        Args:
            kind: the kind.
            obj: the new object.

        Returns:
            The stored entry.
        """
        with self.cond:
            key = key_of(obj)
            old = self._objects[kind].get(key)
            if old is not None and _same(old.obj, obj):
                return old
            rv = self._next_rv()
            obj["metadata"]["resourceVersion"] = str(rv)
            new = Entry.of(obj)
            self._objects[kind][key] = new
            self._index(kind, key, old, new)
            self._record(Event(rv, kind, "MODIFIED" if old else "ADDED", new, old))
            return new

    def remove(self, kind: str, key: Key, orphan: bool = False) -> Entry | None:
        """Delete an object, then its dependents (or orphan them) and a Namespace's content.

        Args:
            kind: the kind.
            key: the object's key.
            orphan: remove the owner reference from dependents instead of deleting them.

        Returns:
            The deleted object's last state, or None when it did not exist.
        """
        with self.cond:
            old = self._objects[kind].pop(key, None)
            if old is None:
                return None
            rv = self._next_rv()
            tombstone = copy.deepcopy(old.obj)
            tombstone["metadata"]["resourceVersion"] = str(rv)
            last = Entry.of(tombstone)
            self._index(kind, key, old, None)
            self._record(Event(rv, kind, "DELETED", last, old))
            uid = old.obj["metadata"].get("uid", "")
            self.applied.pop(uid, None)
            if orphan:
                self._orphan(uid)
            else:
                self._collect(uid)
            if kind == "Namespace":
                self._empty_namespace(key[1])
            return last

    def _collect(self, owner_uid: str) -> None:
        for kind, key in sorted(self._dependents.pop(owner_uid, set())):
            entry = self._objects[kind].get(key)
            if entry is None:
                continue
            refs = entry.obj["metadata"].get("ownerReferences") or []
            if not any(ref.get("uid") in self._uids for ref in refs):
                self.remove(kind, key)

    def _orphan(self, owner_uid: str) -> None:
        for kind, key in sorted(self._dependents.pop(owner_uid, set())):
            entry = self._objects[kind].get(key)
            if entry is None:
                continue
            obj = copy.deepcopy(entry.obj)
            refs = [
                r for r in obj["metadata"].get("ownerReferences", []) if r.get("uid") != owner_uid
            ]
            obj["metadata"]["ownerReferences"] = refs
            if not refs:
                del obj["metadata"]["ownerReferences"]
            self.write(kind, obj)

    def _empty_namespace(self, namespace: str) -> None:
        for rt in resources.RESOURCE_TYPES:
            if rt.namespaced:
                for key in self.keys(rt.kind, namespace):
                    self.remove(rt.kind, key)

    def stop(self) -> None:
        """Mark the store as stopping and wake every watcher."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()

    @staticmethod
    def new_uid() -> str:
        """A fresh object uid."""
        return str(uuid.uuid4())
