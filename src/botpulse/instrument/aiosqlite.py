"""``botpulse.instrument("aiosqlite")``: time aiosqlite statements as the event loop sees them.

aiosqlite runs each connection's statements in its own thread, where the bot's flow
(a context variable) is not visible, so timing there would lose the attribution. The
async methods of ``aiosqlite.Connection`` and ``aiosqlite.Cursor`` are wrapped instead:
the time recorded is what the awaiting handler waited, queueing behind other statements
on the same connection included. ``async with db.execute(...)`` keeps working.
"""

from __future__ import annotations

from typing import Any

from ._common import PARAMS_KEY
from ._patch import Patches, timed_async

__all__ = ["install", "uninstall"]

_patches = Patches()


def _describe_conn(_self: Any, sql: Any, parameters: Any = None, *a: Any, **k: Any) -> Any:
    attrs: dict[str, Any] = {"system": "sqlite"}
    if parameters:
        attrs[PARAMS_KEY] = parameters
    return sql, attrs


def _describe_many(_self: Any, sql: Any, *a: Any, **k: Any) -> Any:
    return sql, {"system": "sqlite"}


def _rows_of_list(result: Any) -> int:
    return len(result) if isinstance(result, list) else -1


def _rows_of_cursor(result: Any) -> int:
    return int(getattr(result, "rowcount", -1))


def install() -> None:
    """Wrap aiosqlite's statement methods (idempotent)."""
    if _patches:
        return
    import aiosqlite
    from aiosqlite.context import contextmanager

    conn = aiosqlite.Connection
    for name, describe, rows in (
        ("execute", _describe_conn, _rows_of_cursor),
        ("execute_insert", _describe_conn, None),
        ("execute_fetchall", _describe_conn, _rows_of_list),
        ("executemany", _describe_many, _rows_of_cursor),
        ("executescript", _describe_many, None),
    ):
        method = conn.__dict__[name]
        inner = getattr(method, "__wrapped__", None)
        if inner is None:  # not a @contextmanager in this version
            _patches.replace(conn, name, timed_async(method, "db", describe, rows))
        else:
            timed: Any = timed_async(inner, "db", describe, rows)
            _patches.replace(conn, name, contextmanager(timed))
    cursor = aiosqlite.Cursor
    for name, describe, rows in (
        ("execute", _describe_conn, _rows_of_cursor),
        ("executemany", _describe_many, _rows_of_cursor),
        ("executescript", _describe_many, None),
    ):
        _patches.replace(cursor, name, timed_async(cursor.__dict__[name], "db", describe, rows))


def uninstall() -> None:
    """Restore aiosqlite's methods."""
    _patches.undo()
