"""Process resources sampled every few seconds as gauges: CPU, memory, threads, files, tasks, GC.

Gauges (``botpulse report`` shows min/avg/max and the worst minute of each):

- ``process.cpu_percent``: CPU time used since the last sample over wall time (100 = one core)
- ``process.rss_mb``: resident memory
- ``process.threads``, ``process.open_fds``
- ``asyncio.tasks``: tasks alive on the monitored loop (counted on the loop itself)
- ``gc.collections``, ``gc.pause_ms``, ``gc.max_pause_ms``: collections and the time
  they paused the process since the last sample (from ``gc.callbacks``)

On Linux the ``/proc`` files give these numbers without any import; elsewhere
``psutil`` is used when installed (``pip install 'botpulse[runtime]'``), and without it
only CPU and thread counts are recorded.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from typing import Any

from .. import _capture

__all__ = ["GcTracker", "ResourceSampler", "proc_reader", "psutil_reader"]

_MB = 1024 * 1024


class GcTracker:
    """Times garbage collections with ``gc.callbacks``; the sampler reads and resets the totals."""

    def __init__(self) -> None:
        self._start = 0
        self.collections = 0
        self.pause_ns = 0
        self.max_pause_ns = 0
        self._installed = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter_ns()
        elif self._start:
            pause = time.perf_counter_ns() - self._start
            self._start = 0
            self.collections += 1
            self.pause_ns += pause
            self.max_pause_ns = max(self.max_pause_ns, pause)

    def install(self) -> None:
        """Start timing collections."""
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        """Stop timing collections."""
        if self._installed:
            with contextlib.suppress(ValueError):
                gc.callbacks.remove(self._callback)
            self._installed = False

    def take(self) -> tuple[int, int, int]:
        """``(collections, pause_ns, max_pause_ns)`` since the last call."""
        taken = (self.collections, self.pause_ns, self.max_pause_ns)
        self.collections = self.pause_ns = self.max_pause_ns = 0
        return taken


def psutil_reader() -> Any:
    """A reader backed by psutil, or ``None`` when psutil is not installed."""
    try:
        import psutil  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return None
    process = psutil.Process()

    def read() -> dict[str, float]:
        values: dict[str, float] = {}
        with process.oneshot():
            values["rss_mb"] = process.memory_info().rss / _MB
            values["threads"] = process.num_threads()
            if hasattr(process, "num_fds"):
                values["open_fds"] = process.num_fds()
        return values

    return read


def proc_reader() -> Any:
    """A reader from Linux ``/proc/self`` (no third-party package), or ``None`` elsewhere."""
    if not os.path.exists("/proc/self/status"):
        return None
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def read() -> dict[str, float]:
        values: dict[str, float] = {}
        with open("/proc/self/statm", encoding="ascii") as statm:
            values["rss_mb"] = int(statm.read().split()[1]) * page / _MB
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Threads:"):
                    values["threads"] = int(line.split()[1])
                    break
        values["open_fds"] = len(os.listdir("/proc/self/fd"))
        return values

    return read


class ResourceSampler:
    """Records the process gauges each time :meth:`sample` is called (by the runtime thread)."""

    def __init__(self, *, use_psutil: bool = True) -> None:
        # /proc first: the same numbers as psutil (tested), without importing it.
        reader = proc_reader()
        self.backend = "proc"
        if reader is None and use_psutil:
            reader = psutil_reader()
            self.backend = "psutil"
        if reader is None:
            self.backend = "stdlib"
        self._read = reader
        self.gc = GcTracker()
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def start(self) -> None:
        """Begin timing garbage collections."""
        self.gc.install()
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def stop(self) -> None:
        """Stop timing garbage collections."""
        self.gc.uninstall()

    def read(self) -> dict[str, float]:
        """The current values, without recording them."""
        cpu, wall = time.process_time(), time.monotonic()
        values: dict[str, float] = {}
        elapsed = wall - self._wall
        if elapsed > 0:
            values["cpu_percent"] = max(cpu - self._cpu, 0.0) / elapsed * 100
        self._cpu, self._wall = cpu, wall
        if self._read is not None:
            values.update(self._read())
        else:
            values["threads"] = threading.active_count()
        return values

    def sample(self) -> dict[str, float]:
        """Read and record every gauge; return what was recorded."""
        values = self.read()
        for key, value in values.items():
            _capture.gauge(f"process.{key}", value)
        collections, pause_ns, max_pause_ns = self.gc.take()
        _capture.gauge("gc.collections", collections)
        _capture.gauge("gc.pause_ms", pause_ns / 1e6)
        _capture.gauge("gc.max_pause_ms", max_pause_ns / 1e6)
        values.update(
            {
                "gc.collections": collections,
                "gc.pause_ms": pause_ns / 1e6,
                "gc.max_pause_ms": max_pause_ns / 1e6,
            }
        )
        return values
