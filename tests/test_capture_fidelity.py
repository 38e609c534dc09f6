"""Issue 6: per-flow steps, tags, thread-pool work, handled failures, late naming."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import botpulse
from botpulse.store import MemoryStore, SeriesFilter
from botpulse.testing import capture

ALL = (0.0, 2**40)


def steps(store: MemoryStore) -> dict[tuple[str, str, str], int]:
    """``(flow, name, status) -> count`` for every operation measured inside a flow."""
    summary = store.summarize(*ALL, now=ALL[1], group=lambda k: (k.flow, k.name, k.status, k.kind))
    return {(f, n, s): r.count for (f, n, s, kind), r in summary.rollups.items() if f}


def test_steps_roll_up_per_flow() -> None:
    with capture() as recorded:
        for _ in range(3):
            with botpulse.flow("photo"), botpulse.measure("tg.reply"):
                pass
        with botpulse.flow("admin"), botpulse.measure("tg.reply"):
            pass
        with botpulse.measure("tg.reply"):  # outside any flow
            pass
        recorded.flush()
        assert steps(recorded.store) == {
            ("photo", "tg.reply", "ok"): 3,
            ("admin", "tg.reply", "ok"): 1,
        }
        assert recorded.count("tg.reply") == 5  # the operation's total is unchanged


def test_late_rename_keeps_the_steps_that_ran_before_it() -> None:
    from botpulse import _config

    with capture() as recorded:
        with botpulse.flow("irc.message") as f:
            with botpulse.measure("db.user_lookup", kind="db"):
                pass
            # A regular flush sees the step while its flow still runs.
            pipeline = _config._running.pipeline  # type: ignore[union-attr]
            pipeline.drain()
            assert pipeline.flush()
            f.rename("karma")
        recorded.flush()
        assert steps(recorded.store) == {("karma", "db.user_lookup", "ok"): 1}
        assert recorded.count("irc.message") == 0


def test_tags_split_rollups_and_values_are_capped() -> None:
    from botpulse import _config

    with capture() as recorded:
        botpulse.init(store=recorded.store, service="test", max_tag_values=2)
        for path in ["hit", "hit", "miss", "stale", "expired"]:
            with botpulse.flow("colorize"):
                botpulse.tag(cache=path)
        recorded.flush()
        summary = recorded.store.summarize(
            *ALL, SeriesFilter(name="colorize"), now=ALL[1], group=lambda k: (k.tags,)
        )
        by_tag = {key[0]: r.count for key, r in summary.rollups.items()}
        assert by_tag == {"cache=hit": 2, "cache=miss": 1, "cache=(other)": 2}
        with pytest.raises(botpulse.ConfigurationError, match="max_tag_values"):
            botpulse.init(store=recorded.store, max_tag_values=0)
        assert _config._running.pipeline.aggregator.tag_overflows == 2  # type: ignore[union-attr]


def test_thread_pool_work_lands_in_its_flow() -> None:
    def colorize() -> str:
        with botpulse.measure("colorize.model"):
            return threading.current_thread().name

    async def handler(pool: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        async with botpulse.flow("photo"):
            await loop.run_in_executor(None, colorize)  # the default executor
            await loop.run_in_executor(pool, colorize)  # a custom one
            pool.submit(colorize).result()  # plain submit

    with capture() as recorded, ThreadPoolExecutor(2, thread_name_prefix="model") as pool:
        asyncio.run(handler(pool))
        (trace,) = recorded.traces("photo")
        assert [c.name for c in trace.children] == ["colorize.model"] * 3
        assert steps(recorded.store) == {("photo", "colorize.model", "ok"): 3}
    # After shutdown the pool is left as it was.
    assert ThreadPoolExecutor.submit.__module__ == "concurrent.futures.thread"


def test_handled_failures_and_failed_steps_are_sampled() -> None:
    with capture() as recorded:
        with botpulse.flow("save"):
            try:
                with botpulse.measure("db.insert", kind="db"):
                    raise ConnectionError("PostgreSQL restarting")
            except ConnectionError:
                pass  # the bot swallows it: the flow itself stays ok
        with botpulse.flow("save"):
            botpulse.fail("DatabaseDown")
        traces = recorded.traces("save")
        reasons = sorted((t.status, t.reason) for t in traces)
        assert ("ok", "slowest,step_error") in reasons or ("ok", "step_error") in [
            (s, r.split(",")[-1]) for s, r in reasons
        ]
        assert any(t.status == "error" and t.error == "DatabaseDown" for t in traces)
        assert recorded.count("save", status="error") == 1
