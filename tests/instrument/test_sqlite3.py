"""sqlite3 and aiosqlite instrumentation against the real modules."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

import botpulse
from botpulse.instrument import instrument, instrumented, uninstrument
from botpulse.store import open_store
from botpulse.testing import capture

from .helpers import ALL_TIME, children


def _make_table(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE players (id INTEGER PRIMARY KEY, name TEXT, score INT)")
    conn.executemany("INSERT INTO players (name, score) VALUES (?, ?)", [("ann", 3), ("bob", 5)])


def test_statements_are_recorded_with_fingerprints_inside_the_flow() -> None:
    instrument("sqlite3")
    with capture() as recorded:
        conn = sqlite3.connect(":memory:")
        _make_table(conn)
        with botpulse.flow("profile"):
            row = conn.execute("SELECT name FROM players WHERE id = ?", (2,)).fetchone()
            cur = conn.cursor()
            cur.execute("UPDATE players SET score = score + 1 WHERE name = 'bob'")
        conn.close()
        assert row == ("bob",)
        ops = children(recorded, "profile", "db")
        assert [c.name for c in ops] == [
            "SELECT name FROM players WHERE id = ?",
            "UPDATE players SET score = score + ? WHERE name = ?",
        ]
        assert ops[0].attrs["system"] == "sqlite"
        assert ops[0].attrs["params_secret"] == "***"  # parameter values never stored
        assert ops[1].attrs["rows"] == 1
        assert "source" in ops[0].attrs
        assert ops[0].attrs["source"].startswith("tests/instrument/test_sqlite3.py:")
        assert recorded.count("INSERT INTO players (name, score) VALUES (?)", kind="db") == 1


def test_a_failing_statement_is_an_error_and_still_raises() -> None:
    instrument("sqlite3")
    with capture() as recorded:
        conn = sqlite3.connect(":memory:")
        with botpulse.flow("broken"), pytest.raises(sqlite3.OperationalError):
            conn.execute("SELECT * FROM missing_table")
        ops = children(recorded, "broken", "db")
        assert [(c.name, c.status, c.error) for c in ops] == [
            ("SELECT * FROM missing_table", "error", "OperationalError")
        ]


def test_own_factories_keep_working() -> None:
    class MyConnection(sqlite3.Connection):
        marker = "mine"

    class MyCursor(sqlite3.Cursor):
        marker = "cursor"

    instrument("sqlite3")
    with capture() as recorded:
        conn = sqlite3.connect(":memory:", factory=MyConnection)
        assert isinstance(conn, MyConnection)
        cur = conn.cursor(MyCursor)
        assert isinstance(cur, MyCursor)
        with botpulse.flow("f"):
            cur.execute("SELECT 1")
        assert [c.name for c in children(recorded, "f", "db")] == ["SELECT ?"]


def test_botpulse_own_sqlite_store_is_never_recorded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bp.db'}"
    instrument("sqlite3")
    botpulse.init(store=url, service="bot", flush_interval=0.05)
    conn = sqlite3.connect(tmp_path / "bot.db")
    with botpulse.flow("cmd"):
        conn.execute("CREATE TABLE t (a)")
    conn.close()
    botpulse.shutdown()
    store = open_store(url)
    try:
        names = {(key.name, key.kind) for key in store.series()}
    finally:
        store.close()
    assert ("CREATE TABLE t (a)", "db") in names
    assert all(kind != "db" or name == "CREATE TABLE t (a)" for name, kind in names), names


def test_uninstrument_restores_and_is_idempotent() -> None:
    original = sqlite3.connect
    instrument("sqlite3")
    instrument("sqlite3")
    assert sqlite3.connect is not original
    assert instrumented() == ("sqlite3",)
    uninstrument("sqlite3")
    uninstrument("sqlite3")
    assert sqlite3.connect is original
    assert instrumented() == ()
    with capture() as recorded:
        conn = sqlite3.connect(":memory:")
        with botpulse.flow("f"):
            conn.execute("SELECT 1")
        assert children(recorded, "f", "db") == []


async def test_aiosqlite_records_in_the_awaiting_flow(tmp_path: Path) -> None:
    instrument("aiosqlite", "sqlite3")  # sqlite3 too: aiosqlite's own connections are skipped
    with capture() as recorded:
        async with aiosqlite.connect(tmp_path / "a.db") as db:
            await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            await db.executemany("INSERT INTO t (v) VALUES (?)", [("a",), ("b",)])
            async with botpulse.flow("lookup"):
                async with db.execute("SELECT v FROM t WHERE id = ?", (1,)) as cursor:
                    assert await cursor.fetchone() == ("a",)
                rows = await db.execute_fetchall("SELECT v FROM t")
                assert len(rows) == 2
                cur = await db.cursor()
                await cur.execute("DELETE FROM t WHERE id = 2")
                with pytest.raises(sqlite3.OperationalError):
                    await db.execute("SELECT nope FROM t")
        ops = children(recorded, "lookup", "db")
        assert [(c.name, c.status) for c in ops] == [
            ("SELECT v FROM t WHERE id = ?", "ok"),
            ("SELECT v FROM t", "ok"),
            ("DELETE FROM t WHERE id = ?", "ok"),
            ("SELECT nope FROM t", "error"),
        ]
        assert ops[1].attrs["rows"] == 2
        assert ops[2].attrs["rows"] == 1
        # Each statement once: the worker thread's sqlite3 calls are not recorded again.
        summary = recorded.store.summarize(*ALL_TIME, now=ALL_TIME[1])
        db_names = [name for (_s, name, kind, _st) in summary.rollups if kind == "db"]
        assert sorted(db_names) == sorted(set(db_names))
