"""Helpers for instrumentation tests: the db/redis/http children of recorded flows."""

from __future__ import annotations

from botpulse._model import Child, Finding
from botpulse.testing import Captured

ALL_TIME = (0.0, 2.0**40)


def children(recorded: Captured, flow: str, kind: str | None = None) -> list[Child]:
    """The children of the one recorded trace of ``flow`` (of ``kind`` if given)."""
    traces = recorded.traces(flow)
    assert len(traces) == 1, [t.name for t in traces]
    return [c for c in traces[0].children if kind is None or c.kind == kind]


def findings(recorded: Captured, type: str | None = None) -> list[Finding]:  # noqa: A002
    recorded.flush()
    return recorded.store.read_findings(*ALL_TIME, type=type)
