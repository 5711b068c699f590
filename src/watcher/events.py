"""What a watch event, or a listed object, must look like before the watcher uses it.

The API server's answers are input like any other: a proxy, a broken or hostile server, or a
bug may send an event whose `object` is not a mapping, whose metadata has no name, whose
Secret `data` is a list, or whose resourceVersion is not a string. `check_event` and
`check_object` let through only the shapes Kubernetes documents, for every field the
filters read, and raise `MalformedError` naming the kind of problem (never a value), so the
watch loop logs the event, skips it and goes on with the stream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})
"""The event types a watch delivers to the filters (`ERROR` is raised by `kube.parse_event`)."""
MAX_NAME = 253
MAX_NAMESPACE = 63
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_RESOURCE_VERSION = re.compile(r"[\x21-\x7e]{1,128}")
"""Opaque to clients, but a short run of printable ASCII: it goes back into a query string."""


class MalformedError(ValueError):
    """An event or object the watcher cannot use.

    Attributes:
        problem: what kind of problem (`data is not a mapping of strings`), never a value.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True)
class WatchEvent:
    """A checked watch event.

    Attributes:
        type: `ADDED`, `MODIFIED`, `DELETED` or `BOOKMARK`.
        object: the object, checked by `check_object` (a bookmark's: its resourceVersion only).
        resource_version: the object's resourceVersion, if it has one.
    """

    type: str
    object: dict[str, Any]
    resource_version: str | None


def check_event(event: Any, kind: str) -> WatchEvent:
    """Check a decoded watch event of a `kind` collection (`Secret`, `ServiceAccount`).

    Raises:
        MalformedError: when the event is not what a watch of `kind` delivers.
    """
    if not isinstance(event, dict):
        raise MalformedError("event is not a mapping")
    type_ = event.get("type")
    if not isinstance(type_, str) or type_ not in EVENT_TYPES:
        raise MalformedError("event type is not ADDED, MODIFIED, DELETED or BOOKMARK")
    obj = event.get("object")
    if type_ == "BOOKMARK":
        metadata = _metadata(obj, kind)
        version = metadata.get("resourceVersion")
        if version is None:
            raise MalformedError("bookmark without a resourceVersion")
        return WatchEvent(type_, obj, check_resource_version(version))  # type: ignore[arg-type]
    checked = check_object(obj, kind)
    version = checked["metadata"].get("resourceVersion")
    return WatchEvent(type_, checked, None if version is None else str(version))


def check_object(obj: Any, kind: str) -> dict[str, Any]:
    """Check an object of a `kind` collection, as an event carries it or a list page holds it.

    Listed items carry no `kind`; an object that names one must name `kind`.

    Raises:
        MalformedError: when a field the watcher reads is missing or of the wrong shape.
    """
    metadata = _metadata(obj, kind)
    name = metadata.get("name")
    if not isinstance(name, str) or len(name) > MAX_NAME or not _SUBDOMAIN.fullmatch(name):
        raise MalformedError("metadata.name is not an object name")
    namespace = metadata.get("namespace")
    if (
        not isinstance(namespace, str)
        or len(namespace) > MAX_NAMESPACE
        or not _LABEL.fullmatch(namespace)
    ):
        raise MalformedError("metadata.namespace is not a namespace name")
    version = metadata.get("resourceVersion")
    if version is not None:
        check_resource_version(version)
    for field in ("labels", "annotations"):
        if not _strings(metadata.get(field)):
            raise MalformedError(f"metadata.{field} is not a mapping of strings")
    if kind == "Secret" and not _strings(obj.get("data")):
        raise MalformedError("data is not a mapping of strings")
    return obj


def check_resource_version(value: Any) -> str:
    """A resourceVersion the watcher may send back in a query.

    Raises:
        MalformedError: when it is not a short string of printable ASCII.
    """
    if not isinstance(value, str) or not _RESOURCE_VERSION.fullmatch(value):
        raise MalformedError("resourceVersion is not a short printable string")
    return value


def _metadata(obj: Any, kind: str) -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedError("object is not a mapping")
    if "kind" in obj and obj["kind"] != kind:
        raise MalformedError(f"object is not a {kind}")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise MalformedError("metadata is not a mapping")
    return metadata


def _strings(value: Any) -> bool:
    """Whether `value` is absent (None) or a mapping of strings to strings."""
    if value is None:
        return True
    return isinstance(value, dict) and all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    )
