"""Run the watcher's process tests under every other supported Python found on this machine.

The watcher runs in the workload image (Ubuntu 22.04: Python 3.10), not in the charm's venv, so
its process tests (`test_watcher.py`, `test_realtime.py`) run once per interpreter found among
`SUPPORTED` (on PATH or under pyenv), with `HUB_WATCHER_TEST_PYTHON` pointing at it. Pythons not
installed here are listed as not run; at least the image's Python should be (CI says so).

Usage: `python -m tests.cluster.other_pythons [pytest args]` (the `watcher-pythons` tox env).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
IMAGE_PYTHON = "3.10"
TESTS = ["tests/cluster/test_watcher.py", "tests/cluster/test_realtime.py"]


def find(version: str) -> str | None:
    """An interpreter of `version` that runs, on PATH or under pyenv."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{version}")]
    candidates += [str(p) for p in sorted(pyenv_root.glob(f"versions/{version}.*/bin/python3"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            return probe.stdout.strip()
    return None


def main(pytest_args: list[str]) -> int:
    """Run the tests per found interpreter; non-zero if any run failed."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    failed = []
    for version in SUPPORTED:
        if version == running:
            continue  # the cluster tier already ran them with this interpreter
        python = find(version)
        if python is None:
            print(f"watcher on Python {version}: not installed here, not run", flush=True)
            continue
        print(f"watcher on Python {version}: {python}", flush=True)
        env = {**os.environ, "HUB_WATCHER_TEST_PYTHON": python}
        done = subprocess.run([sys.executable, "-m", "pytest", *TESTS, *pytest_args], env=env)
        if done.returncode != 0:
            failed.append(version)
    if failed:
        print(f"watcher tests failed on Python {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
