"""asyncpg, psycopg 3 and psycopg2 instrumentation against the real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from tests.servers import server_url

import botpulse
from botpulse.instrument import instrument
from botpulse.testing import capture

from .helpers import children, findings

TABLE = "bp_instr_items"


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = server_url("BOTPULSE_TEST_POSTGRES_URL", "PostgreSQL")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, name TEXT)")
        conn.execute(f"INSERT INTO {TABLE} SELECT g, 'n' || g FROM generate_series(1, 20) g")
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


def _names(recorded: object, flow: str) -> list[tuple[str, str]]:
    return [(c.name, c.status) for c in children(recorded, flow, "db")]  # type: ignore[arg-type]


async def test_asyncpg_queries_prepared_statements_cursors_and_pools(pg_url: str) -> None:
    import asyncpg

    instrument("asyncpg")
    with capture() as recorded:
        conn = await asyncpg.connect(pg_url)
        pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
        try:
            async with botpulse.flow("pg"):
                assert await conn.fetchval(f"SELECT name FROM {TABLE} WHERE id = $1", 3) == "n3"
                rows = await conn.fetch(f"SELECT id FROM {TABLE} WHERE id < $1", 6)
                assert len(rows) == 5
                stmt = await conn.prepare(f"SELECT name FROM {TABLE} WHERE id = $1")
                assert await stmt.fetchval(4) == "n4"
                async with conn.transaction():
                    seen = [
                        r["id"] async for r in conn.cursor(f"SELECT id FROM {TABLE}", prefetch=7)
                    ]
                assert len(seen) == 20
                with pytest.raises(asyncpg.UndefinedTableError):
                    await conn.execute("SELECT * FROM bp_no_such_table")
                async with pool.acquire() as pooled:
                    assert await pooled.fetchval("SELECT 1 + $1::int", 1) == 2
        finally:
            await conn.close()
            await pool.close()
        ops = _names(recorded, "pg")
    assert ops == [
        (f"SELECT name FROM {TABLE} WHERE id = ?", "ok"),
        (f"SELECT id FROM {TABLE} WHERE id < ?", "ok"),
        (f"SELECT name FROM {TABLE} WHERE id = ?", "ok"),  # prepare()
        (f"SELECT name FROM {TABLE} WHERE id = ?", "ok"),  # the prepared statement
        ("BEGIN", "ok"),
        (f"SELECT id FROM {TABLE}", "ok"),  # the cursor: one operation
        ("COMMIT", "ok"),
        ("SELECT * FROM bp_no_such_table", "error"),
        ("SELECT ? + ?::INT", "ok"),  # through the pool
    ]
    names = [name for name, _ in ops]
    # The cursor is one operation (3 round trips of 7 rows), not one per row.
    assert names.count(f"SELECT id FROM {TABLE}") == 1
    cursor_op = next(
        c for c in children(recorded, "pg", "db") if c.name == f"SELECT id FROM {TABLE}"
    )
    assert cursor_op.attrs["rows"] == 20
    assert ("SELECT * FROM bp_no_such_table", "error") in ops
    assert ("SELECT ? + ?::INT", "ok") in ops
    # The pool's own reset query on release is not recorded.
    assert not any("pg_advisory_unlock_all" in name for name in names)
    assert all(c.attrs["system"] == "postgresql" for c in children(recorded, "pg", "db"))


def test_psycopg_sync_and_pool(pg_url: str) -> None:
    import psycopg
    from psycopg_pool import ConnectionPool

    instrument("psycopg")
    with capture() as recorded:
        with (
            psycopg.connect(pg_url) as conn,
            ConnectionPool(pg_url, min_size=1, open=True) as pool,
            botpulse.flow("psy"),
        ):
            row = conn.execute(f"SELECT name FROM {TABLE} WHERE id = %s", (5,)).fetchone()
            assert row == ("n5",)
            with conn.cursor() as cur:
                cur.executemany(f"UPDATE {TABLE} SET name = %s WHERE id = %s", [("x", 1), ("y", 2)])
            with pytest.raises(psycopg.errors.UndefinedTable):
                conn.execute("SELECT * FROM bp_no_such_table")
            conn.rollback()
            with pool.connection() as pooled:
                assert pooled.execute("SELECT %s::int + 1", (1,)).fetchone() == (2,)
            from psycopg import sql

            composed = sql.SQL("SELECT {} FROM {} WHERE id = {}").format(
                sql.Identifier("name"), sql.Identifier(TABLE), sql.Literal(9)
            )
            assert conn.execute(composed).fetchone() == ("n9",)
        ops = _names(recorded, "psy")
    assert ops == [
        (f"SELECT name FROM {TABLE} WHERE id = ?", "ok"),
        (f"UPDATE {TABLE} SET name = ? WHERE id = ?", "ok"),
        ("SELECT * FROM bp_no_such_table", "error"),
        ("SELECT ?::INT + ?", "ok"),
        (f'SELECT "name" FROM "{TABLE}" WHERE id = ?', "ok"),  # sql.Composed, rendered
    ]


async def test_psycopg_async(pg_url: str) -> None:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    instrument("psycopg")
    with capture() as recorded:
        conn = await psycopg.AsyncConnection.connect(pg_url)
        pool = AsyncConnectionPool(pg_url, min_size=1, open=False)
        await pool.open()
        try:
            async with botpulse.flow("apsy"):
                cur = await conn.execute(f"SELECT name FROM {TABLE} WHERE id = %(id)s", {"id": 6})
                assert await cur.fetchone() == ("n6",)
                async with pool.connection() as pooled:
                    await pooled.execute("SELECT 1")
        finally:
            await conn.close()
            await pool.close()
        ops = _names(recorded, "apsy")
    assert ops == [(f"SELECT name FROM {TABLE} WHERE id = ?", "ok"), ("SELECT ?", "ok")]


def test_psycopg2_connections_pools_and_own_cursor_factories(pg_url: str) -> None:
    import psycopg2
    from psycopg2 import extras, pool

    instrument("psycopg2")
    with capture() as recorded:
        conn = psycopg2.connect(pg_url)
        dict_conn = psycopg2.connect(pg_url, connection_factory=extras.RealDictConnection)
        threaded = pool.ThreadedConnectionPool(1, 2, pg_url)
        simple = pool.SimpleConnectionPool(1, 1, pg_url)
        try:
            with botpulse.flow("psy2"):
                cur = conn.cursor()
                cur.execute(f"SELECT name FROM {TABLE} WHERE id = %s", (7,))
                assert cur.fetchone() == ("n7",)
                rd = conn.cursor(cursor_factory=extras.RealDictCursor)
                rd.execute("SELECT 1 AS one")
                assert rd.fetchone() == {"one": 1}
                dcur = dict_conn.cursor()
                dcur.execute("SELECT 2 AS two")
                assert dcur.fetchone() == {"two": 2}
                with pytest.raises(psycopg2.errors.UndefinedTable):
                    cur.execute("SELECT * FROM bp_no_such_table")
                conn.rollback()
                for p in (threaded, simple):
                    pooled = p.getconn()
                    with pooled.cursor() as pc:
                        pc.execute("SELECT %s", (3,))
                    p.putconn(pooled)
        finally:
            conn.close()
            dict_conn.close()
            threaded.closeall()
            simple.closeall()
        ops = _names(recorded, "psy2")
    assert ops == [
        (f"SELECT name FROM {TABLE} WHERE id = ?", "ok"),
        ("SELECT ? AS one", "ok"),
        ("SELECT ? AS two", "ok"),
        ("SELECT * FROM bp_no_such_table", "error"),
        ("SELECT ?", "ok"),
        ("SELECT ?", "ok"),
    ]


def test_n_plus_one_on_postgres_names_flow_and_line(pg_url: str) -> None:
    import psycopg

    instrument("psycopg")
    with capture() as recorded:
        with psycopg.connect(pg_url) as conn, botpulse.flow("names"):
            for i in range(1, 11):
                conn.execute(
                    f"SELECT name, pg_sleep(0.003) FROM {TABLE} WHERE id = %s", (i,)
                ).fetchone()
        found = findings(recorded, "n_plus_one")
    assert [(f.flow, f.subject, f.count) for f in found] == [
        ("names", f"SELECT name, pg_sleep(?) FROM {TABLE} WHERE id = ?", 10)
    ]
    assert found[0].source is not None
    assert found[0].source.startswith("tests/instrument/test_postgres.py:")


def test_queries_on_botpulse_threads_are_not_recorded(pg_url: str) -> None:
    import psycopg

    instrument("psycopg")
    with capture() as recorded:
        conn = psycopg.connect(pg_url)

        def work() -> None:
            with botpulse.flow("own"):
                conn.execute("SELECT 1")

        thread = threading.Thread(target=work, name="botpulse-store-writer")
        thread.start()
        thread.join()
        conn.close()
        assert recorded.count("SELECT ?", kind="db") == 0
