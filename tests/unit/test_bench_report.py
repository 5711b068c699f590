"""The latency bench's report: its bars judge what was measured, its plot is a valid PNG."""

import struct
import zlib

from tests.bench.budget import BudgetRun, budget_bars, budget_table
from tests.bench.cluster import Counts
from tests.bench.latency import HUB, SEQUENTIAL, Cell, TimedPass, bars, times_table
from tests.bench.plot import HEIGHT, WIDTH, Series, legend, line_plot


def counts(requests: int, writes: int = 0, deletes: int = 0, lists: int = 2, pages: int = 0):
    return Counts(requests, pages, writes, deletes, 0, writes - deletes, lists, 0, 0)


def cells(fast: float, deletes: int = 0) -> list[Cell]:
    size = 10_000
    steady = TimedPass(0.1, counts(2))
    return [
        Cell(size, 5, HUB, steady=steady, change=TimedPass(fast, counts(size + 2, size, deletes))),
        Cell(size, 5, SEQUENTIAL, steady=steady, change=TimedPass(60.0, counts(size + 2, size))),
        Cell(size, 20, SEQUENTIAL, not_run="not run: over the budget"),
    ]


def test_the_speed_bar_passes_only_at_a_fifth_of_the_sequential_time_without_deletes():
    assert bars(cells(12.0))[0][2] == "PASS"
    assert bars(cells(12.5))[0][2] == "FAIL"
    assert bars(cells(5.0, deletes=1))[0][2] == "FAIL"


def test_the_limit_bar_counts_every_request_beyond_the_floor():
    limited = Cell(
        1_000, 5, "limited", change=TimedPass(1.0, counts(1_012, 1_000)), extra={"rejected": 10}
    )
    limited.extra["retries"] = 10
    assert any(v == "PASS" for b, _, v in bars([*cells(5.0), limited]) if "429" in b)
    limited.change = TimedPass(1.0, counts(1_013, 1_000))
    assert any(v == "FAIL" for b, _, v in bars([*cells(5.0), limited]) if "429" in b)


def budgeted(passes: list[float], gaps: list[float], writes: int = 1_000) -> BudgetRun:
    run = BudgetRun(1_000, 20, 10.0, passes, gaps, sum(passes) + sum(gaps), converged=True)
    run.counts = counts(writes + 2 * len(passes), writes)
    return run


def test_the_budget_bar_judges_overshoot_follow_up_delay_and_writes():
    assert budget_bars(budgeted([10.1, 10.05, 3.0], [5.0, 5.2]))[0][2] == "PASS"
    assert budget_bars(budgeted([26.0, 3.0], [5.0]))[0][2] == "FAIL"  # 16 s past: > 15 s
    assert budget_bars(budgeted([10.1, 3.0], [60.0]))[0][2] == "FAIL"  # update-status pace
    assert budget_bars(budgeted([10.1, 3.0], [5.0], writes=1_001))[0][2] == "FAIL"
    assert "| 2 | 10.05 s | 0.050 s | 5.00 s |" in budget_table(budgeted([10.1, 10.05], [5.0]))


def test_cells_not_run_say_why_instead_of_a_number():
    assert "not run: over the budget" in times_table(cells(5.0))


def test_the_plot_is_a_png_of_the_declared_size():
    series = [Series("hub 10,000", [(0, 1.0), (5, 2.0), (20, 4.0)])]
    png = line_plot(series)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    length, kind = struct.unpack(">I4s", png[8:16])
    assert kind == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (WIDTH, HEIGHT)
    start = png.index(b"IDAT")
    (size,) = struct.unpack(">I", png[start - 4 : start])
    rows = zlib.decompress(png[start + 4 : start + 4 + size])
    assert len(rows) == HEIGHT * (1 + 3 * WIDTH)
    assert "blue: hub 10,000" in legend(series, "latency", "seconds")
