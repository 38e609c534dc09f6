"""Time windows from user input: durations like ``15m``/``24h``/``7d`` or ISO-8601 instants.

Naive ISO times are taken as UTC. Errors are :class:`ConfigurationError` with a
one-line message naming the bad value and the accepted forms.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ..errors import ConfigurationError

__all__ = ["parse_duration", "parse_moment", "parse_window"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|days|w|wk)\s*$", re.I)
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hr": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "wk": 604800,
}
_FORMS = "a duration like 30s, 15m, 24h, 7d, 2w or an ISO-8601 time like 2026-11-23T10:00"
_MAX = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """``"15m"`` → 15 minutes. Raises :class:`ConfigurationError` on anything else."""
    match = _DURATION.match(text or "")
    if not match:
        raise ConfigurationError(f"invalid duration {text!r}: expected {_FORMS}")
    value = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    try:
        delta = timedelta(seconds=value)
    except OverflowError:
        raise ConfigurationError(
            f"invalid duration {text!r}: must be between 1s and 3650d"
        ) from None
    if delta <= timedelta(0) or delta > _MAX:
        raise ConfigurationError(f"invalid duration {text!r}: must be between 1s and 3650d")
    return delta


def parse_moment(text: str, now: datetime, *, name: str = "time") -> datetime:
    """A duration (meaning that long before ``now``), ``now``, or an ISO-8601 time (UTC)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError(f"invalid {name} {text!r}: expected {_FORMS}")
    text = text.strip()
    if text.lower() == "now":
        return now
    if _DURATION.match(text):
        return now - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ConfigurationError(f"invalid {name} {text!r}: expected {_FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise ConfigurationError(f"invalid {name} {text!r}: out of range in UTC") from None


def parse_window(
    since: str, until: str | None = None, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """``(since, until)`` as aware UTC datetimes; ``until`` defaults to now."""
    now = now or datetime.now(timezone.utc)
    start = parse_moment(since, now, name="--since")
    end = now if until is None else parse_moment(until, now, name="--until")
    if end <= start:
        raise ConfigurationError(
            f"empty window: --since {since!r} is not before --until {until or 'now'!r}"
        )
    return start, end
