"""The embedded default store: one SQLite file in WAL mode, written in short batches.

One writer connection (the pipeline's) writes each batch in a single short
``BEGIN IMMEDIATE`` transaction; readers use their own connections, so the CLI and
the dashboard can read while the bot writes. ``synchronous=NORMAL`` in WAL mode keeps
the file consistent after a crash or ``kill -9`` and loses at most the last batch.
Sketches are merged inside SQLite by a registered function, so many processes can
write the same buckets and every count still adds up.
"""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .._model import (
    DAY,
    HOUR,
    MINUTE,
    Batch,
    Finding,
    Rollup,
    SeriesKey,
    TraceSample,
    encode_tags,
)
from .._sketch import Sketch
from ..errors import StoreError, StoreUnavailable
from ._schema import migrate
from ._trace_codec import decode_samples, encode_samples
from .base import (
    FINDING_COLUMNS,
    Retention,
    SeriesFilter,
    Store,
    default_group,
    finding_from_row,
    merge_findings,
)

__all__ = ["SQLiteStore"]

_UPSERT_ROLLUP = """
INSERT INTO rollups (resolution, start, series_id, count, sum_ns, min_ns, max_ns, sketch)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (resolution, start, series_id) DO UPDATE SET
    count  = count + excluded.count,
    sum_ns = sum_ns + excluded.sum_ns,
    min_ns = min(min_ns, excluded.min_ns),
    max_ns = max(max_ns, excluded.max_ns),
    sketch = bp_sketch_merge(sketch, excluded.sketch)
"""
_UPSERT_DROP = """
INSERT INTO drops (start, service, instance, reason, count) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (start, service, instance, reason) DO UPDATE SET count = count + excluded.count
"""
_UPSERT_FINDING = """
INSERT INTO findings (start, service, instance, type, flow, subject, count, total_ns, max_ns,
                      first_seen_ns, last_seen_ns, source, example, details)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (start, service, instance, type, flow, subject) DO UPDATE SET
    count = count + excluded.count,
    total_ns = total_ns + excluded.total_ns,
    max_ns = max(max_ns, excluded.max_ns),
    first_seen_ns = min(first_seen_ns, excluded.first_seen_ns),
    source = CASE WHEN excluded.last_seen_ns >= last_seen_ns
                  THEN coalesce(excluded.source, source) ELSE coalesce(source, excluded.source) END,
    example = CASE WHEN excluded.last_seen_ns >= last_seen_ns AND excluded.example != '{}'
                   THEN excluded.example ELSE example END,
    details = CASE WHEN excluded.last_seen_ns >= last_seen_ns AND excluded.details != '{}'
                   THEN excluded.details ELSE details END,
    last_seen_ns = max(last_seen_ns, excluded.last_seen_ns)
"""
_TRANSIENT = (
    "locked",
    "busy",
    "unable to open",
    "disk i/o",
    "readonly",
    "read-only",
    "full",
    "no such table",
)
#: An hour (a day) is folded this long after it closed: late flushes of other writers
#: land before it, and what comes later still reaches the folded rows (``_write_rollups``).
FOLD_GRACE_S = 120
#: Staged deltas older than this belong to a writer that is gone: anyone may seal them.
ORPHAN_S = 300
_WRITER_BUSY_MS = 250
#: Slowest-trace reads over windows longer than this walk ``traces_by_duration``.
_DURATION_INDEX_AFTER_S = 6 * 3600
_CONTENDED_BUSY_MS = 2000
_READER_BUSY_MS = 5000


def _merge_sketches(a: bytes, b: bytes) -> bytes:
    # Called only when a row already exists: late data, imports, several writers of one
    # series (open minutes are staged, so a flush never merges sketches).
    sketch = Sketch.from_bytes(a)
    sketch.merge_bytes(b)
    return sketch.to_bytes()


def _slowest_key(sample: TraceSample) -> tuple[int, int]:
    return (-sample.duration_ns, sample.started_ns)


def _recent_key(sample: TraceSample) -> int:
    return -sample.started_ns


def _group_traces(
    traces: list[TraceSample],
) -> dict[tuple[SeriesKey, int, int], list[TraceSample]]:
    """Samples per (flow series, minute, group); group 0 samples each get a fresh part."""
    groups: dict[tuple[SeriesKey, int, int], list[TraceSample]] = {}
    for t in traces:
        key = SeriesKey(t.service, t.instance, t.name, "flow", t.status, "", encode_tags(t.tags))
        minute = t.started_ns // 60_000_000_000 * 60
        part = t.group or _new_part()
        groups.setdefault((key, minute, part), []).append(t)
    return groups


_SEP = (",", ":")


def _minute_rollups(rollups: list[Rollup]) -> dict[tuple[int, SeriesKey], Rollup]:
    """Minute rollups per (start, series); merged (copied) only where a key repeats.

    Coarser rollups (imported history) are left out: :meth:`SQLiteStore._write_coarse`.
    """
    out: dict[tuple[int, SeriesKey], Rollup] = {}
    for r in rollups:
        if r.resolution != MINUTE:
            continue
        slot = (r.start, r.key)
        have = out.get(slot)
        if have is None:
            out[slot] = r
        else:
            merged = have.copy()
            merged.merge(r)
            out[slot] = merged
    return out


def _staged_entry(sid: int, r: Rollup) -> list[Any]:
    bins = r.sketch.bins
    return [
        sid,
        r.count,
        r.sum_ns,
        r.min_ns,
        r.max_ns,
        r.sketch.zero_count,
        list(bins),
        list(bins.values()),
    ]


def _merge_staged(merged: dict[tuple[int, int], list[Any]], minute: int, body: bytes | str) -> None:
    """Add the deltas of one staged row to ``merged`` (keyed by (minute, series id))."""
    for sid, count, sum_ns, min_ns, max_ns, zeros, keys, counts in json.loads(body):
        acc = merged.get((minute, sid))
        if acc is None:
            merged[(minute, sid)] = [
                count,
                sum_ns,
                min_ns,
                max_ns,
                Sketch(dict(zip(keys, counts, strict=True)), zeros),
            ]
            continue
        acc[0] += count
        acc[1] += sum_ns
        acc[2] = min(acc[2], min_ns)
        acc[3] = max(acc[3], max_ns)
        sketch = acc[4]
        bins = sketch.bins
        get = bins.get
        for key, n in zip(keys, counts, strict=True):
            bins[key] = get(key, 0) + n
        sketch.zero_count += zeros


def _staged_between(
    conn: sqlite3.Connection, start_s: int, end_s: int
) -> dict[tuple[int, int], list[Any]]:
    """The staged deltas of minutes in ``[start_s, end_s)``, merged per (minute, series id)."""
    merged: dict[tuple[int, int], list[Any]] = {}
    for minute, body in conn.execute(
        "SELECT minute, body FROM staged WHERE minute >= ? AND minute < ?",
        (int(start_s), int(end_s)),
    ):
        _merge_staged(merged, int(minute), body)
    return merged


def _new_part() -> int:
    return random.getrandbits(62) + 1


def _finding_rows(findings: list[Finding]) -> list[tuple[Any, ...]]:
    return [
        (
            f.last_seen_ns // 1_000_000_000 // HOUR * HOUR,
            f.service,
            f.instance,
            f.type,
            f.flow,
            f.subject,
            f.count,
            f.total_ns,
            f.max_ns,
            f.first_seen_ns,
            f.last_seen_ns,
            f.source,
            json.dumps(f.example, separators=(",", ":"), ensure_ascii=False),
            json.dumps(f.details, separators=(",", ":"), ensure_ascii=False),
        )
        for f in findings
    ]


def _clamp_s(seconds: float) -> float:
    return max(-(2**62) / 1e9, min(2**62 / 1e9, seconds))


def _ns(seconds: float) -> int:
    """Epoch seconds as nanoseconds, clamped to SQLite's 64-bit integers."""
    return max(-(2**63), min(2**63 - 1, int(seconds * 1e9)))


def _classify(exc: sqlite3.Error, action: str, where: str) -> StoreError:
    message = f"SQLite store {where}: cannot {action}: {exc}"
    if isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc).lower() for word in _TRANSIENT
    ):
        return StoreUnavailable(message)
    return StoreError(message)


class SQLiteStore(Store):
    """A botpulse store in one SQLite file.

    Example::

        store = SQLiteStore("botpulse.db")          # created, with its schema, if missing
        reader = SQLiteStore("botpulse.db", create=False)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        retention: Retention | None = None,
        connect: bool = True,
    ) -> None:
        super().__init__(retention)
        self.path = Path(path)
        self.create = create
        self._writer: sqlite3.Connection | None = None
        self._writer_identity: tuple[int, int] | None = None
        self._writer_lock = threading.Lock()
        self._local = threading.local()
        self._series_ids: dict[SeriesKey, int] = {}
        self._contended = False
        self._busy_ms = _WRITER_BUSY_MS
        self._pid = os.getpid()
        self._new_writer_id()
        if not create and not self.path.exists():
            raise StoreError(f"SQLite store {self.path}: no such file")
        # Open (and migrate) now so a bad path fails at the boundary; with
        # connect=False the first write opens it (and retries until it can).
        if connect:
            with self._writer_lock:
                self._connect_writer() if create else self._reader()

    def describe(self) -> str:
        return f"sqlite:///{self.path}"

    def _new_writer_id(self) -> None:
        # Staged rows belong to one writer; a forked child is a writer of its own.
        self._writer_id = f"{os.getpid()}:{random.getrandbits(64):016x}"
        self._staged_seq = 0
        self._staged_minutes: set[int] = set()
        self._pending_seen: set[tuple[int, int]] = set()

    # -- connections -------------------------------------------------------------

    def _open(self, busy_ms: int, *, writable: bool) -> sqlite3.Connection:
        where = str(self.path)
        try:
            if writable:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=busy_ms / 1e3
                )
            else:
                uri = f"{self.path.absolute().as_uri()}?mode=rw"
                conn = sqlite3.connect(
                    uri,
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=busy_ms / 1e3,
                )
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"SQLite store {where}: cannot open: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
            if writable:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"SQLite store {where}: cannot switch to WAL (got {mode})")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA journal_size_limit = 67108864")
                conn.create_function("bp_sketch_merge", 2, _merge_sketches, deterministic=True)
            migrate(conn, create=writable)
        except sqlite3.Error as exc:
            conn.close()
            raise _classify(exc, "prepare the database", where) from exc
        except StoreError:
            conn.close()
            raise
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._open(_WRITER_BUSY_MS, writable=True)
        self._busy_ms = _WRITER_BUSY_MS
        stat = os.stat(self.path)
        self._writer = conn
        self._writer_identity = (stat.st_dev, stat.st_ino)
        self._series_ids = {}
        return conn

    def _writer_conn(self) -> sqlite3.Connection:
        """The writer connection, reopened if the file was removed or replaced."""
        conn = self._writer
        if conn is not None:
            try:
                stat = os.stat(self.path)
                alive = (stat.st_dev, stat.st_ino) == self._writer_identity
            except OSError:
                alive = False
            if alive:
                return conn
            # Writing on would go to an unlinked file and vanish: start over.
            self._writer = None
            self._series_ids = {}
            conn.close()
            raise StoreUnavailable(f"SQLite store {self.path}: the database file disappeared")
        return self._connect_writer()

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._open(_READER_BUSY_MS, writable=False)
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def before_fork(self) -> None:
        # SQLite keeps per-process lock state for every open file: a child forked while
        # our writer is inside a transaction (or merely has the file open) inherits that
        # state and its own connection then sees "database is locked"/"disk I/O error"
        # forever. Wait for the write in flight and close the writer; it reopens lazily.
        self._fork_locked = self._writer_lock.acquire(timeout=2.0)
        if self._fork_locked and self._writer is not None and self._pid == os.getpid():
            self._writer.close()
            self._writer = None
            self._series_ids = {}

    def after_fork_in_parent(self) -> None:
        if getattr(self, "_fork_locked", False):
            self._fork_locked = False
            self._writer_lock.release()

    def after_fork(self) -> None:
        # Connections must not cross fork(): forget the parent's without closing them.
        self._fork_locked = False
        self._writer = None
        self._writer_lock = threading.Lock()
        self._local = threading.local()
        self._series_ids = {}
        self._pid = os.getpid()
        self._new_writer_id()

    def close(self) -> None:
        # Bounded: a writer stuck waiting for a lock must not hang shutdown().
        if self._writer_lock.acquire(timeout=_CONTENDED_BUSY_MS / 1e3 + 1):
            try:
                if self._writer is not None and self._pid == os.getpid():
                    self._writer.close()
                self._writer = None
            finally:
                self._writer_lock.release()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- writing -----------------------------------------------------------------

    def _series_id(
        self, conn: sqlite3.Connection, key: SeriesKey, new: dict[SeriesKey, int]
    ) -> int:
        sid = self._series_ids.get(key) or new.get(key)
        if sid is not None:
            return sid
        values = (key.service, key.instance, key.name, key.kind, key.status, key.flow, key.tags)
        conn.execute(
            "INSERT OR IGNORE INTO series (service, instance, name, kind, status, flow, tags) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            values,
        )
        row = conn.execute(
            "SELECT id FROM series WHERE service = ? AND instance = ? AND name = ? "
            "AND kind = ? AND status = ? AND flow = ? AND tags = ?",
            values,
        ).fetchone()
        new[key] = int(row[0])
        return new[key]

    def write(self, batch: Batch) -> None:
        if not batch and not (batch.final and self._staged_minutes):
            return
        # Deltas of the minutes still open are staged (one small row per flush); older
        # minutes go straight to their minute rows, and hour and day rows only where
        # their bucket has already been folded (late or imported data).
        now_s = batch.now_ns / 1e9 if batch.now_ns else time.time()
        open_from = (int(now_s) // MINUTE - 1) * MINUTE if not batch.final else 2**62
        minutes = _minute_rollups(batch.rollups)
        with self._writer_lock:
            if self._pid != os.getpid():
                self.after_fork()
            conn = self._writer_conn()
            new_ids: dict[SeriesKey, int] = {}
            staged_minutes = set(self._staged_minutes)
            try:
                # After losing the lock to another writer, wait longer for it this time:
                # back-to-back transactions of a busy peer leave only short gaps.
                busy_ms = _CONTENDED_BUSY_MS if self._contended else _WRITER_BUSY_MS
                if busy_ms != self._busy_ms:
                    conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
                    self._busy_ms = busy_ms
                conn.execute("BEGIN IMMEDIATE")
                try:
                    direct: list[tuple[int, int, int, int, int, int, Sketch]] = []
                    staged: dict[int, list[list[Any]]] = {}
                    for (start, key), r in minutes.items():
                        sid = self._series_id(conn, key, new_ids)
                        if start >= open_from:
                            staged.setdefault(start, []).append(_staged_entry(sid, r))
                        else:
                            direct.append(
                                (start, sid, r.count, r.sum_ns, r.min_ns, r.max_ns, r.sketch)
                            )
                    self._stage(conn, staged)
                    direct.extend(self._take_staged(conn, self._writer_id, open_from))
                    self._write_minutes(conn, direct)
                    coarse = [r for r in batch.rollups if r.resolution != MINUTE]
                    if coarse:
                        self._write_coarse(conn, coarse, new_ids)
                    conn.executemany(
                        "INSERT INTO traces (series_id, minute, part, max_duration_ns, samples, "
                        "body) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (series_id, minute, part) "
                        "DO UPDATE SET max_duration_ns = excluded.max_duration_ns, "
                        "samples = excluded.samples, body = excluded.body",
                        [
                            (
                                self._series_id(conn, key, new_ids),
                                minute,
                                part,
                                max(t.duration_ns for t in samples),
                                len(samples),
                                encode_samples(samples, minute),
                            )
                            for (key, minute, part), samples in _group_traces(batch.traces).items()
                        ],
                    )
                    conn.executemany(
                        _UPSERT_DROP,
                        [(d.start, d.service, d.instance, d.reason, d.count) for d in batch.drops],
                    )
                    if batch.findings:
                        conn.executemany(_UPSERT_FINDING, _finding_rows(batch.findings))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self._staged_minutes = staged_minutes  # nothing was sealed after all
                self._pending_seen = set()
                error = _classify(exc, "write", str(self.path))
                self._contended = "locked" in str(exc).lower() or "busy" in str(exc).lower()
                raise error from exc
            except BaseException:
                self._staged_minutes = staged_minutes
                self._pending_seen = set()
                raise
            self._contended = False
            self._series_ids.update(new_ids)

    def _stage(self, conn: sqlite3.Connection, staged: dict[int, list[list[Any]]]) -> None:
        """Store the deltas of open minutes as one row per minute (no sketch merging)."""
        rows = []
        for minute, entries in staged.items():
            self._staged_seq += 1
            rows.append(
                (self._writer_id, minute, self._staged_seq, json.dumps(entries, separators=_SEP))
            )
            self._staged_minutes.add(minute)
        conn.executemany("INSERT INTO staged (writer, minute, seq, body) VALUES (?, ?, ?, ?)", rows)
        # Readers take hours and days that are not folded yet from finer rows: say so.
        buckets = {(res, m - m % res) for m in staged for res in (HOUR, DAY)} - self._pending_seen
        if buckets:
            conn.executemany(
                "INSERT OR IGNORE INTO fold_state (resolution, start, folded) VALUES (?, ?, 0)",
                sorted(buckets),
            )
            self._pending_seen |= buckets

    def _take_staged(
        self, conn: sqlite3.Connection, writer: str | None, before: int
    ) -> list[tuple[int, int, int, int, int, int, Sketch]]:
        """Remove staged deltas of minutes before ``before`` (of ``writer``, or of anyone),
        merged per (minute, series), ready to be written as minute rows."""
        if writer is not None:
            if not any(m < before for m in self._staged_minutes):
                return []
            self._staged_minutes = {m for m in self._staged_minutes if m >= before}
            where, args = "writer = ? AND minute < ?", (writer, before)
        else:
            where, args = "minute < ?", (before,)  # type: ignore[assignment]
        rows = conn.execute(f"SELECT minute, body FROM staged WHERE {where}", args).fetchall()  # noqa: S608
        if not rows:
            return []
        conn.execute(f"DELETE FROM staged WHERE {where}", args)  # noqa: S608
        merged: dict[tuple[int, int], list[Any]] = {}
        for minute, body in rows:
            _merge_staged(merged, int(minute), body)
        return [(minute, sid, *acc) for (minute, sid), acc in merged.items()]

    def _write_minutes(
        self,
        conn: sqlite3.Connection,
        rows: list[tuple[int, int, int, int, int, int, Sketch]],
    ) -> None:
        """Upsert minute rows; fold them into hour/day rows whose buckets are already folded."""
        if not rows:
            return
        conn.executemany(
            _UPSERT_ROLLUP,
            [
                (MINUTE, start, sid, count, sum_ns, min_ns, max_ns, sketch.to_bytes())
                for start, sid, count, sum_ns, min_ns, max_ns, sketch in rows
            ],
        )
        buckets = {(res, row[0] - row[0] % res) for row in rows for res in (HOUR, DAY)}
        conn.executemany(
            "INSERT OR IGNORE INTO fold_state (resolution, start, folded) VALUES (?, ?, 0)",
            sorted(buckets),
        )
        folded = {
            (int(res), int(start))
            for res, start in conn.execute(
                "SELECT resolution, start FROM fold_state WHERE folded = 1 AND start >= ? "
                "AND start <= ?",
                (min(b[1] for b in buckets), max(b[1] for b in buckets)),
            )
            if (int(res), int(start)) in buckets
        }
        if not folded:
            return
        late: dict[tuple[int, int, int], list[Any]] = {}
        for start, sid, count, sum_ns, min_ns, max_ns, sketch in rows:
            # Only through a folded hour: a pending hour reaches its (folded) day when
            # the hour itself is folded (_fold_one), which must not count it twice.
            if (HOUR, start - start % HOUR) not in folded:
                continue
            for res in (HOUR, DAY):
                bucket = start - start % res
                if (res, bucket) not in folded:
                    continue
                acc = late.get((res, bucket, sid))
                if acc is None:
                    late[(res, bucket, sid)] = [count, sum_ns, min_ns, max_ns, sketch.copy()]
                else:
                    acc[0] += count
                    acc[1] += sum_ns
                    acc[2] = min(acc[2], min_ns)
                    acc[3] = max(acc[3], max_ns)
                    acc[4].merge(sketch)
        conn.executemany(
            _UPSERT_ROLLUP,
            [
                (res, bucket, sid, c, s, lo, hi, sk.to_bytes())
                for (res, bucket, sid), (c, s, lo, hi, sk) in late.items()
            ],
        )

    def _write_coarse(
        self, conn: sqlite3.Connection, rollups: list[Rollup], new_ids: dict[SeriesKey, int]
    ) -> None:
        """Hour and day rollups given as such (imported history): complete as they are.

        A bucket not seen before is marked folded (no finer rows to fold); a pending one
        stays pending (its fold adds the finer rows to what is written here). An hour also
        reaches its day row when that day is already folded, else the day's fold does it.
        """
        rows: list[tuple[Any, ...]] = []
        for r in rollups:
            res = r.resolution if r.resolution in (HOUR, DAY) else DAY
            start = r.start - r.start % res
            sid = self._series_id(conn, r.key, new_ids)
            blob = r.sketch.to_bytes()
            rows.append((res, start, sid, r.count, r.sum_ns, r.min_ns, r.max_ns, blob))
        buckets = sorted({(row[0], row[1]) for row in rows})
        conn.executemany(
            "INSERT OR IGNORE INTO fold_state (resolution, start, folded) VALUES (?, ?, 1)",
            buckets,
        )
        days = sorted({(DAY, row[1] - row[1] % DAY) for row in rows if row[0] == HOUR})
        conn.executemany(
            "INSERT OR IGNORE INTO fold_state (resolution, start, folded) VALUES (?, ?, 0)", days
        )
        folded_days = {
            int(start)
            for (start,) in conn.execute(
                "SELECT start FROM fold_state WHERE resolution = ? AND folded = 1", (DAY,)
            )
        }
        # A day row given directly keeps its own fold state; an hour row of a day that is
        # already complete is added to it (the day will not be folded again).
        rows += [
            (DAY, row[1] - row[1] % DAY, *row[2:])
            for row in rows
            if row[0] == HOUR and row[1] - row[1] % DAY in folded_days
        ]
        conn.executemany(_UPSERT_ROLLUP, rows)

    # -- folding -----------------------------------------------------------------

    def fold(self, now_s: float | None = None, *, limit: int = 1) -> int:
        """Build the rows of up to ``limit`` closed hour or day buckets; return how many.

        An hour is folded from its minute rows once it closed more than
        ``FOLD_GRACE_S`` ago, a day from its hour rows once all its hours are folded.
        Each bucket is its own short transaction, so a writer never holds the lock (or
        the GIL) for long; any writer process may fold, each bucket exactly once.
        """
        now = time.time() if now_s is None else now_s
        done = 0
        with self._writer_lock:
            if self._pid != os.getpid():
                self.after_fork()
            conn = self._writer_conn()
            try:
                while done < limit and self._fold_one(conn, now):
                    done += 1
            except sqlite3.Error as exc:
                raise _classify(exc, "fold rollups", str(self.path)) from exc
        return done

    def _fold_one(self, conn: sqlite3.Connection, now: float) -> bool:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Staged deltas a writer left behind (it crashed or was killed) become minute
            # rows; a live writer seals its own within two minutes.
            self._write_minutes(
                conn, self._take_staged(conn, None, int(now) // MINUTE * MINUTE - ORPHAN_S)
            )
            row = conn.execute(
                "SELECT f.resolution, f.start FROM fold_state f WHERE f.folded = 0 "
                "AND f.resolution = ? AND f.start + ? <= ? AND NOT EXISTS (SELECT 1 FROM "
                "staged s WHERE s.minute >= f.start AND s.minute < f.start + ?) "
                "ORDER BY f.start LIMIT 1",
                (HOUR, HOUR + FOLD_GRACE_S, now, HOUR),
            ).fetchone()
            if row is None:
                row = conn.execute(
                    "SELECT d.resolution, d.start FROM fold_state d WHERE d.folded = 0 "
                    "AND d.resolution = ? AND d.start + ? <= ? AND NOT EXISTS ("
                    "SELECT 1 FROM fold_state h WHERE h.resolution = ? AND h.folded = 0 "
                    "AND h.start >= d.start AND h.start < d.start + ?) ORDER BY d.start LIMIT 1",
                    (DAY, DAY + FOLD_GRACE_S, now, HOUR, DAY),
                ).fetchone()
            if row is None:
                conn.execute("COMMIT")
                return False
            res, start = int(row[0]), int(row[1])
            finer = MINUTE if res == HOUR else HOUR
            merged: dict[int, list[Any]] = {}
            rows = conn.execute(
                "SELECT series_id, start, count, sum_ns, min_ns, max_ns, sketch FROM rollups "
                "WHERE resolution = ? AND start >= ? AND start < ?",
                (finer, start, start + res),
            ).fetchall()
            for sid, _start, count, sum_ns, min_ns, max_ns, blob in rows:
                acc = merged.get(sid)
                if acc is None:
                    merged[sid] = acc = [0, 0, min_ns, max_ns, Sketch()]
                acc[0] += count
                acc[1] += sum_ns
                acc[2] = min(acc[2], min_ns)
                acc[3] = max(acc[3], max_ns)
                try:
                    acc[4].merge_bytes(blob)
                except ValueError as exc:
                    raise StoreError(f"SQLite store {self.path}: damaged sketch: {exc}") from exc
            parent = (DAY, start - start % DAY)
            parent_folded = (
                res == HOUR
                and conn.execute(
                    "SELECT 1 FROM fold_state WHERE resolution = ? AND start = ? AND folded = 1",
                    parent,
                ).fetchone()
                is not None
            )
            upserts = []
            for sid, (count, sum_ns, min_ns, max_ns, sketch) in merged.items():
                blob = sketch.to_bytes()
                upserts.append((res, start, sid, count, sum_ns, min_ns, max_ns, blob))
                if parent_folded:
                    upserts.append((*parent, sid, count, sum_ns, min_ns, max_ns, blob))
            conn.executemany(_UPSERT_ROLLUP, upserts)
            conn.execute(
                "UPDATE fold_state SET folded = 1 WHERE resolution = ? AND start = ?", (res, start)
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return True

    def pending_buckets(self) -> list[tuple[int, int]]:
        """``(resolution, start)`` of hour and day buckets not folded yet."""
        conn = self._read("read fold state")
        try:
            rows = conn.execute(
                "SELECT resolution, start FROM fold_state WHERE folded = 0 ORDER BY start"
            ).fetchall()
        except sqlite3.Error as exc:
            raise _classify(exc, "read fold state", str(self.path)) from exc
        return [(int(r), int(st)) for r, st in rows]

    def apply_retention(self, now_s: float | None = None) -> int:
        now = time.time() if now_s is None else now_s
        retention = self.retention
        deleted = 0
        with self._writer_lock:
            conn = self._writer_conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # Finer rows of buckets not folded yet stay until the fold has read them.
                    pending = dict(
                        conn.execute(
                            "SELECT resolution, min(start) FROM fold_state WHERE folded = 0 "
                            "GROUP BY resolution"
                        ).fetchall()
                    )
                    for res, parent in ((MINUTE, HOUR), (HOUR, DAY), (DAY, None)):
                        horizon = int(retention.horizon(res, now))
                        if parent is not None and parent in pending:
                            horizon = min(horizon, int(pending[parent]))
                        cur = conn.execute(
                            "DELETE FROM rollups WHERE resolution = ? AND start < ?",
                            (res, horizon),
                        )
                        deleted += cur.rowcount
                    cur = conn.execute(
                        "DELETE FROM fold_state WHERE folded = 1 AND start < ?",
                        (int(retention.horizon(DAY, now)) - DAY,),
                    )
                    cur = conn.execute(
                        "DELETE FROM traces WHERE minute < ?",
                        (int(now - retention.traces_days * DAY),),
                    )
                    deleted += cur.rowcount
                    cur = conn.execute(
                        "DELETE FROM drops WHERE start < ?",
                        (int(now - retention.rollups_days * DAY),),
                    )
                    deleted += cur.rowcount
                    cur = conn.execute(
                        "DELETE FROM findings WHERE start < ?",
                        (int(now - retention.rollups_days * DAY),),
                    )
                    deleted += cur.rowcount
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                if deleted:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                raise _classify(exc, "apply retention", str(self.path)) from exc
        return deleted

    # -- reading -----------------------------------------------------------------

    def _series_map(self, conn: sqlite3.Connection) -> dict[int, SeriesKey]:
        rows = conn.execute(
            "SELECT id, service, instance, name, kind, status, flow, tags FROM series"
        )
        return {int(r[0]): SeriesKey(r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows}

    def _read(self, action: str) -> sqlite3.Connection:
        try:
            return self._reader()
        except sqlite3.Error as exc:  # pragma: no cover - _open maps these already
            raise _classify(exc, action, str(self.path)) from exc

    def _rollup_rows(
        self, resolution: int, start_s: int, end_s: int, selector: SeriesFilter
    ) -> list[tuple[SeriesKey, int, int, int, int, int, bytes | Sketch]]:
        """``(key, start, count, sum_ns, min_ns, max_ns, sketch)`` of selected rows.

        The sketch is an encoded blob for stored rows and a :class:`Sketch` for the
        staged deltas of open minutes (read with the minute rows).
        """
        conn = self._read("read rollups")
        try:
            every = self._series_map(conn)
            series = {sid: k for sid, k in every.items() if selector.matches(k)}
            if not series:
                return []
            # A selective read (gauges only, one service) asks SQLite for its series only.
            only = (
                f" AND series_id IN ({','.join(str(sid) for sid in series)})"
                if len(series) < len(every) and len(series) <= 500
                else ""
            )
            rows: list[tuple[Any, ...]] = conn.execute(
                "SELECT series_id, start, count, sum_ns, min_ns, max_ns, sketch FROM rollups "  # noqa: S608
                f"WHERE resolution = ? AND start >= ? AND start < ?{only} ORDER BY start",
                (resolution, int(start_s), int(end_s)),
            ).fetchall()
            if resolution == MINUTE:
                merged = _staged_between(conn, start_s, end_s)
                rows.extend((sid, minute, *acc) for (minute, sid), acc in merged.items())
        except sqlite3.Error as exc:
            raise _classify(exc, "read rollups", str(self.path)) from exc
        except (ValueError, TypeError) as exc:
            raise StoreError(f"SQLite store {self.path}: damaged staged row: {exc}") from exc
        return [(series[row[0]], *row[1:]) for row in rows if row[0] in series]

    def _fold_rollups(
        self,
        resolution: int,
        start_s: int,
        end_s: int,
        selector: SeriesFilter,
        into: dict[tuple[str, ...], Rollup],
        group: Callable[[SeriesKey], tuple[str, ...]] = default_group,
    ) -> None:
        # The same as the generic fold, but sketches are decoded straight into the
        # accumulator (Sketch.merge_bytes): a 30-day report folds ~10k rows.
        try:
            for key, start, count, sum_ns, min_ns, max_ns, blob in self._rollup_rows(
                resolution, start_s, end_s, selector
            ):
                group_key = group(key)
                have = into.get(group_key)
                if have is None:
                    sketch = blob.copy() if isinstance(blob, Sketch) else Sketch.from_bytes(blob)
                    into[group_key] = Rollup(
                        key, start, resolution, count, sum_ns, min_ns, max_ns, sketch
                    )
                else:
                    if isinstance(blob, Sketch):
                        have.sketch.merge(blob)
                    else:
                        have.sketch.merge_bytes(blob)
                    have.merge_totals(count, sum_ns, min_ns, max_ns)
        except ValueError as exc:
            raise StoreError(f"SQLite store {self.path}: damaged sketch: {exc}") from exc

    def _activity_rows(
        self, resolution: int, start_s: int, end_s: int, selector: SeriesFilter, *, sketches: bool
    ) -> Iterator[Rollup]:
        # An activity read needs each row's series, start and count: no sketch is read.
        if sketches:
            return super()._activity_rows(resolution, start_s, end_s, selector, sketches=True)
        conn = self._read("read rollups")
        try:
            series = {sid: k for sid, k in self._series_map(conn).items() if selector.matches(k)}
            if not series:
                return iter(())
            rows: list[tuple[int, int, int]] = conn.execute(
                "SELECT series_id, start, count FROM rollups "
                "WHERE resolution = ? AND start >= ? AND start < ?",
                (resolution, int(start_s), int(end_s)),
            ).fetchall()
            if resolution == MINUTE:
                merged = _staged_between(conn, start_s, end_s)
                rows.extend((sid, minute, acc[0]) for (minute, sid), acc in merged.items())
        except sqlite3.Error as exc:
            raise _classify(exc, "read rollups", str(self.path)) from exc
        except (ValueError, TypeError) as exc:
            raise StoreError(f"SQLite store {self.path}: damaged staged row: {exc}") from exc
        empty = Sketch()
        return iter(
            [
                Rollup(series[sid], start, resolution, count, 0, 0, 0, empty)
                for sid, start, count in rows
                if sid in series
            ]
        )

    def read_rollups(
        self, resolution: int, start_s: int, end_s: int, selector: SeriesFilter
    ) -> Iterator[Rollup]:
        for key, start, count, sum_ns, min_ns, max_ns, blob in self._rollup_rows(
            resolution, start_s, end_s, selector
        ):
            try:
                sketch = blob if isinstance(blob, Sketch) else Sketch.from_bytes(blob)
            except ValueError as exc:
                raise StoreError(f"SQLite store {self.path}: damaged sketch: {exc}") from exc
            yield Rollup(key, start, resolution, count, sum_ns, min_ns, max_ns, sketch)

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
        conn = self._read("read traces")
        recent = order == "recent"
        window = (math.floor(_clamp_s(since_s) / 60) * 60, math.ceil(_clamp_s(until_s)))
        try:
            series = {sid: k for sid, k in self._series_map(conn).items() if selector.matches(k)}
            if not series or limit <= 0:
                return []
            ids = ",".join(str(sid) for sid in series)
            # Phase 1 reads only the covering index (minute, series, max duration), best
            # groups first, a page at a time; phase 2 decodes a group's samples only while
            # it can still make the cut.
            # Over a long window most groups qualify: walking the duration index from
            # the slowest down finds the slowest ones at once. A short window's groups
            # are few: reading them by minute and sorting them is faster.
            hint = (
                "INDEXED BY traces_by_duration "
                if not recent and window[1] - window[0] > _DURATION_INDEX_AFTER_S
                else ""
            )
            query = (
                f"SELECT id, series_id, minute, max_duration_ns FROM traces {hint}"  # noqa: S608
                f"WHERE minute >= ? AND minute < ? AND series_id IN ({ids}) "
                f"ORDER BY {'minute DESC' if recent else 'max_duration_ns DESC'} LIMIT ? OFFSET ?"
            )
            found: list[TraceSample] = []
            page = limit + 32
            offset = 0
            while True:
                rows = conn.execute(query, (*window, page, offset)).fetchall()
                if self._collect_traces(conn, rows, series, since_s, until_s, limit, recent, found):
                    break
                if len(rows) < page:
                    break
                offset += page
        except sqlite3.Error as exc:
            raise _classify(exc, "read traces", str(self.path)) from exc
        found.sort(key=_recent_key if recent else _slowest_key)
        return found[:limit]

    def _collect_traces(
        self,
        conn: sqlite3.Connection,
        rows: list[tuple[int, int, int, int]],
        series: dict[int, SeriesKey],
        since_s: float,
        until_s: float,
        limit: int,
        recent: bool,
        found: list[TraceSample],
    ) -> bool:
        """Add the samples of ``rows`` to ``found``; True once no later row can make the cut."""
        since_ns, until_ns = _ns(since_s), _ns(until_s)
        for row_id, sid, minute, max_duration_ns in rows:
            if len(found) >= limit:
                found.sort(key=_recent_key if recent else _slowest_key)
                del found[limit:]
                worst = found[-1]
                if recent and (minute + 60) * 1_000_000_000 <= worst.started_ns:
                    return True
                if not recent and max_duration_ns <= worst.duration_ns:
                    return True
            (blob,) = conn.execute("SELECT body FROM traces WHERE id = ?", (row_id,)).fetchone()
            key = series[sid]
            try:
                samples = decode_samples(
                    blob, minute, key.service, key.instance, key.name, key.status
                )
                if key.tags:
                    for sample in samples:
                        sample.tags = key.tag_dict
            except (ValueError, TypeError, KeyError, AttributeError, zlib.error) as exc:
                raise StoreError(
                    f"SQLite store {self.path}: damaged trace sample: {type(exc).__name__}: {exc}"
                ) from exc
            found.extend(s for s in samples if since_ns <= s.started_ns < until_ns)
        return False

    def read_drops(self, since_s: float, until_s: float) -> dict[str, int]:
        conn = self._read("read drop counts")
        try:
            rows = conn.execute(
                "SELECT reason, SUM(count) FROM drops WHERE start > ? AND start < ? "
                "GROUP BY reason",
                (int(since_s) - 60, until_s),
            ).fetchall()
        except sqlite3.Error as exc:
            raise _classify(exc, "read drop counts", str(self.path)) from exc
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
        conn = self._read("read findings")
        sql = f"SELECT {FINDING_COLUMNS} FROM findings WHERE start >= ? AND start < ?"  # noqa: S608
        args: list[Any] = [int(_clamp_s(since_s) // HOUR * HOUR), math.ceil(_clamp_s(until_s))]
        for column, value in (("type", type), ("service", service), ("instance", instance)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        try:
            rows = conn.execute(sql, args).fetchall()
            found = [finding_from_row(r) for r in rows]
        except sqlite3.Error as exc:
            raise _classify(exc, "read findings", str(self.path)) from exc
        except ValueError as exc:
            raise StoreError(f"SQLite store {self.path}: damaged finding: {exc}") from exc
        return merge_findings(found)

    def series(self) -> list[SeriesKey]:
        conn = self._read("read series")
        try:
            keys = list(self._series_map(conn).values())
        except sqlite3.Error as exc:
            raise _classify(exc, "read series", str(self.path)) from exc
        return sorted(keys, key=lambda k: (k.service, k.name, k.kind, k.status, k.instance))
