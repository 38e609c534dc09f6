"""Helpers for testing your own bot's instrumentation: record into memory, then look.

Example::

    from botpulse.testing import capture

    def test_leaderboard_is_measured():
        with capture() as recorded:
            run_leaderboard_command()
        assert recorded.count("leaderboard", kind="flow") == 1
        assert [c.name for c in recorded.traces("leaderboard")[0].children] == ["db.load_rows"]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import _config
from ._clock import Clock
from ._model import SeriesKey, TraceSample
from .store.base import SeriesFilter
from .store.memory import MemoryStore

__all__ = ["Captured", "capture"]

_ALL_TIME = (0.0, 2**40)


@dataclass
class Captured:
    """What was recorded inside :func:`capture`; each method flushes first."""

    store: MemoryStore

    def flush(self) -> None:
        """Write everything recorded so far (trace samples of the current minute included)."""
        running = _config._running
        if running is not None and running.store is self.store:
            running.pipeline.drain()
            running.pipeline.flush(final=True)

    def count(self, name: str, *, kind: str | None = None, status: str | None = None) -> int:
        """How many operations named ``name`` (a glob) were recorded."""
        self.flush()
        summary = self.store.summarize(
            *_ALL_TIME, SeriesFilter(name=name, kind=kind), now=_ALL_TIME[1]
        )
        return sum(
            rollup.count
            for (_service, _name, _kind, rollup_status), rollup in summary.rollups.items()
            if status is None or rollup_status == status
        )

    def names(self) -> list[SeriesKey]:
        """Every series recorded (service, instance, name, kind, status)."""
        self.flush()
        return self.store.series()

    def traces(self, name: str | None = None) -> list[TraceSample]:
        """Sampled flow traces (slowest first), optionally only flows matching ``name``."""
        self.flush()
        return self.store.read_traces(*_ALL_TIME, SeriesFilter(name=name), limit=10_000)


@contextmanager
def capture(*, service: str = "test", clock: Clock | None = None) -> Iterator[Captured]:
    """Initialise botpulse on a fresh in-memory store for the duration of the block.

    Every flow is kept as a trace sample (up to 100 per minute and name), so tests can
    look at each one. botpulse is shut down when the block ends.
    """
    store = MemoryStore()
    _config.init(
        store=store, service=service, instance="test", flush_interval=3600, clock=clock,
        trace_slowest=100, trace_errors=100, trace_random=0,
    )  # fmt: skip
    try:
        yield Captured(store)
    finally:
        _config.shutdown()
