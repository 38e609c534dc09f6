"""``botpulse.instrument("psycopg")``: time psycopg 3 statements, sync and async, pools too.

psycopg 3 has no query hook; its hook point is the connection's ``cursor_factory``.
``Connection.connect`` and ``AsyncConnection.connect`` are wrapped so every new
connection (``psycopg_pool`` pools create theirs through them) gets a timed subclass of
its cursor factory; ``conn.execute()`` goes through it too. Connections opened by
botpulse itself are left alone.
"""

from __future__ import annotations

import functools
from typing import Any

from .. import _capture
from ._common import is_botpulse_caller, record, recording
from ._dbapi import attrs_for, query_text
from ._patch import Patches

__all__ = ["install", "uninstall"]

_patches = Patches()
_SYSTEM = "postgresql"
_timed: dict[type, type] = {}
_active = False


def _rows(cur: Any) -> int:
    try:
        return int(cur.rowcount)
    except Exception:  # noqa: BLE001
        return -1


class _TimedSync:
    """Mixed into a psycopg ``Cursor`` class: ``execute``/``executemany`` recorded."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        parent: Any = super()
        if not (_active and _capture._capacity) or not recording():
            return parent.execute(query, params, **kwargs)
        t0 = _capture._now()
        try:
            result = parent.execute(query, params, **kwargs)
        except BaseException as exc:
            record(query_text(query, self), "db", t0, type(exc), attrs_for(_SYSTEM, params))
            raise
        attrs = attrs_for(_SYSTEM, params)
        rows = _rows(self)
        if rows >= 0:
            attrs["rows"] = rows
        record(query_text(query, self), "db", t0, None, attrs)
        return result

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        parent: Any = super()
        if not (_active and _capture._capacity) or not recording():
            return parent.executemany(query, params_seq, **kwargs)
        t0 = _capture._now()
        try:
            result = parent.executemany(query, params_seq, **kwargs)
        except BaseException as exc:
            record(query_text(query, self), "db", t0, type(exc), attrs_for(_SYSTEM, None))
            raise
        record(query_text(query, self), "db", t0, None, attrs_for(_SYSTEM, None))
        return result


class _TimedAsync:
    """Mixed into a psycopg ``AsyncCursor`` class."""

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        parent: Any = super()
        if not (_active and _capture._capacity) or not recording():
            return await parent.execute(query, params, **kwargs)
        t0 = _capture._now()
        try:
            result = await parent.execute(query, params, **kwargs)
        except BaseException as exc:
            record(query_text(query, self), "db", t0, type(exc), attrs_for(_SYSTEM, params))
            raise
        attrs = attrs_for(_SYSTEM, params)
        rows = _rows(self)
        if rows >= 0:
            attrs["rows"] = rows
        record(query_text(query, self), "db", t0, None, attrs)
        return result

    async def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        parent: Any = super()
        if not (_active and _capture._capacity) or not recording():
            return await parent.executemany(query, params_seq, **kwargs)
        t0 = _capture._now()
        try:
            result = await parent.executemany(query, params_seq, **kwargs)
        except BaseException as exc:
            record(query_text(query, self), "db", t0, type(exc), attrs_for(_SYSTEM, None))
            raise
        record(query_text(query, self), "db", t0, None, attrs_for(_SYSTEM, None))
        return result


def _timed_factory(factory: Any, asynchronous: bool) -> Any:
    if not isinstance(factory, type) or issubclass(factory, (_TimedSync, _TimedAsync)):
        return factory
    timed = _timed.get(factory)
    if timed is None:
        mixin = _TimedAsync if asynchronous else _TimedSync
        timed = _timed[factory] = type(f"Timed{factory.__name__}", (mixin, factory), {})
    return timed


def _instrument_connection(conn: Any, asynchronous: bool) -> None:
    conn.cursor_factory = _timed_factory(conn.cursor_factory, asynchronous)
    conn.server_cursor_factory = _timed_factory(conn.server_cursor_factory, asynchronous)


def _wrap_connect(original: Any) -> Any:
    @functools.wraps(original)
    def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        conn = original.__func__(cls, *args, **kwargs)
        if not is_botpulse_caller():
            _instrument_connection(conn, asynchronous=False)
        return conn

    return classmethod(connect)


def _wrap_async_connect(original: Any) -> Any:
    @functools.wraps(original)
    async def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        mine = is_botpulse_caller()
        conn = await original.__func__(cls, *args, **kwargs)
        if not mine:
            _instrument_connection(conn, asynchronous=True)
        return conn

    return classmethod(connect)


def install() -> None:
    """Wrap ``psycopg.Connection.connect`` and ``AsyncConnection.connect`` (idempotent)."""
    global _active
    _active = True
    if _patches:
        return
    import psycopg

    _patches.replace(
        psycopg.Connection, "connect", _wrap_connect(psycopg.Connection.__dict__["connect"])
    )
    _patches.replace(
        psycopg.AsyncConnection,
        "connect",
        _wrap_async_connect(psycopg.AsyncConnection.__dict__["connect"]),
    )
    # ``psycopg.connect`` is ``Connection.connect`` bound at import time.
    _patches.replace(psycopg, "connect", psycopg.Connection.connect)


def uninstall() -> None:
    """Restore ``connect``; connections already open stop recording."""
    global _active
    _active = False
    _patches.undo()
