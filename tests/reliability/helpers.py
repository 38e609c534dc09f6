"""Shared helpers of the reliability suite: read counts back, a hung store, percentiles."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from botpulse.errors import StoreUnavailable
from botpulse.store import Batch, MemoryStore, SeriesFilter, Store, open_store

#: init() options that leave the runtime monitors off: they record events of their own
#: (loop lag, resources, on-loop time per flow), which tests counting events exactly exclude.
NO_RUNTIME: dict[str, Any] = {
    "loop_monitor": False,
    "track_loop_time": False,
    "resources_interval": None,
}

#: Read windows wide enough to hold everything a test wrote "now".
WINDOW_S = 3 * 3600


def stored_counts(
    store_or_url: Store | str, *, service: str | None = None
) -> Counter[tuple[str, str, str]]:
    """``(name, kind, status) -> count`` summed over every instance, read through the store API."""
    store = (
        open_store(store_or_url, create=False) if isinstance(store_or_url, str) else store_or_url
    )
    try:
        now = time.time()
        summary = store.summarize(now - WINDOW_S, now + WINDOW_S, SeriesFilter(service=service))
        counts: Counter[tuple[str, str, str]] = Counter()
        for (_service, name, kind, status), rollup in summary.rollups.items():
            counts[name, kind, status] += rollup.count
        return counts
    finally:
        if isinstance(store_or_url, str):
            store.close()


def stored_by_instance(store_or_url: Store | str) -> Counter[tuple[str, str, str, str]]:
    """``(instance, name, kind, status) -> count`` from the minute rollups."""
    store = (
        open_store(store_or_url, create=False) if isinstance(store_or_url, str) else store_or_url
    )
    try:
        now = int(time.time())
        counts: Counter[tuple[str, str, str, str]] = Counter()
        for rollup in store.read_rollups(60, now - WINDOW_S, now + WINDOW_S, SeriesFilter()):
            key = rollup.key
            counts[key.instance, key.name, key.kind, key.status] += rollup.count
        return counts
    finally:
        if isinstance(store_or_url, str):
            store.close()


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of the SQLite file at ``path``, on a fresh connection."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def warnings_of(caplog: pytest.LogCaptureFixture, *, containing: str = "") -> list[str]:
    """botpulse's WARNING-or-worse messages captured so far, optionally filtered."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "botpulse" and r.levelno >= logging.WARNING and containing in r.getMessage()
    ]


class HangingStore(MemoryStore):
    """A store whose server hangs: ``write`` blocks until the test releases it.

    ``entered`` is set when a write is blocked; after ``release()`` blocked and later writes
    go through to the in-memory data (``fail_after_release`` makes them fail instead).
    """

    def __init__(self, *, fail_after_release: bool = False) -> None:
        super().__init__()
        self.entered = threading.Event()
        self._released = threading.Event()
        self.fail_after_release = fail_after_release

    def release(self) -> None:
        """Let every blocked and future write return."""
        self._released.set()

    def write(self, batch: Batch) -> None:
        if not self._released.is_set():
            self.entered.set()
            self._released.wait()
        if self.fail_after_release:
            raise StoreUnavailable("the hung server went away")
        super().write(batch)
