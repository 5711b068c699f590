"""Which watch events wake the charm, and which are ignored (pure functions).

* Spark service accounts (`managed-by=spark8t`): `ADDED` and `DELETED` wake the charm. A real
  API server sends an object that *starts* matching the selector as `ADDED` (this is how a new
  spark8t account appears: created first, labelled `managed-by` by a later PATCH) and one that
  stops matching as `DELETED`. `MODIFIED` is ignored: a relabel (`--primary`) changes nothing
  the hub distributes, and must never cost an account its configuration.
* Secrets labelled `managed-by=integration-hub`: only this hub's own (owner annotation) matter.
  An `ADDED`/`MODIFIED` Secret whose live data hashes to its `integration-hub/config-hash`
  annotation is the hub's own consistent write and is ignored (no hot loop); one whose data no
  longer matches (a hand edit), a `DELETED` one, or one that lost our owner annotation wakes
  the charm. Other owners' Secrets are none of our business.

The watch loop gives the filters only objects `watcher.events` has checked; the functions here
still read every field defensively, so a shape nobody checked yields "changed", never a crash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

SPARK8T_SELECTOR = "app.kubernetes.io/managed-by=spark8t"
HUB_SECRET_SELECTOR = "app.kubernetes.io/managed-by=integration-hub"
OWNER_ANNOTATION = "integration-hub/owner"
HASH_ANNOTATION = "integration-hub/config-hash"


def data_hash(data: Mapping[str, str]) -> str:
    """The sha256 of Secret data (encoded key → raw value), independent of key order.

    A copy of `core.properties.data_hash` (the watcher may not import the charm's code); a unit
    test asserts that both give the same result.
    """
    canonical = json.dumps(dict(sorted(data.items())), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def live_hash(secret: Mapping[str, Any]) -> str | None:
    """The hash of a Secret's live `data`; None when a value is not base64 of UTF-8 text."""
    decoded: dict[str, str] = {}
    data = secret.get("data") or {}
    if not isinstance(data, Mapping):
        return None
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
            return None
    return data_hash(decoded)


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    annotations = _metadata(obj).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def object_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name` of an object (for logs and notice reasons: never its content)."""
    metadata = _metadata(obj)
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"


class AccountFilter:
    """Spark service accounts: appearing and disappearing accounts wake the charm."""

    name = "accounts"
    kind = "ServiceAccount"
    resource = "serviceaccounts"
    selector = SPARK8T_SELECTOR

    def reset(self) -> None:
        """Forget what a previous list taught (nothing to forget for accounts)."""

    def seed(self, obj: Mapping[str, Any]) -> None:
        """Learn from a listed object (nothing to learn for accounts)."""

    def reason(self, kind: str, obj: Mapping[str, Any]) -> str | None:
        """Why event `kind` on `obj` must wake the charm, or None to ignore it."""
        if kind in ("ADDED", "DELETED"):
            return f"account {object_key(obj)} {kind.lower()}"
        return None


class SecretFilter:
    """This hub's Secrets: deletions and edits wake the charm; its own writes do not.

    Args:
        owner: this hub's owner annotation (`<model-uuid>/<app>`).
    """

    name = "secrets"
    kind = "Secret"
    resource = "secrets"
    selector = HUB_SECRET_SELECTOR

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._ours: set[str] = set()

    def _is_ours(self, obj: Mapping[str, Any]) -> bool:
        return _annotations(obj).get(OWNER_ANNOTATION) == self.owner

    def reset(self) -> None:
        """Forget the Secrets known to be ours (before a new list)."""
        self._ours.clear()

    def seed(self, obj: Mapping[str, Any]) -> None:
        """Remember a listed Secret if it is ours (its key only, never its data)."""
        if self._is_ours(obj):
            self._ours.add(object_key(obj))

    def reason(self, kind: str, obj: Mapping[str, Any]) -> str | None:
        """Why event `kind` on `obj` must wake the charm, or None to ignore it."""
        key = object_key(obj)
        was_ours = key in self._ours
        ours = self._is_ours(obj)
        if kind == "DELETED":
            self._ours.discard(key)
            return f"secret {key} deleted" if ours or was_ours else None
        if kind not in ("ADDED", "MODIFIED"):
            return None
        if not ours:
            self._ours.discard(key)
            return f"secret {key} is no longer ours" if was_ours else None
        self._ours.add(key)
        if live_hash(obj) == _annotations(obj).get(HASH_ANNOTATION):
            return None
        return f"secret {key} edited"
