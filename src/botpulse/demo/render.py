"""Draw the ``/leaderboard`` card: a small greyscale PNG with one bar per player, stdlib only.

Real bots render such cards with Pillow in a worker thread; this does comparable
work (build the pixel rows, deflate them) with :mod:`zlib`, so the render step in
the demo's waterfall is real work, a few milliseconds long.
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["render_leaderboard_card"]

WIDTH = 640
ROW_HEIGHT = 28
MARGIN = 24


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def render_leaderboard_card(rows: list[tuple[str, int, int]]) -> bytes:
    """A PNG image of ``(name, points, games)`` rows as horizontal bars, best first."""
    height = 2 * MARGIN + ROW_HEIGHT * max(len(rows), 1)
    best = max((points for _name, points, _games in rows), default=1) or 1
    background = bytes([24]) * WIDTH
    scanlines: list[bytes] = [background] * MARGIN
    for rank, (name, points, _games) in enumerate(rows):
        bar = (WIDTH - 2 * MARGIN) * points // best
        # A shade per name stands in for the avatar; the rest is the bar and the gap.
        shade = 96 + sum(name.encode()) % 128
        line = (
            bytes([24]) * MARGIN
            + bytes([max(shade - rank * 6, 48)]) * bar
            + bytes([40]) * (WIDTH - 2 * MARGIN - bar)
            + bytes([24]) * MARGIN
        )
        scanlines.extend([line] * (ROW_HEIGHT - 4))
        scanlines.extend([background] * 4)
    if not rows:
        scanlines.extend([background] * ROW_HEIGHT)
    scanlines.extend([background] * MARGIN)
    raw = b"".join(b"\x00" + line for line in scanlines)  # filter type 0 per scanline
    header = struct.pack(">IIBBBBB", WIDTH, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )
