"""The event-loop monitor: loop lag, blocking calls, and sync work on the loop per flow.

Three parts, all cheap enough to leave on in production (``bench/runtime.py``):

- **lag**: a heartbeat callback scheduled every ``lag_interval`` seconds measures how
  late it runs; each sample is the gauge ``loop.lag_ms``.
- **blocking calls**: the watchdog thread (:mod:`botpulse.runtime._thread`) calls
  :meth:`LoopMonitor.watch`. When the current task step (or, outside tasks, the
  heartbeat) is older than ``blocking_threshold``, the loop is blocked *right now*:
  the watchdog captures the loop thread's stack with ``sys._current_frames()`` and,
  once the loop runs again and the block's length is known, reports a
  ``blocking_call`` finding at the innermost frame of the bot's own code, with the
  flow that was running. Repeats at the same place merge into one finding (counts).
- **sync work on the loop** (``track_steps``): a task factory times every step of
  every task (:mod:`botpulse.runtime._steps`); each finished flow records its sum as
  an operation ``<flow>.on_loop`` of kind ``on_loop``, so a report shows
  ``on_loop_ms`` p50/p95 per flow. Flows that hold the loop more than 10 ms per run,
  or more than 20 % of their duration (and at least 2 ms), get a ``sync_on_loop``
  finding with the frames the watchdog saw most often while their steps ran.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

from .. import _capture, _findings
from .._diagnostics import internal_error
from ._frames import StackSummary, summarize, thread_frame
from ._steps import TimedCoroutine, make_task_factory

__all__ = ["ON_LOOP_SUFFIX", "LoopMonitor", "LoopSettings"]

_MS = 1_000_000
#: A flow's on-loop time is recorded as the operation ``<flow>.on_loop`` of kind ``on_loop``.
ON_LOOP_SUFFIX = ".on_loop"
_MAX_OPEN_FLOWS = 10_000
_MAX_FLOW_NAMES = 500
_MAX_FRAMES_PER_FLOW = 50
_SAMPLE_AFTER_NS = 1 * _MS  # sample a step's stack once it has run this long
_SAMPLE_EVERY = 0.01  # and then every 10 ms while such steps keep running

BLOCKING_ADVICE = (
    "This code held the event loop, so every other handler waited. Run blocking work "
    "with `await asyncio.to_thread(func, ...)` or `loop.run_in_executor(...)`, or use an "
    "async driver (redis.asyncio, asyncpg, httpx.AsyncClient, aiosqlite)."
)
SYNC_ADVICE = (
    "This flow runs synchronous work on the event loop on every call. Move CPU-heavy "
    "steps (image processing, hashing, parsing) to `asyncio.to_thread()` or a "
    "ProcessPoolExecutor."
)


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """How the loop monitor samples and what it calls blocking."""

    blocking_threshold: float = 0.1
    lag_interval: float = 1.0
    track_steps: bool = True
    poll_interval: float = 0.25
    sync_per_run_ms: float = 10.0
    sync_share: float = 0.2
    sync_min_ms: float = 2.0
    sync_window: float = 60.0


@dataclass(slots=True)
class _Block:
    start_ns: int
    detected_ns: int
    flow: Any
    stack: StackSummary
    task: str | None
    duration_ns: int = 0


@dataclass(slots=True)
class _FlowLoopStats:
    runs: int = 0
    on_loop_ns: int = 0
    duration_ns: int = 0
    max_on_loop_ns: int = 0
    frames: Counter[str] = field(default_factory=Counter)


def flow_name(flow: Any) -> str:
    """A flow's name as text; a name whose ``__str__`` raises becomes ``"(unprintable)"``."""
    name = flow.name
    if isinstance(name, str):
        return name
    try:
        return str(name)
    except Exception:  # noqa: BLE001 - any object may be a name; never raise for it
        return "(unprintable)"


def _no_flow_context() -> contextvars.Context:
    return contextvars.Context()


class LoopMonitor:
    """Watches one event loop; created and driven by :mod:`botpulse.runtime`.

    :meth:`attach` runs in the loop's thread; :meth:`watch` and :meth:`flush` run in
    the watchdog thread; :meth:`step_done` runs on the loop after every task step.
    """

    def __init__(self, settings: LoopSettings) -> None:
        self.settings = settings
        self.threshold_ns = int(settings.blocking_threshold * 1e9)
        self.interval_ns = int(settings.lag_interval * 1e9)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread_id: int | None = None
        self.tracking = settings.track_steps
        # Written by the loop thread, read by the watchdog.
        self.step: tuple[int, Any] | None = None
        self.beat_due = 0
        self.evidence: deque[tuple[int, int]] = deque(maxlen=1000)
        self._open: dict[int, list[Any]] = {}
        self._flow_stats: dict[str, _FlowLoopStats] = {}
        # Watchdog-only state.
        self._pending: _Block | None = None
        self._last_end = 0
        self._frames: dict[str, Counter[str]] = {}
        self._window_started = perf_counter_ns()
        self._beat_handle: asyncio.TimerHandle | None = None
        self._factory: Any = None
        self._attached = threading.Event()
        self.blocks_reported = 0
        self.blocks_missed = 0
        self.flows_dropped = 0

    # -- in the loop's thread ------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the heartbeat and the step timer on ``loop`` (call from the loop's thread)."""
        try:
            self.loop = loop
            self.thread_id = threading.get_ident()
            if self.settings.track_steps:
                previous = loop.get_task_factory()
                self._factory = make_task_factory(self, previous)
                loop.set_task_factory(self._factory)
                _capture.flow_opened = self._flow_opened
            self.beat_due = perf_counter_ns() + self.interval_ns
            self._beat_handle = loop.call_later(self.settings.lag_interval, self._beat)
        except Exception as exc:  # noqa: BLE001 - the bot's loop must keep running
            internal_error("runtime.loop.attach", exc)
        finally:
            self._attached.set()

    def _beat(self) -> None:
        try:
            now = perf_counter_ns()
            lag = now - self.beat_due
            if lag >= self.threshold_ns:
                self.evidence.append((self.beat_due, now))
            _capture.gauge("loop.lag_ms", max(lag, 0) / _MS)
            self.beat_due = now + self.interval_ns
            loop = self.loop
            if loop is not None:
                self._beat_handle = loop.call_later(self.settings.lag_interval, self._beat)
        except Exception as exc:  # noqa: BLE001
            internal_error("runtime.loop.beat", exc)

    def _flow_opened(self, flow: Any) -> None:
        """A flow opened outside any other: the running step (if flow-less) belongs to it."""
        step = self.step
        if step is not None and step[1] is None and threading.get_ident() == self.thread_id:
            self.step = (step[0], flow)

    def _detach_in_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            if _capture.flow_opened == self._flow_opened:
                _capture.flow_opened = None
            if self._beat_handle is not None:
                self._beat_handle.cancel()
            factory: Any = self._factory
            if factory is not None:
                previous = getattr(factory, "botpulse_previous", None)
                if loop.get_task_factory() is factory:  # nobody replaced it since
                    loop.set_task_factory(previous)
                self._factory = None
        except Exception as exc:  # noqa: BLE001
            internal_error("runtime.loop.detach", exc)

    def step_done(
        self, task: TimedCoroutine, flow: Any, t0: int, t1: int, *, finished: bool
    ) -> None:
        """Account a task step the step timer could not simply add up (called on the loop).

        ``flow`` is the flow the step began in; the task's running total (``task._flow``,
        ``task._ns``) moves to the monitor when the flow changes, ends, or the task ends.
        """
        try:
            if t1 - t0 >= self.threshold_ns:
                self.evidence.append((t0, t1))
            current = _capture._current.get()
            end_flow = None if current is None else current._flow
            held = task._flow
            if flow is None and end_flow is not None:
                t0 = max(t0, getattr(end_flow, "_t0", t0))  # the flow began during this step
            step_flow = flow if flow is not None else end_flow
            if held is not None and held is not step_flow:
                self._account(held, task._ns)  # the task moved on from an earlier flow
                held, task._flow, task._ns = None, None, 0
            if step_flow is not None:
                if held is None:
                    task._flow, task._ns = step_flow, 0
                task._ns += t1 - t0
            if finished or end_flow is not step_flow:
                if task._flow is not None:
                    self._account(task._flow, task._ns)
                task._flow, task._ns = None, 0
                if end_flow is not None and end_flow is not step_flow and not finished:
                    task._flow = end_flow  # a flow opened at the end of this step
        except Exception as exc:  # noqa: BLE001 - runs inside the bot's task: never raise
            internal_error("runtime.loop.step", exc)

    def _purge(self) -> bool:
        """Forget flows that ended where no step timer saw them (e.g. in the main task)."""
        ended = [key for key, (flow, _ns) in self._open.items() if hasattr(flow, "_t1")]
        for key in ended:
            del self._open[key]
        return bool(ended)

    def _account(self, flow: Any, ns: int) -> None:
        entry = self._open.get(id(flow))
        if entry is not None and entry[0] is flow:
            ns += entry[1]
        t_end = getattr(flow, "_t1", None)
        if t_end is None:  # still open (we saw it from a child task, say)
            if entry is not None and entry[0] is flow:
                entry[1] = ns
            elif len(self._open) < _MAX_OPEN_FLOWS or self._purge():
                self._open[id(flow)] = [flow, ns]
            else:
                self.flows_dropped += 1
            return
        if entry is not None:
            del self._open[id(flow)]
        key = flow_name(flow)
        start = flow._t0
        _no_flow_context().run(
            _capture.record_operation, f"{key}{ON_LOOP_SUFFIX}", "on_loop", start, start + ns
        )
        stats = self._flow_stats.get(key)
        if stats is None:
            if len(self._flow_stats) >= _MAX_FLOW_NAMES:
                return
            stats = self._flow_stats[key] = _FlowLoopStats()
        stats.runs += 1
        stats.on_loop_ns += ns
        stats.duration_ns += max(t_end - start, 0)
        stats.max_on_loop_ns = max(stats.max_on_loop_ns, ns)

    # -- in the watchdog thread ----------------------------------------------------

    def watch(self) -> float:
        """Check the loop once; return the seconds until the next check is useful."""
        poll = self.settings.poll_interval
        if self.thread_id is None or self.loop is None:
            return poll
        now = perf_counter_ns()
        self._resolve()
        step = self.step
        threshold = self.threshold_ns
        if self._pending is None:
            start, flow = None, None
            if step is not None and now - step[0] >= threshold:
                start, flow = step
            elif now - self.beat_due >= threshold:
                start = self.beat_due
                flow = step[1] if step is not None else None
            if start is not None and start >= self._last_end:
                self._capture(start, now, flow)
        if (
            self._pending is None
            and step is not None
            and step[1] is not None
            and now - step[0] >= _SAMPLE_AFTER_NS
        ):
            self._sample(step[1])
            # A long synchronous step is running: look again soon, to learn where it spends.
            poll = min(poll, _SAMPLE_EVERY)
        wait_ns = int(poll * 1e9)
        if step is not None:
            until = step[0] + threshold - now
            if until > 0:
                wait_ns = min(wait_ns, until)
        until_beat = self.beat_due + threshold - now
        if until_beat > 0:
            wait_ns = min(wait_ns, until_beat)
        return max(wait_ns / 1e9 + 0.0005, 0.001)

    def _capture(self, start: int, now: int, flow: Any) -> None:
        thread_id = self.thread_id
        if thread_id is None:
            return
        stack = summarize(thread_frame(thread_id))
        task = None
        if flow is None and self.loop is not None:
            try:
                current = asyncio.current_task(self.loop)
                if current is not None:
                    task = current.get_name()
                    flow = None
            except Exception:  # noqa: BLE001 - best effort from another thread
                task = None
        self._pending = _Block(start, now, flow, stack, task)

    def _sample(self, flow: Any) -> None:
        thread_id = self.thread_id
        if thread_id is None:
            return
        stack = summarize(thread_frame(thread_id), depth=0)
        if stack.user is None:
            return
        key = flow_name(flow)
        frames = self._frames.get(key)
        if frames is None:
            if len(self._frames) >= _MAX_FLOW_NAMES:
                return
            frames = self._frames[key] = Counter()
        if len(frames) < _MAX_FRAMES_PER_FLOW or str(stack.user) in frames:
            frames[str(stack.user)] += 1

    def _resolve(self) -> None:
        evidence = self.evidence
        while evidence:
            start, end = evidence.popleft()
            pending = self._pending
            if pending is not None and start <= pending.detected_ns <= end:
                pending.duration_ns = max(pending.duration_ns, end - start)
                continue
            if start < self._last_end:
                continue  # the same block seen by the heartbeat too
            self.blocks_missed += 1  # too short to catch while it lasted
        pending = self._pending
        if pending is not None and pending.duration_ns:
            self._report(pending)
            self._pending = None
            self._last_end = pending.start_ns + pending.duration_ns

    def _report(self, block: _Block) -> None:
        stack = block.stack
        where = stack.user or (stack.frames[0] if stack.frames else None)
        subject = where.where if where is not None else "(unknown)"
        flow = "" if block.flow is None else flow_name(block.flow)
        details: dict[str, Any] = {
            "blocked_ms": round(block.duration_ns / _MS, 3),
            "threshold_ms": round(self.threshold_ns / _MS, 3),
            "function": where.function if where is not None else None,
            "stack": [str(f) for f in stack.frames],
            "advice": BLOCKING_ADVICE,
        }
        if stack.library is not None:
            details["calls"] = str(stack.library)
        if block.task:
            details["task"] = block.task
        _findings.report_finding(
            "blocking_call",
            subject,
            flow=flow,
            total_ns=block.duration_ns,
            max_ns=block.duration_ns,
            at_ns=time.time_ns(),
            source=str(where) if where is not None else None,
            details=details,
        )
        self.blocks_reported += 1

    def flush(self, *, final: bool = False) -> None:
        """Report ``sync_on_loop`` findings for the window that ended (or everything, at stop)."""
        now = perf_counter_ns()
        if not final and now - self._window_started < self.settings.sync_window * 1e9:
            return
        self._resolve()
        self._window_started = now
        stats, self._flow_stats = self._flow_stats, {}
        frames, self._frames = self._frames, {}
        s = self.settings
        for name, st in stats.items():
            if not st.runs:
                continue
            per_run_ms = st.on_loop_ns / st.runs / _MS
            share = st.on_loop_ns / st.duration_ns if st.duration_ns else 0.0
            if per_run_ms < s.sync_per_run_ms and not (
                share >= s.sync_share and per_run_ms >= s.sync_min_ms
            ):
                continue
            heaviest = frames.get(name, Counter()).most_common(5)
            top = heaviest[0][0] if heaviest else None
            _findings.report_finding(
                "sync_on_loop",
                name,
                flow=name,
                count=st.runs,
                total_ns=st.on_loop_ns,
                max_ns=st.max_on_loop_ns,
                at_ns=time.time_ns(),
                source=top,
                details={
                    "on_loop_ms_per_run": round(per_run_ms, 3),
                    "share_of_duration": round(share, 4),
                    "runs": st.runs,
                    "heaviest_frames": [{"frame": f, "samples": n} for f, n in heaviest],
                    "advice": SYNC_ADVICE,
                },
            )

    def detach(self) -> None:
        """Stop the heartbeat and restore the task factory (from any thread)."""
        loop = self.loop
        if loop is None:
            return
        self.tracking = False
        try:
            if loop.is_closed():
                return
            if self.thread_id == threading.get_ident():
                self._detach_in_loop(loop)
            else:
                loop.call_soon_threadsafe(self._detach_in_loop, loop)
        except RuntimeError:  # the loop closed meanwhile
            pass
        finally:
            self.loop = None
