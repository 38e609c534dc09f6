"""Per-flow steps and tag splits, read back through the store from known operations."""

from __future__ import annotations

from botpulse._model import Operation
from botpulse.analysis.breakdown import flow_steps, tag_splits
from botpulse.store import MemoryStore

T0 = 1_700_006_400
NS, MS = 10**9, 10**6


def op(name: str, at: float, ms: float, **kw) -> Operation:  # type: ignore[no-untyped-def]
    return Operation(name, int(at * NS), int(ms * MS), **kw)


def test_steps_per_flow_with_runs_and_share() -> None:
    store = MemoryStore()
    ops = []
    for i in range(4):  # 4 photo flows of 100 ms, each with 2 replies of 10 ms and a 50 ms model
        ops.append(op("photo", T0 + i, 100, kind="flow"))
        ops += [op("tg.reply", T0 + i, 10, kind="http", flow="photo")] * 2
        ops.append(op("model", T0 + i, 50, flow="photo"))
    ops.append(op("admin", T0 + 9, 20, kind="flow"))
    ops.append(op("tg.reply", T0 + 9, 5, kind="http", flow="admin", status="error"))
    store.write_operations(ops, service="bot")
    steps = {(s.flow, s.name): s for s in flow_steps(store, T0, T0 + 60, now=T0 + 60)}
    assert set(steps) == {("photo", "tg.reply"), ("photo", "model"), ("admin", "tg.reply")}
    reply = steps["photo", "tg.reply"]
    assert (reply.count, reply.per_run, reply.errors) == (8, 2.0, 0)
    assert abs(reply.share - 0.2) < 1e-9  # 80 ms of 400 ms
    assert abs(steps["photo", "model"].share - 0.5) < 1e-9
    admin = steps["admin", "tg.reply"]
    assert (admin.count, admin.errors, admin.per_run) == (1, 1, 1.0)
    assert abs(admin.p99_ms - 5) <= 0.05
    # Sorted by flow, then by share.
    assert [(s.flow, s.name) for s in flow_steps(store, T0, T0 + 60, now=T0 + 60)] == [
        ("admin", "tg.reply"),
        ("photo", "model"),
        ("photo", "tg.reply"),
    ]


def test_tag_splits_by_tag_and_by_instance() -> None:
    store = MemoryStore()
    hits = [op("colorize", T0 + i, 2, kind="flow", tags={"cache": "hit"}) for i in range(3)]
    misses = [op("colorize", T0 + i, 200, kind="flow", tags={"cache": "miss"}) for i in range(2)]
    untagged = [op("help", T0, 1, kind="flow")]
    store.write_operations(hits + untagged, service="bot", instance="w1")
    store.write_operations(misses, service="bot", instance="w2")
    splits = tag_splits(store, T0, T0 + 60, "cache", now=T0 + 60)
    assert [(s.name, s.tags, s.count) for s in splits] == [
        ("colorize", {"cache": "miss"}, 2),
        ("colorize", {"cache": "hit"}, 3),
    ]
    assert abs(splits[0].p95_ms - 200) <= 2
    by_instance = tag_splits(store, T0, T0 + 60, "instance", now=T0 + 60, name="colorize")
    assert sorted((s.tags["instance"], s.count) for s in by_instance) == [("w1", 3), ("w2", 2)]
