"""Index advice from plain ``EXPLAIN`` against the bot's own database (never a write).

SQLite: ``EXPLAIN QUERY PLAN`` tells a full scan (``SCAN t``) from an index search; the
``sqlite3`` shell's ``.expert`` mode, when installed, proposes the ``CREATE INDEX``.
Without the shell the index is derived from the columns the ``WHERE`` clause compares.
The database is opened read-only (``mode=ro``, ``PRAGMA query_only``).

PostgreSQL: ``EXPLAIN (FORMAT JSON)`` of the fingerprint's generic plan (``PREPARE`` +
``plan_cache_mode = force_generic_plan``) in a read-only transaction; a sequential scan
with a filter suggests an index on the filtered columns, and where the ``hypopg``
extension is installed the hypothetical index is checked to cut the plan cost by at
least half (as dexter does) before it is suggested. Never ``EXPLAIN ANALYZE``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "IndexAdvice",
    "IndexAdvisor",
    "index_statement",
    "open_advisor",
    "where_columns",
]

_PG_MIN_COST = 100.0
_PG_MIN_GAIN = 0.5


@dataclass(frozen=True)
class IndexAdvice:
    """A suggested index for one statement, and how sure we are."""

    table: str
    columns: tuple[str, ...]
    statement: str  # CREATE INDEX ...
    plan: str  # what the current plan does (e.g. "SCAN players")
    verified: bool  # checked by .expert or hypopg
    cost_before: float | None = None
    cost_after: float | None = None


class IndexAdvisor:
    """Base: ``advise(fingerprint)`` → an :class:`IndexAdvice` or None; ``close()``."""

    system = ""

    def advise(self, fingerprint: str) -> IndexAdvice | None:
        """An index that would help ``fingerprint`` (a SQL fingerprint with ``?``)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection."""

    notes: list[str]


def open_advisor(url: str) -> IndexAdvisor:
    """An advisor for the database at ``url`` (``sqlite:///path``, a path, ``postgresql://``)."""
    if url.startswith(("postgresql://", "postgres://", "postgresql+")):
        return PostgresAdvisor(re.sub(r"^postgresql\+\w+://", "postgresql://", url))
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    if not Path(path).is_file():
        raise FileNotFoundError(f"no SQLite database at {path!r}")
    return SQLiteAdvisor(path)


def _placeholders(sql: str) -> int:
    from sqlparse import tokens as T  # noqa: N812

    from ..instrument._sql import _lex

    return sum(1 for ttype, _ in _lex(sql) if ttype in T.Name.Placeholder)


_WHERE_COLUMN = re.compile(
    r"(?:\b(\w+)\.)?\b(\w+)\s*(?:=|<=|>=|<|>|<>|!=|\bIN\b|\bLIKE\b|\bIS\b|= ANY)\s*\(?\s*\?",
    re.IGNORECASE,
)


def where_columns(fingerprint: str) -> list[tuple[str | None, str]]:
    """``(qualifier, column)`` pairs compared with a value in ``fingerprint``'s WHERE."""
    upper = fingerprint.upper()
    start = upper.find(" WHERE ")
    if start < 0:
        return []
    clause = fingerprint[start + 7 :]
    for stop in (" GROUP BY ", " ORDER BY ", " LIMIT ", " HAVING "):
        cut = clause.upper().find(stop)
        if cut >= 0:
            clause = clause[:cut]
    out: list[tuple[str | None, str]] = []
    for qualifier, column in _WHERE_COLUMN.findall(clause):
        pair = (qualifier or None, column)
        if column.upper() not in {"AND", "OR", "NOT"} and pair not in out:
            out.append(pair)
    return out


class SQLiteAdvisor(IndexAdvisor):
    """EXPLAIN QUERY PLAN and ``.expert`` on a read-only SQLite file."""

    system = "sqlite"

    def __init__(self, path: str) -> None:
        import sqlite3

        self.path = path
        self.notes = []
        uri = f"file:{Path(path).resolve()}?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True)
        self._conn.execute("PRAGMA query_only = 1")
        self._shell = shutil.which("sqlite3")
        if self._shell is None:
            self.notes.append(
                "the sqlite3 shell is not installed (apt-get install sqlite3): "
                "indexes are derived from WHERE columns, not checked by .expert"
            )

    def _plan(self, sql: str) -> list[str]:
        rows = self._conn.execute(
            f"EXPLAIN QUERY PLAN {sql}", [None] * _placeholders(sql)
        ).fetchall()
        return [str(row[-1]) for row in rows]

    def advise(self, fingerprint: str) -> IndexAdvice | None:
        """An index for a statement whose plan scans a whole table while filtering it."""
        try:
            plan = self._plan(fingerprint)
        except Exception:  # noqa: BLE001 - not valid against this database: no advice
            return None
        scans = [
            line
            for line in plan
            if line.startswith("SCAN ") and " USING " not in line and "CONSTANT ROW" not in line
        ]
        if not scans or " WHERE " not in fingerprint.upper():
            return None
        scanned = scans[0].split()[1]
        expert = self._expert(fingerprint)
        if expert is not None:
            table, columns, statement = expert
            return IndexAdvice(table, columns, statement, "; ".join(plan), verified=True)
        if self._shell is not None:
            return None  # .expert ran and proposed nothing
        columns = tuple(c for q, c in where_columns(fingerprint) if q in (None, scanned))
        if not columns:
            return None
        statement = index_statement(scanned, columns)
        return IndexAdvice(scanned, columns, statement, "; ".join(plan), verified=False)

    def _expert(self, fingerprint: str) -> tuple[str, tuple[str, ...], str] | None:
        if self._shell is None:
            return None
        script = f".expert\n{fingerprint};\n"
        try:
            out = subprocess.run(  # noqa: S603 - a fixed program, the statement on stdin
                [self._shell, "-readonly", str(Path(self.path).resolve())],
                input=script,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        match = re.search(r"CREATE INDEX (\S+) ON (\w+)\(([^)]*)\);", out)
        if match is None:
            return None
        table = match.group(2)
        columns = tuple(c.strip().split()[0] for c in match.group(3).split(","))
        return table, columns, index_statement(table, columns)

    def close(self) -> None:
        """Close the read-only connection."""
        self._conn.close()


class PostgresAdvisor(IndexAdvisor):
    """EXPLAIN (FORMAT JSON) of generic plans, checked with hypopg when it is installed."""

    system = "postgresql"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise ImportError(
                "index advice for PostgreSQL needs psycopg: pip install 'botpulse[postgres]'"
            ) from exc
        self.notes = []
        self._conn = psycopg.connect(url, autocommit=False, connect_timeout=10)
        self._conn.read_only = True
        self._conn.execute("SET plan_cache_mode = force_generic_plan")
        self._conn.commit()  # keeps the setting for the session (nothing else was done)
        row = self._conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'"
        ).fetchone()
        self._hypopg = bool(row and row[0])
        if not self._hypopg:
            self.notes.append(
                "the hypopg extension is not installed in --db: suggested indexes are not "
                "verified (CREATE EXTENSION hypopg; Debian package postgresql-15-hypopg)"
            )
        self._conn.rollback()

    def _explain(self, fingerprint: str) -> dict[str, Any]:
        from sqlparse import tokens as T  # noqa: N812

        from ..instrument._sql import _lex

        count = 0
        parts: list[str] = []
        for ttype, value in _lex(fingerprint):  # ? → $1, $2, ... for PREPARE
            if ttype in T.Name.Placeholder:
                count += 1
                parts.append(f"${count}")
            else:
                parts.append(value)
        sql = "".join(parts)
        conn = self._conn
        conn.execute(f"PREPARE botpulse_audit AS {sql}")
        try:
            args = ", ".join(["NULL"] * count)
            execute = f"EXECUTE botpulse_audit({args})" if count else "EXECUTE botpulse_audit"
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {execute}").fetchone()
        finally:
            conn.execute("DEALLOCATE botpulse_audit")
        assert row is not None
        plan = row[0]
        if isinstance(plan, str):
            import json

            plan = json.loads(plan)
        return dict(plan[0]["Plan"])

    def advise(self, fingerprint: str) -> IndexAdvice | None:
        """An index for a statement whose plan filters a sequential scan."""
        try:
            plan = self._explain(fingerprint)
        except Exception:  # noqa: BLE001 - not valid against this database
            self._conn.rollback()
            return None
        try:
            return self._advise(fingerprint, plan)
        finally:
            self._conn.rollback()

    def _advise(self, fingerprint: str, plan: dict[str, Any]) -> IndexAdvice | None:
        cost = float(plan.get("Total Cost", 0.0))
        scan = _find_node(plan, lambda n: n.get("Node Type") == "Seq Scan" and "Filter" in n)
        if scan is None or cost < _PG_MIN_COST:
            return None
        table = str(scan.get("Relation Name"))
        filter_text = str(scan.get("Filter", ""))
        columns: list[str] = []
        for column in re.findall(r"\(?(\w+)\s*(?:=|<|>|<=|>=|~~|= ANY)\s*\(?\$\d", filter_text):
            if column not in columns:
                columns.append(column)
        if not columns:
            return None
        columns = columns[:2]
        statement = f"CREATE INDEX ON {table} ({', '.join(columns)});"
        described = f"Seq Scan on {table} (Filter: {filter_text}), cost {cost:.0f}"
        if not self._hypopg:
            return IndexAdvice(table, tuple(columns), statement, described, False, cost)
        conn = self._conn
        conn.execute("SELECT * FROM hypopg_create_index(%s)", (statement.rstrip(";"),))
        try:
            after = float(self._explain(fingerprint).get("Total Cost", cost))
        finally:
            conn.execute("SELECT hypopg_reset()")
        if after > cost * (1 - _PG_MIN_GAIN):
            return None
        statement = index_statement(table, columns)
        return IndexAdvice(table, tuple(columns), statement, described, True, cost, after)

    def close(self) -> None:
        """Close the connection (rolled back: nothing was written)."""
        try:
            self._conn.rollback()
        finally:
            self._conn.close()


def index_statement(table: str, columns: tuple[str, ...] | list[str]) -> str:
    """``CREATE INDEX table_col_idx ON table (col, ...);``"""
    name = f"{table}_{'_'.join(columns)}_idx".replace(".", "_")
    return f"CREATE INDEX {name} ON {table} ({', '.join(columns)});"


def _find_node(
    node: dict[str, Any], wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    if wanted(node):
        return node
    for child in node.get("Plans", ()) or ():
        found = _find_node(child, wanted)
        if found is not None:
            return found
    return None
