"""Print docs/reliability.md's table from the counts the fuzz suite wrote.

Usage: `FUZZ_COUNTS=/tmp/counts.json pytest tests/fuzz && python -m tests.fuzz.report
/tmp/counts.json` (default: `tests.fuzz.counts.COUNTS_FILE`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.fuzz.counts import COUNTS_FILE

COLUMNS = (
    ("inputs", "inputs tried"),
    ("faults", "faults injected"),
    ("hooks", "hooks run"),
    ("crashes", "crashes"),
    ("secrets_lost", "Secrets lost"),
    ("foreign_touched", "foreign objects touched"),
    ("credentials_found", "credentials found in logs / outputs / store"),
)
MEASURED_ELSEWHERE = (
    "spark-service-account requests",
    "action params",
    "hook time under outage",
)
"""Rows other suites measure (filled in from their own counts)."""
PENDING = "*(measured elsewhere; lead fills in)*"


def table(counts: dict[str, dict[str, int]]) -> str:
    """The markdown table: one row per surface, a total, and the rows measured elsewhere."""
    header = "| surface | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [header, "|---" * (len(COLUMNS) + 1) + "|"]
    for surface in sorted(counts):
        row = counts[surface]
        lines.append(f"| {surface} | " + " | ".join(str(row[key]) for key, _ in COLUMNS) + " |")
    totals = [sum(row[key] for row in counts.values()) for key, _ in COLUMNS]
    lines.append("| **total** | " + " | ".join(f"**{total}**" for total in totals) + " |")
    for surface in MEASURED_ELSEWHERE:
        lines.append(f"| {surface} | " + " | ".join(PENDING for _ in COLUMNS) + " |")
    return "\n".join(lines)


def statuses(counts: dict[str, dict]) -> str:
    """How the fuzzed hooks ended, per surface (refused input ends `blocked`)."""
    names = sorted({name for row in counts.values() for name in row.get("statuses", {})})
    lines = ["| surface | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for surface in sorted(counts):
        ended = counts[surface].get("statuses", {})
        lines.append(f"| {surface} | " + " | ".join(str(ended.get(n, 0)) for n in names) + " |")
    return "\n".join(lines)


def main() -> None:
    """Print the table for the counts file named on the command line (or the default)."""
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else COUNTS_FILE
    counts = json.loads(path.read_text())
    print(table(counts))
    print()
    print(statuses(counts))


if __name__ == "__main__":
    main()
