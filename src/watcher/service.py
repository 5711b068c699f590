"""The watcher service: two watch threads, the debouncer and the heartbeat, until SIGTERM.

A process with a dead thread is worse than a dead process: Pebble restarts a process that
exits at once, but a half-alive one only after its health check has failed three times (about
90 s), and meanwhile changes go unnoticed. So when a watch thread dies of an unexpected
exception, or anything unexpected escapes the main loop, the service logs what (the type and
the place, never the message) and exits with `EXIT_FAILED`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from watcher import NOTICE_KEY
from watcher.filters import AccountFilter, SecretFilter
from watcher.followup import FollowUp
from watcher.health import BEAT_EVERY, Heartbeat, check
from watcher.kube import Client
from watcher.loop import WatchLoop, describe_crash
from watcher.notify import Debouncer, PebbleNotifier
from watcher.settings import Settings, SettingsError, heartbeat_path

logger = logging.getLogger("watcher")

USAGE = "usage: python3 -m watcher [--check]"
TICK = 1.0
"""How often the main loop looks at the watches' state (the heartbeat is rate-limited)."""
EXIT_FAILED = 1
"""The exit status after a watch thread or the main loop failed unexpectedly."""
EXIT_USAGE = 2
"""The exit status for bad arguments or settings (restarting does not help)."""


class Watcher:
    """The running watcher: owns the threads, the debouncer and the heartbeat.

    Args:
        settings: the settings.
        env: the environment passed on to `pebble notify`.
    """

    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.client = Client(settings.endpoint)
        self.debouncer = Debouncer(
            settings.debounce, PebbleNotifier(settings.pebble, NOTICE_KEY, env)
        )
        self.heartbeat = Heartbeat(settings.heartbeat)
        self.follow_up = FollowUp(settings.follow_up, time.time)
        self._listed: set[str] = set()
        self._lock = threading.Lock()
        self.loops = [
            WatchLoop(
                self.client,
                filter_,
                self.debouncer.wake,
                self._on_listed,
                watch_timeout=settings.watch_timeout,
                page_size=settings.page_size,
                on_failure=lambda name: self.debouncer.interrupt(),
            )
            for filter_ in (AccountFilter(), SecretFilter(settings.owner))
        ]

    def _on_listed(self, name: str) -> None:
        """After both first lists, notify once: anything may have changed before we watched."""
        with self._lock:
            self._listed.add(name)
            done = len(self._listed) == len(self.loops)
        if done:
            self.debouncer.wake("watcher started")

    def _beat(self) -> None:
        self.heartbeat.beat(
            all(loop.connected for loop in self.loops),
            {loop.filter.name: loop.state for loop in self.loops},
        )

    def run(self) -> int:
        """Start the watches and send notices until interrupted (SIGTERM → SystemExit).

        Returns:
            `EXIT_FAILED` once a watch thread has died (the only way it returns).
        """
        logger.info(
            "watching %s for Spark accounts and the Secrets of %s",
            self.settings.endpoint,
            self.settings.owner,
        )
        for loop in self.loops:
            loop.start()
        try:
            while True:
                self.debouncer.step(min(TICK, BEAT_EVERY))
                if (dead := self._dead_loop()) is not None:
                    logger.critical(
                        "exiting: the %s watch thread died (%s); Pebble restarts the watcher",
                        dead.filter.name,
                        dead.failure or "ended",
                    )
                    return EXIT_FAILED
                if (reason := self.follow_up.due()) is not None:
                    self.debouncer.wake(f"follow-up: {reason}")
                self._beat()
        finally:
            self.stop()

    def _dead_loop(self) -> WatchLoop | None:
        """A watch thread that died (of a failure, or that ended without being stopped)."""
        for loop in self.loops:
            if loop.failure is not None or not loop.is_alive():
                return loop
        return None

    def stop(self) -> None:
        """Stop the watch threads and close their connections."""
        for loop in self.loops:
            loop.stop()
        self.client.close_all()
        for loop in self.loops:
            loop.join(timeout=2)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def run_check(env: Mapping[str, str]) -> int:
    """`--check`: exit status 0 when the heartbeat is fresh, else 1 with the reason on stderr."""
    path = heartbeat_path(env)
    problem = check(path)
    if problem is None:
        print(f"ok: {path} is fresh")
        return 0
    print(f"hub-watcher unhealthy: {problem}", file=sys.stderr)
    return 1


def main(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run the service, or the health check with `--check`; return the exit status."""
    environment = os.environ if env is None else env
    if list(argv) == ["--check"]:
        return run_check(environment)
    if argv:
        print(USAGE, file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = Settings.from_env(environment)
    except SettingsError as error:
        logger.error("cannot start: %s", error)
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return Watcher(settings, environment).run()
    except KeyboardInterrupt:
        return 0
    except Exception as error:  # a bug: exit, so Pebble restarts the process at once
        logger.critical("exiting: the watcher failed (%s)", describe_crash(error))
        return EXIT_FAILED
