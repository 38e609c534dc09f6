"""The ``botpulse`` command line: argument parsing and rendering only, reading via the store API.

Commands: ``botpulse report`` (latency per operation, slowest flows as waterfalls;
table, markdown, json or html) and ``botpulse demo`` (a simulated bot, then its
report). Also runnable as ``python -m botpulse``.
"""

from __future__ import annotations

from ._app import main

__all__ = ["main"]
