"""botpulse.testing: the helpers users test their own instrumentation with."""

from __future__ import annotations

import asyncio

import pytest

import botpulse
from botpulse.testing import capture


def test_capture_counts_names_and_traces() -> None:
    @botpulse.flow("leaderboard")
    async def leaderboard() -> str:
        with botpulse.measure("db.load_rows", kind="db"):
            await asyncio.sleep(0)
        return "ok"

    with capture(service="mybot") as recorded:
        assert asyncio.run(leaderboard()) == "ok"
        assert recorded.count("leaderboard", kind="flow") == 1
        with pytest.raises(ZeroDivisionError), botpulse.measure("div"):
            _ = 1 / 0
        assert recorded.count("div", status="error") == 1
        assert recorded.count("db.*") == 1
        (trace,) = recorded.traces("leaderboard")
        assert [c.name for c in trace.children] == ["db.load_rows"]
        assert {k.service for k in recorded.names()} == {"mybot"}
    assert botpulse.stats() is None
