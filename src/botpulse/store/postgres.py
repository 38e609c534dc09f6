"""A PostgreSQL store: many bot processes (and hosts) write one database; reports merge them.

Each batch is one transaction. Minute rollups are folded into their minute, hour and
day rows at write time (as :class:`~botpulse.store.memory.MemoryStore` does): the rows a
batch touches are inserted if new, otherwise locked (``SELECT ... FOR UPDATE``, always
in key order so concurrent writers cannot deadlock), merged in Python with
:class:`~botpulse._sketch.Sketch` and updated, so every count of every process adds up.
Nothing is ever pending a fold: ``fold()`` is a no-op.

Reliability (RELIABILITY.md): a connect timeout and a statement timeout on every
connection; the writer connection is checked before each batch and a batch that fails
is retried once on a fresh connection; driver errors are mapped once, here, to
:class:`StoreUnavailable` (server down, restarting, unreachable, deadlock, timeout:
the pipeline keeps the events and retries) or :class:`StoreError`. Connections never
cross ``fork()``. Passwords never appear in ``describe()``, errors or logs.

Requires psycopg 3: ``pip install 'botpulse[postgres]'``.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

from .._model import DAY, HOUR, MINUTE, Batch, Finding, Rollup, SeriesKey, TraceSample
from .._sketch import Sketch
from ..errors import StoreError, StoreUnavailable
from ._pg_schema import migrate
from ._trace_codec import decode_samples, encode_samples
from ._url import redact_url
from .base import (
    FINDING_COLUMNS,
    Retention,
    SeriesFilter,
    Store,
    expand_resolutions,
    finding_from_row,
    merge_findings,
)
from .sqlite import _finding_rows, _group_traces

try:
    import psycopg
except ImportError as _exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the PostgreSQL store needs psycopg 3: pip install 'botpulse[postgres]'"
    ) from _exc

__all__ = ["PostgresStore"]

#: Seconds to wait for a connection (libpq's minimum is 2).
CONNECT_TIMEOUT_S = 5
#: Milliseconds a single statement may run before the server cancels it.
STATEMENT_TIMEOUT_MS = 15_000
#: A writer connection idle this long is pinged before a batch.
CHECK_IDLE_S = 30.0
_CLOSE_WAIT_S = 3.0

# SQLSTATE classes and codes of a transient outage: the same batch may succeed later.
_TRANSIENT_CLASSES = ("08", "53", "57", "58")  # connection, resources, operator, system
_TRANSIENT_CODES = ("40001", "40P01", "55P03", "57014")  # serialization, deadlock, lock, cancel
_PERMANENT_WORDS = ("authentication failed", "does not exist", "permission denied", "no pg_hba")

_INSERT_NEW_ROLLUPS = """
INSERT INTO botpulse_rollups (resolution, start, series_id, count, sum_ns, min_ns, max_ns, sketch)
SELECT * FROM unnest(%b::int[], %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[],
                     %b::bigint[], %b::bigint[], %b::bytea[])
ORDER BY 1, 2, 3
ON CONFLICT (resolution, start, series_id) DO NOTHING
RETURNING resolution, start, series_id
"""
_LOCK_ROLLUPS = """
SELECT r.resolution, r.start, r.series_id, r.count, r.sum_ns, r.min_ns, r.max_ns, r.sketch
FROM botpulse_rollups r
JOIN unnest(%b::int[], %b::bigint[], %b::bigint[]) AS k(resolution, start, series_id)
  USING (resolution, start, series_id)
ORDER BY 1, 2, 3
FOR UPDATE OF r
"""
_UPDATE_ROLLUPS = """
UPDATE botpulse_rollups r
SET count = u.count, sum_ns = u.sum_ns, min_ns = u.min_ns, max_ns = u.max_ns, sketch = u.sketch
FROM unnest(%b::int[], %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[],
            %b::bigint[], %b::bigint[], %b::bytea[])
     AS u(resolution, start, series_id, count, sum_ns, min_ns, max_ns, sketch)
WHERE r.resolution = u.resolution AND r.start = u.start AND r.series_id = u.series_id
"""
_INSERT_SERIES = """
INSERT INTO botpulse_series (service, instance, name, kind, status, flow, tags)
SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                     %b::text[])
ORDER BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT (service, instance, name, kind, status, flow, tags) DO NOTHING
"""
_SELECT_SERIES = """
SELECT s.id, s.service, s.instance, s.name, s.kind, s.status, s.flow, s.tags
FROM botpulse_series s
JOIN unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[])
  AS k(service, instance, name, kind, status, flow, tags)
  USING (service, instance, name, kind, status, flow, tags)
"""
_UPSERT_TRACES = """
INSERT INTO botpulse_traces (series_id, minute, part, max_duration_ns, samples, body)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (series_id, minute, part) DO UPDATE SET
    max_duration_ns = EXCLUDED.max_duration_ns, samples = EXCLUDED.samples, body = EXCLUDED.body
"""
_UPSERT_DROP = """
INSERT INTO botpulse_drops (start, service, instance, reason, count) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (start, service, instance, reason)
DO UPDATE SET count = botpulse_drops.count + EXCLUDED.count
"""
_UPSERT_FINDING = """
INSERT INTO botpulse_findings AS f (start, service, instance, type, flow, subject, count,
    total_ns, max_ns, first_seen_ns, last_seen_ns, source, example, details)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (start, service, instance, type, flow, subject) DO UPDATE SET
    count = f.count + EXCLUDED.count,
    total_ns = f.total_ns + EXCLUDED.total_ns,
    max_ns = GREATEST(f.max_ns, EXCLUDED.max_ns),
    first_seen_ns = LEAST(f.first_seen_ns, EXCLUDED.first_seen_ns),
    source = CASE WHEN EXCLUDED.last_seen_ns >= f.last_seen_ns
                  THEN coalesce(EXCLUDED.source, f.source)
                  ELSE coalesce(f.source, EXCLUDED.source) END,
    example = CASE WHEN EXCLUDED.last_seen_ns >= f.last_seen_ns AND EXCLUDED.example != '{}'
                   THEN EXCLUDED.example ELSE f.example END,
    details = CASE WHEN EXCLUDED.last_seen_ns >= f.last_seen_ns AND EXCLUDED.details != '{}'
                   THEN EXCLUDED.details ELSE f.details END,
    last_seen_ns = GREATEST(f.last_seen_ns, EXCLUDED.last_seen_ns)
"""

_BIG = 2**62


def _bound(value: float) -> float:
    """``value`` within what a BIGINT holds (windows may be open-ended: ±inf)."""
    return 0.0 if math.isnan(value) else max(-_BIG, min(_BIG, value))


def _clamp(value: float) -> int:
    """A number as a BIGINT PostgreSQL accepts, rounded down."""
    return math.floor(_bound(value))


def _ceil(value: float) -> int:
    """A number as a BIGINT PostgreSQL accepts, rounded up."""
    return math.ceil(_bound(value))


def _slowest_key(sample: TraceSample) -> tuple[int, int]:
    return (-sample.duration_ns, sample.started_ns)


def _recent_key(sample: TraceSample) -> int:
    return -sample.started_ns


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as per-column lists (for ``unnest``); ``width`` lists when empty."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


class PostgresStore(Store):
    """A botpulse store in a PostgreSQL database (tables ``botpulse_*``).

    ``url`` is a libpq URL; its password is never shown. Add
    ``?options=-csearch_path%3Dmyschema`` to keep botpulse's tables in their own schema.

    Example::

        store = PostgresStore("postgresql://bot:secret@localhost:5432/metrics")
        botpulse.init(store="postgresql://bot:secret@localhost:5432/metrics")
    """

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        retention: Retention | None = None,
        connect: bool = True,
    ) -> None:
        super().__init__(retention)
        self._url = url
        self._shown = redact_url(url)
        self.create = create
        self._writer: Any = None
        self._writer_used = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[Any] = []
        self._readers_lock = threading.Lock()
        self._series_ids: dict[SeriesKey, int] = {}
        self._migrated = False
        self._pid = os.getpid()
        self._fork_locked = False
        if connect:
            # Connect (and migrate) now so a bad URL fails at the boundary.
            with self._lock:
                self._writer_conn() if create else self._reader()

    def describe(self) -> str:
        return self._shown

    # -- errors --------------------------------------------------------------------

    def _error(self, exc: BaseException, action: str) -> StoreError:
        """The one place driver errors become StoreError / StoreUnavailable."""
        text = redact_url(str(exc).strip().replace("\n", " "))
        message = f"PostgreSQL store {self._shown}: cannot {action}: {text}"
        code = getattr(exc, "sqlstate", None) or ""
        if code.startswith(_TRANSIENT_CLASSES) or code in _TRANSIENT_CODES:
            return StoreUnavailable(message)
        # No SQLSTATE: the client never got an answer (refused, reset, timeout).
        if (
            isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
            and not code
            and not any(word in text.lower() for word in _PERMANENT_WORDS)
        ):
            return StoreUnavailable(message)
        return StoreError(message)

    # -- connections ---------------------------------------------------------------

    def _connect(self) -> Any:
        """A new autocommit connection with timeouts set (and the schema migrated)."""
        try:
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="botpulse",
            )
        except psycopg.Error as exc:
            raise self._error(exc, "connect") from exc
        try:
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            conn.execute("SET idle_in_transaction_session_timeout = 60000")
            if not self._migrated:
                migrate(conn, create=self.create)
                self._migrated = True
        except psycopg.Error as exc:
            conn.close()
            raise self._error(exc, "prepare the database") from exc
        except StoreError as exc:
            conn.close()
            raise StoreError(f"PostgreSQL store {self._shown}: {exc}") from exc
        return conn

    def _writer_conn(self) -> Any:
        """The writer connection: reopened if broken, pinged if it sat idle a while."""
        if self._pid != os.getpid():
            self.after_fork()
        conn = self._writer
        if conn is not None and (conn.closed or conn.broken):
            self._drop_writer()
            conn = None
        if conn is not None and time.monotonic() - self._writer_used > CHECK_IDLE_S:
            try:
                conn.execute("SELECT 1")
            except psycopg.Error:
                self._drop_writer()
                conn = None
        if conn is None:
            conn = self._writer = self._connect()
            self._series_ids = {}
        self._writer_used = time.monotonic()
        return conn

    def _drop_writer(self) -> None:
        conn, self._writer = self._writer, None
        self._series_ids = {}
        if conn is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):  # a dead socket may refuse even this
                conn.close()

    def _reader(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and (conn.closed or conn.broken):
            conn = None
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers = [c for c in self._readers if not c.closed]
                self._readers.append(conn)
        return conn

    def _read(self, action: str, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        """Run a read; on a dead connection retry once on a fresh one."""
        for attempt in (1, 2):
            conn = self._reader()
            try:
                rows: list[tuple[Any, ...]] = conn.execute(sql, args).fetchall()
                return rows
            except psycopg.Error as exc:
                error = self._error(exc, action)
                if attempt == 2 or not isinstance(error, StoreUnavailable):
                    raise error from exc
                self._local.conn = None
                with contextlib.suppress(Exception):
                    conn.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def before_fork(self) -> None:
        # Wait for the write in flight, then close the writer: a child must never
        # share the parent's socket. It reopens lazily.
        self._fork_locked = self._lock.acquire(timeout=2.0)
        if self._fork_locked and self._pid == os.getpid():
            self._drop_writer()

    def after_fork_in_parent(self) -> None:
        if self._fork_locked:
            self._fork_locked = False
            self._lock.release()

    def after_fork(self) -> None:
        # Forget the parent's connections without closing them (psycopg does not
        # close a connection from a process that did not open it).
        self._fork_locked = False
        self._writer = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers = []
        self._readers_lock = threading.Lock()
        self._series_ids = {}
        self._pid = os.getpid()

    def close(self) -> None:
        # Bounded: a writer stuck in a statement must not hang shutdown().
        locked = self._lock.acquire(timeout=_CLOSE_WAIT_S)
        try:
            if locked:
                self._drop_writer()
        finally:
            if locked:
                self._lock.release()
        with self._readers_lock:
            readers, self._readers = self._readers, []
        if self._pid == os.getpid():
            for conn in readers:
                with contextlib.suppress(Exception):
                    conn.close()
        self._local = threading.local()

    # -- writing -------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        if not batch:
            return
        expanded = expand_resolutions(batch.rollups)
        traces = _group_traces(list(batch.traces))
        with self._lock:
            try:
                self._write_once(batch, expanded, traces)
            except StoreUnavailable:
                # One retry on a fresh connection (the old one may have died with a
                # server restart); a second failure goes back to the pipeline.
                self._drop_writer()
                self._write_once(batch, expanded, traces)

    def _write_once(
        self,
        batch: Batch,
        expanded: dict[tuple[int, int, SeriesKey], Rollup],
        traces: dict[tuple[SeriesKey, int, int], list[TraceSample]],
    ) -> None:
        conn = self._writer_conn()
        new_ids: dict[SeriesKey, int] = {}
        try:
            with conn.transaction():
                keys = {k for (_res, _start, k) in expanded} | {k for (k, _m, _p) in traces}
                self._series(conn, sorted(keys), new_ids)
                ids = self._series_ids | new_ids
                self._write_rollups(conn, expanded, ids)
                if traces:
                    with conn.cursor() as cur:
                        cur.executemany(
                            _UPSERT_TRACES,
                            [
                                (
                                    ids[key],
                                    minute,
                                    part,
                                    max(t.duration_ns for t in samples),
                                    len(samples),
                                    encode_samples(samples, minute),
                                )
                                for (key, minute, part), samples in traces.items()
                            ],
                        )
                if batch.drops:
                    with conn.cursor() as cur:
                        cur.executemany(
                            _UPSERT_DROP,
                            sorted(
                                (d.start, d.service, d.instance, d.reason, d.count)
                                for d in batch.drops
                            ),
                        )
                if batch.findings:
                    with conn.cursor() as cur:
                        cur.executemany(_UPSERT_FINDING, sorted(_finding_rows(batch.findings)))
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                self._drop_writer()
            raise self._error(exc, "write") from exc
        self._series_ids.update(new_ids)

    def _series(self, conn: Any, keys: list[SeriesKey], new: dict[SeriesKey, int]) -> None:
        missing = [k for k in keys if k not in self._series_ids]
        if not missing:
            return
        # DO NOTHING, then read the ids: no lock is taken on rows that already exist
        # (DO UPDATE would lock them against the foreign-key checks of other writers).
        columns = _columns([tuple(k) for k in missing], 7)
        conn.execute(_INSERT_SERIES, columns)
        for row in conn.execute(_SELECT_SERIES, columns).fetchall():
            new[SeriesKey(*row[1:])] = int(row[0])
        if any(k not in new for k in missing):  # pragma: no cover - inserted just above
            raise StoreError(f"PostgreSQL store {self._shown}: series ids missing")

    def _write_rollups(
        self,
        conn: Any,
        expanded: dict[tuple[int, int, SeriesKey], Rollup],
        ids: dict[SeriesKey, int],
    ) -> None:
        if not expanded:
            return
        deltas = {(res, start, ids[key]): r for (res, start, key), r in expanded.items()}
        order = sorted(deltas)
        # Insert first, then lock what already existed: each phase goes in key order, and
        # a writer that meets another's uncommitted insert waits for it during the insert
        # phase, before holding any row lock: no lock cycles between writers.
        rows = [
            (*k, d.count, d.sum_ns, d.min_ns, d.max_ns, d.sketch.to_bytes(deflate=False))
            for k in order
            for d in (deltas[k],)
        ]
        inserted = {
            (int(a), int(b), int(c))
            for a, b, c in conn.execute(_INSERT_NEW_ROLLUPS, _columns(rows, 8)).fetchall()
        }
        existing = [k for k in order if k not in inserted]
        if existing:
            conn.execute(_UPDATE_ROLLUPS, _columns(self._merge_locked(conn, existing, deltas), 8))

    def _merge_locked(
        self,
        conn: Any,
        keys: list[tuple[int, int, int]],
        deltas: dict[tuple[int, int, int], Rollup],
    ) -> list[tuple[Any, ...]]:
        """Lock the existing rows of ``keys`` (in key order) and merge their deltas."""
        updates: list[tuple[Any, ...]] = []
        for res, start, sid, count, sum_ns, min_ns, max_ns, blob in conn.execute(
            _LOCK_ROLLUPS, _columns(keys, 3)
        ).fetchall():
            key = (int(res), int(start), int(sid))
            delta = deltas[key]
            try:
                sketch = Sketch.from_bytes(bytes(blob))
            except ValueError as exc:
                raise StoreError(f"PostgreSQL store {self._shown}: damaged sketch: {exc}") from exc
            sketch.merge(delta.sketch)
            updates.append(
                (
                    *key,
                    count + delta.count,
                    sum_ns + delta.sum_ns,
                    min(min_ns, delta.min_ns),
                    max(max_ns, delta.max_ns),
                    sketch.to_bytes(deflate=False),
                )
            )
        return updates

    def apply_retention(self, now_s: float | None = None) -> int:
        now = time.time() if now_s is None else now_s
        retention = self.retention
        deleted = 0
        with self._lock:
            conn = self._writer_conn()
            try:
                with conn.transaction():
                    for res in (MINUTE, HOUR, DAY):
                        cur = conn.execute(
                            "DELETE FROM botpulse_rollups WHERE resolution = %s AND start < %s",
                            (res, _ceil(retention.horizon(res, now))),
                        )
                        deleted += max(cur.rowcount, 0)
                    horizon = _ceil(now - retention.rollups_days * DAY)
                    for sql, limit in (
                        (
                            "DELETE FROM botpulse_traces WHERE minute < %s",
                            _ceil(now - retention.traces_days * DAY),
                        ),
                        ("DELETE FROM botpulse_drops WHERE start < %s", horizon),
                        ("DELETE FROM botpulse_findings WHERE start < %s", horizon),
                    ):
                        deleted += max(conn.execute(sql, (limit,)).rowcount, 0)
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    self._drop_writer()
                raise self._error(exc, "apply retention") from exc
        return deleted

    # -- reading -------------------------------------------------------------------

    def _series_map(self, selector: SeriesFilter, action: str) -> dict[int, SeriesKey]:
        sql = "SELECT id, service, instance, name, kind, status, flow, tags FROM botpulse_series"
        where, args = [], []
        for column in ("service", "instance", "kind", "status", "flow"):
            value = getattr(selector, column)
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        keys = {int(r[0]): SeriesKey(*r[1:]) for r in self._read(action, sql, args)}
        return {sid: k for sid, k in keys.items() if selector.matches(k)}

    def read_rollups(
        self, resolution: int, start_s: int, end_s: int, selector: SeriesFilter
    ) -> Iterator[Rollup]:
        series = self._series_map(selector, "read rollups")
        if not series:
            return
        rows = self._read(
            "read rollups",
            "SELECT series_id, start, count, sum_ns, min_ns, max_ns, sketch FROM botpulse_rollups "
            "WHERE resolution = %s AND start >= %s AND start < %s AND series_id = ANY(%s) "
            "ORDER BY start, series_id",
            (resolution, _ceil(start_s), _ceil(end_s), list(series)),
        )
        for sid, start, count, sum_ns, min_ns, max_ns, blob in rows:
            try:
                sketch = Sketch.from_bytes(bytes(blob))
            except ValueError as exc:
                raise StoreError(f"PostgreSQL store {self._shown}: damaged sketch: {exc}") from exc
            yield Rollup(series[sid], int(start), resolution, count, sum_ns, min_ns, max_ns, sketch)

    def _activity_rows(
        self, resolution: int, start_s: int, end_s: int, selector: SeriesFilter, *, sketches: bool
    ) -> Iterator[Rollup]:
        # An activity read needs each row's series, start and count: no sketch is read.
        if sketches:
            return super()._activity_rows(resolution, start_s, end_s, selector, sketches=True)
        series = self._series_map(selector, "read rollups")
        if not series:
            return iter(())
        rows = self._read(
            "read rollups",
            "SELECT series_id, start, count FROM botpulse_rollups "
            "WHERE resolution = %s AND start >= %s AND start < %s AND series_id = ANY(%s)",
            (resolution, _ceil(start_s), _ceil(end_s), list(series)),
        )
        empty = Sketch()
        return iter(
            [
                Rollup(series[sid], int(start), resolution, count, 0, 0, 0, empty)
                for sid, start, count in rows
            ]
        )

    def read_traces(
        self,
        since_s: float,
        until_s: float,
        selector: SeriesFilter | None = None,
        *,
        limit: int = 10,
        order: str = "slowest",
    ) -> list[TraceSample]:
        selector = selector or SeriesFilter()
        if limit <= 0:
            return []
        found_series = self._series_map(selector, "read traces")
        series = {sid: k for sid, k in found_series.items() if k.kind == "flow"}
        if not series:
            return []
        recent = order == "recent"
        since_ns, until_ns = since_s * 1e9, until_s * 1e9  # compared as the memory store does
        window = (_clamp(since_s) // 60 * 60, _ceil(until_s))
        # Best groups first, a page at a time; stop once no later group can make the cut.
        sql = (
            "SELECT series_id, minute, max_duration_ns, body FROM botpulse_traces "  # noqa: S608
            "WHERE minute >= %s AND minute < %s AND series_id = ANY(%s) "
            f"ORDER BY {'minute DESC' if recent else 'max_duration_ns DESC'}, id "
            "LIMIT %s OFFSET %s"
        )
        found: list[TraceSample] = []
        page, offset = limit + 32, 0
        sort_key = _recent_key if recent else _slowest_key
        while True:
            rows = self._read("read traces", sql, (*window, list(series), page, offset))
            for sid, minute, max_duration_ns, blob in rows:
                if len(found) >= limit:
                    found.sort(key=sort_key)
                    del found[limit:]
                    worst = found[-1]
                    if recent and (minute + 60) * 1_000_000_000 <= worst.started_ns:
                        return found
                    if not recent and max_duration_ns <= worst.duration_ns:
                        return found
                key = series[sid]
                try:
                    samples = decode_samples(
                        bytes(blob), int(minute), key.service, key.instance, key.name, key.status
                    )
                except (ValueError, TypeError, KeyError, AttributeError, zlib.error) as exc:
                    raise StoreError(
                        f"PostgreSQL store {self._shown}: damaged trace sample: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                for sample in samples:
                    if key.tags:
                        sample.tags = key.tag_dict
                    if since_ns <= sample.started_ns < until_ns:
                        found.append(sample)
            if len(rows) < page:
                break
            offset += page
        found.sort(key=sort_key)
        return found[:limit]

    def read_drops(self, since_s: float, until_s: float) -> dict[str, int]:
        rows = self._read(
            "read drop counts",
            "SELECT reason, SUM(count) FROM botpulse_drops WHERE start > %s AND start < %s "
            "GROUP BY reason",
            (_clamp(since_s - 60), _ceil(until_s)),
        )
        return {reason: int(total) for reason, total in rows}

    def read_findings(
        self,
        since_s: float,
        until_s: float,
        *,
        type: str | None = None,  # noqa: A002
        service: str | None = None,
        instance: str | None = None,
    ) -> list[Finding]:
        sql = f"SELECT {FINDING_COLUMNS} FROM botpulse_findings WHERE start >= %s AND start < %s"  # noqa: S608 - constant columns
        args: list[Any] = [_clamp(since_s) // HOUR * HOUR, _ceil(until_s)]
        for column, value in (("type", type), ("service", service), ("instance", instance)):
            if value is not None:
                sql += f" AND {column} = %s"
                args.append(value)
        rows = self._read("read findings", sql, args)
        try:
            found = [finding_from_row(r) for r in rows]
        except ValueError as exc:
            raise StoreError(f"PostgreSQL store {self._shown}: damaged finding: {exc}") from exc
        return merge_findings(found)

    def series(self) -> list[SeriesKey]:
        keys = list(self._series_map(SeriesFilter(), "read series").values())
        return sorted(keys, key=lambda k: (k.service, k.name, k.kind, k.status, k.instance))
