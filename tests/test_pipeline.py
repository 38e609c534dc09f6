"""The pipeline: drains, writes, survives a failing store, backs off, counts drops."""

from __future__ import annotations

import logging
import threading
import time

import pytest

import botpulse
from botpulse._aggregate import Aggregator
from botpulse._buffer import EventBuffer
from botpulse._capture import activate, deactivate
from botpulse._clock import ManualClock, SystemClock
from botpulse._pipeline import Backoff, Pipeline
from botpulse.errors import StoreUnavailable
from botpulse.store import Batch, MemoryStore


class FlakyStore(MemoryStore):
    """A memory store whose writes fail while ``down`` is set (an outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = threading.Event()
        self.attempts = 0

    def write(self, batch: Batch) -> None:
        self.attempts += 1
        if self.down.is_set():
            raise StoreUnavailable("store is down")
        super().write(batch)


def test_backoff_doubles_with_jitter_and_caps() -> None:
    backoff = Backoff(seed=1)
    delays = [backoff.next_delay() for _ in range(10)]
    for i, delay in enumerate(delays):
        base = min(60.0, 2.0**i)
        assert 0.8 * base <= delay <= 1.2 * base
    backoff.reset()
    assert 0.8 <= backoff.next_delay() <= 1.2


def _pipeline(store: MemoryStore, capacity: int = 1000) -> Pipeline:
    buffer = EventBuffer(capacity)
    activate(time.perf_counter_ns, buffer)
    return Pipeline(buffer, Aggregator("s", "i"), store, SystemClock(), flush_interval=0.05,
                    backoff=Backoff(initial=0.01, seed=1))  # fmt: skip


def test_outage_keeps_events_and_writes_them_after_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    pipeline = _pipeline(store)
    try:
        store.down.set()
        with caplog.at_level(logging.WARNING, logger="botpulse"):
            for _ in range(3):
                for _ in range(10):
                    with botpulse.measure("x"):
                        pass
                pipeline.drain()
                assert pipeline.flush() is False
            assert store.series() == []
            stats = pipeline.stats()
            assert (stats.recorded, stats.written, stats.pending) == (30, 0, 30)
            assert stats.store_failures == 3
            assert "store is down" in (stats.last_error or "")
            store.down.clear()
            assert pipeline.flush() is True
    finally:
        deactivate()
    outage_lines = [r for r in caplog.records if "cannot write" in r.getMessage()]
    recovery_lines = [r for r in caplog.records if "writable again" in r.getMessage()]
    assert len(outage_lines) == 1
    assert len(recovery_lines) == 1
    (rollup,) = store.summarize(0, time.time() + 60).rollups.values()
    assert rollup.count == 30
    assert pipeline.stats().written == 30


def test_full_buffer_drops_are_counted_and_stored() -> None:
    store = MemoryStore()
    pipeline = _pipeline(store, capacity=100)
    try:
        for _ in range(250):
            with botpulse.measure("x"):
                pass
        pipeline.drain()
        pipeline.flush(final=True)
    finally:
        deactivate()
    stats = pipeline.stats()
    assert (stats.recorded, stats.written, stats.dropped) == (250, 100, {"buffer_full": 150})
    assert store.read_drops(0, time.time() + 60) == {"buffer_full": 150}


def test_background_thread_writes_every_flush_interval() -> None:
    store = MemoryStore()
    botpulse.init(store=store, flush_interval=0.05)
    with botpulse.measure("bg"):
        pass
    deadline = time.monotonic() + 30  # generous: the machine may be loaded
    while botpulse.stats().written < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [k.name for k in store.series()] == ["bg"]
    stats = botpulse.stats()
    assert (stats.recorded, stats.written, stats.pending, stats.dropped) == (1, 1, 0, {})


def test_pipeline_does_not_measure_itself() -> None:
    store = MemoryStore()
    botpulse.init(store=store, flush_interval=0.01)
    with botpulse.measure("only_this"):
        pass
    time.sleep(0.2)
    botpulse.shutdown()
    assert [k.name for k in store.series()] == ["only_this"]


T0_NS = 1_700_006_400 * 10**9  # a minute boundary


def _manual_pipeline(store: MemoryStore, clock: ManualClock, capacity: int) -> Pipeline:
    """A pipeline with no thread, on a manual clock: the test calls drain() and flush()."""
    buffer = EventBuffer(capacity)
    activate(clock.perf_counter_ns, buffer)
    return Pipeline(buffer, Aggregator("s", "i"), store, clock, flush_interval=3600)


def _record(n: int, name: str = "x") -> None:
    for _ in range(n):
        with botpulse.measure(name):
            pass


def test_drops_are_counted_once_across_drains() -> None:
    store = MemoryStore()
    clock = ManualClock(wall_ns=T0_NS + 10**9)
    pipeline = _manual_pipeline(store, clock, capacity=100)
    try:
        _record(250)  # 100 kept, 150 dropped
        assert pipeline.drain() == 100
        clock.advance(60)
        _record(130)  # the buffer is empty again: 100 kept, 30 dropped
        assert pipeline.drain() == 100
        assert pipeline.drain() == 0  # nothing new: no drop counted again
        clock.advance(60)
        assert pipeline.drain() == 0
        assert pipeline.flush(final=True) is True
    finally:
        deactivate()
    stats = pipeline.stats()
    assert (stats.recorded, stats.written, stats.pending) == (380, 200, 0)
    assert stats.dropped == {"buffer_full": 180}
    t0 = T0_NS // 10**9
    assert store.read_drops(t0, t0 + 180) == {"buffer_full": 180}
    assert store.read_drops(t0, t0 + 60) == {"buffer_full": 150}
    assert store.read_drops(t0 + 60, t0 + 120) == {"buffer_full": 30}
    assert store.read_drops(t0 + 120, t0 + 180) == {}
    (rollup,) = store.summarize(t0, t0 + 180, now=t0 + 180).rollups.values()
    assert rollup.count == 200


def test_a_drain_larger_than_one_chunk_keeps_every_event() -> None:
    from botpulse._pipeline import _DRAIN_CHUNK

    n = 2 * _DRAIN_CHUNK + 123  # two full chunks and a short last one
    store = MemoryStore()
    clock = ManualClock(wall_ns=T0_NS + 10**9)
    pipeline = _manual_pipeline(store, clock, capacity=n + 10)
    try:
        _record(n)
        assert len(pipeline.buffer) == n
        assert pipeline.drain() == n
        assert len(pipeline.buffer) == 0
        assert pipeline.flush(final=True) is True
    finally:
        deactivate()
    stats = pipeline.stats()
    assert (stats.recorded, stats.written, stats.pending, stats.dropped) == (n, n, 0, {})
    t0 = T0_NS // 10**9
    (rollup,) = store.summarize(t0, t0 + 60, now=t0 + 60).rollups.values()
    assert rollup.count == n


class _CountingEvent(threading.Event):
    """The buffer's wake event, counting how often the pipeline thread waited on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        return super().wait(timeout)


def test_an_idle_pipeline_sleeps_until_the_next_event_then_writes_it_within_the_interval() -> None:
    from botpulse import _capture

    store = MemoryStore()
    buffer = EventBuffer(1000)
    buffer.wake = wake = _CountingEvent()
    activate(time.perf_counter_ns, buffer)
    pipeline = Pipeline(buffer, Aggregator("s", "i"), store, SystemClock(), flush_interval=0.05)
    pipeline.start()
    try:
        time.sleep(1.0)  # 20 flush intervals with nothing to write
        assert wake.waits <= 3  # not one wake-up per interval
        assert _capture._capacity == -1  # armed: the next event wakes the thread
        t0 = time.monotonic()
        with botpulse.measure("late"):
            pass
        while pipeline.stats().written < 1 and time.monotonic() - t0 < 30:
            time.sleep(0.005)
        # Well under the idle sleep (10 s), even on a loaded machine.
        assert time.monotonic() - t0 < 5.0
        assert [k.name for k in store.series()] == ["late"]
        deadline = time.monotonic() + 30
        while _capture._capacity != -1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _capture._capacity == -1  # idle again after writing it
    finally:
        pipeline.stop()
        deactivate()
