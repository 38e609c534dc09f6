"""The aggregator: rollups per minute, bounded names and attributes, trace sampling policy."""

from __future__ import annotations

import pytest

from botpulse._aggregate import Aggregator, SamplingPolicy
from botpulse._model import MINUTE, OVERFLOW_NAME
from botpulse._sanitize import MAX_ATTR_CHARS, MAX_NAME_CHARS, clean_attrs
from botpulse.store import MemoryStore, Operation, SeriesFilter

T0 = 1_700_006_400 * 10**9
MS = 10**6
MIN = 60 * 10**9


def flow(at_ns: int, ms: float, status: str = "ok", name: str = "cmd") -> Operation:
    return Operation(name, at_ns, int(ms * MS), kind="flow", status=status,
                     error="Boom" if status == "error" else None)  # fmt: skip


def test_rollups_per_minute_and_status() -> None:
    agg = Aggregator("s", "i")
    agg.add_operations([Operation("a", T0 + 1, 5 * MS), Operation("a", T0 + 59 * 10**9, 7 * MS),
                        Operation("a", T0 + MIN, 1 * MS),
                        Operation("a", T0 + 2, 9 * MS, status="error", error="E")])  # fmt: skip
    batch = agg.batch(None)
    got = sorted(
        (r.start, r.key.status, r.count, r.sum_ns, r.min_ns, r.max_ns) for r in batch.rollups
    )
    start = T0 // 10**9
    assert got == [
        (start, "error", 1, 9 * MS, 9 * MS, 9 * MS),
        (start, "ok", 2, 12 * MS, 5 * MS, 7 * MS),
        (start + MINUTE, "ok", 1, 1 * MS, 1 * MS, 1 * MS),
    ]
    assert batch.event_count == 4
    agg.commit()
    assert not agg.batch(None)


def test_name_cardinality_is_capped_with_an_overflow_bucket() -> None:
    agg = Aggregator("s", "i", max_names=3)
    agg.add_operations([Operation(f"n{i}", T0, MS) for i in range(10)])
    names = {r.key.name: r.count for r in agg.batch(None).rollups}
    assert names == {"n0": 1, "n1": 1, "n2": 1, OVERFLOW_NAME: 7}


def test_names_are_bounded_valid_text() -> None:
    agg = Aggregator("s", "i")
    agg.add_operations([Operation("x" * 10_000, T0, MS), Operation("bad\ud800", T0, MS)])
    names = sorted(r.key.name for r in agg.batch(None).rollups)
    assert len(names[1]) == MAX_NAME_CHARS
    assert names[1].endswith("…")
    assert names[0] == "bad?"
    for name in names:
        name.encode("utf-8")


def test_attrs_are_bounded_masked_and_json_safe() -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    attrs = clean_attrs({
        "password": "hunter2", "api_key": "k", "Authorization": "Bearer x", "author_id": 5,
        "big": "y" * 5000, "nan": float("nan"), "huge": 2**80, "raw": b"secret message",
        "obj": Hostile(), "ok": 1.5, "none": None, **{f"k{i}": i for i in range(40)},
    })  # fmt: skip
    assert attrs["password"] == attrs["api_key"] == attrs["Authorization"] == "***"
    assert attrs["author_id"] == 5
    assert len(attrs["big"]) == MAX_ATTR_CHARS
    assert attrs["nan"] == "nan"
    assert attrs["huge"] == str(2**80)
    assert attrs["raw"] == "<bytes of 14 bytes>"
    assert attrs["obj"] == "<unrepresentable Hostile>"
    assert (attrs["ok"], attrs["none"]) == (1.5, None)
    assert len(attrs) == 33
    assert attrs["attrs_truncated"] == 51 - 32


def test_sampling_keeps_slowest_errors_and_random_per_minute() -> None:
    agg = Aggregator("s", "i", sampling=SamplingPolicy(slowest=2, errors=2, random=1), seed=3)
    ops = [flow(T0 + i * 10**8, ms) for i, ms in enumerate([5, 50, 7, 40, 6])]
    ops += [flow(T0 + 10**9 * 10 + i, 1, status="error") for i in range(5)]
    ops += [flow(T0 + MIN + 1, 3)]  # next minute, own slot
    agg.add_operations(ops)
    traces = agg.batch(None).traces
    minute0 = [t for t in traces if t.started_ns < T0 + MIN]
    slowest = sorted(t.duration_ns // MS for t in minute0 if "slowest" in t.reason)
    assert slowest == [40, 50]
    assert sum("error" in t.reason for t in minute0) == 2
    assert sum("random" in t.reason for t in minute0) == 1
    assert len(minute0) <= 5
    assert [t.duration_ns // MS for t in traces if t.started_ns >= T0 + MIN] == [3]


def test_traces_of_the_open_minute_are_written_as_they_change() -> None:
    agg = Aggregator("s", "i")
    agg.add_operations([flow(T0 + 5, 10), flow(T0 + MIN + 5, 20)])
    batch = agg.batch(now_ns=T0 + MIN + 30 * 10**9)  # second minute still open
    assert sorted(t.duration_ns // MS for t in batch.traces) == [10, 20]
    (open_group,) = {t.group for t in batch.traces if t.started_ns >= T0 + MIN}
    assert open_group != 0
    agg.commit()
    # Nothing changed: nothing to rewrite.
    assert agg.batch(now_ns=T0 + MIN + 31 * 10**9).traces == []
    agg.commit()
    # A slower flow in the open minute: its group is written again, whole, same group id.
    agg.add_operations([flow(T0 + MIN + 40, 30)])
    again = agg.batch(now_ns=T0 + MIN + 45 * 10**9).traces
    assert sorted(t.duration_ns // MS for t in again) == [20, 30]
    assert {t.group for t in again} == {open_group}
    agg.commit()
    # The minute closed: its samples are kept as written, no rewrite without a change.
    assert agg.batch(now_ns=T0 + 2 * MIN + 10**9).traces == []


def test_failed_write_keeps_everything_and_memory_stays_bounded() -> None:
    agg = Aggregator("s", "i", max_pending_rollups=10)
    for minute in range(15):  # 15 minutes x 1 series: 5 oldest minutes get evicted
        agg.add_operations([Operation("a", T0 + minute * MIN, MS)] * 2)
    batch = agg.batch(None)
    assert len(batch.rollups) == 10
    assert agg.lost_events == 10
    assert sum(d.count for d in batch.drops if d.reason == "store_unavailable") == 10
    assert agg.pending_events == 20


def test_an_outage_evicts_the_oldest_minutes_first() -> None:
    agg = Aggregator("s", "i", max_pending_rollups=8)  # 2 series: 4 minutes
    for minute in range(7):  # minute m: m + 1 operations "a" and one sampled flow "cmd"
        agg.add_operations([Operation("a", T0 + minute * MIN + k, MS) for k in range(minute + 1)])
        agg.add_operations([flow(T0 + minute * MIN + 30 * 10**9, 5)])
    assert agg.lost_events == (1 + 2 + 3) + 3
    # What a reader sees once the store is back: minutes 3..6 exact; 0..2 counted as lost.
    store = MemoryStore()
    store.write(agg.batch(None))
    agg.commit()
    t0_s = T0 // 10**9
    rows = store.read_rollups(MINUTE, t0_s, t0_s + 3600, SeriesFilter())
    assert sorted((r.start, r.key.name, r.count) for r in rows) == [
        (t0_s + m * 60, name, count)
        for m in range(3, 7)
        for name, count in (("a", m + 1), ("cmd", 1))
    ]
    traces = store.read_traces(t0_s, t0_s + 3600, limit=100)
    assert sorted(t.started_ns for t in traces) == [T0 + m * MIN + 30 * 10**9 for m in range(3, 7)]
    assert store.read_drops(t0_s, t0_s + 3600) == {"store_unavailable": 9}
    assert store.read_drops(t0_s + 180, t0_s + 3600) == {}  # the loss is in the evicted minutes


def test_operation_type_errors() -> None:
    agg = Aggregator("s", "i")
    with pytest.raises(TypeError, match="must be int"):
        agg.add_operations([Operation("a", 1.5, MS)])  # type: ignore[arg-type]
