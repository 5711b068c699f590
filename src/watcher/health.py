"""The heartbeat file and the `--check` that Pebble runs on it.

The service rewrites the heartbeat (atomically) every few seconds; it records when the watcher
started, and the last moment both watches were connected. `--check` passes while that moment
is less than `STALE_AFTER` old, or, before the first connection, while the watcher is younger
than that (a grace period to list and connect); otherwise it fails with the reason, and after
the check's threshold Pebble restarts the service.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

STALE_AFTER = 60.0
BEAT_EVERY = 5.0


class Heartbeat:
    """Writes the heartbeat file.

    Args:
        path: the file.
        clock: wall-clock time (the check runs in another process).
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self.started = clock()
        self.connected_at: float | None = None
        self._written = float("-inf")
        self._last_state: tuple[bool, dict[str, str]] | None = None

    def beat(self, connected: bool, watches: Mapping[str, str]) -> None:
        """Record the watches' state: written when it changed, else every `BEAT_EVERY`.

        Args:
            connected: whether every watch is connected now.
            watches: a short state per watch, for the check's message.
        """
        now = self._clock()
        if connected:
            self.connected_at = now
        state = (connected, dict(watches))
        if state == self._last_state and now - self._written < BEAT_EVERY:
            return
        self._last_state = state
        document = {
            "pid": os.getpid(),
            "started": self.started,
            "connected": self.connected_at,
            "written": now,
            "watches": dict(watches),
        }
        try:
            write_atomically(self.path, json.dumps(document))
        except OSError:
            return  # the check will report the stale file
        self._written = now


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader never sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def assess(document: Mapping[str, Any] | None, now: float) -> str | None:
    """Judge a heartbeat document: None when healthy, else the reason."""
    if document is None:
        return "no heartbeat yet: the watcher is not running or cannot write its heartbeat"
    watches = document.get("watches") or {}
    states = ", ".join(f"{name}: {state}" for name, state in sorted(watches.items()))
    detail = f" ({states})" if states else ""
    connected = document.get("connected")
    if isinstance(connected, (int, float)):
        age = now - connected
        if age < STALE_AFTER:
            return None
        return f"watches last connected {age:.0f}s ago{detail}"
    started = document.get("started")
    if isinstance(started, (int, float)) and now - started < STALE_AFTER:
        return None
    return f"watches never connected since the watcher started{detail}"


def check(path: Path, now: float | None = None) -> str | None:
    """Read and judge the heartbeat file: None when healthy, else the reason."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        document = None
    except (OSError, ValueError) as error:
        return f"unreadable heartbeat {path}: {error}"
    if document is not None and not isinstance(document, dict):
        return f"malformed heartbeat {path}"
    return assess(document, time.time() if now is None else now)
