"""Runtime health: the event loop, process resources, pools, caches and limits, in one thread.

``botpulse.init()`` calls :func:`start` (and ``shutdown()`` calls :func:`stop`), which
runs one daemon thread, ``botpulse-runtime``, that

- watches the asyncio loop (at once when ``init()`` runs inside it, otherwise from the
  moment the first loop starts) through its :class:`~botpulse.runtime.loop.LoopMonitor`
  (lag, blocking calls, sync work per flow);
- samples process resources every ``resources_interval`` seconds
  (:mod:`botpulse.runtime.resources`);
- samples instrumented pools every second and caches every few seconds
  (:mod:`botpulse.runtime.pools`, :mod:`botpulse.runtime.caches`).

Nothing is imported that the program does not use: the loop monitor loads once
``asyncio`` is imported (a program that imports it after ``init()`` gets the monitor
within half a second), pools and caches once something is instrumented. Nothing here
raises into the bot.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._diagnostics import internal_error
from .resources import ResourceSampler

if TYPE_CHECKING:
    from .loop import LoopMonitor, LoopSettings

__all__ = ["RuntimeSettings", "current", "start", "stop"]

_CACHE_INTERVAL = 5.0
#: Without a loop to watch the thread only looks whether asyncio has been imported
#: meanwhile; a loop that starts wakes it at once (the loop-start hook).
_IDLE_POLL = 2.0
_IDLE_MAX = 30.0
_POOL_POLL = 0.25
_ATTACH_WINDOW = 2.0


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """What ``init()`` turned on (validated there)."""

    loop_monitor: bool = True
    blocking_threshold: float = 0.1
    lag_interval: float = 1.0
    track_loop_time: bool = True
    resources_interval: float | None = 10.0


class _LoopStartHook:
    """Learn when an asyncio loop starts running, in its own thread, before its first callback.

    ``BaseEventLoop.run_forever()`` announces itself through
    ``asyncio.events._set_running_loop(loop)``; while a runtime is started we wrap that
    function (one extra call per ``run_forever``), so ``init()`` may run before
    ``asyncio.run(main())``. Loops that bypass it (uvloop imports the original
    function) are monitored when ``init()`` runs inside them.
    """

    def __init__(self) -> None:
        self._original: Any = None
        self._callback: Any = None

    def install(self, callback: Any) -> None:
        import asyncio.events

        self._callback = callback
        if self._original is not None:
            return
        original = asyncio.events._set_running_loop
        self._original = original
        hook = self

        def _set_running_loop(loop: Any) -> None:
            original(loop)
            callback = hook._callback
            if loop is not None and callback is not None:
                try:
                    callback(loop)
                except Exception as exc:  # noqa: BLE001 - never break the loop's start
                    internal_error("runtime.loop.start", exc)

        _set_running_loop.botpulse_original = original  # type: ignore[attr-defined]
        asyncio.events._set_running_loop = _set_running_loop  # type: ignore[assignment, unused-ignore]

    def uninstall(self, callback: Any) -> None:
        if self._callback == callback:  # bound methods: equal, never identical
            self._callback = None
        original = self._original
        events: Any = sys.modules.get("asyncio.events")
        if original is not None and self._callback is None and events is not None:
            current = events._set_running_loop
            if getattr(current, "botpulse_original", None) is original:
                events._set_running_loop = original
                self._original = None


_loop_hook = _LoopStartHook()


def _loaded(name: str) -> Any:
    """Our submodule ``name`` if something imported it (a pool or cache was instrumented)."""
    return sys.modules.get(f"{__name__}.{name}")


class Runtime:
    """The runtime thread and what it drives."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.monitor: LoopMonitor | None = None
        self.resources = ResourceSampler() if settings.resources_interval is not None else None
        self._stop = threading.Event()
        self._wake = threading.Event()  # a loop to watch has just been attached
        self._thread = threading.Thread(target=self._run, name="botpulse-runtime", daemon=True)
        self._loop_settings: LoopSettings | None = None

    def start(self) -> None:
        """Start the thread; watch the loop if asyncio is in use (attach now inside a loop)."""
        if self.resources is not None:
            self.resources.start()
        self._thread.start()
        if self.settings.loop_monitor and "asyncio" in sys.modules:
            self._enable_loop_monitor()

    def _enable_loop_monitor(self) -> None:
        import asyncio

        from .loop import LoopMonitor, LoopSettings

        self._loop_settings = LoopSettings(
            blocking_threshold=self.settings.blocking_threshold,
            lag_interval=self.settings.lag_interval,
            track_steps=self.settings.track_loop_time,
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:  # last: the heartbeat's clock starts now
            monitor = LoopMonitor(self._loop_settings)
            monitor.attach(loop)
            self.monitor = monitor
            self._wake.set()
        _loop_hook.install(self._on_loop_start)

    def _on_loop_start(self, loop: Any) -> None:
        # Called in the loop's thread as run_forever() starts, before any callback runs.
        import asyncio

        from .loop import LoopMonitor

        monitor = self.monitor
        if monitor is not None and monitor.loop is not None and not monitor.loop.is_closed():
            return  # one loop at a time: the first one that runs
        if isinstance(loop, asyncio.AbstractEventLoop) and self._loop_settings is not None:
            fresh = LoopMonitor(self._loop_settings)
            fresh.attach(loop)
            self.monitor = fresh
            self._wake.set()

    def _run(self) -> None:
        start = time.monotonic()
        # The first samples come one interval after init(): a rate needs a baseline.
        next_resources = start + (self.settings.resources_interval or 0.0)
        next_caches = start + _CACHE_INTERVAL
        while not self._stop.is_set():
            # Nothing to look for until asyncio is imported; after that a starting loop
            # wakes the thread, so only the samples below set the pace.
            watching = self._loop_settings is not None or not self.settings.loop_monitor
            wait = _IDLE_MAX if watching else _IDLE_POLL
            try:
                now = time.monotonic()
                if (
                    self._loop_settings is None
                    and self.settings.loop_monitor
                    and "asyncio" in sys.modules
                ):
                    self._enable_loop_monitor()  # imported after init(): watch from now on
                monitor = self.monitor
                if monitor is not None and monitor.loop is not None and monitor.loop.is_closed():
                    monitor.flush(final=True)
                    self.monitor = monitor = None
                if monitor is not None:
                    wait = min(wait, monitor.watch())
                    monitor.flush()
                elif self._loop_settings is not None and now - start < _ATTACH_WINDOW:
                    wait = min(wait, 0.05)  # init() is attaching to its loop right now
                interval = self.settings.resources_interval
                if self.resources is not None and interval is not None and now >= next_resources:
                    next_resources = now + interval
                    self.resources.sample()
                    self._count_tasks()
                pools = _loaded("pools")
                if pools is not None:
                    pools.sample_pools(now)
                caches = _loaded("caches")
                if now >= next_caches:
                    # Advanced whether or not caches are in use: a deadline in the past
                    # would make this thread spin.
                    next_caches = now + _CACHE_INTERVAL
                    if caches is not None:
                        caches.emit_caches(now)
                due = [next_caches] if caches is not None else []
                if pools is not None:
                    due.append(now + _POOL_POLL)
                if self.resources is not None and interval is not None:
                    due.append(next_resources)
                wait = max(min(wait, min(due, default=now + wait) - now), 0.001)
            except Exception as exc:  # noqa: BLE001 - the thread must survive anything
                internal_error("runtime.thread", exc)
            self._wake.wait(wait)
            self._wake.clear()

    def _count_tasks(self) -> None:
        monitor = self.monitor
        loop = None if monitor is None else monitor.loop
        if loop is None or loop.is_closed():
            return
        import asyncio

        from .. import _capture

        def count() -> None:
            try:
                _capture.gauge("asyncio.tasks", len(asyncio.all_tasks(loop)))
            except Exception as exc:  # noqa: BLE001
                internal_error("runtime.tasks", exc)

        try:
            loop.call_soon_threadsafe(count)
        except RuntimeError:  # closed meanwhile
            return

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread and record what is still pending (final gauges and findings)."""
        self._stop.set()
        self._wake.set()
        _loop_hook.uninstall(self._on_loop_start)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        monitor = self.monitor
        try:
            if monitor is not None:
                monitor.flush(final=True)
                monitor.detach()
            caches = _loaded("caches")
            if caches is not None:
                caches.emit_caches(time.monotonic(), final=True)
            if self.resources is not None:
                self.resources.stop()
        except Exception as exc:  # noqa: BLE001
            internal_error("runtime.stop", exc)
        self.monitor = None


_runtime: Runtime | None = None


def current() -> Runtime | None:
    """The running runtime monitor, if ``init()`` started one."""
    return _runtime


def start(settings: RuntimeSettings) -> None:
    """Start the runtime thread (called at the end of ``init()``); never raises."""
    global _runtime
    try:
        stop()
        runtime = Runtime(settings)
        runtime.start()
        _runtime = runtime
    except Exception as exc:  # noqa: BLE001 - init() must not fail because of us
        internal_error("runtime.start", exc)


def stop() -> None:
    """Stop the runtime thread (called by ``shutdown()`` before the final flush); never raises."""
    global _runtime
    runtime, _runtime = _runtime, None
    if runtime is None:
        return
    try:
        runtime.stop()
    except Exception as exc:  # noqa: BLE001
        internal_error("runtime.stop", exc)


def after_fork_in_child() -> None:
    """In a forked child: drop the parent's (threadless) state and start afresh, same settings."""
    global _runtime
    runtime, _runtime = _runtime, None
    if runtime is None:
        return
    try:
        if runtime.resources is not None:
            runtime.resources.stop()
    except Exception as exc:  # noqa: BLE001
        internal_error("runtime.fork", exc)
    start(runtime.settings)
