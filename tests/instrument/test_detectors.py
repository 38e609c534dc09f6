"""The query detectors on planted problems: N+1, slow query, repeated identical read."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import botpulse
from botpulse.instrument import instrument
from botpulse.testing import capture

from .helpers import findings

PLAYERS = 30


@pytest.fixture
def game_db() -> Iterator[sqlite3.Connection]:
    """An instrumented SQLite database where every statement takes ~1 ms (a round trip)."""
    instrument("sqlite3")
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE players (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE scores (player_id INT, points INT)")
    conn.executemany("INSERT INTO players (name) VALUES (?)", [(f"p{i}",) for i in range(PLAYERS)])
    conn.executemany("INSERT INTO scores VALUES (?, ?)", [(i + 1, i * 10) for i in range(PLAYERS)])
    conn.set_trace_callback(lambda _sql: time.sleep(0.001))
    yield conn
    conn.close()


def leaderboard_n_plus_one(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    with botpulse.flow("leaderboard"):
        players = conn.execute("SELECT id, name FROM players").fetchall()
        out = []
        for player_id, name in players:
            points = conn.execute(  # the N+1 line
                "SELECT points FROM scores WHERE player_id = ?", (player_id,)
            ).fetchone()
            out.append((name, points))
        return out


def leaderboard_batched(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    with botpulse.flow("leaderboard"):
        return conn.execute(
            "SELECT p.name, s.points FROM players p JOIN scores s ON s.player_id = p.id"
        ).fetchall()


def test_a_loop_of_queries_is_exactly_one_n_plus_one_with_its_source_line(
    game_db: sqlite3.Connection,
) -> None:
    with capture() as recorded:
        leaderboard_n_plus_one(game_db)
        found = findings(recorded, "n_plus_one")
    assert len(found) == 1
    finding = found[0]
    assert finding.flow == "leaderboard"
    assert finding.subject == "SELECT points FROM scores WHERE player_id = ?"
    assert finding.count == PLAYERS
    assert finding.total_ns >= 20_000_000
    assert finding.source is not None
    path, _, rest = finding.source.partition(":")
    assert path == "tests/instrument/test_detectors.py"
    line = int(rest.split(" ")[0])
    source_lines = Path(path).read_text().splitlines()
    assert "the N+1 line" in source_lines[line - 1] or "the N+1 line" in source_lines[line - 2]
    assert rest.endswith("in leaderboard_n_plus_one")
    assert finding.example["executions"] == PLAYERS


def test_the_batched_version_has_no_finding(game_db: sqlite3.Connection) -> None:
    with capture() as recorded:
        rows = leaderboard_batched(game_db)
        assert len(rows) == PLAYERS
        assert findings(recorded) == []


def test_per_flow_thresholds_override_the_defaults(game_db: sqlite3.Connection) -> None:
    instrument(flows={"leader*": {"n_plus_one_count": PLAYERS + 1}})
    with capture() as recorded:
        leaderboard_n_plus_one(game_db)
        assert findings(recorded, "n_plus_one") == []


def test_below_the_time_floor_is_not_reported() -> None:
    instrument("sqlite3")
    conn = sqlite3.connect(":memory:")  # no artificial round trip: microseconds each
    conn.execute("CREATE TABLE t (id INT)")
    with capture() as recorded:
        with botpulse.flow("quick"):
            for i in range(20):
                conn.execute("SELECT id FROM t WHERE id = ?", (i,))
        assert findings(recorded, "n_plus_one") == []


async def test_hand_measured_operations_in_a_loop_but_not_when_gathered() -> None:
    instrument()  # detectors only

    async def fetch_user() -> None:
        async with botpulse.measure("api.fetch_user", kind="http"):
            await asyncio.sleep(0.005)

    with capture() as recorded:
        async with botpulse.flow("sequential"):
            for _ in range(6):
                await fetch_user()
        async with botpulse.flow("gathered"):
            await asyncio.gather(*(fetch_user() for _ in range(6)))
        found = findings(recorded, "n_plus_one")
    assert [(f.flow, f.subject, f.count) for f in found] == [("sequential", "api.fetch_user", 6)]


def test_a_very_slow_single_execution_is_a_slow_query(game_db: sqlite3.Connection) -> None:
    instrument(very_slow_ms=30)
    game_db.set_trace_callback(lambda _sql: time.sleep(0.04))
    with capture() as recorded:
        with botpulse.flow("report"):
            game_db.execute("SELECT count(*) FROM scores WHERE points > 5").fetchone()
        found = findings(recorded, "slow_query")
    assert [(f.flow, f.subject, f.count) for f in found] == [
        ("report", "SELECT count(*) FROM scores WHERE points > ?", 1)
    ]
    assert found[0].max_ns >= 40_000_000
    assert found[0].source is not None  # slower than source_ms: the line is always there


def test_repeated_identical_reads_are_a_cache_candidate(game_db: sqlite3.Connection) -> None:
    with capture() as recorded:
        with botpulse.flow("profile"):
            for _ in range(4):
                game_db.execute("SELECT name FROM players WHERE id = ?", (987_654_321,)).fetchone()
            for i in range(2):  # different parameters: not the same read
                game_db.execute("SELECT points FROM scores WHERE player_id = ?", (i,))
        found = findings(recorded, "cache_candidate")
    assert [(f.flow, f.subject) for f in found] == [
        ("profile", "SELECT name FROM players WHERE id = ?")
    ]
    assert found[0].count == 3  # three of the four would have been served by a cache
    assert found[0].details["ttl_s"] >= 1
    assert "987654321" not in json.dumps(found[0].example) + json.dumps(found[0].details)


def test_the_same_read_across_flows_within_the_window_is_a_cache_candidate(
    game_db: sqlite3.Connection,
) -> None:
    instrument(repeat_count=3, repeat_window_s=60)
    with capture() as recorded:
        for _ in range(3):  # three commands, each reading the same row once
            with botpulse.flow("rank"):
                game_db.execute("SELECT name FROM players WHERE id = ?", (5,)).fetchone()
        found = findings(recorded, "cache_candidate")
    assert [(f.flow, f.subject, f.details["scope"]) for f in found] == [
        ("rank", "SELECT name FROM players WHERE id = ?", "window")
    ]
    assert 1 <= found[0].details["ttl_s"] <= 300


def test_a_statement_whose_p95_is_over_the_threshold_is_slow(game_db: sqlite3.Connection) -> None:
    instrument(slow_ms=2, very_slow_ms=10_000)
    game_db.set_trace_callback(lambda _sql: time.sleep(0.004))
    with capture() as recorded:
        with botpulse.flow("history"):
            for i in range(3):
                game_db.execute("SELECT points FROM scores WHERE points > ?", (i,)).fetchall()
        found = findings(recorded, "slow_query")
    assert [(f.subject, f.count) for f in found] == [
        ("SELECT points FROM scores WHERE points > ?", 3)
    ]
    assert found[0].details["p95_ms"] >= 2
