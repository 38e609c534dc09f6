"""Instrumented pools and caches are process-wide: each test starts and ends without any."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from botpulse.runtime import caches, pools


@pytest.fixture(autouse=True)
def _forget_pools_and_caches() -> Iterator[None]:
    caches._registry.clear()
    pools._registry.clear()
    yield
    caches._registry.clear()
    pools._registry.clear()
