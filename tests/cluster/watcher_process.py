"""The watcher run as a real process against the test API server, with a fake `pebble`.

`pebble` is a fake that appends the time and its arguments to a file, so tests read the notices
the charm would get. The `start_watcher` fixture (exported through tests/cluster/conftest.py)
starts one; every process is stopped at the end of the test. `start_watcher(preamble=...)`
runs a few lines in the process before `python -m watcher` starts (to plant a bug: a test of
what the process does when a thread dies of one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster.helpers import OWNER
from tests.kube_server import KubeServer

SRC = Path(__file__).resolve().parents[2] / "src"
WATCHER_PYTHON = os.environ.get("HUB_WATCHER_TEST_PYTHON", sys.executable)
"""The interpreter that runs the watcher (e.g. a python3.10, as in the Ubuntu 22.04 image)."""


@dataclass
class Notice:
    time: float
    key: str
    reason: str


@dataclass
class WatcherProcess:
    """A running watcher and what it did."""

    process: subprocess.Popen
    notices_file: Path
    log_file: Path
    heartbeat: Path
    env: dict[str, str]

    def notices(self) -> list[Notice]:
        if not self.notices_file.exists():
            return []
        out = []
        for line in self.notices_file.read_text().splitlines():
            record = json.loads(line)
            args = record["args"]
            assert args[0] == "notify", args
            reason = next((a[7:] for a in args[2:] if a.startswith("reason=")), "")
            out.append(Notice(record["time"], args[1], reason))
        return out

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def wait_for(
        self, predicate: Callable[[Notice], bool], timeout: float = 10.0, after: int = 0
    ) -> Notice:
        """Wait for a notice (at index >= `after`) that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for notice in self.notices()[after:]:
                if predicate(notice):
                    return notice
            assert self.process.poll() is None, f"watcher died:\n{self.log()}"
            time.sleep(0.005)
        raise AssertionError(
            f"no such notice within {timeout}s; notices: {self.notices()}\nlog:\n{self.log()}"
        )

    def wait_mentioning(self, text: str, timeout: float = 10.0, after: int = 0) -> Notice:
        return self.wait_for(lambda n: text in n.reason, timeout, after)

    def check(self, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [WATCHER_PYTHON, "-S", "-m", "watcher", "--check"],
            cwd=SRC,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


FAKE_PEBBLE = """#!{python} -S
import json, sys, time
with open({path!r}, "a") as handle:
    handle.write(json.dumps({{"time": time.time(), "args": sys.argv[1:]}}) + "\\n")
"""


@pytest.fixture
def start_watcher(
    kube_server: KubeServer, tmp_path: Path
) -> Iterator[Callable[..., WatcherProcess]]:
    """Start the watcher against the test server; `ready` waits for its startup notice."""
    started: list[WatcherProcess] = []

    def start(ready: bool = True, preamble: str | None = None, **extra: str) -> WatcherProcess:
        index = len(started)
        pebble = tmp_path / f"pebble-{index}"
        notices = tmp_path / f"notices-{index}.jsonl"
        pebble.write_text(FAKE_PEBBLE.format(python=sys.executable, path=str(notices)))
        pebble.chmod(0o755)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(SRC),
            "HUB_WATCHER_SERVER": kube_server.url,
            "HUB_WATCHER_OWNER": OWNER.annotation,
            "HUB_WATCHER_PEBBLE": str(pebble),
            "HUB_WATCHER_HEARTBEAT": str(tmp_path / f"heartbeat-{index}"),
            "HUB_WATCHER_DEBOUNCE": "0.05",
            **extra,
        }
        log = tmp_path / f"watcher-{index}.log"
        command = [WATCHER_PYTHON, "-S", "-m", "watcher"]
        if preamble is not None:  # then the same module, run as `-m` runs it
            run = "import runpy\nrunpy.run_module('watcher', run_name='__main__', alter_sys=True)"
            command = [WATCHER_PYTHON, "-S", "-c", f"{preamble}\n{run}"]
        with log.open("w") as log_handle:
            process = subprocess.Popen(
                command,
                cwd=SRC,
                env=env,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
            )
        watcher = WatcherProcess(process, notices, log, Path(env["HUB_WATCHER_HEARTBEAT"]), env)
        started.append(watcher)
        if ready:
            watcher.wait_mentioning("watcher started")
        return watcher

    yield start
    for watcher in started:
        watcher.stop()
