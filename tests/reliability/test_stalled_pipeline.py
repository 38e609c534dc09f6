"""A store that hangs: ``shutdown()`` still returns within its timeout and says what it
could not write, and memory stays bounded however much the bot records meanwhile."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import tracemalloc

import pytest

import botpulse
from botpulse import _config

from .helpers import NO_RUNTIME, HangingStore, warnings_of


def _flush_stuck(store: HangingStore) -> None:
    """Record one event and wait until the pipeline is blocked inside ``store.write``."""
    with botpulse.measure("first"):
        pass
    assert store.entered.wait(60), "the pipeline never tried to write"


def test_shutdown_returns_within_timeout_when_the_store_hangs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="botpulse")
    store = HangingStore(fail_after_release=True)
    botpulse.init(store=store, service="hang", instance="i", flush_interval=0.05)
    _flush_stuck(store)
    for _ in range(149):
        with botpulse.measure("later"):
            pass

    outcome: dict[str, object] = {}

    def stop() -> None:
        started = time.monotonic()
        outcome["stats"] = botpulse.shutdown(timeout=1)
        outcome["elapsed"] = time.monotonic() - started

    stopper = threading.Thread(target=stop)
    stopper.start()
    # The store hangs until released: a shutdown that ignored its timeout would still be
    # blocked after this generous wait.
    stopper.join(30.0)
    returned_in_time = not stopper.is_alive()
    store.release()  # let the hung "server" go so everything unwinds
    stopper.join(30)

    assert returned_in_time, "shutdown(timeout=1) was still blocked after 30 s"
    assert outcome["elapsed"] < 1 + 1.5  # type: ignore[operator]  # timeout + scheduling slack
    stats = outcome["stats"]
    assert isinstance(stats, botpulse.Stats)
    assert stats.written == 0
    assert stats.recorded == 150
    assert stats.pending + stats.buffered == 150
    assert stats.pending > 0
    logged = warnings_of(caplog, containing="did not answer")
    assert len(logged) == 1
    assert "150 events were not written" in logged[0]


@pytest.mark.slow
def test_one_million_events_with_a_stalled_pipeline_keep_memory_bounded() -> None:
    """The store hangs, so nothing drains; the bot records 1M more events. The buffer
    stays at its capacity, every refused event is counted, and traced allocations grow by
    at most the buffer's worth (capacity x 512 B, + 1 MiB slack), not by 1M records."""
    capacity = 10_000
    produced = 1_000_000
    store = HangingStore()
    botpulse.init(
        store=store, service="flood", instance="i", flush_interval=0.05, buffer_size=capacity,
        **NO_RUNTIME,
    )  # fmt: skip
    _flush_stuck(store)
    running = _config._running  # white-box: the buffer itself, to check its bound
    assert running is not None
    buffer = running.buffer
    assert len(buffer) == 0

    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        longest = 0
        chunk = 50_000
        for _ in range(produced // chunk):
            for _ in itertools.repeat(None, chunk):
                with botpulse.measure("flood"):
                    pass
            longest = max(longest, len(buffer))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(buffer) == capacity  # one producer thread: exactly full, never over
    assert longest <= capacity
    assert buffer.dropped == produced - capacity
    bound = capacity * 512 + 2**20
    assert peak - baseline <= bound, f"peak grew {(peak - baseline) / 2**20:.1f} MiB"

    store.release()
    final = botpulse.shutdown(timeout=30)
    assert final is not None
    assert final.recorded == produced + 1
    assert final.dropped == {"buffer_full": produced - capacity}
    assert (final.written, final.pending, final.buffered) == (capacity + 1, 0, 0)
    drops = store.read_drops(time.time() - 3600, time.time() + 3600)
    assert drops == {"buffer_full": produced - capacity}
