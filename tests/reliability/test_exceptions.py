"""A wrapped handler's exception comes back as the same object and its return value
untouched; cancellation, KeyboardInterrupt and SystemExit propagate and are stored as
``cancelled``, ordinary exceptions as ``error`` with their type name."""

from __future__ import annotations

import asyncio
import time

import pytest

import botpulse
from botpulse.store import SeriesFilter, open_store

from .helpers import NO_RUNTIME, stored_counts


class HandlerFailed(Exception):
    """The bot's own exception type."""


def test_sync_exceptions_and_return_values_pass_through_unchanged(sqlite_url: str) -> None:
    botpulse.init(store=sqlite_url, service="exc", instance="i", flush_interval=0.05)
    result = {"rows": [1, 2, 3]}
    failure = HandlerFailed("db down")

    @botpulse.measure("deco.ok")
    def ok() -> dict[str, list[int]]:
        return result

    @botpulse.flow("deco.fails")
    def fails() -> None:
        raise failure

    assert ok() is result
    with pytest.raises(HandlerFailed) as info:
        fails()
    assert info.value is failure
    assert info.value.__traceback__ is not None
    assert info.value.__context__ is None  # botpulse chained nothing onto it
    with pytest.raises(HandlerFailed) as info, botpulse.measure("with.fails"):
        raise failure
    assert info.value is failure
    botpulse.shutdown(timeout=10)

    counts = stored_counts(sqlite_url, service="exc")
    assert counts == {
        ("deco.ok", "op", "ok"): 1,
        ("deco.fails", "flow", "error"): 1,
        ("with.fails", "op", "error"): 1,
    }
    with open_store(sqlite_url, create=False) as store:
        (trace,) = store.read_traces(0, time.time() + 60, SeriesFilter(name="deco.fails"))
    assert (trace.status, trace.error) == ("error", "HandlerFailed")


async def test_async_exceptions_and_return_values_pass_through_unchanged(
    sqlite_url: str,
) -> None:
    botpulse.init(store=sqlite_url, service="aexc", instance="i", flush_interval=0.05)
    result = object()
    failure = HandlerFailed("timeout")

    @botpulse.flow("adeco.ok")
    async def ok() -> object:
        await asyncio.sleep(0)
        return result

    @botpulse.measure("adeco.fails", kind="http")
    async def fails() -> None:
        await asyncio.sleep(0)
        raise failure

    assert await ok() is result
    with pytest.raises(HandlerFailed) as info:
        await fails()
    assert info.value is failure
    with pytest.raises(HandlerFailed) as info:
        async with botpulse.flow("awith.fails"):
            raise failure
    assert info.value is failure
    botpulse.shutdown(timeout=10)

    assert stored_counts(sqlite_url, service="aexc") == {
        ("adeco.ok", "flow", "ok"): 1,
        ("adeco.fails", "http", "error"): 1,
        ("awith.fails", "flow", "error"): 1,
    }


async def test_task_cancellation_propagates_and_is_stored_as_cancelled(sqlite_url: str) -> None:
    botpulse.init(store=sqlite_url, service="cancel", instance="i", flush_interval=0.05,
                  **NO_RUNTIME)  # fmt: skip
    started = asyncio.Event()

    @botpulse.flow("cmd.slow")
    async def handler() -> None:
        async with botpulse.measure("http.call", kind="http"):
            started.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(handler())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()

    async def cancel_inside() -> None:  # the handler cancels itself mid-flow
        async with botpulse.flow("cmd.self_cancel"):
            raise asyncio.CancelledError

    inner = asyncio.create_task(cancel_inside())
    with pytest.raises(asyncio.CancelledError):
        await inner
    botpulse.shutdown(timeout=10)

    assert stored_counts(sqlite_url, service="cancel") == {
        ("cmd.slow", "flow", "cancelled"): 1,
        ("http.call", "http", "cancelled"): 1,
        ("cmd.self_cancel", "flow", "cancelled"): 1,
    }
    with open_store(sqlite_url, create=False) as store:
        (trace,) = store.read_traces(0, time.time() + 60, SeriesFilter(name="cmd.slow"))
    assert trace.status == "cancelled"
    assert [(c.name, c.status) for c in trace.children] == [("http.call", "cancelled")]


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(2)], ids=["ctrl-c", "exit"])
def test_keyboard_interrupt_and_system_exit_propagate_and_are_cancelled(
    sqlite_url: str, exc: BaseException
) -> None:
    botpulse.init(store=sqlite_url, service="base", instance="i", flush_interval=0.05)

    @botpulse.flow("cmd.deco")
    def handler() -> None:
        with botpulse.measure("step"):
            raise exc

    with pytest.raises(type(exc)) as info:
        handler()
    assert info.value is exc
    with pytest.raises(type(exc)) as info, botpulse.measure("with.base"):
        raise exc
    assert info.value is exc
    botpulse.shutdown(timeout=10)

    assert stored_counts(sqlite_url, service="base") == {
        ("cmd.deco", "flow", "cancelled"): 1,
        ("step", "op", "cancelled"): 1,
        ("with.base", "op", "cancelled"): 1,
    }
