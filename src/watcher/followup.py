"""The follow-up request: a pass the charm cut short asks the watcher to wake it again soon.

When a pass cannot converge within its hook's budget (or the API is unavailable), the charm
pushes a small JSON file, `{"after": <seconds>, "reason": "<why>"}`, into the workload
container; the watcher sends one custom notice `after` seconds past the file's modification
time, instead of the charm waiting minutes for `update-status`. A later pass that is still not
converged pushes the file again (a new request, a new notice); a converged pass removes it.
The file is read as hostile input: bounded size, JSON object, bounded delay and reason.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_FOLLOW_UP = "/tmp/hub-follow-up.json"
"""Where the charm pushes the request (`HUB_WATCHER_FOLLOW_UP` overrides it)."""
MAX_BYTES = 1024
MAX_AFTER = 3600.0
MAX_REASON = 120


class FollowUp:
    """Watches the request file; `due()` answers the reason once per request when it is due.

    Args:
        path: the request file.
        clock: the wall clock (the file's mtime is wall-clock time).
    """

    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self.path = path
        self.clock = clock
        self._answered: int | None = None

    def due(self) -> str | None:
        """The reason of a request whose delay has passed and that was not answered yet."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        if stat.st_mtime_ns == self._answered:
            return None
        request = _parse(self.path)
        if request is None:
            self._answered = stat.st_mtime_ns  # malformed: logged once, never notified
            return None
        after, reason = request
        if self.clock() < stat.st_mtime + after:
            return None
        self._answered = stat.st_mtime_ns
        return reason


def _parse(path: Path) -> tuple[float, str] | None:
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
        document = json.loads(raw) if len(raw) <= MAX_BYTES else None
    except (OSError, ValueError):
        document = None
    if not isinstance(document, dict):
        logger.warning("ignoring a malformed follow-up request in %s", path)
        return None
    after = document.get("after", 0)
    reason = document.get("reason", "")
    if not isinstance(after, int | float) or not 0 <= after <= MAX_AFTER:
        logger.warning("ignoring a follow-up request with a bad delay in %s", path)
        return None
    text = "".join(c for c in str(reason) if c.isprintable())[:MAX_REASON]
    return float(after), text or "pass not converged"
