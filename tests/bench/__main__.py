"""``python -m tests.bench``: run the bench scenarios, print the table, write docs/benchmark.md.

Options: ``--sizes 100,1000`` (default 100,1000,10000), ``--quick`` (100,1000), ``--output``
(default ``docs/benchmark.md``; ``-`` for none), ``--profile DIR`` (cProfile stats of every
in-process hub pass), ``--no-tracemalloc`` (skip the traced memory run). Exits 1 when a bar fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.report import FAIL, bars, bars_table, document, results_table, seconds
from tests.bench.scenarios import ROOT, Profiler, SizeResult, run_size

DEFAULT_SIZES = (100, 1_000, 10_000)
QUICK_SIZES = (100, 1_000)


def parse_sizes(text: str) -> tuple[int, ...]:
    """Parse `100,1000` (underscores and thousands commas inside numbers are not accepted)."""
    try:
        sizes = tuple(int(part.strip().replace("_", "")) for part in text.split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 100,1000: {text!r}") from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"expected positive sizes: {text!r}")
    return sizes


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The bench's command line."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--sizes", type=parse_sizes, default=DEFAULT_SIZES)
    parser.add_argument("--quick", action="store_true", help="only 100 and 1,000 accounts")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmark.md"))
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    parser.add_argument("--no-tracemalloc", dest="trace", action="store_false")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = QUICK_SIZES
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every size, report, and return the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    results: list[SizeResult] = []
    for size in sorted(args.sizes):
        print(f"bench: {size:,} accounts...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix=f"bench-{size}-") as workdir:
            result = run_size(size, Path(workdir), Profiler(args.profile), args.trace)
        print(f"bench: {size:,} accounts done in {seconds(result.seconds)} s", file=sys.stderr)
        results.append(result)
    total = time.perf_counter() - started
    judged = bars(results)
    print(results_table(results))
    print()
    print(bars_table(judged))
    print(f"\ntotal run time: {seconds(total)} s")
    if args.output != "-":
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document(results, judged, total))
        print(f"wrote {output}", file=sys.stderr)
    return 1 if any(bar.verdict == FAIL for bar in judged) else 0


if __name__ == "__main__":
    sys.exit(main())
