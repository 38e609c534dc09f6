"""``instrument_pool()``: size, in use, waiting and acquire times of connection pools and executors.

Supported: asyncpg pools, psycopg_pool pools (sync and async), SQLAlchemy pools (an
``Engine``, ``AsyncEngine`` or ``Pool``), ``concurrent.futures`` thread and process
executors, and botpulse's own :class:`~botpulse.ConcurrencyLimiter`. Per pool
``name``, the runtime thread records the gauges ``pool.<name>.size``,
``pool.<name>.in_use`` and ``pool.<name>.waiting`` every second; each acquisition is
an operation ``pool.<name>.acquire`` (kind ``pool``) in the flow that waited for it
(for a process executor, each piece of work is an operation ``<name>.<function>``
of kind ``executor`` in the flow that submitted it).

When utilisation stays at or above 90 % for ``saturation_after`` seconds (default a
minute), a ``pool_saturation`` finding suggests a size from Little's law: the mean
number of requests in the system, ``L = λ × (W + Wq)`` (arrival rate × (mean hold +
mean wait)), plus 25 % headroom; the numbers behind it are in the finding's details.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import _capture, _findings
from .._diagnostics import internal_error
from ..errors import ConfigurationError

__all__ = ["PoolMonitor", "instrument_pool", "pools", "sample_pools"]

_now = time.perf_counter_ns
_HEADROOM = 1.25
_SATURATED = 0.9


class PoolMonitor:
    """What botpulse tracks for one instrumented pool (returned by :func:`instrument_pool`).

    ``attempts``, ``acquired``, ``wait_ns`` and ``hold_ns`` are running totals since
    instrumentation; :meth:`snapshot` gives the current size, in-use and waiting counts.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        size: Callable[[], int],
        in_use: Callable[[], int],
        waiting: Callable[[], int],
        saturation_after: float = 60.0,
        sample_interval: float = 1.0,
        prefix: str = "pool",
    ) -> None:
        self.name = name
        self.kind = kind
        self.prefix = f"{prefix}.{name}."
        self._size, self._in_use, self._waiting = size, in_use, waiting
        self.saturation_after = saturation_after
        self.sample_interval = sample_interval
        self.operation = f"{prefix}.{name}.acquire"
        self._lock = threading.Lock()
        self.attempts = 0
        self.acquired = 0
        self.released = 0
        self.wait_ns = 0
        self.hold_ns = 0
        self.acquiring = 0
        self.peak_in_use = 0
        self.peak_waiting = 0
        self.saturation_reports = 0
        self._next_sample = 0.0
        self._since: tuple[float, int, int, int, int] | None = None
        self._window_peak = (0, 0)
        self._in_system = [0, 0]  # sum of (in use + waiting) over the window's samples, samples
        # Filled by adapters whose library keeps its own totals (psycopg_pool).
        self.totals: Callable[[], tuple[int, int, int]] | None = None

    # -- hooks called by the adapters --------------------------------------------

    def start_acquire(self) -> int:
        """An acquisition begins; returns its start time."""
        with self._lock:
            self.attempts += 1
            self.acquiring += 1
        return _now()

    def end_acquire(self, started: int, error: BaseException | None = None) -> int:
        """An acquisition ended (``error`` if it failed); records the operation."""
        ended = _now()
        with self._lock:
            self.acquiring -= 1
            if error is None:
                self.acquired += 1
                self.wait_ns += ended - started
        _capture.record_operation(
            self.operation, "pool", started, ended, None if error is None else type(error)
        )
        return ended

    def release(self, acquired_at: int) -> None:
        """A connection (worker, slot) acquired at ``acquired_at`` went back to the pool."""
        held = _now() - acquired_at
        with self._lock:
            self.released += 1
            self.hold_ns += max(held, 0)

    # -- sampling (runtime thread) -----------------------------------------------

    def snapshot(self) -> tuple[int, int, int]:
        """``(size, in_use, waiting)`` right now."""
        return int(self._size()), int(self._in_use()), int(self._waiting())

    def _counters(self) -> tuple[int, int, int]:
        if self.totals is not None:
            return self.totals()
        with self._lock:
            return self.attempts, self.hold_ns, self.wait_ns

    def sample(self, now: float) -> None:
        """Record the gauges and check for saturation (called by the runtime thread)."""
        if now < self._next_sample:
            return
        self._next_sample = now + self.sample_interval
        size, in_use, waiting = self.snapshot()
        prefix = self.prefix
        _capture.gauge(prefix + "size", size)
        _capture.gauge(prefix + "in_use", in_use)
        _capture.gauge(prefix + "waiting", waiting)
        self.peak_in_use = max(self.peak_in_use, in_use)
        self.peak_waiting = max(self.peak_waiting, waiting)
        saturated = size > 0 and in_use / size >= _SATURATED
        if not saturated:
            self._since = None
            return
        if self._since is None:
            self._since = (now, *self._counters(), 0)
            self._window_peak = (in_use, waiting)
            self._in_system = [0, 0]
            return
        peak_in_use, peak_waiting = self._window_peak
        self._window_peak = (max(peak_in_use, in_use), max(peak_waiting, waiting))
        self._in_system[0] += in_use + waiting
        self._in_system[1] += 1
        if now - self._since[0] >= self.saturation_after:
            self._report_saturation(now, size)

    def _report_saturation(self, now: float, size: int) -> None:
        assert self._since is not None
        since, attempts0, hold0, wait0, _ = self._since
        attempts, hold, wait = self._counters()
        self._since = (now, attempts, hold, wait, 0)
        elapsed = max(now - since, 1e-9)
        count = max(attempts - attempts0, 0)
        rate = count / elapsed
        mean_hold = (hold - hold0) / count / 1e9 if count else 0.0
        mean_wait = (wait - wait0) / count / 1e9 if count else 0.0
        # Little's law: L = λ (W + Wq), the requests in the system. Under saturation the
        # completed acquisitions can under-state it (a releasing thread that re-acquires
        # at once starves the queue), so L is also measured directly from the samples.
        little = rate * (mean_hold + mean_wait)
        total, samples = self._in_system
        observed = total / samples if samples else 0.0
        self._in_system = [0, 0]
        demand = max(little, observed)
        suggested = max(size + 1, math.ceil(demand * _HEADROOM))
        peak_in_use, peak_waiting = self._window_peak
        self.saturation_reports += 1
        _findings.report_finding(
            "pool_saturation",
            self.name,
            total_ns=int(elapsed * 1e9),
            max_ns=int(mean_wait * 1e9),
            at_ns=time.time_ns(),
            source=self.kind,
            details={
                "pool": self.name,
                "kind": self.kind,
                "size": size,
                "suggested_size": suggested,
                "window_s": round(elapsed, 3),
                "arrival_rate_per_s": round(rate, 3),
                "mean_hold_ms": round(mean_hold * 1e3, 3),
                "mean_wait_ms": round(mean_wait * 1e3, 3),
                "littles_law_demand": round(demand, 3),
                "lambda_w_demand": round(little, 3),
                "observed_in_system": round(observed, 3),
                "headroom": _HEADROOM,
                "peak_in_use": peak_in_use,
                "peak_waiting": peak_waiting,
                "advice": (
                    f"Pool '{self.name}' was at least 90% in use for {elapsed:.0f} s. "
                    f"Requests arrive at {rate:.1f}/s and hold a connection "
                    f"{mean_hold * 1e3:.1f} ms (+{mean_wait * 1e3:.1f} ms waiting): "
                    f"about {demand:.1f} requests are in the system at once (Little's law, "
                    f"L = λ × (W + Wq)); size {size} → {suggested} "
                    "(with 25% headroom), or hold connections for less time."
                ),
            },
        )


_registry: dict[str, PoolMonitor] = {}
_registry_lock = threading.Lock()


def pools() -> list[PoolMonitor]:
    """The instrumented pools."""
    return list(_registry.values())


def sample_pools(now: float) -> None:
    """Sample every pool whose interval is due (runtime thread)."""
    for monitor in pools():
        try:
            monitor.sample(now)
        except Exception as exc:  # noqa: BLE001 - a pool that broke must not stop the others
            internal_error("runtime.pools", exc)


def register(monitor: PoolMonitor) -> PoolMonitor:
    """Track ``monitor`` (replacing one of the same name)."""
    with _registry_lock:
        _registry[monitor.name] = monitor
    return monitor


def unregister(name: str) -> None:
    """Stop tracking the pool ``name``."""
    with _registry_lock:
        _registry.pop(name, None)


# -- adapters ------------------------------------------------------------------------


def _thread_executor(
    executor: concurrent.futures.ThreadPoolExecutor, name: str, **options: Any
) -> PoolMonitor:
    state = {"queued": 0, "running": 0}
    monitor = PoolMonitor(
        name,
        "thread_executor",
        size=lambda: executor._max_workers,
        in_use=lambda: state["running"],
        waiting=lambda: state["queued"],
        **options,
    )
    original = executor.submit

    def submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        submitted = monitor.start_acquire()
        with monitor._lock:
            state["queued"] += 1
        context = contextvars.copy_context()

        def run() -> Any:
            with monitor._lock:
                state["queued"] -= 1
                state["running"] += 1
            try:
                started = context.run(monitor.end_acquire, submitted)
            except Exception as exc:  # noqa: BLE001
                internal_error("runtime.executor", exc)
                started = _now()
            try:
                return fn(*args, **kwargs)
            finally:
                with monitor._lock:
                    state["running"] -= 1
                monitor.release(started)

        return original(run)

    executor.submit = submit  # type: ignore[method-assign]
    return monitor


def _process_executor(
    executor: concurrent.futures.ProcessPoolExecutor, name: str, **options: Any
) -> PoolMonitor:
    pending: set[concurrent.futures.Future[Any]] = set()
    workers = executor._max_workers  # type: ignore[attr-defined]
    monitor = PoolMonitor(
        name,
        "process_executor",
        size=lambda: workers,
        in_use=lambda: min(len(pending), workers),
        waiting=lambda: max(len(pending) - workers, 0),
        **options,
    )
    original = executor.submit

    def submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        started = monitor.start_acquire()
        future = original(fn, *args, **kwargs)
        context = contextvars.copy_context()
        label = f"{name}.{getattr(fn, '__qualname__', type(fn).__name__)}"
        pending.add(future)

        def done(fut: concurrent.futures.Future[Any]) -> None:
            try:
                pending.discard(fut)
                ended = _now()
                with monitor._lock:
                    monitor.acquiring -= 1
                    monitor.acquired += 1
                monitor.release(started)
                error: Any = None
                if fut.cancelled():
                    error = asyncio.CancelledError
                elif fut.exception() is not None:
                    error = type(fut.exception())
                context.run(_capture.record_operation, label, "executor", started, ended, error)
            except Exception as exc:  # noqa: BLE001
                internal_error("runtime.executor", exc)

        future.add_done_callback(done)
        return future

    executor.submit = submit  # type: ignore[method-assign]
    return monitor


def _sqlalchemy(pool: Any, name: str, **options: Any) -> PoolMonitor:
    from sqlalchemy import event

    def size() -> int:
        base = int(pool.size()) if callable(getattr(pool, "size", None)) else 0
        overflow = getattr(pool, "_max_overflow", 0)
        return base + max(int(overflow), 0)

    monitor = PoolMonitor(
        name,
        "sqlalchemy",
        size=size,
        in_use=lambda: int(pool.checkedout()) if hasattr(pool, "checkedout") else 0,
        waiting=lambda: monitor.acquiring,
        **options,
    )
    original = pool._do_get

    def _do_get() -> Any:
        started = monitor.start_acquire()
        try:
            record = original()
        except BaseException as exc:
            monitor.end_acquire(started, exc)
            raise
        monitor.end_acquire(started)
        return record

    pool._do_get = _do_get

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        record.info["botpulse_acquired"] = _now()

    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        acquired = record.info.pop("botpulse_acquired", None) if record is not None else None
        if acquired is not None:
            monitor.release(acquired)

    event.listen(pool, "checkout", on_checkout)
    event.listen(pool, "checkin", on_checkin)
    return monitor


_timed_queue_classes: dict[type[Any], type[Any]] = {}


def _timed_queue_class(base: type[Any]) -> type[Any]:
    cls = _timed_queue_classes.get(base)
    if cls is not None:
        return cls

    async def get(self: Any) -> Any:
        monitor: PoolMonitor = self._botpulse_monitor
        started = monitor.start_acquire()
        try:
            item = await base.get(self)
        except BaseException as exc:
            monitor.end_acquire(started, exc)
            raise
        self._botpulse_held[id(item)] = monitor.end_acquire(started)
        return item

    def put_nowait(self: Any, item: Any) -> None:
        acquired = self._botpulse_held.pop(id(item), None)
        if acquired is not None:
            self._botpulse_monitor.release(acquired)
        base.put_nowait(self, item)

    cls = type(f"Timed{base.__name__}", (base,), {"get": get, "put_nowait": put_nowait})
    _timed_queue_classes[base] = cls
    return cls


def _asyncpg(pool: Any, name: str, **options: Any) -> PoolMonitor:
    def in_use() -> int:
        return sum(1 for holder in pool._holders if holder._in_use is not None)

    monitor = PoolMonitor(
        name,
        "asyncpg",
        size=pool.get_max_size,
        in_use=in_use,
        waiting=lambda: monitor.acquiring,
        **options,
    )
    queue = pool._queue
    if queue is None:
        raise ConfigurationError(
            f"asyncpg pool {name!r} is not initialised yet: instrument it after "
            "`pool = await asyncpg.create_pool(...)`"
        )
    queue._botpulse_monitor = monitor
    queue._botpulse_held = {}
    queue.__class__ = _timed_queue_class(type(queue))
    return monitor


def _psycopg(pool: Any, name: str, **options: Any) -> PoolMonitor:
    def stats() -> dict[str, int]:
        return dict(pool.get_stats())

    def in_use() -> int:
        s = stats()
        return s.get("pool_size", 0) - s.get("pool_available", 0)

    monitor = PoolMonitor(
        name,
        "psycopg_pool",
        size=lambda: pool.max_size,
        in_use=in_use,
        waiting=lambda: stats().get("requests_waiting", 0),
        **options,
    )

    def totals() -> tuple[int, int, int]:
        s = stats()
        return (
            s.get("requests_num", 0),
            s.get("usage_ms", 0) * 1_000_000,
            s.get("requests_wait_ms", 0) * 1_000_000,
        )

    monitor.totals = totals
    original = pool.getconn
    if asyncio.iscoroutinefunction(original):

        async def agetconn(*args: Any, **kwargs: Any) -> Any:
            started = monitor.start_acquire()
            try:
                conn = await original(*args, **kwargs)
            except BaseException as exc:
                monitor.end_acquire(started, exc)
                raise
            monitor.end_acquire(started)
            return conn

        pool.getconn = agetconn
    else:

        def getconn(*args: Any, **kwargs: Any) -> Any:
            started = monitor.start_acquire()
            try:
                conn = original(*args, **kwargs)
            except BaseException as exc:
                monitor.end_acquire(started, exc)
                raise
            monitor.end_acquire(started)
            return conn

        pool.getconn = getconn
    return monitor


def instrument_pool(
    pool: Any,
    name: str | None = None,
    *,
    saturation_after: float = 60.0,
    sample_interval: float = 1.0,
) -> PoolMonitor:
    """Track a connection pool or executor: size, in use, waiting, acquire times, saturation.

    ``pool`` is an asyncpg ``Pool`` (after ``await create_pool()``), a psycopg_pool
    ``ConnectionPool``/``AsyncConnectionPool``, a SQLAlchemy ``Engine``/``AsyncEngine``/
    ``Pool``, or a ``ThreadPoolExecutor``/``ProcessPoolExecutor``. ``name`` labels its
    gauges (``pool.<name>.in_use``) and operations (default: the pool's class name).
    Works before or after ``init()``; raises :class:`~botpulse.ConfigurationError` for
    anything else.

    Example::

        pool = await asyncpg.create_pool(dsn, max_size=10)
        botpulse.instrument_pool(pool, name="db")

        executor = ThreadPoolExecutor(max_workers=20)
        botpulse.instrument_pool(executor, name="colorizer")
    """
    from .limits import ConcurrencyLimiter

    label = name if name is not None else type(pool).__name__
    if not isinstance(label, str) or not label.strip() or len(label) > 100:
        raise ConfigurationError(f"name={name!r} must be a non-empty string of at most 100 chars")
    for setting, value in (
        ("saturation_after", saturation_after),
        ("sample_interval", sample_interval),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86400:
            raise ConfigurationError(
                f"{setting}={value!r} must be a number of seconds in (0, 86400]"
            )
    options = {
        "saturation_after": float(saturation_after),
        "sample_interval": float(sample_interval),
    }
    label = label.strip()
    module = type(pool).__module__
    target = pool
    if hasattr(pool, "sync_engine"):  # SQLAlchemy AsyncEngine
        target = pool.sync_engine
    if (
        module.startswith("sqlalchemy")
        and hasattr(target, "pool")
        and not hasattr(target, "_do_get")
    ):
        target = target.pool  # an Engine
    if isinstance(pool, ConcurrencyLimiter):
        monitor = pool._monitor(label, **options)
    elif isinstance(target, concurrent.futures.ThreadPoolExecutor):
        monitor = _thread_executor(target, label, **options)
    elif isinstance(target, concurrent.futures.ProcessPoolExecutor):
        monitor = _process_executor(target, label, **options)
    elif type(target).__module__.startswith("sqlalchemy") and hasattr(target, "_do_get"):
        monitor = _sqlalchemy(target, label, **options)
    elif module.startswith("asyncpg") and hasattr(pool, "get_max_size"):
        monitor = _asyncpg(pool, label, **options)
    elif module.startswith("psycopg_pool") and hasattr(pool, "get_stats"):
        monitor = _psycopg(pool, label, **options)
    else:
        raise ConfigurationError(
            f"instrument_pool() does not know {type(pool).__module__}.{type(pool).__name__}; "
            "supported: asyncpg, psycopg_pool, SQLAlchemy pools and engines, "
            "concurrent.futures executors, botpulse.ConcurrencyLimiter"
        )
    return register(monitor)
