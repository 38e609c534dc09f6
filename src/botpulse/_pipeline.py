"""The background pipeline: drain the buffer → aggregate → write batches to the store.

One daemon thread per process. It sleeps until there is work: the buffer wakes it
when it holds more than a few hundred events (so records die young and a burst does
not fill it), and it wakes by itself every ``flush_interval`` to write to the store.
With nothing left to write it sleeps until the next event (the buffer wakes it), so
an idle bot costs a wake-up every few seconds, not one per flush interval. Every
minute it folds closed hours and days (``Store.fold``), one bucket per short
transaction. When the store fails,
nothing already aggregated is lost: the aggregator keeps it in memory (bounded) and
the thread retries with exponential backoff (1 s doubling, ±20% jitter, at most 60 s),
logging one line when the outage starts and one when it ends.

The thread never records its own work as bot events: it never calls ``measure()``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

from . import _detect
from ._aggregate import Aggregator
from ._buffer import EventBuffer
from ._clock import Clock
from ._diagnostics import internal_error, logger
from ._findings import FindingQueue
from .errors import StoreError
from .store.base import Store

__all__ = ["Backoff", "Pipeline", "Stats"]

_RETENTION_EVERY_S = 600.0
_FOLD_EVERY_S = 60.0
_GAUGE_FLUSH_S = 10.0
_FOLD_SLICE = 4  # buckets folded per wake-up, each its own short transaction
_DRAIN_CHUNK = 50_000
_LOSS_QUIET_S = 1.0
#: The longest an idle pipeline sleeps (findings reported without any event wait this).
_IDLE_WAKE_S = 10.0


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters of the running pipeline; ``recorded == written + pending + buffered + dropped``.

    ``dropped`` maps a reason (``buffer_full``, ``store_unavailable``) to a count.
    """

    recorded: int
    written: int
    pending: int
    buffered: int
    dropped: dict[str, int] = field(default_factory=dict)
    store_failures: int = 0
    last_error: str | None = None

    @property
    def dropped_total(self) -> int:
        """All dropped events, whatever the reason."""
        return sum(self.dropped.values())


class Backoff:
    """Retry delays: 1 s doubling up to 60 s, each with ±20% jitter."""

    def __init__(
        self, initial: float = 1.0, cap: float = 60.0, jitter: float = 0.2, seed: int | None = None
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
        self.failures = 0
        self._rng = random.Random(seed)

    def next_delay(self) -> float:
        """Record one more failure and return how long to wait before the next try."""
        base = min(self.cap, self.initial * 2**self.failures)
        self.failures += 1
        return float(base * (1 + self._rng.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        """The operation succeeded: start again from ``initial``."""
        self.failures = 0


class Pipeline:
    """Moves events from one :class:`EventBuffer` into one :class:`Store`."""

    def __init__(
        self,
        buffer: EventBuffer,
        aggregator: Aggregator,
        store: Store,
        clock: Clock,
        *,
        flush_interval: float = 1.0,
        backoff: Backoff | None = None,
        findings: FindingQueue | None = None,
    ) -> None:
        self.buffer = buffer
        self.findings = findings if findings is not None else FindingQueue()
        self.aggregator = aggregator
        self.store = store
        self.clock = clock
        self.flush_interval = flush_interval
        self.backoff = backoff or Backoff()
        self._stop = threading.Event()
        self._wake = buffer.wake
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # serialises drain/flush between thread and shutdown
        self._drained = 0
        self._written = 0
        self._buffer_drops_seen = 0
        self._lost_in_pipeline = 0
        self._next_flush = 0.0
        self._retry_at = 0.0
        self._next_retention = 0.0
        self._next_fold = 0.0
        self._last_write = 0.0
        self._lost_at_shutdown = 0
        self._failing = False
        self._losing_since: int | None = None  # buffer drops count when the loss started
        self._last_drop_at = 0.0
        self._deadline = float("inf")
        self.store_failures = 0
        self.last_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread."""
        self._next_flush = time.monotonic() + self.flush_interval
        self._thread = threading.Thread(target=self._run, name="botpulse-pipeline", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Flush what is pending and stop; return False if something could not be written.

        Returns within about ``timeout`` seconds even if the store hangs.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        self._deadline = deadline
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning(
                    "botpulse: the store did not answer within %.1fs at shutdown; "
                    "%d events were not written",
                    timeout,
                    self.aggregator.pending_events + len(self.buffer),
                )
                return False
        return self.aggregator.pending_events == 0 and len(self.buffer) == 0

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - the thread must never die silently
            internal_error("pipeline", exc)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            due = self._next_flush if now >= self._retry_at else max(self._retry_at, now)
            self._wake.wait(max(0.0, due - now))
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                drained = self.drain()
                now = time.monotonic()
                # Woken from an idle sleep by an event: write it within the interval.
                # Gauge samples alone keep their slower pace (the next event wakes).
                if (
                    drained
                    and self._next_flush > now + self.flush_interval
                    and not (self.aggregator.only_gauges_pending() and self._arm())
                ):
                    self._next_flush = now + self.flush_interval
                if now >= self._next_flush and now >= self._retry_at:
                    busy = not self.aggregator.only_gauges_pending()
                    # Gauge samples alone (an idle bot's loop lag, its RSS) are written
                    # every _GAUGE_FLUSH_S: a write per second would be most of its cost.
                    if not busy and now - self._last_write < _GAUGE_FLUSH_S:
                        pass
                    elif self.flush(final=False):
                        self._last_write = now
                    self._next_flush = now + self.flush_interval
                    if now >= self._next_fold and not self._failing:
                        self._fold()
                    if now >= self._next_retention and not self._failing:
                        self._apply_retention()
                        self._next_retention = now + _RETENTION_EVERY_S
                    self._next_flush = self._idle_until(now, busy)
            except Exception as exc:  # noqa: BLE001
                internal_error("pipeline", exc)
        # Final flush on shutdown: everything, traces of the open minute included.
        # A transient failure (a lock held by another process) is retried until the
        # shutdown deadline instead of dropping what is pending after one attempt.
        try:
            self.drain()
            while not self.flush(final=True) and time.monotonic() < self._deadline - 0.35:
                time.sleep(0.1)
                self.drain()
            pending = self.aggregator.pending_events + len(self.buffer)
            if pending:
                self._lost_at_shutdown = pending
                logger.warning(
                    "botpulse: shutdown could not write %d events to %s (%s); they are lost",
                    pending,
                    self.store.describe(),
                    self.last_error or "no answer",
                )
        except Exception as exc:  # noqa: BLE001
            internal_error("pipeline", exc)

    def _idle_until(self, now: float, busy: bool) -> float:
        """When to wake next after a flush: one interval on, or, once a whole interval
        brought nothing to write, at the next event (the buffer is armed to wake the
        thread) or housekeeping.

        ``busy``: this flush had operations or traces to write. A bot that records
        anything each interval is never armed, so it pays one wake-up per interval, not
        two (the flush, then its first event)."""
        next_flush = now + self.flush_interval
        aggregator = self.aggregator
        if (
            busy
            or self._failing
            or len(self.buffer)
            or len(self.findings)
            or not aggregator.only_gauges_pending()  # the flush could not write it all
        ):
            return next_flush
        if aggregator.pending_events == 0:
            until = min(now + _IDLE_WAKE_S, self._next_fold, self._next_retention)
        else:  # gauge samples wait for their slower pace
            until = self._last_write + _GAUGE_FLUSH_S
        return max(next_flush, until) if self._arm() else next_flush

    def _arm(self) -> bool:
        """Make the next event wake the thread; False if one slipped in meanwhile."""
        self.buffer.arm_first()
        if len(self.buffer):
            self.buffer.rearm()
            return False
        return True

    def _fold(self) -> None:
        """Complete closed hour/day buckets, a few short transactions at a time."""
        try:
            done = self.store.fold(self.clock.time_ns() / 1e9, limit=_FOLD_SLICE)
        except StoreError as exc:
            logger.debug("botpulse: folding skipped: %s", exc)
            done = 0
        # More to do (after a restart, a long outage): come back at the next flush.
        self._next_fold = time.monotonic() + (0.0 if done >= _FOLD_SLICE else _FOLD_EVERY_S)

    # -- steps -------------------------------------------------------------------

    def drain(self) -> int:
        """Move buffered events into the aggregator; return how many."""
        with self._lock:
            total = 0
            while True:
                records = self.buffer.drain(_DRAIN_CHUNK)
                if not records:
                    break
                offset = self.clock.time_ns() - self.clock.perf_counter_ns()
                total += self.aggregator.add_records(records, offset)
            self.buffer.rearm()
            self._drained += total
            dropped = self.buffer.dropped
            if dropped > self._buffer_drops_seen:
                self.aggregator.note_drops(
                    "buffer_full", dropped - self._buffer_drops_seen, self.clock.time_ns()
                )
                if self._losing_since is None:
                    self._losing_since = self._buffer_drops_seen
                    logger.warning(
                        "botpulse: event buffer full (%d events); dropping and counting events",
                        self.buffer.capacity,
                    )
                self._buffer_drops_seen = dropped
                self._last_drop_at = time.monotonic()
            elif (
                self._losing_since is not None
                and time.monotonic() - self._last_drop_at >= _LOSS_QUIET_S
            ):
                # One line when loss stops, after a quiet second (not once per burst).
                logger.warning(
                    "botpulse: event buffer has room again; %d events were dropped",
                    dropped - self._losing_since,
                )
                self._losing_since = None
            return total

    def flush(self, *, final: bool = False) -> bool:
        """Write what is pending to the store; return True on success (or nothing to do)."""
        with self._lock:
            aggregator = self.aggregator
            if len(self.findings):
                aggregator.add_findings(self.findings.drain(), self.clock.time_ns())
            if _detect._detectors:
                aggregator.collect_findings(self.clock.time_ns())
            before = aggregator.pending_events
            now_ns = self.clock.time_ns()
            batch = aggregator.batch(None if final else now_ns)
            batch.now_ns = now_ns
            batch.final = final
            if not batch and not final:
                aggregator.commit()
                return True
            try:
                self.store.write(batch)
            except StoreError as exc:
                self._store_failed(exc)
                return False
            except Exception as exc:  # noqa: BLE001 - a store bug must not kill the thread
                self._store_failed(exc)
                internal_error("store.write", exc)
                return False
            aggregator.commit()
            self._written += before - aggregator.pending_events  # steps may wait for a flow
            if self._failing:
                logger.warning("botpulse: store %s is writable again", self.store.describe())
            self._failing = False
            self.backoff.reset()
            self._retry_at = 0.0
            return True

    def _store_failed(self, exc: Exception) -> None:
        self.store_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        delay = self.backoff.next_delay()
        self._retry_at = time.monotonic() + delay
        if not self._failing:
            logger.warning(
                "botpulse: cannot write to store %s (%s); keeping events in memory and "
                "retrying with backoff",
                self.store.describe(),
                exc,
            )
        else:
            logger.log(logging.DEBUG, "botpulse: store still failing: %s", exc)
        self._failing = True

    def _apply_retention(self) -> None:
        try:
            self.store.apply_retention(self.clock.time_ns() / 1e9)
        except StoreError as exc:
            logger.debug("botpulse: retention skipped: %s", exc)

    # -- introspection -----------------------------------------------------------

    def stats(self) -> Stats:
        """A snapshot of the counters."""
        buffered = len(self.buffer)
        # Never wait for the lock unboundedly: the thread may be stuck in a hung store write.
        locked = self._lock.acquire(timeout=0.05)
        try:
            dropped = {"buffer_full": self.buffer.dropped}
            lost = self.aggregator.lost_events
            if lost:
                dropped["store_unavailable"] = lost
            if self._lost_at_shutdown:
                dropped["shutdown"] = self._lost_at_shutdown
            pending = self._drained - self._written - lost
            if self._lost_at_shutdown:
                pending = max(0, pending - self._lost_at_shutdown + len(self.buffer))
                buffered = 0
            return Stats(
                recorded=self._drained + buffered + dropped["buffer_full"],
                written=self._written,
                pending=pending,
                buffered=buffered,
                dropped={k: v for k, v in dropped.items() if v},
                store_failures=self.store_failures,
                last_error=self.last_error,
            )
        finally:
            if locked:
                self._lock.release()
