"""Schema migration: a file written by the first release (schema 1) opens, migrates in
place, keeps every count at every resolution, and takes new data in the same buckets."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from botpulse._model import DAY, HOUR, MINUTE, Operation
from botpulse.analysis import build_report
from botpulse.store import SeriesFilter, open_store
from botpulse.store._schema import SCHEMA_VERSION

V1 = Path(__file__).with_name("data") / "v1.db"
DAY0 = 1_700_006_400
NS, MS = 10**9, 10**6
# What tests/store/data/v1.db holds (written by botpulse 0.1.0, commit a535f1b):
# per hour of day 0 (0, 1, 2) and day 1 (hour 24), 10/20/30/40 "leaderboard" flows and as
# many "db.rows" steps, plus one failed flow in hour 0.
FLOWS_PER_HOUR = {0: 11, 1: 20, 2: 30, 24: 40}


@pytest.fixture
def v1_copy(tmp_path: Path) -> Path:
    path = tmp_path / "v1.db"
    shutil.copy(V1, path)
    return path


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])


def _counts(store, resolution: int, name: str) -> dict[int, int]:  # type: ignore[no-untyped-def]
    out: dict[int, int] = {}
    for r in store.read_rollups(resolution, DAY0, DAY0 + 2 * DAY, SeriesFilter(name=name)):
        out[r.start] = out.get(r.start, 0) + r.count
    return out


def test_version_1_file_migrates_in_place_and_keeps_every_count(v1_copy: Path) -> None:
    assert _version(v1_copy) == 1
    with open_store(f"sqlite:///{v1_copy}") as store:
        assert _version(v1_copy) == SCHEMA_VERSION
        hours = _counts(store, HOUR, "leaderboard")
        assert hours == {DAY0 + h * HOUR: n for h, n in FLOWS_PER_HOUR.items()}
        assert _counts(store, DAY, "leaderboard") == {DAY0: 61, DAY0 + DAY: 40}
        assert sum(_counts(store, MINUTE, "leaderboard").values()) == 101
        # Reports straddling day rows, hour rows and minute rows of the old file.
        summary = store.summarize(DAY0, DAY0 + 2 * DAY, now=DAY0 + 2 * DAY)
        assert summary.rollups[("bot", "leaderboard", "flow", "ok")].count == 100
        assert summary.rollups[("bot", "leaderboard", "flow", "error")].count == 1
        assert summary.rollups[("bot", "db.rows", "db", "ok")].count == 100
        traces = store.read_traces(DAY0, DAY0 + 2 * DAY, limit=1000)
        assert len(traces) == 101
        assert {c.name for t in traces for c in t.children} == {"db.rows"}


def test_new_data_lands_in_the_migrated_buckets_at_every_resolution(v1_copy: Path) -> None:
    with open_store(f"sqlite:///{v1_copy}") as store:
        # Late data into hour 1 (folded in the old file) and a new hour 3 of day 0.
        ops = [Operation("leaderboard", (DAY0 + HOUR + 30) * NS, 7 * MS, kind="flow")]
        ops += [
            Operation("leaderboard", (DAY0 + 3 * HOUR + i) * NS, 7 * MS, kind="flow")
            for i in range(5)
        ]
        assert store.write_operations(ops, service="bot", instance="v3") == 6
        assert _counts(store, HOUR, "leaderboard")[DAY0 + HOUR] == 21
        assert _counts(store, HOUR, "leaderboard")[DAY0 + 3 * HOUR] == 5
        assert _counts(store, DAY, "leaderboard")[DAY0] == 67
        report = build_report(
            store,
            since=_dt(DAY0 + 30 * MINUTE),
            until=_dt(DAY0 + 25 * HOUR),
            now=_dt(DAY0 + 36 * HOUR),
        )
        (flow,) = [op for op in report.operations if op.name == "leaderboard"]
        # Hour 0's flows (minutes 0-9, the failure at minute 1) are before the window; the
        # rest comes from migrated minute rows, hour rows and the new rows together.
        assert flow.count == 20 + 1 + 30 + 5 + 40
        assert flow.errors == 0


def _dt(seconds: float):  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, tz=timezone.utc)
