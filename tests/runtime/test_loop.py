"""The event-loop monitor against a real asyncio loop: blocking calls, lag, sync work per flow."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import time
from pathlib import Path

import pytest

import botpulse
from botpulse.analysis.report import build_report
from botpulse.runtime import current
from botpulse.store import MemoryStore

_ALL = (0, 2**40)
HERE = (
    str(Path(__file__).relative_to(Path.cwd()))
    if Path.cwd() in Path(__file__).parents
    else __file__
)


def _line_of(function: object, marker: str) -> int:
    lines, first = inspect.getsourcelines(function)  # type: ignore[arg-type]
    return first + next(i for i, text in enumerate(lines) if marker in text)


@botpulse.flow("stats")
async def stats_handler() -> None:
    await asyncio.sleep(0)
    time.sleep(0.3)  # the blocking line
    await asyncio.sleep(0)


@botpulse.flow("crunch")
async def crunch_handler() -> None:
    await asyncio.sleep(0)
    deadline = time.perf_counter() + 0.3
    any(time.perf_counter() > deadline for _ in itertools.count())  # the CPU-bound line
    await asyncio.sleep(0)


async def _settle(monitor_seconds: float = 0.25) -> None:
    # The watchdog reports once the loop has run again; give it a few polls.
    await asyncio.sleep(monitor_seconds)


async def test_time_sleep_in_a_handler_is_exactly_one_blocking_call(
    memory_store: MemoryStore,
) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", flush_interval=0.05)
    await asyncio.create_task(stats_handler())
    await _settle()
    botpulse.shutdown()
    findings = memory_store.read_findings(*_ALL, type="blocking_call")
    assert len(findings) == 1, findings
    (finding,) = findings
    line = _line_of(stats_handler, "# the blocking line")
    assert finding.subject == f"{HERE}:{line}"
    assert finding.flow == "stats"
    assert finding.source == f"{HERE}:{line} in stats_handler"
    assert finding.count == 1
    assert 0.28e9 <= finding.max_ns <= 2e9
    assert "asyncio.to_thread" in finding.details["advice"]


async def test_a_cpu_bound_loop_in_a_handler_is_one_blocking_call(
    memory_store: MemoryStore,
) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", flush_interval=0.05)
    await asyncio.create_task(crunch_handler())
    await _settle()
    botpulse.shutdown()
    (finding,) = memory_store.read_findings(*_ALL, type="blocking_call")
    assert finding.subject == f"{HERE}:{_line_of(crunch_handler, '# the CPU-bound line')}"
    assert finding.flow == "crunch"
    assert finding.max_ns >= 0.28e9


async def test_repeated_blocks_at_one_place_merge_with_counts(memory_store: MemoryStore) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", flush_interval=0.05)
    for _ in range(3):
        await asyncio.create_task(stats_handler())
        await _settle(0.1)
    await _settle()
    botpulse.shutdown()
    (finding,) = memory_store.read_findings(*_ALL, type="blocking_call")
    assert finding.count == 3
    assert finding.total_ns >= 3 * 0.28e9


def test_init_before_the_loop_runs_attaches_once_it_does(memory_store: MemoryStore) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", flush_interval=0.05)

    async def main() -> None:
        await asyncio.sleep(0.7)  # the runtime thread finds the loop (every 0.5 s)
        await asyncio.create_task(stats_handler())
        await _settle()

    asyncio.run(main())
    botpulse.shutdown()
    (finding,) = memory_store.read_findings(*_ALL, type="blocking_call")
    assert finding.flow == "stats"


def test_a_program_without_asyncio_gets_resources_and_no_loop(memory_store: MemoryStore) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=0.1)
    time.sleep(0.35)
    runtime = current()
    assert runtime is not None
    assert runtime.monitor is None
    botpulse.shutdown()
    names = {key.name for key in memory_store.series() if key.kind == "gauge"}
    assert {"process.cpu_percent", "process.rss_mb", "process.threads", "gc.collections"} <= names
    assert not any(name.startswith("loop.") for name in names)


_IDLE_BOT = """
import asyncio, json, time
import botpulse
from botpulse.analysis.report import build_report
from botpulse.store import MemoryStore
from datetime import datetime, timezone

async def control():
    # The same idle loop without botpulse: how late this machine wakes a sleeping loop.
    lags = []
    for _ in range(60):
        due = time.perf_counter() + 0.05
        await asyncio.sleep(0.05)
        lags.append((time.perf_counter() - due) * 1e3)
    return max(lags)

async def main():
    baseline = await control()
    store = MemoryStore()
    botpulse.init(store=store, service="bot", instance="i", resources_interval=None)
    await asyncio.sleep(8.5)  # an idle bot: nothing runs but botpulse
    botpulse.shutdown()
    now = time.time()
    report = build_report(store, datetime.fromtimestamp(now - 600, tz=timezone.utc),
                          datetime.fromtimestamp(now + 60, tz=timezone.utc), kind="gauge")
    (lag,) = [op for op in report.operations if op.name == "loop.lag_ms"]
    print(json.dumps({"count": lag.count, "p50": lag.p50_ms, "p99": lag.p99_ms,
                      "control_p99": baseline}))

asyncio.run(main())
"""


def test_an_idle_loop_shows_lag_p99_under_5_ms() -> None:
    # A fresh interpreter, as an idle bot is: the test suite's own heap would add GC pauses.
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _IDLE_BOT], capture_output=True, text=True, check=True, timeout=60
    )
    lag = json.loads(out.stdout.strip().splitlines()[-1])
    assert lag["count"] >= 7  # one sample a second
    # Under 5 ms; on a machine so loaded that a bare asyncio loop already wakes later than
    # that (its worst of 60 wake-ups), the monitor may add at most 1 ms to it.
    assert lag["p99"] < max(5.0, lag["control_p99"] + 1.0), lag


def _from(seconds: float):  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _busy(ms: float) -> None:
    deadline = time.perf_counter() + ms / 1000
    while time.perf_counter() < deadline:  # the sync work
        pass


@botpulse.flow("photo")
async def photo_handler() -> None:
    for _ in range(2):  # like the cv2 and md5 steps of the aiogram report: 12 ms each
        _busy(12)
        await asyncio.sleep(0.001)


async def test_sync_work_on_the_loop_is_timed_per_flow(memory_store: MemoryStore) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    # About a second of sync work on the loop: the watchdog samples where it goes every
    # quarter of a second while a step runs.
    for _ in range(36):
        await asyncio.create_task(photo_handler())
    await asyncio.gather(*(asyncio.create_task(photo_handler()) for _ in range(4)))
    botpulse.shutdown()
    now = time.time()
    report = build_report(memory_store, _from(now - 600), _from(now + 60))
    (on_loop,) = [op for op in report.operations if op.kind == "on_loop"]
    assert on_loop.name == "photo.on_loop"
    assert on_loop.count == 40
    assert 23.5 <= on_loop.p50_ms <= 300  # 24 ms of spinning, stretched on a busy machine
    (finding,) = memory_store.read_findings(*_ALL, type="sync_on_loop")
    assert finding.flow == "photo"
    assert finding.count == 40
    assert finding.details["on_loop_ms_per_run"] >= 23.5
    frames = [f["frame"] for f in finding.details["heaviest_frames"]]
    assert frames
    assert all(f.startswith(f"{HERE}:") and f.endswith("in _busy") for f in frames)


async def test_short_sync_steps_do_not_make_a_finding(memory_store: MemoryStore) -> None:
    @botpulse.flow("quick")
    async def quick() -> None:
        await asyncio.sleep(0.005)

    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    await asyncio.gather(*(asyncio.create_task(quick()) for _ in range(20)))
    botpulse.shutdown()
    assert memory_store.read_findings(*_ALL, type="sync_on_loop") == []
    assert memory_store.read_findings(*_ALL, type="blocking_call") == []


async def test_shutdown_restores_the_task_factory() -> None:
    loop = asyncio.get_running_loop()
    before = loop.get_task_factory()
    botpulse.init(store="memory://", resources_interval=None)
    assert loop.get_task_factory() is not before
    botpulse.shutdown()
    await asyncio.sleep(0)
    assert loop.get_task_factory() is before


async def test_wrapped_tasks_behave_like_plain_ones() -> None:
    botpulse.init(store="memory://", resources_interval=None)

    async def work(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise ValueError(x)
        return x * 2

    assert await asyncio.create_task(work(21)) == 42
    with pytest.raises(ValueError, match="-1"):
        await asyncio.create_task(work(-1))
    slow = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    slow.cancel()
    results = await asyncio.gather(slow, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    pending = asyncio.create_task(work(1))
    assert "work" in repr(pending)
    await asyncio.sleep(0)
    assert [f.f_code.co_name for f in pending.get_stack()] == ["work"]
    assert await pending == 2
    assert threading.current_thread() is threading.main_thread()


async def test_a_block_in_a_plain_callback_is_found_through_the_heartbeat(
    memory_store: MemoryStore,
) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    loop = asyncio.get_running_loop()

    def on_timer() -> None:
        time.sleep(1.3)  # the callback's blocking line

    # A callback, not a task: no step timer, only the heartbeat (once a second) sees it.
    loop.call_soon(on_timer)
    await _settle(0.3)
    botpulse.shutdown()
    # On a loaded machine the heartbeat may also see the OS pause the loop elsewhere;
    # the callback's block must be there, found while it lasted.
    where = f"{HERE}:{_line_of(on_timer, '# the callback')}"
    (finding,) = [
        f for f in memory_store.read_findings(*_ALL, type="blocking_call") if f.subject == where
    ]
    assert finding.flow == ""
    assert finding.max_ns >= 0.15e9  # from the heartbeat: a lower bound of the block


async def test_the_task_count_is_sampled_on_the_loop(memory_store: MemoryStore) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=0.1)
    sleepers = [asyncio.create_task(asyncio.sleep(1)) for _ in range(5)]
    await asyncio.sleep(0.35)
    botpulse.shutdown()
    for task in sleepers:
        task.cancel()
    summary = memory_store.summarize(0, 2**40, now=2**40)
    (tasks,) = [r for (_s, n, _k, _st), r in summary.rollups.items() if n == "asyncio.tasks"]
    assert tasks.max_ns / 1e6 >= 6  # the test's own task and the five sleepers


def test_shutdown_removes_the_loop_start_hook() -> None:
    original = asyncio.events._set_running_loop
    botpulse.init(store="memory://", resources_interval=None)
    assert asyncio.events._set_running_loop is not original
    botpulse.shutdown()
    assert asyncio.events._set_running_loop is original
    botpulse.init(store="memory://", loop_monitor=False, resources_interval=None)

    async def main() -> None:
        assert asyncio.get_running_loop().get_task_factory() is None

    asyncio.run(main())


async def test_flows_that_end_outside_timed_steps_are_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botpulse.runtime import loop as loop_module

    monkeypatch.setattr(loop_module, "_MAX_OPEN_FLOWS", 5)
    botpulse.init(store="memory://", resources_interval=None)
    runtime = current()
    assert runtime is not None
    monitor = runtime.monitor
    assert monitor is not None

    async def child() -> None:
        await asyncio.sleep(0)

    for _ in range(12):  # each flow ends in this (untimed) test task, seen only by its child
        async with botpulse.flow("outer"):
            await asyncio.create_task(child())
    assert len(monitor._open) <= 5
    assert monitor.flows_dropped == 0


def test_audit_lists_runtime_findings_with_advice() -> None:
    from botpulse._model import Batch, Finding
    from botpulse.analysis.audit import build_audit
    from botpulse.store import MemoryStore

    store = MemoryStore()
    t = 1_700_000_000
    store.write(
        Batch(
            findings=[
                Finding(
                    "blocking_call", "bot/h.py:12", flow="stats", service="bot", instance="i",
                    count=3, total_ns=900_000_000, max_ns=350_000_000,
                    first_seen_ns=t * 10**9, last_seen_ns=t * 10**9,
                    source="bot/h.py:12 in stats", details={"calls": "time.sleep"},
                ),
                Finding(
                    "pool_saturation", "db", service="bot", instance="i", total_ns=60 * 10**9,
                    first_seen_ns=t * 10**9, last_seen_ns=t * 10**9,
                    details={"advice": "Raise max_size to 6"},
                ),
            ]
        )
    )  # fmt: skip
    items = build_audit(store, t - 60, t + 60).to_json()["findings"]
    assert [(i["type"], i["count"]) for i in items] == [
        ("pool_saturation", 1),
        ("blocking_call", 3),
    ]
    assert items[0]["advice"] == "Raise max_size to 6"
    assert "asyncio.to_thread" in items[1]["advice"]
    assert items[1]["source"] == "bot/h.py:12 in stats"
