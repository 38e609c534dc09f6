"""Shared fixtures: strict mode on, botpulse shut down after every test, no internal errors."""

from __future__ import annotations

import os

os.environ["BOTPULSE_STRICT"] = "1"  # before botpulse is imported: swallowed bugs fail tests

from collections.abc import Iterator
from pathlib import Path

import pytest

import botpulse
from botpulse import _diagnostics
from botpulse.store import MemoryStore


@pytest.fixture(autouse=True)
def _clean_botpulse() -> Iterator[None]:
    """Every test starts and ends with botpulse shut down and no internal error logged."""
    botpulse.shutdown()
    before = _diagnostics.internal_error_count()
    yield
    botpulse.shutdown()
    assert _diagnostics.internal_error_count() == before, "botpulse logged an internal error"


@pytest.fixture
def memory_store() -> MemoryStore:
    """A fresh in-memory store."""
    return MemoryStore()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A store URL for a new SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'botpulse.db'}"
