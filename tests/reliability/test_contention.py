"""Many writers at once (threads behind a Barrier with a tiny switch interval, hundreds of
asyncio tasks, several processes): the store's counts equal what was recorded, exactly."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import botpulse
from botpulse.analysis import build_report
from botpulse.store import open_store

from .helpers import NO_RUNTIME, stored_by_instance, stored_counts, warnings_of

pytestmark = pytest.mark.slow

THREADS = 8
EVENTS_PER_THREAD = 20_000
TASKS = 500
EVENTS_PER_TASK = 100
RECORDER = Path(__file__).with_name("_recorder.py")

Key = tuple[str, str, str]


class Boom(Exception):
    """The handler's own failure."""


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can (restored afterwards)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _thread_worker(
    barrier: threading.Barrier, expected: Counter[Key], lock: threading.Lock
) -> None:
    """20k events: per turn a flow with two children, a checkpoint, and a bare op (some fail)."""
    mine: Counter[Key] = Counter()
    barrier.wait()
    for i in range(EVENTS_PER_THREAD // 4):
        with botpulse.flow("thread.cmd") as f:
            with botpulse.measure("thread.db", kind="db"):
                pass
            f.checkpoint("loaded")
            with botpulse.measure("thread.render"):
                pass
        try:
            with botpulse.measure("thread.op"):
                if i % 7 == 0:
                    raise Boom
        except Boom:
            mine["thread.op", "op", "error"] += 1
        else:
            mine["thread.op", "op", "ok"] += 1
        mine["thread.cmd", "flow", "ok"] += 1
        mine["thread.db", "db", "ok"] += 1
        mine["thread.render", "op", "ok"] += 1
    with lock:
        expected.update(mine)


async def _task_worker(gate: asyncio.Event) -> None:
    """100 events: per turn a flow, a child, and two child tasks spawned inside the flow."""
    await gate.wait()

    async def fetch() -> None:
        async with botpulse.measure("task.fetch", kind="http"):
            await asyncio.sleep(0)

    for _ in range(EVENTS_PER_TASK // 4):
        async with botpulse.flow("task.cmd"):
            async with botpulse.measure("task.db", kind="db"):
                await asyncio.sleep(0)
            await asyncio.gather(fetch(), fetch())


def _run_tasks(barrier: threading.Barrier) -> None:
    async def main() -> None:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(_task_worker(gate)) for _ in range(TASKS)]
        await asyncio.sleep(0)
        barrier.wait()
        gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())


def _record_everything() -> Counter[Key]:
    """Run the 8 threads and the 500 tasks (in a 9th thread) together; return what they did."""
    expected: Counter[Key] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS + 1)
    threads = [
        threading.Thread(target=_thread_worker, args=(barrier, expected, lock))
        for _ in range(THREADS)
    ]
    threads.append(threading.Thread(target=_run_tasks, args=(barrier,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    per_task = EVENTS_PER_TASK // 4
    expected["task.cmd", "flow", "ok"] += TASKS * per_task
    expected["task.db", "db", "ok"] += TASKS * per_task
    expected["task.fetch", "http", "ok"] += 2 * TASKS * per_task
    return expected


def test_threads_and_tasks_store_exact_counts(sqlite_url: str, tiny_switch_interval: None) -> None:
    """8 threads x 20k events and 500 tasks x 100 events at once: counts are exact."""
    botpulse.init(
        store=sqlite_url,
        service="contention",
        instance="one",
        flush_interval=0.05,
        buffer_size=1_000_000,
        **NO_RUNTIME,
    )
    expected = _record_everything()
    final = botpulse.shutdown(timeout=60)

    total = THREADS * EVENTS_PER_THREAD + TASKS * EVENTS_PER_TASK
    assert sum(expected.values()) == total
    assert final is not None
    assert (final.recorded, final.written, final.pending, final.buffered) == (total, total, 0, 0)
    assert final.dropped == {}
    counts = stored_counts(sqlite_url, service="contention")
    # Exactly what was recorded, and nothing else: botpulse never measures its own writes.
    assert counts == expected


def test_tiny_buffer_drops_are_counted_exactly(sqlite_url: str, tiny_switch_interval: None) -> None:
    """With a 100-event buffer most events are dropped: stored + dropped == recorded, exactly,
    and the report shows the same drop count as ``stats()``."""
    started = datetime.now(timezone.utc) - timedelta(minutes=1)
    botpulse.init(
        store=sqlite_url, service="tiny", instance="one", flush_interval=0.05, buffer_size=100,
        **NO_RUNTIME,
    )  # fmt: skip
    expected = _record_everything()
    final = botpulse.shutdown(timeout=60)

    total = sum(expected.values())
    assert final is not None
    dropped = final.dropped.get("buffer_full", 0)
    assert dropped > 0
    assert set(final.dropped) == {"buffer_full"}
    assert final.recorded == total
    assert (final.pending, final.buffered) == (0, 0)
    stored = stored_counts(sqlite_url, service="tiny")
    assert sum(stored.values()) == final.written
    assert sum(stored.values()) + dropped == total
    for key, count in stored.items():  # no series got more than was recorded
        assert count <= expected[key], key
    with open_store(sqlite_url, create=False) as store:
        report = build_report(
            store, started, datetime.now(timezone.utc) + timedelta(minutes=1), top=0
        )
    assert report.dropped_events == dropped
    assert report.dropped_by_reason == {"buffer_full": dropped}


def test_buffer_loss_logs_once_when_it_starts_and_once_when_it_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RELIABILITY.md: 'when full, events are dropped and counted exactly, with one log line
    when loss starts and one when it stops' (not one line per drain that saw drops)."""
    caplog.set_level(logging.DEBUG, logger="botpulse")
    botpulse.init(store="memory://", service="loss", instance="one", buffer_size=100)
    for _ in range(60_000):  # one long burst far beyond the buffer: many drains see drops
        with botpulse.measure("burst"):
            pass
    stats = botpulse.stats()
    assert stats is not None
    assert stats.dropped["buffer_full"] > 0
    for _ in range(150):  # normal traffic again for 1.5 s (> the 1 s quiet period): loss is over
        with botpulse.measure("calm"):
            pass
        time.sleep(0.01)
    stats = botpulse.stats()
    assert stats is not None
    logged = warnings_of(caplog)
    assert len(logged) == 2, f"expected one line when loss starts and one when it stops: {logged}"
    assert any(word in logged[0].lower() for word in ("drop", "lost", "losing"))
    assert str(stats.dropped["buffer_full"]) in logged[1]  # says how many were lost


def test_processes_writing_one_sqlite_file_store_exact_counts(tmp_path: Path) -> None:
    """Four processes record 20k events each into the same SQLite file concurrently."""
    path = tmp_path / "shared.db"
    url = f"sqlite:///{path}"
    per_process = 20_000
    procs = [
        subprocess.Popen(
            [sys.executable, str(RECORDER), "count", url, f"proc-{i}", str(per_process)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    for i, result in enumerate(results):
        assert result["recorded"] == per_process, result
        assert result["written"] == per_process, (i, result)
        assert result["dropped"] == {}
    by_instance = stored_by_instance(url)
    for i in range(4):
        mine = {k[1:]: n for k, n in by_instance.items() if k[0] == f"proc-{i}"}
        assert mine == {
            ("cmd", "flow", "ok"): per_process // 2,
            ("db.query", "db", "ok"): per_process // 2,
        }
    assert sum(by_instance.values()) == 4 * per_process
