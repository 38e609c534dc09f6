"""Durations and ISO times from the command line."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from botpulse import ConfigurationError
from botpulse.analysis.window import parse_duration, parse_moment, parse_window

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "delta"),
    [("30s", timedelta(seconds=30)), ("15m", timedelta(minutes=15)), ("24h", timedelta(hours=24)),
     ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)), ("1.5h", timedelta(minutes=90)),
     (" 10 min ", timedelta(minutes=10))],
)  # fmt: skip
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
    assert parse_moment(text, NOW) == NOW - delta


@pytest.mark.parametrize("text", ["", "15", "m15", "15x", "-5m", "0m", "99999d", "1h30m"])
def test_bad_durations_name_the_value(text: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_moment(text, NOW, name="--since")
    assert repr(text.strip()) in str(info.value) or repr(text) in str(info.value)
    assert "15m" in str(info.value) or "between 1s and 3650d" in str(info.value)


def test_iso_times_and_now() -> None:
    assert parse_moment("2026-11-23T10:00", NOW) == datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
    assert parse_moment("2026-11-23T10:00Z", NOW) == datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
    assert parse_moment("2026-11-23T11:00+01:00", NOW) == datetime(
        2026, 11, 23, 10, tzinfo=timezone.utc
    )
    assert parse_moment("now", NOW) == NOW


def test_window_order_is_checked() -> None:
    assert parse_window("1h", now=NOW) == (NOW - timedelta(hours=1), NOW)
    with pytest.raises(ConfigurationError, match="empty window"):
        parse_window("1h", "2h", now=NOW)
