"""build_report(): the numbers in the report are the numbers that were recorded."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from botpulse.analysis import REPORT_SCHEMA, build_report
from botpulse.store import Batch, Checkpoint, Child, DropCount, MemoryStore, Operation

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
START = NOW - timedelta(hours=1)
NS, MS = 10**9, 10**6


def at(seconds: float) -> int:
    return int((START.timestamp() + seconds) * NS)


@pytest.fixture
def store() -> MemoryStore:
    rng = random.Random(5)
    store = MemoryStore()
    ops = []
    durations = {"/ping": [rng.uniform(0.5, 1.5) for _ in range(600)],
                 "/leaderboard": [rng.lognormvariate(5, 0.5) for _ in range(120)]}  # fmt: skip
    for name, values in durations.items():
        for i, ms in enumerate(values):
            status = "error" if name == "/leaderboard" and i % 10 == 0 else "ok"
            ops.append(Operation(name, at(i * 3 % 3500), int(ms * MS), kind="flow", status=status,
                                 error="Timeout" if status == "error" else None))  # fmt: skip
    ops.append(Operation("/leaderboard", at(100), 2000 * MS, kind="flow",
                         checkpoints=[Checkpoint("loaded", 1500 * MS)],
                         children=[Child("render", "op", 1600 * MS, 300 * MS, "ok"),
                                   Child("db.scores", "db", 10 * MS, 1480 * MS, "ok")]))  # fmt: skip
    ops += [Operation("db.scores", at(i * 30), (100 + i) * MS, kind="db") for i in range(100)]
    store.write_operations(ops, service="bot", instance="a")
    store.write(Batch(drops=[DropCount("bot", "a", int(START.timestamp()) + 60, "buffer_full", 9)]))
    store.durations = durations  # type: ignore[attr-defined]
    return store


def test_operations_have_exact_counts_and_accurate_percentiles(store: MemoryStore) -> None:
    report = build_report(store, START, NOW, now=NOW)
    ops = {op.name: op for op in report.operations}
    assert [op.kind for op in report.operations[:2]] == ["flow", "flow"]  # flows first
    lb = ops["/leaderboard"]
    values = sorted(store.durations["/leaderboard"] + [2000.0])  # type: ignore[attr-defined]
    assert lb.count == 121
    assert lb.errors == 12
    assert lb.error_rate == pytest.approx(12 / 121)
    assert lb.max_ms == pytest.approx(2000)
    assert lb.mean_ms == pytest.approx(sum(values) / len(values), rel=1e-6)
    for q, got in ((0.5, lb.p50_ms), (0.95, lb.p95_ms), (0.99, lb.p99_ms)):
        exact = values[math.ceil(q * len(values)) - 1]  # nearest rank
        assert got == pytest.approx(exact, rel=0.0101)
    minutes = {s // 60 for s in [i * 3 % 3500 for i in range(600)] + [i * 30 for i in range(100)]}
    assert report.active_minutes == len(minutes)  # the minutes with data, not the window
    assert lb.throughput_per_min == pytest.approx(121 / len(minutes))
    assert ops["/ping"].errors == 0
    assert report.operations[0].name == "/leaderboard"  # highest p95 among flows
    assert report.dropped_events == 9
    assert report.dropped_by_reason == {"buffer_full": 9}


def test_slowest_flow_waterfall(store: MemoryStore) -> None:
    report = build_report(store, START, NOW, now=NOW, top=3)
    assert len(report.slowest_flows) == 3
    slowest = report.slowest_flows[0]
    assert (slowest.name, slowest.duration_ms) == ("/leaderboard", 2000)
    assert [c["name"] for c in slowest.children] == ["db.scores", "render"]  # by start offset
    assert slowest.checkpoints == [("loaded", 1500.0)]


def test_filters_and_json_document(store: MemoryStore) -> None:
    report = build_report(store, START, NOW, now=NOW, kind="db")
    assert [op.name for op in report.operations] == ["db.scores"]
    assert report.slowest_flows == []
    doc = json.loads(json.dumps(build_report(store, START, NOW, now=NOW, name="/p*").to_dict()))
    assert doc["schema"] == REPORT_SCHEMA
    assert doc["window"] == {"since": "2026-11-23T11:00:00Z", "until": "2026-11-23T12:00:00Z"}
    assert [op["name"] for op in doc["operations"]] == ["/ping"]
    assert set(doc["operations"][0]) >= {
        "name", "kind", "count", "errors", "error_rate", "throughput_per_min",
        "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms",
    }  # fmt: skip
    assert doc["dropped_events"] == 9
    flow = doc["slowest_flows"][0]
    assert set(flow) >= {"name", "started_at", "duration_ms", "status", "checkpoints", "children"}
    assert flow["name"] == "/ping"


def test_empty_window(store: MemoryStore) -> None:
    report = build_report(store, NOW + timedelta(days=1), NOW + timedelta(days=2), now=NOW)
    assert report.operations == []
    assert report.slowest_flows == []
    assert report.dropped_events == 0


def test_window_across_the_minute_cutoff_counts_everything_and_says_what_it_covers(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """40 events, 20 of them only in an hour row: the report counts 40 and shows the widening."""
    from botpulse.store import open_store

    hour = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
    h0 = int(hour.timestamp())
    now = hour + timedelta(days=2, minutes=30)  # minute rows before 10:30 expire
    for store in (MemoryStore(), open_store(f"sqlite:///{tmp_path / 'r.db'}")):
        ops = [
            Operation("/cmd", (h0 + 60 * m + 5) * NS, (m + 1) * MS, kind="flow")
            for m in range(10, 50)
        ]
        store.write_operations(ops, service="bot", instance="a")
        store.apply_retention(now.timestamp())
        report = build_report(
            store, hour + timedelta(minutes=5), hour + timedelta(minutes=55), now=now
        )
        (cmd,) = report.operations
        assert (cmd.name, cmd.count, cmd.min_ms, cmd.max_ms) == ("/cmd", 40, 11.0, 50.0)
        assert (report.covered_since, report.covered_until) == (hour, hour + timedelta(hours=1))
        covered = report.to_dict()["covered"]
        assert covered == {"since": "2026-11-20T10:00:00Z", "until": "2026-11-20T11:00:00Z"}
        store.close()


def test_a_report_reads_its_rollups_once_for_every_section(store: MemoryStore) -> None:
    # Operations, per-flow steps, tag splits and the runtime section come from one
    # read of the window per series: each extra read cost a 30-day report ~0.5 s.
    windows: list[tuple[object, object]] = []
    summarize = store.summarize

    def counting(since, until, selector=None, **kw):  # type: ignore[no-untyped-def]
        windows.append((since, until))
        return summarize(since, until, selector, **kw)

    store.summarize = counting  # type: ignore[method-assign]
    report = build_report(store, START, NOW, now=NOW, by="service")
    assert report.operations
    assert report.splits
    assert report.runtime is not None
    assert windows == [(START, NOW)]
