"""Issue 7: the report's numbers as a user reads them (the issue's own cases, exactly)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from botpulse.analysis import build_report
from botpulse.analysis.report import ALL_FLOWS, Report
from botpulse.store import Checkpoint, MemoryStore, Operation, Store
from botpulse.store.sqlite import SQLiteStore

NS, MS = 10**9, 10**6
UTC = timezone.utc
# The window: the README's --since 1h, read at 05:13.
SINCE = datetime(2026, 11, 23, 4, 12, tzinfo=UTC)
UNTIL = datetime(2026, 11, 23, 5, 13, tzinfo=UTC)
BURST = datetime(2026, 11, 23, 4, 20, tzinfo=UTC)  # 3 minutes of traffic from here


def at(moment: datetime, seconds: float = 0.0) -> int:
    return int((moment.timestamp() + seconds) * NS)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    backend: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "b.db")
    with backend:
        yield backend


def report(store: Store, since: datetime = SINCE, **kwargs: object) -> Report:
    return build_report(store, since, UNTIL, now=UNTIL, **kwargs)  # type: ignore[arg-type]


def op(report: Report, name: str, service: str | None = None) -> object:
    found = [o for o in report.operations if o.name == name and service in (None, o.service)]
    assert len(found) == 1, [o.name for o in report.operations]
    return found[0]


# -- 1. nearest-rank percentiles ---------------------------------------------------


def test_two_rare_runs_give_the_larger_as_p95_and_p99(store: Store) -> None:
    """The issue's /performance: 10.1 and 17.1 ms gave p95 = p99 = 10.1 ms."""
    store.write_operations(
        [
            Operation("/performance", at(BURST), int(10.1 * MS), kind="flow"),
            Operation("/performance", at(BURST, 30), int(17.1 * MS), kind="flow"),
        ]
    )
    performance = report(store).operations[0]
    assert performance.name == "/performance"
    assert performance.p50_ms == pytest.approx(10.1)
    assert performance.p95_ms == pytest.approx(17.1)
    assert performance.p99_ms == pytest.approx(17.1)


def test_three_values_give_the_largest_as_p95_and_p99(store: Store) -> None:
    store.write_operations(
        [
            Operation("/stats", at(BURST, i), int(ms * MS), kind="flow")
            for i, ms in enumerate((30.0, 12.5, 21.0))
        ]
    )
    stats = report(store).operations[0]
    assert (stats.p95_ms, stats.p99_ms) == (30.0, 30.0)  # rank n: the exact maximum
    assert stats.p50_ms == pytest.approx(21.0, rel=0.01)  # rank 2 of 3, within the sketch's 1%


def test_middle_ranks_are_nearest_rank_within_one_percent(store: Store) -> None:
    values = [float(v) for v in range(1, 41)]  # 40 values: p50 = 20, p95 = 38, p99 = 40
    store.write_operations(
        [Operation("/x", at(BURST, i), int(v * MS), kind="flow") for i, v in enumerate(values)]
    )
    x = report(store).operations[0]
    for q, got in ((0.5, x.p50_ms), (0.95, x.p95_ms), (0.99, x.p99_ms)):
        exact = values[math.ceil(q * len(values)) - 1]
        assert got == pytest.approx(exact, rel=0.01), q
    assert x.p95_ms == pytest.approx(38.0, rel=0.01)


# -- 2. rates over active minutes, 3. covered ----------------------------------------


def burst(store: Store, *, service: str = "tg", instance: str = "api-1") -> None:
    """38 messages a minute for 3 minutes from 04:20."""
    store.write_operations(
        [
            Operation("message", at(BURST, minute * 60 + i * 1.5), 20 * MS, kind="flow")
            for minute in range(3)
            for i in range(38)
        ],
        service=service,
        instance=instance,
    )


def test_rate_is_per_active_minute(store: Store) -> None:
    """38 messages a minute for 3 minutes showed 1.28/min; it is 38/min."""
    burst(store)
    r = report(store)
    message = r.operations[0]
    assert message.count == 114
    assert message.throughput_per_min == pytest.approx(38.0)
    assert message.active_minutes == 3
    assert r.active_minutes == 3
    assert r.window_minutes == pytest.approx(61.0)
    doc = r.to_dict()
    assert doc["window_minutes"] == 61.0
    assert doc["active_minutes"] == 3
    assert doc["operations"][0]["throughput_per_min"] == 38.0


def test_a_command_at_59_per_minute_shows_59(store: Store) -> None:
    """A command running at 59/min showed 0.98/min."""
    store.write_operations(
        [Operation("/colorize", at(BURST, i), 900 * MS, kind="flow") for i in range(59)],
        service="colorizer",
    )
    assert report(store).operations[0].throughput_per_min == pytest.approx(59.0)


def test_covered_is_the_span_of_the_data(store: Store) -> None:
    """The requested 04:12-05:13 was echoed while the data spanned 3 minutes."""
    burst(store)
    doc = report(store).to_dict()
    assert doc["window"] == {"since": "2026-11-23T04:12:00Z", "until": "2026-11-23T05:13:00Z"}
    assert doc["covered"] == {"since": "2026-11-23T04:20:00Z", "until": "2026-11-23T04:23:00Z"}


@pytest.mark.parametrize("hours", [3, 30])
def test_rate_and_covered_stay_exact_over_longer_windows(store: Store, hours: int) -> None:
    """Windows read from hour (and day) rows still count the minutes with data."""
    burst(store)
    r = report(store, since=UNTIL - timedelta(hours=hours))
    assert r.operations[0].throughput_per_min == pytest.approx(38.0)
    assert (r.covered_since, r.covered_until) == (BURST, BURST + timedelta(minutes=3))


def test_empty_window_covers_nothing(store: Store) -> None:
    doc = report(store).to_dict()
    assert doc["covered"] == {"since": None, "until": None}
    assert doc["active_minutes"] == 0
    assert doc["all_flows"] is None
    assert doc["instances"] == []


def test_covered_follows_the_name_filter(store: Store) -> None:
    burst(store)
    store.write_operations([Operation("db.q", at(BURST, 600), MS, kind="db")], service="tg")
    r = report(store, name="db.*")
    assert (r.covered_since, r.covered_until) == (
        BURST + timedelta(minutes=10),
        BURST + timedelta(minutes=11),
    )
    assert r.operations[0].throughput_per_min == pytest.approx(1 / 4)  # the service's minutes


# -- 5. failures shown, 6. all flows ----------------------------------------------


def test_failed_flows_are_listed_beside_the_slowest(store: Store) -> None:
    ops = [Operation("/slow", at(BURST, i), (1000 + i) * MS, kind="flow") for i in range(10)]
    ops += [
        Operation("/pay", at(BURST, 100 + 60 * i), 5 * MS, kind="flow", status="error",
                  error=f"E{i}") for i in range(4)
    ]  # fmt: skip
    store.write_operations(ops)
    r = report(store, top=2)
    assert [f.name for f in r.slowest_flows] == ["/slow", "/slow"]
    assert all(f.status == "ok" for f in r.slowest_flows)
    assert [(f.name, f.error) for f in r.failed_flows] == [("/pay", "E3"), ("/pay", "E2")]
    doc = r.to_dict()
    assert [f["error"] for f in doc["failed_flows"]] == ["E3", "E2"]
    assert report(store, top=0).failed_flows == []


def test_all_flows_line_sums_every_flow(store: Store) -> None:
    fast = [float(v) for v in range(1, 91)]  # 90 fast flows, 1..90 ms
    slow = [1000.0 + v for v in range(10)]  # 10 slow ones, 3 failing
    ops = [Operation("/fast", at(BURST, i), int(v * MS), kind="flow") for i, v in enumerate(fast)]
    ops += [
        Operation("/slow", at(BURST, i), int(v * MS), kind="flow",
                  status="error" if i < 3 else "ok") for i, v in enumerate(slow)
    ]  # fmt: skip
    ops.append(Operation("db.q", at(BURST), 10_000 * MS, kind="db"))  # not a flow
    store.write_operations(ops)
    r = report(store)
    every = sorted(fast + slow)
    total = r.all_flows
    assert total is not None
    assert (total.name, total.kind, total.count, total.errors) == (ALL_FLOWS, "flow", 100, 3)
    assert total.p50_ms == pytest.approx(every[49], rel=0.01)
    assert total.p95_ms == pytest.approx(every[94], rel=0.01)
    assert total.p99_ms == pytest.approx(every[98], rel=0.01)
    assert total.max_ms == pytest.approx(1009.0)
    assert r.to_dict()["all_flows"]["count"] == 100


# -- 7. checkpoints, 4. cancelled -------------------------------------------------


def test_checkpoints_carry_the_time_since_the_previous(store: Store) -> None:
    store.write_operations(
        [
            Operation(
                "/colorize",
                at(BURST),
                40 * MS,
                kind="flow",
                checkpoints=[Checkpoint("downloaded", int(15.5 * MS)), Checkpoint("done", 38 * MS)],
            )
        ]
    )
    flow = report(store).to_dict()["slowest_flows"][0]
    assert flow["checkpoints"] == [
        {"name": "downloaded", "at_ms": 15.5, "since_previous_ms": 15.5},
        {"name": "done", "at_ms": 38.0, "since_previous_ms": 22.5},
    ]


def test_cancelled_operations_are_counted(store: Store) -> None:
    store.write_operations(
        [
            Operation(
                "/dl", at(BURST, i), MS, kind="flow", status="cancelled" if i % 4 == 0 else "ok"
            )
            for i in range(8)
        ]
    )
    dl = report(store).operations[0]
    assert (dl.count, dl.cancelled, dl.errors) == (8, 2, 0)


# -- 8. filters and instances ------------------------------------------------------


def workers(store: Store) -> None:
    """An API and two workers; worker-2 dies at 04:21 while worker-1 goes on to 04:40."""
    burst(store, service="api", instance="api-1")
    for minute in range(20):
        store.write_operations(
            [Operation("job", at(BURST, minute * 60 + 5), 100 * MS, kind="flow")],
            service="worker",
            instance="worker-1",
        )
    store.write_operations(
        [Operation("job", at(BURST, 5 + i * 30), 300 * MS, kind="flow") for i in range(2)],
        service="worker",
        instance="worker-2",
    )


def test_instances_show_a_dead_worker(store: Store) -> None:
    workers(store)
    r = report(store)
    rows = {(i.service, i.instance): i for i in r.instances}
    assert list(rows) == [("api", "api-1"), ("worker", "worker-1"), ("worker", "worker-2")]
    dead = rows["worker", "worker-2"]
    assert (dead.count, dead.active_minutes) == (2, 1)
    assert dead.first_seen == BURST
    assert dead.last_seen == BURST + timedelta(minutes=1)
    assert dead.quiet_minutes == 19
    assert dead.quiet
    assert rows["worker", "worker-1"].quiet_minutes == 0
    assert not rows["worker", "worker-1"].quiet
    doc = r.to_dict()
    assert doc["instances"][2] == {
        "service": "worker",
        "instance": "worker-2",
        "count": 2,
        "errors": 0,
        "cancelled": 0,
        "first_seen": "2026-11-23T04:20:00Z",
        "last_seen": "2026-11-23T04:21:00Z",
        "active_minutes": 1,
        "quiet_minutes": 19,
    }


def test_instance_and_service_filters(store: Store) -> None:
    workers(store)
    one = report(store, instance="worker-2")
    assert [(o.service, o.name, o.count) for o in one.operations] == [("worker", "job", 2)]
    assert one.operations[0].p50_ms == pytest.approx(300.0)
    assert [i.instance for i in one.instances] == ["worker-2"]
    assert [f.service for f in one.slowest_flows] == ["worker", "worker"]
    assert one.to_dict()["filters"]["instance"] == "worker-2"
    workers_only = report(store, service="worker")
    assert {o.service for o in workers_only.operations} == {"worker"}
    assert workers_only.operations[0].count == 22
    assert workers_only.operations[0].throughput_per_min == pytest.approx(22 / 20)
    assert report(store, instance="nobody").operations == []


def test_json_only_adds_fields(store: Store) -> None:
    burst(store)
    doc = json.loads(json.dumps(report(store).to_dict()))
    assert doc["schema"] == "botpulse.report/1"
    assert set(doc) >= {
        "schema", "window", "covered", "generated_at", "store", "relative_accuracy",
        "dropped_events", "dropped_by_reason", "filters", "operations", "slowest_flows",
        "window_minutes", "active_minutes", "all_flows", "instances", "failed_flows",
    }  # fmt: skip
    assert set(doc["filters"]) == {"name", "kind", "service", "instance"}


def test_a_run_of_seconds_counts_only_its_seconds(store: Store) -> None:
    """A window shorter than a minute (the demo's 8 s): the edge minute counts in part."""
    start = BURST + timedelta(seconds=25)
    store.write_operations(
        [Operation("/ping", at(start, i * 0.2), MS, kind="flow") for i in range(40)]
    )
    end = start + timedelta(seconds=8)
    r = build_report(store, start, end, now=end)
    assert r.active_minutes == pytest.approx(8 / 60)
    assert r.operations[0].throughput_per_min == pytest.approx(300.0)
    assert r.to_dict()["active_minutes"] == 0.133
