"""Shared helpers for the framework integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from botpulse import _diagnostics


@dataclass
class Lenient:
    """Internal errors are logged (not raised) while the test runs; ``errors`` counts them."""

    before: int

    @property
    def errors(self) -> int:
        return _diagnostics.internal_error_count() - self.before


@pytest.fixture
def lenient() -> Iterator[Lenient]:
    """Production mode: a failing botpulse hook is swallowed, as in a real bot."""
    _diagnostics._STRICT = False
    state = Lenient(_diagnostics.internal_error_count())
    try:
        yield state
    finally:
        _diagnostics._STRICT = True
        _diagnostics._error_count = state.before  # the autouse fixture checks nothing leaked


def child_names(trace: object) -> list[tuple[str, str, str]]:
    """(name, kind, status) of a trace's children, in start order."""
    children = sorted(trace.children, key=lambda c: c.start_ns)  # type: ignore[attr-defined]
    return [(c.name, c.kind, c.status) for c in children]
