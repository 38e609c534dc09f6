"""measure(), flow() and checkpoint(): what the hot path records, through a real pipeline."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import botpulse
from botpulse import ManualClock
from botpulse._capture import MAX_CHILDREN
from botpulse.store import MemoryStore, SeriesFilter

T0 = 1_700_000_000


def _summary(store: MemoryStore) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    """(name, kind, status) -> (count, min_ns, max_ns) over everything stored."""
    summary = store.summarize(T0 - 86400, T0 + 86400, now=T0)
    return {
        (name, kind, status): (r.count, r.min_ns, r.max_ns)
        for (_service, name, kind, status), r in summary.rollups.items()
    }


def _traces(store: MemoryStore, name: str | None = None) -> list[botpulse.store.TraceSample]:
    return store.read_traces(T0 - 86400, T0 + 86400, SeriesFilter(name=name), limit=100)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall_ns=T0 * 10**9)


@pytest.fixture
def store(clock: ManualClock) -> MemoryStore:
    store = MemoryStore()
    botpulse.init(store=store, service="svc", instance="i1", clock=clock, flush_interval=0.05)
    return store


def test_with_records_duration_from_the_injected_clock(
    store: MemoryStore, clock: ManualClock
) -> None:
    with botpulse.measure("db.load", kind="db", table="players"):
        clock.advance(0.25)
    botpulse.shutdown()
    assert _summary(store) == {("db.load", "db", "ok"): (1, 250_000_000, 250_000_000)}


def test_decorator_sync_and_async_return_values_untouched(
    store: MemoryStore, clock: ManualClock
) -> None:
    marker = object()

    @botpulse.measure("sync_step")
    def sync_step(x: int) -> object:
        clock.advance(0.01)
        return marker if x else None

    @botpulse.measure("async_step", kind="http")
    async def async_step() -> object:
        clock.advance(0.02)
        return marker

    assert sync_step(1) is marker
    assert asyncio.run(async_step()) is marker
    assert sync_step.__name__ == "sync_step"
    assert asyncio.iscoroutinefunction(async_step)
    botpulse.shutdown()
    assert _summary(store) == {
        ("sync_step", "op", "ok"): (1, 10_000_000, 10_000_000),
        ("async_step", "http", "ok"): (1, 20_000_000, 20_000_000),
    }


def test_exception_marks_error_and_is_reraised_as_the_same_object(store: MemoryStore) -> None:
    boom = LookupError("nope")
    with pytest.raises(LookupError) as info, botpulse.measure("fails"):
        raise boom
    assert info.value is boom

    @botpulse.flow("cmd")
    async def cmd() -> None:
        raise boom

    with pytest.raises(LookupError) as info2:
        asyncio.run(cmd())
    assert info2.value is boom
    botpulse.shutdown()
    summary = _summary(store)
    assert summary[("fails", "op", "error")][0] == 1
    assert summary[("cmd", "flow", "error")][0] == 1
    (trace,) = _traces(store, "cmd")
    assert trace.error == "LookupError"
    assert "error" in trace.reason.split(",")


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, asyncio.CancelledError])
def test_base_exceptions_propagate_and_are_recorded_cancelled(
    store: MemoryStore, exc_type: type[BaseException]
) -> None:
    with pytest.raises(exc_type), botpulse.measure("interrupted"):
        raise exc_type()
    botpulse.shutdown()
    assert _summary(store)[("interrupted", "op", "cancelled")][0] == 1


def test_cancelled_task_records_cancelled(store: MemoryStore) -> None:
    async def main() -> None:
        async def slow() -> None:
            async with botpulse.measure("slow"):
                await asyncio.sleep(10)

        task = asyncio.create_task(slow())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    botpulse.shutdown()
    assert _summary(store)[("slow", "op", "cancelled")][0] == 1


def test_flow_tree_with_checkpoints_nesting_and_gathered_tasks(
    store: MemoryStore, clock: ManualClock
) -> None:
    async def fetch(i: int) -> int:
        async with botpulse.measure("http.fetch", kind="http", i=i):
            await asyncio.sleep(0)
            return i

    async def main() -> list[int]:
        async with botpulse.flow("leaderboard", guild=7) as f:
            clock.advance(0.001)
            f.checkpoint("guard_checks")
            with botpulse.measure("db.rows", kind="db"):
                clock.advance(0.1)
                with botpulse.measure("db.decode"):
                    clock.advance(0.01)
            botpulse.checkpoint("rows_loaded")
            f.set(rows=3)
            return list(await asyncio.gather(fetch(1), fetch(2)))

    assert asyncio.run(main()) == [1, 2]
    botpulse.shutdown()
    (trace,) = _traces(store, "leaderboard")
    assert trace.duration_ns == 111_000_000
    assert [(c.name, c.at_ns) for c in trace.checkpoints] == [
        ("guard_checks", 1_000_000),
        ("rows_loaded", 111_000_000),
    ]
    children = sorted((c.start_ns, c.name, c.depth, c.duration_ns) for c in trace.children)
    assert children == [
        (1_000_000, "db.rows", 1, 110_000_000),
        (101_000_000, "db.decode", 2, 10_000_000),
        (111_000_000, "http.fetch", 1, 0),
        (111_000_000, "http.fetch", 1, 0),
    ]
    assert trace.attrs == {"guild": 7, "rows": 3}
    assert sorted(c.attrs.get("i") for c in trace.children if c.name == "http.fetch") == [1, 2]


def test_operations_outside_flows_have_no_parent_and_flows_nest(store: MemoryStore) -> None:
    with botpulse.flow("outer"), botpulse.flow("inner"), botpulse.measure("step"):
        pass
    with botpulse.measure("free"):
        pass
    assert botpulse.current_flow() is None
    botpulse.shutdown()
    outer = _traces(store, "outer")[0]
    inner = _traces(store, "inner")[0]
    assert [(c.name, c.kind, c.depth) for c in outer.children] == [("inner", "flow", 1)]
    assert [(c.name, c.depth) for c in inner.children] == [("step", 1)]
    assert set(_summary(store)) == {
        ("outer", "flow", "ok"),
        ("inner", "flow", "ok"),
        ("step", "op", "ok"),
        ("free", "op", "ok"),
    }


def test_children_beyond_the_cap_are_counted_not_kept(store: MemoryStore) -> None:
    with botpulse.flow("chatty"):
        for _ in range(MAX_CHILDREN + 10):
            with botpulse.measure("q", kind="db"):
                pass
    botpulse.shutdown()
    (trace,) = _traces(store, "chatty")
    assert len(trace.children) == MAX_CHILDREN
    assert trace.truncated == 10
    assert _summary(store)[("q", "db", "ok")][0] == MAX_CHILDREN + 10


def test_flow_used_from_threads_via_to_thread_attaches_children(store: MemoryStore) -> None:
    def blocking() -> str:
        with botpulse.measure("db.sync", kind="db"):
            return threading.current_thread().name

    async def main() -> str:
        async with botpulse.flow("cmd"):
            return await asyncio.to_thread(blocking)

    assert asyncio.run(main()) != threading.current_thread().name
    botpulse.shutdown()
    (trace,) = _traces(store, "cmd")
    assert [c.name for c in trace.children] == ["db.sync"]


def test_before_init_and_after_shutdown_are_noops_and_decorators_wake_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    calls = []

    @botpulse.measure("early")
    def early() -> int:
        calls.append(1)
        return 42

    with botpulse.measure("before") as m, botpulse.flow("f") as f:
        f.checkpoint("x")
        m.set(a=1)
    assert early() == 42
    store = MemoryStore()
    botpulse.init(store=store)
    assert early() == 42
    botpulse.shutdown()
    assert early() == 42
    with botpulse.measure("after"):
        pass
    names = {name for (_s, name, _k, _st) in store.summarize(0, time.time() + 60).rollups}
    assert names == {"early"}
    assert len(calls) == 3


def test_noop_is_cheap_objects_not_recording() -> None:
    timer = botpulse.measure("x")
    with timer as entered:
        pass
    assert entered is timer
    assert botpulse.stats() is None


def test_stats_account_for_every_event(store: MemoryStore) -> None:
    for _ in range(1000):
        with botpulse.measure("a"):
            pass
    final = botpulse.shutdown()
    assert final is not None
    assert final.recorded == 1000
    assert final.written == 1000
    assert final.pending == final.buffered == final.dropped_total == 0


def test_repr_names_the_operation() -> None:
    assert repr(botpulse.measure("db.x", kind="db")) == "<botpulse.Timer 'db.x' kind='db'>"
    assert repr(botpulse.flow("cmd")) == "<botpulse.Flow 'cmd' kind='flow'>"
