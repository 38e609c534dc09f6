"""The SQLite schema and its migrations, applied in order inside ``BEGIN IMMEDIATE``.

Each entry of ``MIGRATIONS`` moves the schema from version ``i`` to ``i + 1``; the
version lives in ``schema_version``. Never edit a released migration: append one.
"""

from __future__ import annotations

import sqlite3

from ..errors import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: series, rollups at three resolutions, trace samples grouped per series and
    # minute, drop counts.
    """
    CREATE TABLE series (
        id       INTEGER PRIMARY KEY,
        service  TEXT NOT NULL,
        instance TEXT NOT NULL,
        name     TEXT NOT NULL,
        kind     TEXT NOT NULL,
        status   TEXT NOT NULL,
        UNIQUE (service, instance, name, kind, status)
    );
    CREATE TABLE rollups (
        resolution INTEGER NOT NULL,          -- seconds: 60, 3600, 86400
        start      INTEGER NOT NULL,          -- bucket start, epoch seconds
        series_id  INTEGER NOT NULL,
        count      INTEGER NOT NULL,
        sum_ns     INTEGER NOT NULL,
        min_ns     INTEGER NOT NULL,
        max_ns     INTEGER NOT NULL,
        sketch     BLOB NOT NULL,
        PRIMARY KEY (resolution, start, series_id)
    ) WITHOUT ROWID;
    CREATE TABLE traces (
        id              INTEGER PRIMARY KEY,
        series_id       INTEGER NOT NULL,    -- a flow series (name and status)
        minute          INTEGER NOT NULL,    -- epoch seconds of the minute they started in
        max_duration_ns INTEGER NOT NULL,    -- the slowest sample in the group
        samples         INTEGER NOT NULL,
        body            BLOB NOT NULL        -- the samples (see _trace_codec)
    );
    CREATE INDEX traces_by_minute ON traces (minute, series_id, max_duration_ns);
    CREATE TABLE drops (
        start    INTEGER NOT NULL,
        service  TEXT NOT NULL,
        instance TEXT NOT NULL,
        reason   TEXT NOT NULL,
        count    INTEGER NOT NULL,
        PRIMARY KEY (start, service, instance, reason)
    ) WITHOUT ROWID;
    """,
    # 1 -> 2: findings (what detectors concluded), per hour bucket and instance.
    """
    CREATE TABLE findings (
        start         INTEGER NOT NULL,      -- hour bucket, epoch seconds
        service       TEXT NOT NULL,
        instance      TEXT NOT NULL,
        type          TEXT NOT NULL,
        flow          TEXT NOT NULL,
        subject       TEXT NOT NULL,
        count         INTEGER NOT NULL,
        total_ns      INTEGER NOT NULL,
        max_ns        INTEGER NOT NULL,
        first_seen_ns INTEGER NOT NULL,
        last_seen_ns  INTEGER NOT NULL,
        source        TEXT,
        example       TEXT NOT NULL,         -- JSON
        details       TEXT NOT NULL,         -- JSON
        PRIMARY KEY (start, service, instance, type, flow, subject)
    ) WITHOUT ROWID;
    """,
    # 2 -> 3: series gain the flow they ran in and their tags; hour and day rows are
    # folded from finer rows once their bucket has closed (fold_state says which are);
    # trace groups get a part number so the open minute's group can be rewritten.
    """
    CREATE TABLE series_v3 (
        id       INTEGER PRIMARY KEY,
        service  TEXT NOT NULL,
        instance TEXT NOT NULL,
        name     TEXT NOT NULL,
        kind     TEXT NOT NULL,
        status   TEXT NOT NULL,
        flow     TEXT NOT NULL DEFAULT '',
        tags     TEXT NOT NULL DEFAULT '',
        UNIQUE (service, instance, name, kind, status, flow, tags)
    );
    INSERT INTO series_v3 (id, service, instance, name, kind, status)
        SELECT id, service, instance, name, kind, status FROM series;
    DROP TABLE series;
    ALTER TABLE series_v3 RENAME TO series;
    CREATE TABLE fold_state (
        resolution INTEGER NOT NULL,         -- 3600 or 86400
        start      INTEGER NOT NULL,
        folded     INTEGER NOT NULL,         -- 0: pending (read finer rows), 1: complete
        PRIMARY KEY (resolution, start)
    ) WITHOUT ROWID;
    INSERT INTO fold_state (resolution, start, folded)
        SELECT DISTINCT resolution, start, 1 FROM rollups WHERE resolution IN (3600, 86400);
    ALTER TABLE traces ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
    UPDATE traces SET part = id;
    CREATE UNIQUE INDEX traces_by_part ON traces (series_id, minute, part);
    CREATE TABLE staged (
        writer TEXT NOT NULL,                -- one writer connection of one process
        minute INTEGER NOT NULL,             -- epoch seconds of the (still open) minute
        seq    INTEGER NOT NULL,
        body   BLOB NOT NULL,                -- JSON deltas: [[series_id, count, sum_ns,
                                             --   min_ns, max_ns, zeros, [keys], [counts]]]
        PRIMARY KEY (writer, minute, seq)
    ) WITHOUT ROWID;
    CREATE INDEX staged_by_minute ON staged (minute);
    """,
    # 3 -> 4: the slowest trace groups of a long window are found walking this index
    # from the slowest down, instead of sorting every group of the window.
    """
    CREATE INDEX traces_by_duration ON traces (max_duration_ns, minute, series_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _current_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, *, create: bool = True) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; return the version found before.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    version = _current_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store has schema version {version}, newer than this botpulse "
            f"understands ({SCHEMA_VERSION}); upgrade botpulse"
        )
    if version == SCHEMA_VERSION:
        return version
    if not create:
        if version == 0:
            raise StoreError("the file is not a botpulse store (no schema_version table)")
        raise StoreError(
            f"the store has schema version {version}; open it writable once to migrate"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = _current_version(conn)  # another process may have migrated meanwhile
        for script in MIGRATIONS[found:]:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version
