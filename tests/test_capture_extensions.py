"""fail(), rename(), tags, step failures, record_operation() and gauge() on the hot path."""

from __future__ import annotations

import botpulse
from botpulse import _capture
from botpulse._capture import GAUGE_SCALE
from botpulse.testing import capture


def test_fail_marks_the_flow_error_with_the_reason() -> None:
    with capture() as recorded:
        with botpulse.flow("cmd"):
            botpulse.fail("DatabaseDown")
        with botpulse.flow("cmd"):
            pass
    assert recorded.count("cmd", status="error") == 1
    assert recorded.count("cmd", status="ok") == 1
    (failed,) = [t for t in recorded.traces("cmd") if t.status == "error"]
    assert failed.error == "DatabaseDown"


def test_rename_names_the_flow_where_the_bot_knows_the_command() -> None:
    with capture() as recorded, botpulse.flow("irc.message") as f:
        f.rename("karma")
    assert recorded.count("karma", kind="flow") == 1
    assert recorded.count("irc.message") == 0


def test_tags_are_kept_on_the_timer() -> None:
    with capture():
        with botpulse.flow("cmd", tags={"shard": 1}) as f:
            botpulse.tag(cache="hit")
            assert f.tags == {"shard": 1, "cache": "hit"}
        botpulse.tag(ignored="outside a flow")


def test_record_operation_joins_the_current_flow_and_marks_step_failures() -> None:
    with capture() as recorded, botpulse.flow("cmd") as f:
        t0 = _capture.now_ns()
        _capture.record_operation("SELECT 1", "db", t0, t0 + 2_000_000, attrs={"rows": 1})
        _capture.record_operation("SELECT 2", "db", t0, t0 + 1_000_000, error="UndefinedTable")
        assert f._step_failed
    assert recorded.count("SELECT 1", kind="db") == 1
    assert recorded.count("SELECT 2", kind="db", status="error") == 1
    (trace,) = recorded.traces("cmd")
    assert [(c.name, c.status, c.error) for c in trace.children] == [
        ("SELECT 1", "ok", None),
        ("SELECT 2", "error", "UndefinedTable"),
    ]


def test_gauge_values_roll_up_scaled() -> None:
    with capture() as recorded:
        for value in (1.5, 2.5, float("nan"), -3):
            _capture.gauge("loop.lag_ms", value)
        recorded.flush()
        summary = recorded.store.summarize(0, 2**40, now=2**40)
    rollup = summary.rollups[("test", "loop.lag_ms", "gauge", "ok")]
    assert rollup.count == 4
    assert rollup.max_ns == 2.5 * GAUGE_SCALE
    assert rollup.min_ns == 0


def test_extensions_are_noops_before_init() -> None:
    _capture.record_operation("x", "db", 0, 1)
    _capture.gauge("g", 1.0)
    botpulse.fail("nothing")
    botpulse.tag(a=1)
