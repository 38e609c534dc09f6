"""botpulse.instrument()/uninstrument(): names, options, errors."""

from __future__ import annotations

import importlib.util

import pytest

import botpulse
from botpulse import _detect
from botpulse.instrument import LIBRARIES, _common, instrument, instrumented


def test_unknown_library_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown library 'mysql'; valid: sqlite3, aiosqlite"):
        instrument("mysql")
    assert instrumented() == ()


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"pip install 'botpulse\[postgres\]'"):
        instrument("asyncpg")


def test_unknown_and_bad_options_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown option 'slow'"):
        instrument(slow=3)
    with pytest.raises(TypeError, match="slow_ms must be a number"):
        instrument(slow_ms="fast")
    with pytest.raises(ValueError, match="n_plus_one_count must be >= 0"):
        instrument(n_plus_one_count=-1)
    with pytest.raises(TypeError, match="unknown option 'often'"):
        instrument(flows={"stats": {"often": 3}})


def test_options_and_per_flow_overrides() -> None:
    instrument(slow_ms=250, flows={"admin.*": {"slow_ms": 1000}, "stats": {"n_plus_one_count": 9}})
    assert _common.settings.slow_ms == 250
    assert _common.settings.for_flow("admin.purge").slow_ms == 1000
    assert _common.settings.for_flow("stats").n_plus_one_count == 9
    assert _common.settings.for_flow("stats").slow_ms == 250
    assert _common.settings.for_flow("other") is _common.settings


def test_no_library_turns_on_detectors_only_and_uninstrument_turns_them_off() -> None:
    instrument()
    assert any(type(d).__name__ == "QueryDetector" for d in _detect.registered())
    assert _detect.normalizer("db") is not None
    botpulse.uninstrument()
    assert not any(type(d).__name__ == "QueryDetector" for d in _detect.registered())
    assert _detect.normalizer("db") is None


def test_every_library_is_listed_with_an_extra() -> None:
    assert set(LIBRARIES) == {
        "sqlite3", "aiosqlite", "asyncpg", "psycopg", "psycopg2",
        "sqlalchemy", "redis", "aiohttp", "httpx",
    }  # fmt: skip
