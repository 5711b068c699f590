"""Cold hook cost: import time and peak RSS of one hook process, before and after, in one run.

Every Juju hook is a new Python process, so what `import charm` costs is paid on every event.
This module measures, for this tree and for a "before" tree (`git archive <ref>` into a
temporary directory, by default `BEFORE`: the tree issue 9 measured at 0.36 s and 61 MB), in the
same run and on the same machine:

- the import time of `charm` (`python -X importtime -c 'import charm'`, the cumulative figure of
  the `charm` line);
- a no-op hook: the real charm under `ops.testing`, in a fresh subprocess, running
  `update-status` as a follower with nothing to do (no API request is sent); its wall time
  (from the start of the script to the end of the hook) and its peak RSS (`VmHWM` of the
  child itself, read from `/proc/self/status`: `ru_maxrss` of a child is inflated by its
  parent's peak).

Run it with `PYTHONPATH=.:src:lib python -m tests.bench.cold [--before REF] [--output FILE]`
(`tox -e bench` runs it last); the table is written as its own section of docs/benchmark.md
(replaced on each run), and it exits 1 unless this tree's import time and peak RSS are both
lower than the before tree's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Cold hook cost"
BEFORE = "486a59a"
"""The tree issue 9 measured (`import charm` 0.36 s, a hook process 61 MB)."""
RUNS = 5

NO_OP_HOOK = r"""
import json, sys, time
started = time.perf_counter()
root = sys.argv[1]
sys.path[:0] = [root + "/src", root + "/lib"]
from ops import testing
from charm import SparkIntegrationHubCharm
imported = time.perf_counter()
ctx = testing.Context(SparkIntegrationHubCharm, app_name="spark-integration-hub-k8s")
state = testing.State(
    leader=False,
    storages={testing.Storage("hub-state")},
    containers={testing.Container("integration-hub", can_connect=True)},
)
ctx.run(ctx.on.update_status(), state)
done = time.perf_counter()
peak = 0
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1])
loaded = sorted(m for m in ("k8s.gateway", "lightkube", "httpx2", "tenacity") if m in sys.modules)
print(json.dumps({"import": imported - started, "hook": done - started, "rss_kib": peak,
                  "loaded": loaded}))
"""

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {token: "unused"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@dataclass(frozen=True)
class ColdCost:
    """What one tree's cold hook costs."""

    import_seconds: float
    hook_seconds: float
    peak_rss_mib: float
    client_modules: tuple[str, ...]
    """Which of the Kubernetes client's modules the no-op hook loaded."""


def import_seconds(root: Path) -> float:
    """`import charm`'s cumulative time from `-X importtime` (one run)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import charm"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root / 'src'}:{root / 'lib'}"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    for line in reversed(result.stderr.splitlines()):
        fields = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[2] == "charm":
            return int(fields[1]) / 1e6
    raise RuntimeError("no `charm` line in the -X importtime output")


def no_op_hook(root: Path, kubeconfig: Path) -> dict[str, Any]:
    """Run the no-op hook in a fresh process; its import and hook time and peak RSS."""
    result = subprocess.run(
        [sys.executable, "-c", NO_OP_HOOK, str(root)],
        cwd=root,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(roots: list[Path], kubeconfig: Path, runs: int = RUNS) -> list[ColdCost]:
    """Each tree's cost over `runs` fresh processes, the trees interleaved run by run.

    Times are the minimum over the runs (the machine's noise only ever adds time); RSS is
    the median.
    """
    imports: list[list[float]] = [[] for _ in roots]
    hooks: list[list[dict[str, Any]]] = [[] for _ in roots]
    for _ in range(runs):
        for index, root in enumerate(roots):
            imports[index].append(import_seconds(root))
            hooks[index].append(no_op_hook(root, kubeconfig))
    return [
        ColdCost(
            import_seconds=min(imports[index]),
            hook_seconds=min(h["hook"] for h in hooks[index]),
            peak_rss_mib=statistics.median(h["rss_kib"] for h in hooks[index]) / 1024,
            client_modules=tuple(hooks[index][0].get("loaded", ())),
        )
        for index in range(len(roots))
    ]


def checkout(ref: str, into: Path) -> Path:
    """The charm's code at `ref` (src, lib, charmcraft.yaml) extracted under `into`."""
    archive = into / "before.tar"
    with archive.open("wb") as stream:
        subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "src", "lib", "charmcraft.yaml"],
            stdout=stream,
            check=True,
            timeout=120,
        )
    tree = into / "before"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def table(before_ref: str, before: ColdCost, after: ColdCost) -> str:
    """The markdown section: both trees, side by side."""
    rows = [
        ("`import charm` (`-X importtime`)", "import_seconds", "s"),
        ("no-op `update-status` hook process, wall time", "hook_seconds", "s"),
        ("no-op `update-status` hook process, peak RSS (`VmHWM`)", "peak_rss_mib", "MiB"),
    ]
    lines = [
        SECTION,
        "",
        f"Measured by `python -m tests.bench.cold` in one run: `{before_ref}` against this tree,",
        f"{RUNS} fresh processes each, interleaved: times are the minimum, RSS the median.",
        "",
        f"| measure | {before_ref} | this tree | change |",
        "|---|---:|---:|---:|",
    ]
    for label, name, unit in rows:
        old, new = getattr(before, name), getattr(after, name)
        change = (new - old) / old * 100 if old else 0.0
        precision = 3 if unit == "s" else 1
        lines.append(
            f"| {label} | {old:.{precision}f} {unit} | {new:.{precision}f} {unit} | "
            f"{change:+.0f} % |"
        )
    modules = [", ".join(cost.client_modules) or "none" for cost in (before, after)]
    lines.append(f"| client modules the no-op hook loaded | {modules[0]} | {modules[1]} | |")
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the cold-hook section of `path`, leaving the rest as it is."""
    text = path.read_text() if path.exists() else ""
    start = text.find(SECTION)
    if start >= 0:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list[str]) -> int:
    """Measure both trees, print the table and write it into the output document."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.cold", description=__doc__)
    parser.add_argument("--before", default=BEFORE, help="git ref of the 'before' tree")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmark.md"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(KUBECONFIG)
        before, after = measure([checkout(args.before, work), ROOT], kubeconfig)
    section = table(args.before, before, after)
    print(section)
    if args.output != "-":
        write_section(Path(args.output), section)
    lower = (
        after.import_seconds < before.import_seconds and after.peak_rss_mib < before.peak_rss_mib
    )
    return 0 if lower else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
