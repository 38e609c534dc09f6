"""The pieces every renderer shares: number formatting, bars, waterfall rows, escaping."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botpulse.analysis.report import FlowTrace
from botpulse.cli._format import (
    bar_geometry,
    checkpoint_note,
    format_ms,
    marker_geometry,
    shorten_middle,
    text_bar,
    text_marker,
    waterfall,
)
from botpulse.cli.render_markdown import escape_markdown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "0"),
        (0.004, "<0.01"),
        (0.4213, "0.42"),
        (4.2, "4.20"),
        (42.17, "42.2"),
        (421.4, "421"),
        (12345.6, "12,346"),
        (float("nan"), "-"),
    ],
)
def test_format_ms(value: float, shown: str) -> None:
    assert format_ms(value) == shown


def test_text_bar_is_proportional() -> None:
    assert text_bar(0.0, 1.0, 10) == "█" * 10
    assert text_bar(0.5, 0.5, 10) == " " * 5 + "█" * 5
    assert text_bar(0.0, 0.25, 10) == "██▌"
    assert text_bar(0.0, 0.001, 10) == "▏"  # a tiny step is still visible
    assert text_bar(0.0, 0.0, 10) == ""
    assert text_bar(0.2, 0.1, 10, track="░") == "░░█░░░░░░░"


@given(
    left=st.floats(0, 1),
    width=st.floats(0, 1),
    cells=st.integers(1, 200),
)
def test_text_bar_never_exceeds_its_cells(left: float, width: float, cells: int) -> None:
    assert len(text_bar(left, min(width, 1 - left), cells)) <= cells
    assert len(text_bar(left, min(width, 1 - left), cells, track="░")) == cells


def flow_trace(**overrides: object) -> FlowTrace:
    fields: dict[str, object] = {
        "service": "bot",
        "name": "queue",
        "started_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "duration_ms": 100.0,
        "status": "ok",
        "error": None,
        "reason": "slowest",
        "checkpoints": [("loaded", 30.0), ("guard", 10.0)],
        "children": [
            {
                "name": "db.load",
                "kind": "db",
                "start_ms": 10.0,
                "duration_ms": 20.0,
                "status": "ok",
                "error": None,
                "depth": 1,
            },
            {
                "name": "task",
                "kind": "op",
                "start_ms": 90.0,
                "duration_ms": 30.0,  # outlives the flow
                "status": "error",
                "error": "boom",
                "depth": 2,
            },
        ],
        "truncated": 0,
    }
    fields.update(overrides)
    return FlowTrace(**fields)  # type: ignore[arg-type]


def test_waterfall_rows_in_time_order_with_checkpoints_as_markers() -> None:
    steps, scale = waterfall(flow_trace())
    assert [(s.label, s.kind, s.depth) for s in steps] == [
        ("queue", "flow", 0),
        ("guard", "checkpoint", 1),
        ("db.load", "db", 1),
        ("loaded", "checkpoint", 1),
        ("task", "op", 2),
    ]
    guard, loaded = steps[1], steps[3]
    # a checkpoint sits at the moment it was reached; the time since the previous is a note
    assert (guard.start_ms, guard.duration_ms, guard.since_ms) == (10.0, 0.0, 10.0)
    assert (loaded.start_ms, loaded.duration_ms, loaded.since_ms) == (30.0, 0.0, 20.0)
    assert checkpoint_note(guard) == "+10.0 ms since start"
    assert checkpoint_note(loaded) == "+20.0 ms since guard"
    assert marker_geometry(loaded, scale) == pytest.approx((10 / 120, 30 / 120))
    assert scale == 120.0  # the spawned task ran past the flow's end
    assert steps[4].failed
    assert bar_geometry(steps[4], scale) == pytest.approx((0.75, 0.25))


def test_text_marker_puts_the_diamond_at_the_offset() -> None:
    assert text_marker(0.0, 0.5, 10) == "┈┈┈┈┈◆"
    assert text_marker(0.2, 0.5, 10, track="░") == "░░┈┈┈◆░░░░"
    assert text_marker(0.0, 1.0, 10) == "┈" * 9 + "◆"
    assert text_marker(0.0, 0.0, 10) == "◆"


@pytest.mark.parametrize(
    ("text", "width", "shown"),
    [
        ("SELECT * FROM users WHERE id = ?", 16, "SELECT *… id = ?"),
        ("SELECT * FROM users WHERE id = ?", 5, "SE… ?"),
        ("short", 16, "short"),
        ("abcdef", 1, "…"),
    ],
)
def test_shorten_middle_keeps_both_ends(text: str, width: int, shown: str) -> None:
    assert shorten_middle(text, width) == shown
    assert len(shorten_middle(text, width)) == min(len(text), width)


def test_waterfall_of_an_instant_flow_has_a_scale() -> None:
    steps, scale = waterfall(flow_trace(duration_ms=0.0, checkpoints=[], children=[]))
    assert scale > 0
    assert bar_geometry(steps[0], scale) == (0.0, 0.0)


@given(st.text())
def test_escaped_markdown_stays_in_one_table_cell(text: str) -> None:
    escaped = escape_markdown(text)
    assert "\n" not in escaped
    assert "\r" not in escaped
    unescaped_pipes = escaped.replace("\\\\", "").replace("\\|", "")
    assert "|" not in unescaped_pipes
    assert "<" not in escaped.replace("\\<", "")
