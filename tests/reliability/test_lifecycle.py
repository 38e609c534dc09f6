"""Before ``init()`` and after ``shutdown()`` instrumentation is a pass-through no-op;
decorators applied before ``init()`` start measuring once it runs."""

from __future__ import annotations

import asyncio

import botpulse

from .helpers import stored_counts


@botpulse.measure("module.deco", kind="db")  # applied at import, long before init()
def module_level(x: object) -> object:
    return x


def _use_everything(value: object) -> None:
    """Every entry point once; asserts values pass through and nothing raises."""
    assert module_level(value) is value
    with botpulse.measure("with.op", attr=value) as t:
        assert isinstance(t, botpulse.Timer)
        t.set(more=1)
        botpulse.checkpoint("nowhere")
    with botpulse.flow("with.flow") as f:
        f.checkpoint("step")
        botpulse.checkpoint("step2")
        f.set(done=True)


def test_no_op_before_init_and_after_shutdown(sqlite_url: str) -> None:
    sentinel = object()

    @botpulse.flow("deco.flow")
    async def handler(x: object) -> object:
        await asyncio.sleep(0)
        return x

    assert botpulse.stats() is None
    _use_everything(sentinel)
    assert asyncio.run(handler(sentinel)) is sentinel
    assert botpulse.current_flow() is None
    pending = botpulse.measure("entered.before.init")
    pending.__enter__()

    botpulse.init(store=sqlite_url, service="life", instance="i", flush_interval=0.05)
    pending.__exit__(None, None, None)  # entered before init: not recorded, no error
    _use_everything(sentinel)
    assert asyncio.run(handler(sentinel)) is sentinel
    assert asyncio.run(handler(sentinel)) is sentinel
    final = botpulse.shutdown(timeout=10)

    assert botpulse.shutdown() is None  # twice is fine
    _use_everything(sentinel)
    assert asyncio.run(handler(sentinel)) is sentinel
    assert botpulse.stats() is None

    assert final is not None
    assert (final.recorded, final.written) == (5, 5)
    assert stored_counts(sqlite_url, service="life") == {
        ("module.deco", "db", "ok"): 1,
        ("with.op", "op", "ok"): 1,
        ("with.flow", "flow", "ok"): 1,
        ("deco.flow", "flow", "ok"): 2,
    }


def test_reinit_records_again_with_decorators_from_before(sqlite_url: str) -> None:
    botpulse.init(store="memory://", service="first", instance="i")
    assert module_level(1) == 1
    botpulse.shutdown()
    assert module_level(2) == 2  # off
    botpulse.init(store=sqlite_url, service="second", instance="i")
    assert module_level(3) == 3
    botpulse.shutdown()
    assert stored_counts(sqlite_url, service="second") == {("module.deco", "db", "ok"): 1}
