"""The PostgreSQL schema and its migrations, applied in one transaction under a lock.

The tables mirror the SQLite schema (series with their seven-part key, rollups at
three resolutions, trace groups, drop counts, findings), prefixed ``botpulse_`` so
they can live next to a bot's own tables. ``botpulse_schema`` holds the version.
Every process that opens the store calls :func:`migrate`; a transaction-scoped
advisory lock makes processes that start together migrate once, one after another.
Never edit a released migration: append one.
"""

from __future__ import annotations

from typing import Any

from ..errors import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the schema of SQLite version 3, folded at write time (no fold state).
    """
    CREATE TABLE botpulse_series (
        id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        service  TEXT NOT NULL,
        instance TEXT NOT NULL,
        name     TEXT NOT NULL,
        kind     TEXT NOT NULL,
        status   TEXT NOT NULL,
        flow     TEXT NOT NULL DEFAULT '',
        tags     TEXT NOT NULL DEFAULT '',
        UNIQUE (service, instance, name, kind, status, flow, tags)
    );
    CREATE TABLE botpulse_rollups (
        resolution INTEGER NOT NULL,          -- seconds: 60, 3600, 86400
        start      BIGINT NOT NULL,           -- bucket start, epoch seconds
        series_id  BIGINT NOT NULL REFERENCES botpulse_series (id),
        count      BIGINT NOT NULL,
        sum_ns     BIGINT NOT NULL,
        min_ns     BIGINT NOT NULL,
        max_ns     BIGINT NOT NULL,
        sketch     BYTEA NOT NULL,
        PRIMARY KEY (resolution, start, series_id)
    );
    CREATE TABLE botpulse_traces (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        series_id       BIGINT NOT NULL REFERENCES botpulse_series (id),
        minute          BIGINT NOT NULL,     -- epoch seconds of the minute they started in
        part            BIGINT NOT NULL,     -- a group written again replaces itself
        max_duration_ns BIGINT NOT NULL,     -- the slowest sample in the group
        samples         INTEGER NOT NULL,
        body            BYTEA NOT NULL,      -- the samples (see _trace_codec)
        UNIQUE (series_id, minute, part)
    );
    CREATE INDEX botpulse_traces_by_minute
        ON botpulse_traces (minute, series_id, max_duration_ns);
    CREATE TABLE botpulse_drops (
        start    BIGINT NOT NULL,
        service  TEXT NOT NULL,
        instance TEXT NOT NULL,
        reason   TEXT NOT NULL,
        count    BIGINT NOT NULL,
        PRIMARY KEY (start, service, instance, reason)
    );
    CREATE TABLE botpulse_findings (
        start         BIGINT NOT NULL,       -- hour bucket, epoch seconds
        service       TEXT NOT NULL,
        instance      TEXT NOT NULL,
        type          TEXT NOT NULL,
        flow          TEXT NOT NULL,
        subject       TEXT NOT NULL,
        count         BIGINT NOT NULL,
        total_ns      BIGINT NOT NULL,
        max_ns        BIGINT NOT NULL,
        first_seen_ns BIGINT NOT NULL,
        last_seen_ns  BIGINT NOT NULL,
        source        TEXT,
        example       TEXT NOT NULL,         -- JSON
        details       TEXT NOT NULL,         -- JSON
        PRIMARY KEY (start, service, instance, type, flow, subject)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Any constant shared by every botpulse process; scoped to the schema it migrates.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('botpulse.migrate:' || current_schema()))"


def migrate(conn: Any, *, create: bool = True) -> int:
    """Bring the schema up to date in one transaction; return the version found before.

    ``conn`` is a psycopg connection in autocommit mode. With ``create=False`` a
    database without botpulse's tables raises :class:`StoreError` instead.
    """
    with conn.transaction():
        version = _version(conn)
        if version == SCHEMA_VERSION:
            return version  # up to date: no lock, no DDL (a read-only user gets here)
        if version is None and not create:
            raise StoreError("no botpulse tables in this database (nothing recorded yet)")
        conn.execute(_LOCK)
        conn.execute("CREATE TABLE IF NOT EXISTS botpulse_schema (version INTEGER NOT NULL)")
        found = _version(conn) or 0  # another process may have migrated while we waited
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"schema version {found} is newer than this botpulse understands "
                f"({SCHEMA_VERSION}); upgrade botpulse"
            )
        for script in MIGRATIONS[found:]:
            conn.execute(script)
        if found < SCHEMA_VERSION:
            conn.execute("DELETE FROM botpulse_schema")
            conn.execute("INSERT INTO botpulse_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
    return found


def _version(conn: Any) -> int | None:
    """The schema version, or None when botpulse's tables are not there."""
    (table,) = conn.execute("SELECT to_regclass('botpulse_schema')").fetchone()
    if table is None:
        return None
    (version,) = conn.execute("SELECT max(version) FROM botpulse_schema").fetchone()
    return int(version) if version is not None else 0
