"""Store.read_activity(): per process counts and the minutes with data, on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from botpulse.store import MemoryStore, Operation, SeriesFilter, Store
from botpulse.store.base import merge_spans
from botpulse.store.sqlite import SQLiteStore

NS = 10**9
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
YESTERDAY = datetime(2026, 11, 22, 10, 30, tzinfo=timezone.utc)


def at(moment: datetime, seconds: float = 0.0) -> int:
    return int((moment.timestamp() + seconds) * NS)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    backend: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "a.db")
    with backend:
        yield backend


def minutes(store: Store, service: str, instance: str, moment: datetime, which: list[int]) -> None:
    store.write_operations(
        [Operation("job", at(moment, m * 60 + 7), 10**6, kind="flow") for m in which],
        service=service,
        instance=instance,
    )


def test_merge_spans() -> None:
    assert merge_spans([(120, 180), (0, 60), (60, 120), (300, 360), (310, 320)]) == [
        (0, 180),
        (300, 360),
    ]
    assert merge_spans([]) == []


@pytest.mark.parametrize("days", [1, 3])
def test_minutes_with_data_over_hour_and_day_rows(store: Store, days: int) -> None:
    """Yesterday's minutes 0, 1, 2 and 10 of a worker: 4 active minutes, exactly, whether the
    window reads them from hour rows (1 day) or a day row (3 days)."""
    minutes(store, "bot", "w-1", YESTERDAY, [0, 1, 2, 10])
    (worker,) = store.read_activity(NOW - timedelta(days=days), NOW, now=NOW)
    assert (worker.service, worker.instance, worker.count) == ("bot", "w-1", 4)
    assert worker.active_minutes == 4
    start = int(YESTERDAY.timestamp())
    assert worker.spans == [(start, start + 180), (start + 600, start + 660)]
    assert (worker.first_s, worker.last_s) == (start, start + 660)


def test_per_instance_counts_errors_and_filters(store: Store) -> None:
    minutes(store, "api", "api-1", YESTERDAY, [0, 1])
    minutes(store, "worker", "w-1", YESTERDAY, [5])
    store.write_operations(
        [Operation("job", at(YESTERDAY, 30), 10**6, kind="flow", status="error")],
        service="worker",
        instance="w-2",
    )
    found = store.read_activity(NOW - timedelta(days=1), NOW, now=NOW)
    assert [(a.service, a.instance, a.count, a.errors) for a in found] == [
        ("api", "api-1", 2, 0),
        ("worker", "w-1", 1, 0),
        ("worker", "w-2", 1, 1),
    ]
    only = store.read_activity(NOW - timedelta(days=1), NOW, SeriesFilter(instance="w-2"), now=NOW)
    assert [a.instance for a in only] == ["w-2"]
    by_service = store.read_activity(
        NOW - timedelta(days=1), NOW, SeriesFilter(service="api"), now=NOW
    )
    assert [a.instance for a in by_service] == ["api-1"]


def test_busy_hours_beyond_the_budget_count_whole(store: Store) -> None:
    """Re-reading per minute is bounded: a busy inner hour read from an hour row counts
    whole, while the first and last hours (the edges) are still exact."""
    busy = [Operation("job", at(YESTERDAY, 3600 + i * 0.5), 10**6, kind="flow") for i in range(200)]
    store.write_operations(busy, service="bot", instance="w")  # 200 ops in 100 s, hour 11
    minutes(store, "bot", "w", YESTERDAY, [0])  # 10:30, the first hour
    minutes(store, "bot", "w", YESTERDAY + timedelta(hours=2), [0])  # 12:30, the last hour
    store.ACTIVITY_REFINE_BUDGET = 10  # type: ignore[misc]
    (worker,) = store.read_activity(NOW - timedelta(days=1), NOW, now=NOW)
    assert worker.count == 202
    assert worker.active_minutes == 1 + 60 + 1
    store.ACTIVITY_REFINE_BUDGET = 5_000  # type: ignore[misc]
    (worker,) = store.read_activity(NOW - timedelta(days=1), NOW, now=NOW)
    assert worker.active_minutes == 1 + 2 + 1


def test_summarize_activity_covers_only_selected_series(store: Store) -> None:
    minutes(store, "bot", "w", YESTERDAY, [0, 1, 2])
    store.write_operations(
        [Operation("db.q", at(YESTERDAY, 65), 10**6, kind="db")], service="bot", instance="w"
    )
    summary, activity, covered = store.summarize_activity(
        NOW - timedelta(days=1), NOW, SeriesFilter(kind="db"), now=NOW
    )
    assert [key[1] for key in summary.rollups] == ["db.q"]
    assert activity[0].count == 4  # the process recorded 4 operations in all
    start = int(YESTERDAY.timestamp())
    assert covered == [(start + 60, start + 120)]


def test_gauges_make_minutes_active_but_are_not_counted(store: Store) -> None:
    minutes(store, "bot", "w", YESTERDAY, [0])
    store.write_operations(
        [
            Operation("process.rss_mb", at(YESTERDAY, m * 60 + 1), 50 * 10**6, kind="gauge")
            for m in range(5)
        ],
        service="bot",
        instance="w",
    )
    (worker,) = store.read_activity(NOW - timedelta(days=1), NOW, now=NOW)
    assert (worker.count, worker.active_minutes) == (1, 5)
