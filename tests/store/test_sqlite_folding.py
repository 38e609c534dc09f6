"""SQLite write path: open minutes staged, sealed when they close, hours and days folded
once closed, orphans of dead writers recovered, late data counted exactly once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from botpulse._aggregate import Aggregator
from botpulse._model import DAY, HOUR, MINUTE, Operation
from botpulse.store import SeriesFilter
from botpulse.store.sqlite import FOLD_GRACE_S, ORPHAN_S, SQLiteStore

DAY0 = 1_700_006_400
NS, MS = 10**9, 10**6


def flush(store: SQLiteStore, at_s: float, starts: list[float], *, instance: str = "a") -> None:
    """What the pipeline does at one flush at time ``at_s``: write the operations' deltas."""
    agg = Aggregator("bot", instance)
    agg.add_operations([Operation("cmd", int(t * NS), 5 * MS, kind="flow") for t in starts])
    batch = agg.batch(int(at_s * NS))
    batch.now_ns = int(at_s * NS)
    store.write(batch)


def total(store: SQLiteStore, now_s: float) -> int:
    summary = store.summarize(DAY0 - DAY, DAY0 + 3 * DAY, now=now_s)
    return sum(r.count for r in summary.rollups.values())


def rows(path: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_open_minutes_are_staged_then_sealed_and_always_read_exactly(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    t = DAY0 + 10 * HOUR
    flush(store, t + 1, [t + 0.5])
    flush(store, t + 2, [t + 1.5, t + 1.7])
    assert rows(path, "SELECT count(*) FROM staged") == [(2,)]
    assert rows(path, "SELECT count(*) FROM rollups") == [(0,)]
    assert total(store, t + 3) == 3  # readers merge staged deltas
    flush(store, t + 2 * MINUTE + 1, [t + 2 * MINUTE + 0.5])  # minute t closed: sealed
    assert rows(path, "SELECT minute FROM staged") == [(t + 2 * MINUTE,)]
    assert rows(path, "SELECT start, count FROM rollups WHERE resolution = 60") == [(t, 3)]
    assert total(store, t + 2 * MINUTE + 2) == 4
    assert set(store.pending_buckets()) == {(HOUR, t), (DAY, DAY0)}
    store.close()


def test_hours_fold_after_their_grace_and_days_after_their_hours(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.db")
    t = DAY0 + 23 * HOUR
    flush(store, t + 1, [t + 1, t + 30])
    flush(store, t + 3 * MINUTE, [])  # seals minute t
    store.write(Aggregator("bot", "a").batch(None))  # nothing: no-op
    assert store.fold(t + HOUR + FOLD_GRACE_S - 1) == 0  # the hour is not past its grace
    assert store.fold(t + HOUR + FOLD_GRACE_S) == 1
    hour_rows = list(store.read_rollups(HOUR, t, t + HOUR, SeriesFilter()))
    assert [(r.start, r.count) for r in hour_rows] == [(t, 2)]
    assert store.fold(DAY0 + DAY + FOLD_GRACE_S) == 1  # then the day
    day_rows = list(store.read_rollups(DAY, DAY0, DAY0 + DAY, SeriesFilter()))
    assert [(r.start, r.count) for r in day_rows] == [(DAY0, 2)]
    assert store.pending_buckets() == []
    # Late data for the folded hour reaches minute, hour and day rows exactly once.
    flush(store, DAY0 + 2 * DAY, [t + 40])
    assert sum(r.count for r in store.read_rollups(HOUR, t, t + HOUR, SeriesFilter())) == 3
    assert sum(r.count for r in store.read_rollups(DAY, DAY0, DAY0 + DAY, SeriesFilter())) == 3
    assert total(store, DAY0 + 2 * DAY) == 3
    store.close()


def test_an_hour_with_staged_deltas_waits_and_orphans_are_sealed(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    dead = SQLiteStore(path)
    t = DAY0 + 5 * HOUR + 59 * MINUTE
    flush(dead, t + 10, [t + 5], instance="dead")  # staged, then the writer is killed
    dead._writer = None  # no final flush: like kill -9
    alive = SQLiteStore(path)
    assert alive.fold(t + MINUTE + FOLD_GRACE_S + 1) == 0  # staged rows hold the hour back
    assert total(alive, t + MINUTE + FOLD_GRACE_S + 1) == 1
    assert alive.fold(t + ORPHAN_S + MINUTE + FOLD_GRACE_S) >= 1  # orphan sealed, hour folded
    assert rows(path, "SELECT count(*) FROM staged") == [(0,)]
    assert (
        sum(r.count for r in alive.read_rollups(HOUR, t - 59 * MINUTE, t + MINUTE, SeriesFilter()))
        == 1
    )
    assert total(alive, DAY0 + DAY) == 1
    alive.close()


def test_final_flush_seals_everything_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SQLiteStore(path)
    t = DAY0 + HOUR
    flush(store, t + 1, [t])
    agg = Aggregator("bot", "a")
    final = agg.batch(None)
    final.final = True
    store.write(final)
    assert rows(path, "SELECT count(*) FROM staged") == [(0,)]
    assert rows(path, "SELECT count FROM rollups WHERE resolution = 60") == [(1,)]
    store.close()


def test_retention_keeps_minute_rows_of_hours_not_folded(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "r.db")
    t = DAY0
    flush(store, t + 10 * MINUTE, [t + 1])  # minute t sealed at once (older than open)
    store.apply_retention(t + 10 * DAY)  # minute rows are past 2 days, the hour is pending
    assert total(store, t + 10 * DAY) == 1
    store.fold(t + 10 * DAY, limit=10)
    store.apply_retention(t + 10 * DAY)
    assert total(store, t + 10 * DAY) == 1  # now from the hour and day rows
    assert list(store.read_rollups(MINUTE, t, t + HOUR, SeriesFilter())) == []
    store.close()


def test_hour_and_day_rollups_given_as_such_are_kept_and_folded(tmp_path: Path) -> None:
    from botpulse._model import Batch, Rollup, SeriesKey
    from botpulse._sketch import Sketch

    store = SQLiteStore(tmp_path / "c.db")
    key = SeriesKey("bot", "a", "cmd", "flow", "ok")

    def rollup(start: int, res: int, count: int) -> Rollup:
        sketch = Sketch()
        sketch.add(5 * MS, count)
        return Rollup(key, start, res, count, count * 5 * MS, 5 * MS, 5 * MS, sketch)

    # Imported history: a day as a day row, the next day as hour rows, then minutes.
    store.write(Batch([rollup(DAY0, DAY, 100)]))
    store.write(Batch([rollup(DAY0 + DAY + h * HOUR, HOUR, 10) for h in range(3)]))
    flush(store, DAY0 + 2 * DAY + 10 * MINUTE, [DAY0 + DAY + 5 * HOUR + 1])
    while store.fold(DAY0 + 3 * DAY):
        pass
    assert total(store, DAY0 + 3 * DAY) == 131
    days = {r.start: r.count for r in store.read_rollups(DAY, DAY0, DAY0 + 2 * DAY, SeriesFilter())}
    assert days == {DAY0: 100, DAY0 + DAY: 31}
