"""Waking the charm: `pebble notify`, debounced.

The first change after a quiet period is notified at once (latency matters: a new account
waits for its Secret); later changes within `interval` of a notice are gathered into one
trailing notice, so there is at most one notice per interval however busy the cluster is.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

NOTIFY_TIMEOUT = 10.0
RETRY_INITIAL = 0.2
RETRY_MAXIMUM = 30.0
MAX_REASON = 200
WORKLOAD_PEBBLE_SOCKET = Path("/charm/container/pebble.socket")
"""Where Juju puts the workload container's Pebble socket (used when the env says nothing)."""


def summarize(reasons: list[str]) -> str:
    """One short reason for a notice that may stand for several changes."""
    unique = list(dict.fromkeys(reasons))
    text = unique[0] if len(unique) == 1 else f"{len(unique)} changes: " + ", ".join(unique[:3])
    if len(unique) > 3:
        text += ", ..."
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


class PebbleNotifier:
    """Records the custom notice with the `pebble` CLI.

    Args:
        pebble: the `pebble` binary.
        key: the notice key.
        env: the environment of the watcher (the `pebble` client reads its socket from it).
    """

    def __init__(self, pebble: str, key: str, env: Mapping[str, str] | None = None) -> None:
        self.pebble = pebble
        self.key = key
        self.env = dict(os.environ if env is None else env)
        if (
            "PEBBLE_SOCKET" not in self.env
            and "PEBBLE" not in self.env
            and WORKLOAD_PEBBLE_SOCKET.exists()
        ):
            self.env["PEBBLE_SOCKET"] = str(WORKLOAD_PEBBLE_SOCKET)

    def __call__(self, reason: str) -> bool:
        """Record one notice; True on success (failures are logged, never raised)."""
        command = [self.pebble, "notify", self.key, f"reason={reason}"]
        try:
            result = subprocess.run(
                command,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=NOTIFY_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as error:
            logger.error("cannot run %s notify: %s", self.pebble, error)
            return False
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()[:300]
            logger.error("pebble notify failed (exit %d): %s", result.returncode, detail)
            return False
        logger.info("notice sent: %s", reason)
        return True


class Debouncer:
    """Gathers wake-ups from the watch threads and sends notices, at most one per `interval`.

    Args:
        interval: the minimum time between two notices, in seconds.
        send: records one notice with the given reason; returns False on failure (the reasons
            are then kept and retried with backoff).
        clock: a monotonic clock.
    """

    def __init__(
        self,
        interval: float,
        send: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._send = send
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._next_allowed = float("-inf")
        self._failures = 0
        self._interrupted = False
        self.sent = 0

    def wake(self, reason: str) -> None:
        """Ask for a notice (thread-safe; returns at once)."""
        with self._cond:
            self._pending.append(reason)
            self._cond.notify_all()

    def interrupt(self) -> None:
        """End the current `step` at once, sending nothing (thread-safe).

        A watch thread that dies calls it, so the main loop sees the death now, not a tick later.
        """
        with self._cond:
            self._interrupted = True
            self._cond.notify_all()

    def _take_due(self, timeout: float) -> list[str]:
        """Wait up to `timeout` for a notice to be due; return its reasons (or nothing)."""
        with self._cond:
            deadline = self._clock() + timeout
            while True:
                if self._interrupted:
                    self._interrupted = False
                    return []
                now = self._clock()
                if self._pending and now >= self._next_allowed:
                    reasons, self._pending = self._pending, []
                    return reasons
                until = min(deadline, self._next_allowed) if self._pending else deadline
                if now >= deadline:
                    return []
                if not self._cond.wait(max(until - now, 0.0)) and not self._pending:
                    return []

    def step(self, timeout: float) -> bool:
        """Send the due notice, waiting up to `timeout` for one; True if one was sent."""
        reasons = self._take_due(timeout)
        if not reasons:
            return False
        ok = self._send(summarize(reasons))
        with self._cond:
            if ok:
                self._failures = 0
                self.sent += 1
                self._next_allowed = self._clock() + self.interval
            else:
                self._failures += 1
                retry = min(RETRY_MAXIMUM, RETRY_INITIAL * 2 ** (self._failures - 1))
                self._pending[:0] = reasons
                self._next_allowed = self._clock() + max(self.interval, retry)
        return ok
