"""A small line plot written as a PNG with the standard library (zlib), for the bench report.

No plotting package is a dependency of the project; the plot needs only axes, grid lines and
coloured polylines, so it is drawn on an RGB canvas and encoded as PNG here. Text is not drawn:
the report's markdown gives the axes' ranges and the legend (`legend`).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, MARGIN = 640, 400, 40
COLOURS = (
    ("blue", (31, 119, 180)),
    ("orange", (255, 127, 14)),
    ("green", (44, 160, 44)),
    ("red", (214, 39, 40)),
    ("purple", (148, 103, 189)),
    ("brown", (140, 86, 75)),
)


@dataclass(frozen=True)
class Series:
    """One line: its label and (x, y) points."""

    label: str
    points: Sequence[tuple[float, float]]


class _Canvas:
    def __init__(self) -> None:
        self.pixels = bytearray(b"\xff" * WIDTH * HEIGHT * 3)

    def dot(self, x: int, y: int, colour: tuple[int, int, int], size: int = 1) -> None:
        for dx in range(-size // 2, size // 2 + 1):
            for dy in range(-size // 2, size // 2 + 1):
                px, py = x + dx, y + dy
                if 0 <= px < WIDTH and 0 <= py < HEIGHT:
                    at = (py * WIDTH + px) * 3
                    self.pixels[at : at + 3] = bytes(colour)

    def line(self, a: tuple[int, int], b: tuple[int, int], colour, size: int = 1) -> None:
        steps = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)
        for step in range(steps + 1):
            x = a[0] + (b[0] - a[0]) * step // steps
            y = a[1] + (b[1] - a[1]) * step // steps
            self.dot(x, y, colour, size)

    def png(self) -> bytes:
        rows = b"".join(
            b"\x00" + bytes(self.pixels[y * WIDTH * 3 : (y + 1) * WIDTH * 3])
            for y in range(HEIGHT)
        )
        header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows, 9))
            + _chunk(b"IEND", b"")
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def line_plot(series: Sequence[Series], x_label: str = "", y_label: str = "") -> bytes:
    """The PNG of `series` on linear axes from 0 to their maxima (labels go in `legend`)."""
    del x_label, y_label  # not drawn: see the module docstring
    canvas = _Canvas()
    x_max = max((x for s in series for x, _ in s.points), default=1.0) or 1.0
    y_max = max((y for s in series for _, y in s.points), default=1.0) or 1.0
    grey, black = (220, 220, 220), (0, 0, 0)
    for tick in range(1, 5):
        y = HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * tick // 4
        canvas.line((MARGIN, y), (WIDTH - MARGIN, y), grey)
    canvas.line((MARGIN, HEIGHT - MARGIN), (WIDTH - MARGIN, HEIGHT - MARGIN), black, 2)
    canvas.line((MARGIN, MARGIN), (MARGIN, HEIGHT - MARGIN), black, 2)

    def at(x: float, y: float) -> tuple[int, int]:
        return (
            MARGIN + round((WIDTH - 2 * MARGIN) * x / x_max),
            HEIGHT - MARGIN - round((HEIGHT - 2 * MARGIN) * y / y_max),
        )

    for index, one in enumerate(series):
        colour = COLOURS[index % len(COLOURS)][1]
        points = [at(x, y) for x, y in sorted(one.points)]
        for a, b in zip(points, points[1:], strict=False):
            canvas.line(a, b, colour, 3)
        for point in points:
            canvas.dot(*point, colour, 7)
    return canvas.png()


def legend(series: Sequence[Series], x_label: str, y_label: str) -> str:
    """The plot's legend and axes, in markdown (the PNG carries no text)."""
    x_max = max((x for s in series for x, _ in s.points), default=0.0)
    y_max = max((y for s in series for _, y in s.points), default=0.0)
    lines = [
        f"x: {x_label}, 0 to {x_max:g}; y: {y_label}, 0 to {y_max:.1f} (grid every quarter).",
        "",
    ]
    lines += [f"- {COLOURS[i % len(COLOURS)][0]}: {s.label}" for i, s in enumerate(series)]
    return "\n".join(lines)
