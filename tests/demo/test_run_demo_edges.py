"""``run_demo()`` at its edges: one-second runs, bad arguments, a failing progress callback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import botpulse
from botpulse.analysis import build_report
from botpulse.demo import run_demo
from botpulse.store import open_store


@pytest.fixture
def database_dir(tmp_path: Path) -> Path:
    """Where the demo's temporary game database goes (apart from the store)."""
    path = tmp_path / "tmp"
    path.mkdir()
    return path


def test_a_one_second_run_finishes_within_a_second_of_it(
    sqlite_url: str, database_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    summary = run_demo(sqlite_url, seconds=1, users=4, seed=3, database_dir=database_dir)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5.0  # slack for a loaded machine; never less than asked
    assert summary.commands >= 4  # every user sends at least one command
    with open_store(sqlite_url, create=False) as store:
        report = build_report(store, summary.started_at, summary.finished_at)
    flows = [op for op in report.operations if op.kind == "flow"]
    assert sum(op.count for op in flows) == summary.commands
    assert capsys.readouterr() == ("", ""), "the demo must not print (the CLI draws a bar)"
    assert list(database_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seconds": 0}, "seconds=0"),
        ({"seconds": -1.5}, "seconds=-1.5"),
        ({"seconds": float("nan")}, "seconds=nan"),
        ({"seconds": "20"}, "seconds='20'"),
        ({"seconds": 1, "users": 0}, "users=0"),
        ({"seconds": 1, "users": 1001}, "users=1001"),
    ],
)
def test_bad_arguments_fail_before_anything_starts(
    sqlite_url: str, database_dir: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run_demo(sqlite_url, database_dir=database_dir, **kwargs)  # type: ignore[arg-type]
    assert botpulse.stats() is None
    assert list(database_dir.iterdir()) == []


def test_a_bad_store_url_fails_before_the_database_is_created(database_dir: Path) -> None:
    with pytest.raises(botpulse.ConfigurationError):
        run_demo("nosuchscheme://x", seconds=1, database_dir=database_dir)
    assert list(database_dir.iterdir()) == []


def test_a_failing_progress_callback_stops_the_demo_and_cleans_up(
    sqlite_url: str, database_dir: Path
) -> None:
    class Interrupted(Exception):
        pass

    calls: list[float] = []

    def on_progress(fraction: float) -> None:
        calls.append(fraction)
        if len(calls) == 3:
            raise Interrupted

    started = time.monotonic()
    with pytest.raises(Interrupted):
        run_demo(sqlite_url, seconds=10, database_dir=database_dir, on_progress=on_progress)
    # Three progress calls take ~0.6 s; a demo that kept going would run its 10 s.
    assert time.monotonic() - started < 7.0, "the demo must stop when on_progress raises"
    assert len(calls) == 3
    assert botpulse.stats() is None
    assert list(database_dir.iterdir()) == []
