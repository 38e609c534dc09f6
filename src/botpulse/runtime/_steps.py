"""Time every step of every task on the loop: a coroutine wrapper installed by a task factory.

A task runs as a series of *steps*: from one ``await`` that really suspends to the
next, its code runs synchronously on the loop. :class:`TimedCoroutine` wraps a
task's coroutine and times each ``send``/``throw`` the task makes into it, which
gives the loop monitor two things at a cost of about a microsecond per step:

- the step running right now and the flow it belongs to (the watchdog thread uses
  it to time a block exactly and to name the flow that blocked), and
- per flow, the sum of its steps: ``on_loop`` time, the synchronous work a flow did
  on the loop even when every single step was short.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable, Coroutine, Generator
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from .._capture import _current

if TYPE_CHECKING:
    from .loop import LoopMonitor

__all__ = ["TimedCoroutine", "make_task_factory"]

_current_get = _current.get


class TimedCoroutine(Coroutine[Any, Any, Any]):
    """A coroutine that times each step of the coroutine it wraps (for :class:`LoopMonitor`).

    While the task stays in one flow, its steps add up here (``_flow``, ``_ns``); the
    monitor hears about it only when the flow changes, ends, or the task finishes, so
    a typical step costs two clock reads and a few attribute writes.
    """

    __slots__ = ("_coro", "_flow", "_monitor", "_ns")

    def __init__(self, coro: Coroutine[Any, Any, Any], monitor: LoopMonitor) -> None:
        self._coro = coro
        self._monitor = monitor
        self._flow: Any = None
        self._ns = 0

    def send(self, value: Any) -> Any:
        """Run one step of the wrapped coroutine, timed."""
        monitor = self._monitor
        current = _current_get()
        flow = None if current is None else current._flow
        previous = monitor.step
        t0 = perf_counter_ns()
        monitor.step = (t0, flow)
        try:
            result = self._coro.send(value)
        except BaseException:
            monitor.step = previous
            monitor.step_done(self, flow, t0, perf_counter_ns(), finished=True)
            raise
        t1 = perf_counter_ns()
        monitor.step = previous
        current = _current_get()
        if t1 - t0 < monitor.threshold_ns:
            if flow is None:
                if current is None:
                    return result  # a task outside any flow
            elif flow is self._flow and current is not None and current._flow is flow:
                self._ns += t1 - t0  # the common case: one more step of the same flow
                return result
        monitor.step_done(self, flow, t0, t1, finished=False)
        return result

    def throw(self, *args: Any) -> Any:
        """Throw into the wrapped coroutine (a cancellation, an exception), timed like a step."""
        monitor = self._monitor
        current = _current_get()
        flow = None if current is None else current._flow
        previous = monitor.step
        t0 = perf_counter_ns()
        monitor.step = (t0, flow)
        try:
            result = self._coro.throw(*args)
        except BaseException:
            monitor.step = previous
            monitor.step_done(self, flow, t0, perf_counter_ns(), finished=True)
            raise
        monitor.step = previous
        monitor.step_done(self, flow, t0, perf_counter_ns(), finished=False)
        return result

    def close(self) -> None:
        """Close the wrapped coroutine."""
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coro.__await__()

    # What asyncio's task repr, get_stack() and debuggers read from a coroutine.
    @property
    def cr_frame(self) -> Any:
        """The wrapped coroutine's frame."""
        return getattr(self._coro, "cr_frame", None)

    @property
    def cr_code(self) -> Any:
        """The wrapped coroutine's code."""
        return getattr(self._coro, "cr_code", None)

    @property
    def cr_running(self) -> bool:
        """Whether the wrapped coroutine is running."""
        return bool(getattr(self._coro, "cr_running", False))

    @property
    def cr_await(self) -> Any:
        """What the wrapped coroutine awaits."""
        return getattr(self._coro, "cr_await", None)

    def __getattr__(self, name: str) -> Any:
        # asyncio names a task's coroutine by __qualname__/__name__ in its repr.
        if name in ("__name__", "__qualname__"):
            return getattr(self._coro, name)
        raise AttributeError(name)

    def __repr__(self) -> str:
        return repr(self._coro)


TaskFactory = Callable[..., "asyncio.Future[Any]"]


def make_task_factory(monitor: LoopMonitor, previous: TaskFactory | None) -> TaskFactory:
    """A task factory that wraps native coroutines, then defers to ``previous`` (or ``Task``)."""

    def task_factory(
        loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Future[Any]:
        if type(coro) is types.CoroutineType and monitor.tracking:
            coro = TimedCoroutine(coro, monitor)
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    task_factory.botpulse_previous = previous  # type: ignore[attr-defined]
    return task_factory
