"""Run one hub pass in a process of its own and print its memory use as JSON.

The bench's test API server holds every object in the parent process, so the hub's memory is
measured here, in a child that holds only the hub::

    python -m tests.bench.worker --kubeconfig K --store S --property spark.a=1 [--tracemalloc]

Printed keys: ``peak_rss_mb`` (``VmHWM``: the peak RSS of this process's own address space),
``maxrss_mb`` (``ru_maxrss``), ``baseline_mb`` (RSS after imports, before the pass),
``tracemalloc_peak_mb`` (peak of Python allocations during the pass, when ``--tracemalloc``),
``seconds``, ``state``, ``message``, ``writes``.

On Linux ``ru_maxrss`` is carried across ``fork`` and ``execve``: a child started by a parent
that once held 300 MB reports at least 300 MB, whatever it uses itself. The bench's parent holds
the whole test cluster, so ``ru_maxrss`` here measures the parent; ``VmHWM`` is the hub's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

MB = 1024 * 1024


def status_mb(field: str) -> float:
    """A `/proc/self/status` memory field (`VmRSS`, `VmHWM`) in MiB; 0 when unavailable."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The worker's command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the test server")
    parser.add_argument("--store", required=True, help="the hub's SQLite store")
    parser.add_argument(
        "--property", action="append", default=[], help="KEY=VALUE, repeatable: desired options"
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace Python allocations (slower)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one leader pass and print the measurements."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ["KUBECONFIG"] = args.kubeconfig
    from core.config import Scope
    from hub import Hub
    from k8s.gateway import KubeGateway
    from store import Store
    from tests.cluster.helpers import OWNER, options

    properties = dict(item.split("=", 1) for item in args.property)
    results = options(**properties)
    hub = Hub(Store.open(args.store), KubeGateway(), OWNER)
    baseline = status_mb("VmRSS")
    if args.tracemalloc:
        tracemalloc.start()
    start = time.perf_counter()
    report = hub.run_pass(results, Scope(), trigger="bench", leader=True)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / MB if args.tracemalloc else None
    tracemalloc.stop()
    hub.close()
    peak_rss = status_mb("VmHWM")
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "peak_rss_mb": round(peak_rss, 1),
                "maxrss_mb": round(maxrss_kb / 1024, 1),
                "baseline_mb": round(baseline, 1),
                "tracemalloc_peak_mb": round(peak, 1) if peak is not None else None,
                "seconds": round(seconds, 3),
                "state": report.state.value,
                "message": report.message,
                "writes": report.outcome.writes if report.outcome else 0,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
