"""``botpulse.instrument("asyncpg")``: time asyncpg queries, prepared statements and cursors.

asyncpg's own hook, the query logger (``Connection.add_query_logger``), was measured
and not used: it does not report prepared statements or cursors, must be added to each
connection, and its callback runs later via ``loop.call_soon`` where the caller's source
line is gone. Instead the query methods of ``Connection``, ``PreparedStatement`` and
``Cursor`` are wrapped (reversibly), which covers pools too (their connections are
``Connection`` objects). A cursor iterated with ``async for`` is one operation, recorded
when it is exhausted, its duration the time spent fetching. The pool's own reset
queries on release are not recorded.
"""

from __future__ import annotations

from typing import Any

from .. import _capture
from ._common import PARAMS_KEY, record, recording, suppressed
from ._patch import Patches, timed_async

__all__ = ["install", "uninstall"]

_patches = Patches()
_SYSTEM = "postgresql"


def _describe_query(_self: Any, query: Any, *args: Any, **_kw: Any) -> Any:
    attrs: dict[str, Any] = {"system": _SYSTEM}
    if args:
        attrs[PARAMS_KEY] = args
    return query, attrs


def _describe_many(_self: Any, query: Any, *_a: Any, **_kw: Any) -> Any:
    return query, {"system": _SYSTEM}


def _describe_copy(_self: Any, table_name: Any, *_a: Any, **_kw: Any) -> Any:
    return f"COPY {table_name}", {"system": _SYSTEM}


def _describe_copy_query(_self: Any, query: Any, *_a: Any, **_kw: Any) -> Any:
    return query, {"system": _SYSTEM}


def _describe_prepared(self: Any, *args: Any, **_kw: Any) -> Any:
    attrs: dict[str, Any] = {"system": _SYSTEM, "prepared": True}
    if args:
        attrs[PARAMS_KEY] = args
    return self.get_query(), attrs


def _describe_prepared_many(self: Any, *_a: Any, **_kw: Any) -> Any:
    return self.get_query(), {"system": _SYSTEM, "prepared": True}


def _describe_cursor(self: Any, *_a: Any, **_kw: Any) -> Any:
    return self._query, {"system": _SYSTEM, "cursor": True}


def _len(result: Any) -> int:
    return len(result) if isinstance(result, list) else -1


def _suppressing(original: Any) -> Any:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        with suppressed():
            return await original(*args, **kwargs)

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    return wrapper


# One operation per iterated cursor: id(iterator) -> [t0, time spent, rows, name, attrs].
_open_cursors: dict[int, list[Any]] = {}
_MAX_OPEN_CURSORS = 1024


def _timed_anext(original: Any) -> Any:
    async def __anext__(self: Any) -> Any:  # noqa: N807 - replaces the dunder
        if not _capture._capacity or not recording():
            return await original(self)
        key = id(self)
        state = _open_cursors.get(key)
        if state is None:
            if len(_open_cursors) >= _MAX_OPEN_CURSORS:  # abandoned loops: forget the oldest
                _open_cursors.pop(next(iter(_open_cursors)))
            state = _open_cursors[key] = [
                _capture._now(),
                0,
                0,
                self._query,
                {"system": _SYSTEM, "cursor": True},
            ]
        t0 = _capture._now()
        try:
            row = await original(self)
        except StopAsyncIteration:
            _open_cursors.pop(key, None)
            state[1] += _capture._now() - t0
            _finish_cursor(state, None)
            raise
        except BaseException as exc:
            _open_cursors.pop(key, None)
            state[1] += _capture._now() - t0
            _finish_cursor(state, type(exc))
            raise
        state[1] += _capture._now() - t0
        state[2] += 1
        return row

    __anext__.__wrapped__ = original  # type: ignore[attr-defined]
    return __anext__


def _finish_cursor(state: list[Any], error: type[BaseException] | None) -> None:
    start, spent, rows, name, attrs = state
    attrs["rows"] = rows
    # From the first fetch, for the time actually spent fetching (not the loop's body).
    record(name, "db", start, error, attrs, t1=start + spent)


def install() -> None:
    """Wrap asyncpg's query methods (idempotent)."""
    if _patches:
        return
    import asyncpg
    from asyncpg import cursor, prepared_stmt

    conn = asyncpg.connection.Connection
    for name, describe, rows in (
        ("execute", _describe_query, None),
        ("executemany", _describe_many, None),
        ("fetch", _describe_query, _len),
        ("fetchval", _describe_query, None),
        ("fetchrow", _describe_query, None),
        ("fetchmany", _describe_many, _len),
        ("prepare", _describe_many, None),
        ("copy_from_table", _describe_copy, None),
        ("copy_to_table", _describe_copy, None),
        ("copy_records_to_table", _describe_copy, None),
        ("copy_from_query", _describe_copy_query, None),
    ):
        if name in conn.__dict__:
            _patches.replace(conn, name, timed_async(conn.__dict__[name], "db", describe, rows))
    for name in ("reset", "_reset"):
        if name in conn.__dict__:
            _patches.replace(conn, name, _suppressing(conn.__dict__[name]))
    stmt = prepared_stmt.PreparedStatement
    prepared: tuple[tuple[str, Any, Any], ...] = (
        ("fetch", _describe_prepared, _len),
        ("fetchval", _describe_prepared, None),
        ("fetchrow", _describe_prepared, None),
        ("fetchmany", _describe_prepared_many, _len),
        ("executemany", _describe_prepared_many, None),
    )
    for name, describe, rows in prepared:
        if name in stmt.__dict__:
            _patches.replace(stmt, name, timed_async(stmt.__dict__[name], "db", describe, rows))
    cur = cursor.Cursor
    for name, rows in (("fetch", _len), ("fetchrow", None), ("forward", None)):
        _patches.replace(cur, name, timed_async(cur.__dict__[name], "db", _describe_cursor, rows))
    iterator = cursor.CursorIterator
    _patches.replace(iterator, "__anext__", _timed_anext(iterator.__dict__["__anext__"]))


def uninstall() -> None:
    """Restore asyncpg's methods."""
    _patches.undo()
    _open_cursors.clear()
