"""``botpulse.instrument("sqlite3")``: time every statement of the standard ``sqlite3`` module.

SQLite has no timing hook (``set_trace_callback`` gives text without duration), so
``sqlite3.connect`` is wrapped to pass ``factory=`` a connection class whose cursors time
``execute``/``executemany``/``executescript`` (``Connection.execute`` is covered too: it
skips ``cursor()`` in C, so it is overridden). A ``factory=`` of your own is kept: a
timed subclass of it is used. Connections opened before ``instrument()``, by botpulse's
own store, or by aiosqlite (instrument ``"aiosqlite"`` for those) are left alone.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .. import _capture
from .._capture import record_operation as _record_operation
from . import _common
from ._common import PARAMS_KEY, caller_source, is_botpulse_caller, record

__all__ = ["TimedConnection", "TimedCursor", "install", "uninstall"]

_original_connect: Any = None
_active = False


def _done(sql: Any, params: Any, t0: int, error: type[BaseException] | None, rows: int) -> None:
    attrs: dict[str, Any] = {"system": "sqlite"}
    if params:
        attrs[PARAMS_KEY] = params
    if rows >= 0:
        attrs["rows"] = rows
    record(sql, "db", t0, error, attrs)


_execute = sqlite3.Cursor.execute
_executemany = sqlite3.Cursor.executemany
_executescript = sqlite3.Cursor.executescript
_last_source = _common._last_source


class TimedCursor(sqlite3.Cursor):
    """A ``sqlite3.Cursor`` that records each statement as a ``db`` operation."""

    def execute(self, sql: str, parameters: Any = (), /) -> TimedCursor:
        # The hot path of every query: kept flat (one call into record_operation).
        if not (_active and _capture._capacity) or (_common.nesting and _common._suppress.get()):
            _execute(self, sql, parameters)
            return self
        now = _capture._now
        t0 = now()
        try:
            _execute(self, sql, parameters)
        except BaseException as exc:
            _done(sql, parameters, t0, type(exc), -1)
            raise
        t1 = now()
        attrs: dict[str, Any] = (
            {"system": "sqlite", PARAMS_KEY: parameters} if parameters else {"system": "sqlite"}
        )
        rows = self.rowcount
        if rows >= 0:
            attrs["rows"] = rows
        last = _last_source.get(sql)
        if last is None or t1 - last >= _common._source_every_ns or t1 - t0 >= _common._source_ns:
            _source(sql, t1, attrs)
        _record_operation(sql, "db", t0, t1, None, attrs)
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> TimedCursor:
        if not (_active and _capture._capacity) or (_common.nesting and _common._suppress.get()):
            _executemany(self, sql, seq_of_parameters)
            return self
        t0 = _capture._now()
        try:
            _executemany(self, sql, seq_of_parameters)
        except BaseException as exc:
            _done(sql, None, t0, type(exc), -1)
            raise
        _done(sql, None, t0, None, self.rowcount)
        return self

    def executescript(self, sql_script: str, /) -> TimedCursor:
        if not (_active and _capture._capacity) or (_common.nesting and _common._suppress.get()):
            _executescript(self, sql_script)
            return self
        t0 = _capture._now()
        try:
            _executescript(self, sql_script)
        except BaseException as exc:
            _done(sql_script, None, t0, type(exc), -1)
            raise
        _done(sql_script, None, t0, None, -1)
        return self


def _source(sql: str, t1: int, attrs: dict[str, Any]) -> None:
    try:
        if len(_last_source) > 4096:
            _last_source.clear()
        _last_source[sql] = t1
        source = caller_source(3)
        if source is not None:
            attrs["source"] = source
    except Exception as exc:  # noqa: BLE001 - never raise into the bot
        from .._diagnostics import internal_error

        internal_error("instrument.sqlite3", exc)


_timed_cursors: dict[type, type] = {}


def _timed_cursor(factory: Any) -> Any:
    if not isinstance(factory, type) or issubclass(factory, TimedCursor):
        return factory
    if not issubclass(factory, sqlite3.Cursor):
        return factory
    timed = _timed_cursors.get(factory)
    if timed is None:
        timed = _timed_cursors[factory] = type(
            f"Timed{factory.__name__}", (TimedCursor, factory), {}
        )
    return timed


class TimedConnection(sqlite3.Connection):
    """A ``sqlite3.Connection`` whose cursors (and ``execute`` shortcuts) are timed."""

    def cursor(self, factory: Any = TimedCursor) -> Any:
        return super().cursor(_timed_cursor(factory))

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> Any:
        return self.cursor().executescript(sql_script)


_timed_connections: dict[type, type] = {}


def _timed_connection(factory: Any) -> Any:
    if factory is sqlite3.Connection:
        return TimedConnection
    if not isinstance(factory, type) or not issubclass(factory, sqlite3.Connection):
        return factory
    if issubclass(factory, TimedConnection):
        return factory
    timed = _timed_connections.get(factory)
    if timed is None:
        timed = _timed_connections[factory] = type(
            f"Timed{factory.__name__}", (TimedConnection, factory), {}
        )
    return timed


def _connect(database: Any, *args: Any, **kwargs: Any) -> Any:
    """``sqlite3.connect`` with a timed connection class (installed by ``instrument``)."""
    original = _original_connect or sqlite3.connect
    if not _active or is_botpulse_caller() or _from_aiosqlite():
        return original(database, *args, **kwargs)
    if len(args) >= 4:  # factory given positionally (timeout, detect_types, isolation_level, ...)
        return original(database, *args, **kwargs)
    kwargs["factory"] = _timed_connection(kwargs.get("factory", sqlite3.Connection))
    return original(database, *args, **kwargs)


def _from_aiosqlite() -> bool:
    import sys

    try:
        name = sys._getframe(2).f_globals.get("__name__", "")
    except ValueError:
        return False
    return isinstance(name, str) and name.startswith("aiosqlite")


def install() -> None:
    """Wrap ``sqlite3.connect`` (idempotent)."""
    global _original_connect, _active
    if _original_connect is None:
        _original_connect = sqlite3.connect
        sqlite3.connect = _connect
    _active = True


def uninstall() -> None:
    """Restore ``sqlite3.connect``; connections already open stop recording."""
    global _original_connect, _active
    _active = False
    if _original_connect is not None:
        if sqlite3.connect is _connect:
            sqlite3.connect = _original_connect
        _original_connect = None
