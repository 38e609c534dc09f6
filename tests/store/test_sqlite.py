"""What only the SQLite store promises: WAL, migrations, many writers, a vanished file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from botpulse.errors import ConfigurationError, StoreError, StoreUnavailable
from botpulse.store import Operation, SeriesFilter, open_store
from botpulse.store._schema import SCHEMA_VERSION
from botpulse.store.sqlite import SQLiteStore

DAY0 = 1_700_006_400
NS = 10**9


def ops(n: int, name: str = "x") -> list[Operation]:
    return [Operation(name, (DAY0 + i) * NS, 1_000_000 + i) for i in range(n)]


def total(store: SQLiteStore, name: str = "x") -> int:
    summary = store.summarize(DAY0 - 60, DAY0 + 86400, SeriesFilter(name=name), now=DAY0 + 86400)
    return sum(r.count for r in summary.rollups.values())


def test_file_is_wal_with_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "bp.db"  # parent directories are created
    store = SQLiteStore(path)
    store.write_operations(ops(3))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store._writer is not None
    assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    store.close()


def test_readers_refuse_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such file"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}", create=False)
    assert not (tmp_path / "missing.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        open_store(f"sqlite:///{junk}", create=False)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not a botpulse store"):
        open_store(f"sqlite:///{other}", create=False)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bp.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(path)


def test_two_writers_on_one_file_add_up(tmp_path: Path) -> None:
    path = tmp_path / "bp.db"
    a, b = SQLiteStore(path), SQLiteStore(path)
    threads = [
        threading.Thread(target=lambda s=s: [s.write_operations(ops(50)) for _ in range(10)])
        for s in (a, b)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = SQLiteStore(path, create=False)
    assert total(reader) == 1000
    for s in (a, b, reader):
        s.close()


def test_reader_sees_committed_data_while_a_writer_holds_a_transaction(tmp_path: Path) -> None:
    path = tmp_path / "bp.db"
    store = SQLiteStore(path)
    store.write_operations(ops(5))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("DELETE FROM rollups")
    reader = SQLiteStore(path, create=False)
    assert total(reader) == 5
    with pytest.raises(StoreUnavailable, match="locked"):
        store.write_operations(ops(1))
    blocker.execute("ROLLBACK")
    store.write_operations(ops(1))
    assert total(reader) == 6
    for s in (store, reader):
        s.close()


def test_vanished_file_is_reported_then_recreated(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    store = SQLiteStore(directory / "bp.db")
    store.write_operations(ops(2))
    for f in directory.iterdir():
        f.unlink()
    directory.rmdir()
    with pytest.raises(StoreUnavailable, match="disappeared"):
        store.write_operations(ops(3))
    store.write_operations(ops(4))  # the retry reconnects, recreating directory and schema
    assert total(SQLiteStore(directory / "bp.db", create=False)) == 4
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/x", "unknown store scheme 'mysql'"),
        ("sqlite://host/x.db", "three slashes"),
        ("sqlite:///", "names no database file"),
        ("botpulse.db", "no scheme"),
        ("sqlite:///:memory:", "memory://"),
        ("postgresql://u:hunter2@h:port/db", "invalid port"),
        ("", "non-empty"),
    ],
)
def test_bad_urls_fail_with_one_line_naming_the_value(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        open_store(url)
    text = str(info.value)
    assert "\n" not in text
    assert "hunter2" not in text


def test_describe_and_absolute_urls(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/abs.db")  # four slashes: absolute path
    assert store.describe() == f"sqlite:///{tmp_path}/abs.db"
    assert (tmp_path / "abs.db").exists()
    store.close()


@pytest.mark.parametrize("body", [b"z\xff\xfe garbage", b"j{not json", b"j[1, 2]", b"j\xff\xfe"])
def test_damaged_trace_samples_raise_store_error(tmp_path: Path, body: bytes) -> None:
    from botpulse._model import Checkpoint
    from botpulse.store import Batch, TraceSample

    store = SQLiteStore(tmp_path / "bp.db")
    sample = TraceSample("s", "i", "cmd", DAY0 * NS, 5, "ok", None, "slowest", [Checkpoint("a", 1)])
    store.write(Batch(traces=[sample]))
    conn = sqlite3.connect(tmp_path / "bp.db")
    conn.execute("UPDATE traces SET body = ?", (body,))
    conn.commit()
    with pytest.raises(StoreError, match="damaged trace sample"):
        store.read_traces(DAY0 - 1, DAY0 + 60)
    store.close()


def test_damaged_sketch_raises_store_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "bp.db")
    store.write_operations(ops(1))
    conn = sqlite3.connect(tmp_path / "bp.db")
    conn.execute("UPDATE rollups SET sketch = x'07'")
    conn.commit()
    with pytest.raises(StoreError, match="damaged sketch"):
        total(store)
    store.close()
