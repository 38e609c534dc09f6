"""Fixtures for instrumentation tests: everything is uninstrumented after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from botpulse.instrument import _common, uninstrument


@pytest.fixture(autouse=True)
def _uninstrument_after() -> Iterator[None]:
    saved = _common.Settings(**vars(_common.settings))
    yield
    uninstrument()
    for key, value in vars(saved).items():
        setattr(_common.settings, key, value)
    _common._refresh()
    _common._last_source.clear()
