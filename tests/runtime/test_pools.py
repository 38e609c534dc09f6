"""instrument_pool() against real executors and real SQLAlchemy/asyncpg/psycopg pools."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.servers import server_url

import botpulse
from botpulse.store import MemoryStore

_ALL = (0, 2**40)


def _hammer(acquire_and_hold, workers: int, seconds: float) -> None:  # type: ignore[no-untyped-def]
    stop = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < stop:
            acquire_and_hold()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _check_saturation(store: MemoryStore, name: str, size: int) -> dict:  # type: ignore[type-arg]
    findings = store.read_findings(*_ALL, type="pool_saturation")
    assert findings, "no pool_saturation finding"
    (finding,) = findings
    assert finding.subject == name
    details = finding.details
    assert details["size"] == size
    # 20 acquirers each holding ~20 ms: Little's law says ~20 are in the system.
    assert 12 <= details["littles_law_demand"] <= 24, (finding.count, dict(details))
    assert details["suggested_size"] >= 15
    assert details["suggested_size"] > size
    assert details["peak_in_use"] == size
    return details


def test_thread_pool_of_2_under_20_acquirers_is_saturated(memory_store: MemoryStore) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    executor = ThreadPoolExecutor(max_workers=2)
    monitor = botpulse.instrument_pool(
        executor, name="colorizer", saturation_after=0.6, sample_interval=0.05
    )
    _hammer(lambda: executor.submit(time.sleep, 0.02).result(), 20, 1.2)
    executor.shutdown()
    assert monitor.acquired == monitor.attempts > 20
    botpulse.shutdown()
    details = _check_saturation(memory_store, "colorizer", 2)
    assert details["mean_wait_ms"] > details["mean_hold_ms"]
    gauges = {k.name for k in memory_store.series() if k.kind == "gauge"}
    assert {"pool.colorizer.in_use", "pool.colorizer.waiting", "pool.colorizer.size"} <= gauges


def test_executor_wait_is_an_operation_of_the_submitting_flow() -> None:
    from botpulse.testing import capture

    with capture() as recorded:
        executor = ThreadPoolExecutor(max_workers=1)
        botpulse.instrument_pool(executor, name="exec")

        async def main() -> None:
            loop = asyncio.get_running_loop()
            async with botpulse.flow("render"):
                await asyncio.gather(
                    loop.run_in_executor(executor, time.sleep, 0.05),
                    loop.run_in_executor(executor, time.sleep, 0.05),
                )

        asyncio.run(main())
        executor.shutdown()
        (trace,) = recorded.traces("render")
        waits = sorted(c.duration_ns for c in trace.children if c.name == "pool.exec.acquire")
        assert len(waits) == 2
        assert waits[1] >= 0.04e9  # the second waited for the first
        assert recorded.count("pool.exec.acquire", kind="pool") == 2


def _double(x: int) -> int:
    return x * 2


def test_process_pool_work_is_timed_in_the_submitting_flow() -> None:
    from botpulse.testing import capture

    with capture() as recorded:
        executor = ProcessPoolExecutor(max_workers=1)
        botpulse.instrument_pool(executor, name="cpu")
        with botpulse.flow("crunch"):
            assert executor.submit(_double, 21).result() == 42
        executor.shutdown()
        (trace,) = recorded.traces("crunch")
        assert [c.name for c in trace.children] == ["cpu._double"]
        assert trace.children[0].kind == "executor"


def test_sqlalchemy_pool_of_2_under_20_acquirers(memory_store: MemoryStore, tmp_path: Path) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import QueuePool

    engine = create_engine(
        f"sqlite:///{tmp_path / 'app.db'}", poolclass=QueuePool, pool_size=2, max_overflow=0,
        pool_timeout=30,
    )  # fmt: skip
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    monitor = botpulse.instrument_pool(
        engine, name="db", saturation_after=0.6, sample_interval=0.05
    )

    def use() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
            time.sleep(0.02)

    _hammer(use, 20, 1.2)
    assert monitor.acquired == monitor.released > 20
    botpulse.shutdown()
    engine.dispose()
    _check_saturation(memory_store, "db", 2)


def test_unknown_objects_are_refused_with_a_clear_message() -> None:
    with pytest.raises(botpulse.ConfigurationError, match=r"does not know builtins\.dict"):
        botpulse.instrument_pool({}, name="x")
    with pytest.raises(botpulse.ConfigurationError, match="saturation_after"):
        botpulse.instrument_pool(ThreadPoolExecutor(1), name="x", saturation_after=0)


async def test_asyncpg_pool_of_2_under_20_acquirers(memory_store: MemoryStore) -> None:
    url = server_url("BOTPULSE_TEST_POSTGRES_URL", "PostgreSQL")
    import asyncpg

    pool = await asyncpg.create_pool(url, min_size=2, max_size=2)
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    monitor = botpulse.instrument_pool(pool, name="pg", saturation_after=0.6, sample_interval=0.05)

    async def worker(stop: float) -> None:
        while time.monotonic() < stop:
            async with pool.acquire() as conn:
                await conn.execute("select pg_sleep(0.02)")

    stop = time.monotonic() + 1.2
    await asyncio.gather(*(worker(stop) for _ in range(20)))
    assert monitor.acquired > 20
    await asyncio.sleep(0.1)
    botpulse.shutdown()
    await pool.close()
    _check_saturation(memory_store, "pg", 2)


def test_psycopg_pool_of_2_under_20_acquirers(memory_store: MemoryStore) -> None:
    url = server_url("BOTPULSE_TEST_POSTGRES_URL", "PostgreSQL")
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(url, min_size=2, max_size=2, timeout=30, open=True)
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    botpulse.instrument_pool(pool, name="pg", saturation_after=0.6, sample_interval=0.05)

    def use() -> None:
        with pool.connection() as conn:
            conn.execute("select pg_sleep(0.02)")

    _hammer(use, 20, 1.2)
    botpulse.shutdown()
    pool.close()
    _check_saturation(memory_store, "pg", 2)
