"""``init()``, ``shutdown()`` and ``stats()``: configuration, lifecycle and fork safety.

Every setting is validated here, once, with a one-line :class:`ConfigurationError`
that names the bad value and what would be valid; after that the hot path trusts
its configuration. Environment variables are read in this module and nowhere else:

- ``BOTPULSE_STORE``: the default store URL (else ``sqlite:///botpulse.db``)
- ``BOTPULSE_SERVICE``: the default service name (else the script's name)
- ``BOTPULSE_DISABLED=1``: ``init()`` leaves instrumentation off
- ``BOTPULSE_STRICT=1``: internal errors are raised instead of logged (the test suite)
"""

from __future__ import annotations

import atexit
import math
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from . import _capture, _diagnostics, _executors, _findings
from ._aggregate import Aggregator, SamplingPolicy
from ._buffer import EventBuffer
from ._clock import Clock, SystemClock
from ._diagnostics import logger
from ._pipeline import Pipeline, Stats
from .errors import ConfigurationError, StoreError, StoreUnavailable
from .store import open_store, parse_store_url
from .store.base import Retention, Store

__all__ = ["DEFAULT_STORE_URL", "default_store_url", "env_flag", "init", "shutdown", "stats"]

DEFAULT_STORE_URL = "sqlite:///botpulse.db"
_TRUE = {"1", "true", "yes", "on"}


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to a true value (1/true/yes/on)."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def default_store_url() -> str:
    """``$BOTPULSE_STORE`` if set, else :data:`DEFAULT_STORE_URL`."""
    return os.environ.get("BOTPULSE_STORE", "").strip() or DEFAULT_STORE_URL


def _default_service() -> str:
    env = os.environ.get("BOTPULSE_SERVICE", "").strip()
    if env:
        return env
    script = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return script if script and script not in {"-c", "-m", "__main__"} else "bot"


def _default_instance() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_diagnostics._STRICT = env_flag("BOTPULSE_STRICT")


@dataclass(slots=True)
class _Running:
    """Everything one ``init()`` started."""

    store: Store
    owns_store: bool
    service: str
    instance: str
    instance_given: bool
    buffer_size: int
    max_names: int
    max_tag_values: int
    sampling: SamplingPolicy
    flush_interval: float
    clock: Clock
    buffer: EventBuffer
    pipeline: Pipeline


_lock = threading.RLock()
_running: _Running | None = None
_atexit_registered = False


def _check_number(
    name: str, value: object, low: float, high: float, *, integer: bool = False
) -> float:
    kind = "an integer" if integer else "a number"
    valid = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not valid:
        raise ConfigurationError(f"{name}={value!r} must be {kind} between {low:g} and {high:g}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond float range
        raise ConfigurationError(
            f"{name}={value!r} must be {kind} between {low:g} and {high:g}"
        ) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ConfigurationError(f"{name}={value!r} must be {kind} between {low:g} and {high:g}")
    return number


def _check_label(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ConfigurationError(
            f"{name}={value!r} must be a non-empty string of at most 200 chars"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"{name}={value!r} is not valid text") from None
    return value.strip()


def _open(store: str | Store | None, check_store: bool, retention: Retention | None) -> Store:
    if isinstance(store, Store):
        return store
    if store is None:
        store = default_store_url()
    if not isinstance(store, str):
        raise ConfigurationError(
            f"store={store!r} must be a URL such as 'sqlite:///botpulse.db' or a Store"
        )
    parsed = parse_store_url(store)  # ConfigurationError for a bad URL, always
    try:
        return open_store(store, retention=retention)
    except StoreUnavailable as exc:
        if check_store:
            raise ConfigurationError(f"store {parsed} is not usable: {exc}") from exc
        logger.warning("botpulse: store %s not available yet (%s); will retry", parsed, exc)
        return open_store(store, retention=retention, connect=False)
    except StoreError as exc:
        raise ConfigurationError(f"store {parsed} is not usable: {exc}") from exc


def init(
    store: str | Store | None = None,
    service: str | None = None,
    instance: str | None = None,
    flush_interval: float = 1.0,
    *,
    buffer_size: int = 10_000,
    max_names: int = 1000,
    max_tag_values: int = 50,
    trace_slowest: int = 3,
    trace_errors: int = 3,
    trace_random: int = 1,
    retention: Retention | None = None,
    check_store: bool = False,
    clock: Clock | None = None,
    loop_monitor: bool = True,
    blocking_threshold: float = 0.1,
    track_loop_time: bool = True,
    resources_interval: float | None = 10.0,
) -> None:
    """Start recording: open the store and start the background pipeline.

    Args:
        store: a store URL (``sqlite:///botpulse.db``, ``sqlite:////abs/path.db``,
            ``memory://``) or a :class:`~botpulse.store.Store`; default
            ``$BOTPULSE_STORE``, else ``sqlite:///botpulse.db``.
        service: the bot's name in reports (default ``$BOTPULSE_SERVICE`` or the script name).
        instance: this process's name (default ``host:pid``); rollups of all instances merge.
        flush_interval: seconds between writes to the store; also the most a crash loses.
        buffer_size: events held between drains; beyond it events are dropped and counted.
        max_names: distinct operation names kept; the rest are counted under ``(other)``.
        max_tag_values: distinct values kept per tag key; the rest count as ``(other)``.
        trace_slowest, trace_errors, trace_random: trace samples kept per minute and flow.
        retention: how long data is kept (:class:`~botpulse.store.Retention`).
        check_store: open the store now and raise if it is unusable (else retry in background).
        clock: an injected clock for tests (:class:`~botpulse.ManualClock`).
        loop_monitor: watch the asyncio loop: ``loop.lag_ms`` and ``blocking_call`` findings.
        blocking_threshold: seconds the loop may be held before it counts as blocked.
        track_loop_time: time each task step, for ``on_loop`` time per flow and
            ``sync_on_loop`` findings (a task factory on the loop).
        resources_interval: seconds between process samples (CPU, RSS, GC...); ``None``: off.

    Raises :class:`~botpulse.errors.ConfigurationError` for any invalid setting. Calling
    ``init()`` again shuts the previous configuration down first.

    Example::

        botpulse.init(store="sqlite:///botpulse.db", service="mybot")
    """
    global _running, _atexit_registered
    # Validate everything before touching the running state.
    service = _check_label("service", service if service is not None else _default_service())
    instance_given = instance is not None
    instance = _check_label("instance", instance if instance_given else _default_instance())
    flush = _check_number("flush_interval", flush_interval, 0.01, 3600)
    size = int(_check_number("buffer_size", buffer_size, 100, 10_000_000, integer=True))
    names = int(_check_number("max_names", max_names, 1, 1_000_000, integer=True))
    tag_values = int(_check_number("max_tag_values", max_tag_values, 1, 100_000, integer=True))
    sampling = SamplingPolicy(
        slowest=int(_check_number("trace_slowest", trace_slowest, 0, 100, integer=True)),
        errors=int(_check_number("trace_errors", trace_errors, 0, 100, integer=True)),
        random=int(_check_number("trace_random", trace_random, 0, 100, integer=True)),
    )
    if retention is not None and not isinstance(retention, Retention):
        raise ConfigurationError(f"retention={retention!r} must be a botpulse.store.Retention")
    if clock is not None and not (
        callable(getattr(clock, "perf_counter_ns", None))
        and callable(getattr(clock, "time_ns", None))
    ):
        raise ConfigurationError(f"clock={clock!r} must have perf_counter_ns() and time_ns()")
    runtime_settings = _runtime_settings(
        loop_monitor, blocking_threshold, track_loop_time, resources_interval
    )
    if env_flag("BOTPULSE_DISABLED"):
        logger.info("botpulse: BOTPULSE_DISABLED is set; instrumentation stays off")
        return
    with _lock:
        if _running is not None:
            logger.info("botpulse: init() called again; restarting with the new settings")
            shutdown()
        the_store = _open(store, check_store, retention)
        if retention is not None:
            the_store.retention = retention
        clock = clock or SystemClock()
        running = _start(
            the_store,
            not isinstance(store, Store),
            service,
            instance,
            instance_given,
            size,
            names,
            tag_values,
            sampling,
            flush,
            clock,
        )
        _running = running
        _start_runtime(runtime_settings)
        if not _atexit_registered:
            atexit.register(_shutdown_at_exit)
            _atexit_registered = True


def _start(
    store: Store,
    owns_store: bool,
    service: str,
    instance: str,
    instance_given: bool,
    buffer_size: int,
    max_names: int,
    max_tag_values: int,
    sampling: SamplingPolicy,
    flush_interval: float,
    clock: Clock,
) -> _Running:
    buffer = EventBuffer(buffer_size)
    aggregator = Aggregator(
        service, instance, max_names=max_names, sampling=sampling, max_tag_values=max_tag_values
    )
    findings = _findings.FindingQueue()
    pipeline = Pipeline(
        buffer, aggregator, store, clock, flush_interval=flush_interval, findings=findings
    )
    running = _Running(
        store,
        owns_store,
        service,
        instance,
        instance_given,
        buffer_size,
        max_names,
        max_tag_values,
        sampling,
        flush_interval,
        clock,
        buffer,
        pipeline,
    )
    pipeline.start()
    _capture.activate(clock.perf_counter_ns, buffer)
    _findings.activate(findings)
    _executors.install()
    return running


def shutdown(timeout: float = 5.0) -> Stats | None:
    """Stop recording, flush what is pending, and return the final counters.

    Returns within about ``timeout`` seconds even if the store hangs (what could not be
    written is logged). Safe to call twice; also runs at interpreter exit.

    Example::

        stats = botpulse.shutdown()
        print(stats.written, stats.dropped)
    """
    global _running
    timeout = _check_number("timeout", timeout, 0, 3600)
    with _lock:
        running = _running
        if running is None:
            return None
        _stop_runtime()
        _capture.deactivate()
        _findings.deactivate()
        _executors.uninstall()
        _running = None
        running.pipeline.stop(timeout)
        final = running.pipeline.stats()
        if running.owns_store:
            try:
                running.store.close()
            except Exception as exc:  # noqa: BLE001 - shutdown must not raise at exit
                logger.warning("botpulse: closing the store failed: %s", exc)
        return final


def stats() -> Stats | None:
    """Counters of the running pipeline (recorded, written, pending, dropped), or ``None``."""
    running = _running
    return None if running is None else running.pipeline.stats()


def _shutdown_at_exit() -> None:
    try:
        shutdown()
    except Exception as exc:  # noqa: BLE001
        logger.warning("botpulse: shutdown at exit failed: %s", exc)


def _after_fork_in_child() -> None:
    """Give a forked child its own buffer, thread and connections; never write twice."""
    global _running, _lock
    _lock = threading.RLock()  # the parent may have held it while forking
    running = _running
    if running is None:
        return
    _capture.deactivate()
    _findings.deactivate()
    _runtime_after_fork()
    try:
        running.store.after_fork()
        # Two processes never share an instance name: the child's carries its pid.
        instance = (
            f"{running.instance}:{os.getpid()}" if running.instance_given else _default_instance()
        )
        _running = _start(
            running.store,
            running.owns_store,
            running.service,
            instance,
            running.instance_given,
            running.buffer_size,
            running.max_names,
            running.max_tag_values,
            running.sampling,
            running.flush_interval,
            running.clock,
        )
    except Exception as exc:  # noqa: BLE001 - a child must start even if we cannot
        _running = None
        _diagnostics.internal_error("fork", exc)


def _before_fork() -> None:
    running = _running
    if running is not None:
        try:
            running.store.before_fork()
        except Exception as exc:  # noqa: BLE001 - never break the application's fork()
            logger.warning("botpulse: preparing the store for fork() failed: %s", exc)


def _after_fork_in_parent() -> None:
    running = _running
    if running is not None:
        try:
            running.store.after_fork_in_parent()
        except Exception as exc:  # noqa: BLE001
            logger.warning("botpulse: resuming the store after fork() failed: %s", exc)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


# -- runtime health (botpulse.runtime): the only hooks into it, each failure-proof ----------


def _runtime_settings(
    loop_monitor: object,
    blocking_threshold: object,
    track_loop_time: object,
    resources_interval: object,
) -> object:
    for name, flag in (("loop_monitor", loop_monitor), ("track_loop_time", track_loop_time)):
        if not isinstance(flag, bool):
            raise ConfigurationError(f"{name}={flag!r} must be True or False")
    threshold = _check_number("blocking_threshold", blocking_threshold, 0.005, 3600)
    interval = (
        None
        if resources_interval is None
        else _check_number("resources_interval", resources_interval, 0.1, 86400)
    )
    from .runtime import RuntimeSettings

    return RuntimeSettings(
        loop_monitor=bool(loop_monitor),
        blocking_threshold=threshold,
        track_loop_time=bool(track_loop_time),
        resources_interval=interval,
    )


def _start_runtime(settings: object) -> None:
    try:
        from . import runtime

        runtime.start(settings)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - init() never fails because of the monitors
        _diagnostics.internal_error("runtime.start", exc)


def _stop_runtime() -> None:
    try:
        from . import runtime

        runtime.stop()
    except Exception as exc:  # noqa: BLE001
        _diagnostics.internal_error("runtime.stop", exc)


def _runtime_after_fork() -> None:
    try:
        from . import runtime

        runtime.after_fork_in_child()
    except Exception as exc:  # noqa: BLE001
        _diagnostics.internal_error("runtime.fork", exc)
