"""``botpulse audit`` on planted problems: N+1, missing index (SQLite and PostgreSQL), caching."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.servers import server_url

import botpulse
from botpulse.cli import main
from botpulse.instrument import instrument

ROWS = 100_000


def run_audit(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["audit", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    assert document["schema"] == "botpulse.audit/1"
    return document


def of_type(document: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [f for f in document["findings"] if f["type"] == type_]


@pytest.fixture
def bot_db(tmp_path: Path) -> Path:
    """The bot's own SQLite database: players, and 100k matches with no index on player_id."""
    path = tmp_path / "bot.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE players (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE matches (id INTEGER PRIMARY KEY, player_id INT, score INT)")
    conn.executemany("INSERT INTO players (name) VALUES (?)", [(f"p{i}",) for i in range(20)])
    conn.executemany(
        "INSERT INTO matches (player_id, score) VALUES (?, ?)",
        ((i % 5000, i % 97) for i in range(ROWS)),
    )
    conn.commit()
    conn.close()
    return path


def record_bot(store_url: str, db: Path, *, batched: bool) -> None:
    """Run the bot's /leaderboard once against ``db`` with botpulse recording to ``store_url``."""
    instrument("sqlite3")
    botpulse.init(store=store_url, service="bot", flush_interval=0.05)
    conn = sqlite3.connect(db)
    conn.set_trace_callback(lambda _sql: time.sleep(0.001))  # a realistic round trip
    try:
        with botpulse.flow("leaderboard"):
            players = conn.execute("SELECT id, name FROM players").fetchall()
            if batched:
                conn.execute(
                    "SELECT player_id, sum(score) FROM matches WHERE player_id IN "
                    f"({', '.join('?' * len(players))}) GROUP BY player_id",
                    [p[0] for p in players],
                ).fetchall()
            else:
                for player_id, _name in players:
                    conn.execute(  # planted N+1
                        "SELECT sum(score) FROM matches WHERE player_id = ?", (player_id,)
                    ).fetchone()
    finally:
        conn.close()
        botpulse.shutdown()


def test_sqlite_n_plus_one_and_missing_index_then_the_index_fixes_it(
    tmp_path: Path, bot_db: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'botpulse.db'}"
    record_bot(store, bot_db, batched=False)
    document = run_audit("--store", store, "--db", f"sqlite:///{bot_db}")
    n_plus_one = of_type(document, "n_plus_one")
    assert len(n_plus_one) == 1
    finding = n_plus_one[0]
    assert finding["flow"] == "leaderboard"
    assert finding["fingerprint"] == "SELECT sum(score) FROM matches WHERE player_id = ?"
    assert finding["count"] == 20
    assert finding["statement_type"] == "SELECT"
    assert finding["tables"] == ["matches"]
    assert finding["source"].startswith("tests/instrument/test_audit.py:")
    assert finding["source"].endswith("in record_bot")
    assert finding["statement"] == (
        "SELECT player_id, sum(score) FROM matches WHERE player_id IN (?)"
    )
    missing = of_type(document, "missing_index")
    assert [m["statement"] for m in missing] == [
        "CREATE INDEX matches_player_id_idx ON matches (player_id);"
    ]
    # Ranked by time saved, most first.
    saved = [f["saved_ms"] for f in document["findings"]]
    assert saved == sorted(saved, reverse=True)

    conn = sqlite3.connect(bot_db)
    conn.execute(missing[0]["statement"])
    conn.close()
    again = run_audit("--store", store, "--db", f"sqlite:///{bot_db}")
    assert of_type(again, "missing_index") == []
    assert len(of_type(again, "n_plus_one")) == 1  # the loop is still a loop


def test_the_batched_leaderboard_has_no_n_plus_one(tmp_path: Path, bot_db: Path) -> None:
    store = f"sqlite:///{tmp_path / 'botpulse.db'}"
    record_bot(store, bot_db, batched=True)
    document = run_audit("--store", store)
    assert of_type(document, "n_plus_one") == []
    assert any("--db" in note for note in document["notes"])


def test_audit_never_writes_to_the_bot_database(tmp_path: Path, bot_db: Path) -> None:
    store = f"sqlite:///{tmp_path / 'botpulse.db'}"
    record_bot(store, bot_db, batched=False)
    before = bot_db.read_bytes()
    run_audit("--store", store, "--db", f"sqlite:///{bot_db}", "--slow-ms", "0")
    assert bot_db.read_bytes() == before


def test_postgres_unindexed_filter_gets_a_verified_index(tmp_path: Path) -> None:
    import psycopg

    url = server_url("BOTPULSE_TEST_POSTGRES_URL", "PostgreSQL")
    table = "bp_audit_matches"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, guild_id int, score int)")
        conn.execute(
            f"INSERT INTO {table} (guild_id, score) "
            f"SELECT g % 1000, g % 97 FROM generate_series(1, {ROWS}) g"
        )
        conn.execute(f"ANALYZE {table}")
    store = f"sqlite:///{tmp_path / 'botpulse.db'}"
    try:
        instrument("psycopg")
        botpulse.init(store=store, service="bot", flush_interval=0.05)
        with psycopg.connect(url) as conn:
            for guild in range(5):
                with botpulse.flow("guild_stats"):
                    conn.execute(
                        f"SELECT count(*), max(score) FROM {table} WHERE guild_id = %s", (guild,)
                    ).fetchone()
        botpulse.shutdown()
        document = run_audit("--store", store, "--db", url, "--slow-ms", "0.5")
        missing = of_type(document, "missing_index")
        assert [m["statement"] for m in missing] == [
            f"CREATE INDEX {table}_guild_id_idx ON {table} (guild_id);"
        ]
        assert "hypopg" in missing[0]["advice"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(missing[0]["statement"])
        again = run_audit("--store", store, "--db", url, "--slow-ms", "0.5")
        assert of_type(again, "missing_index") == []
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_table_and_markdown_formats_and_bad_db(tmp_path: Path, bot_db: Path) -> None:
    store = f"sqlite:///{tmp_path / 'botpulse.db'}"
    record_bot(store, bot_db, batched=False)
    table = CliRunner().invoke(main, ["audit", "--store", store])
    assert table.exit_code == 0, table.output
    assert "1. N+1 in 'leaderboard'" in table.output
    assert "tests/instrument/test_audit.py:" in table.output
    markdown = CliRunner().invoke(main, ["audit", "--store", store, "--format", "markdown"])
    assert markdown.output.startswith("# botpulse audit")
    missing = CliRunner().invoke(
        main, ["audit", "--store", store, "--db", "postgresql://u:secret@127.0.0.1:1/x"]
    )
    assert missing.exit_code == 0
    assert "secret" not in missing.output
    assert "cannot open --db" in missing.output
