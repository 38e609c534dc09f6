"""The clock: one injectable source of monotonic and wall time.

Durations use the monotonic clock (``perf_counter_ns``), which never goes backwards
across NTP steps; the pipeline maps monotonic readings to wall time with an anchor
read from both clocks, so per-minute rollups land in the right minute.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """What botpulse needs from a clock; pass your own to ``init(clock=...)`` in tests."""

    def perf_counter_ns(self) -> int:
        """Monotonic nanoseconds, used to time operations."""
        ...

    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the epoch, used to place operations in minutes."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    perf_counter_ns = staticmethod(time.perf_counter_ns)
    time_ns = staticmethod(time.time_ns)


class ManualClock:
    """A clock that moves only when told to, for deterministic tests.

    Example::

        clock = ManualClock(wall_ns=1_700_000_000 * 10**9)
        botpulse.init(store="memory://", clock=clock)
        with botpulse.measure("step"):
            clock.advance(0.25)          # the step takes exactly 250 ms
    """

    def __init__(self, wall_ns: int = 1_700_000_000_000_000_000, perf_ns: int = 10**12) -> None:
        self._wall_ns = wall_ns
        self._perf_ns = perf_ns

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        step = round(seconds * 1e9)
        self._wall_ns += step
        self._perf_ns += step

    def perf_counter_ns(self) -> int:
        """Monotonic nanoseconds."""
        return self._perf_ns

    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the epoch."""
        return self._wall_ns
