"""``python -m tests.bench.suite``: every bench in order, each in its own process; 1 if one failed.

The main bench (``tests.bench``) rewrites docs/benchmark.md, the latency bench
(``tests.bench.latency``) docs/benchmark-latency.md and its plot, and the cold-hook bench
(``tests.bench.cold``) its section of docs/benchmark.md, so it runs last. A bench that fails a
bar still lets the others run: each result is measured and written, and the suite says which
failed. Arguments go to the main bench (``--quick``, ``--sizes``...).
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = ("tests.bench", "tests.bench.latency", "tests.bench.cold")


def main(argv: list[str]) -> int:
    """Run every bench; print and return which failed."""
    failed = []
    for module in BENCHES:
        arguments = argv if module == "tests.bench" else []
        if subprocess.run([sys.executable, "-m", module, *arguments], check=False).returncode:
            failed.append(module)
    print(f"bench suite: {', '.join(failed) or 'no bench'} failed a bar", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
