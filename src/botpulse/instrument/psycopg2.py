"""``botpulse.instrument("psycopg2")``: time psycopg2 statements, its pools included.

psycopg2's hook points are ``connection_factory`` and ``cursor_factory``.
``psycopg2.connect`` is wrapped (the ``pool`` module's ``SimpleConnectionPool`` and
``ThreadedConnectionPool`` connect through it) so each connection is of a timed
connection class whose cursors record ``execute``/``executemany``/``callproc``. A
``connection_factory`` or ``cursor_factory`` of your own (``RealDictCursor``, ...) is
kept: a timed subclass of it is used.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from .. import _capture
from ._common import is_botpulse_caller, record, recording
from ._dbapi import attrs_for, query_text

__all__ = ["install", "uninstall"]

_SYSTEM = "postgresql"
_active = False
_original_connect: Any = None
_timed_cursors: dict[type, type] = {}
_timed_connections: dict[type, type] = {}


class _TimedCursor:
    """Mixed into a psycopg2 cursor class."""

    def execute(self, query: Any, vars: Any = None) -> Any:  # noqa: A002 - psycopg2's name
        parent: Any = super()
        if not (_active and _capture._capacity) or not recording():
            return parent.execute(query, vars)
        t0 = _capture._now()
        try:
            result = parent.execute(query, vars)
        except BaseException as exc:
            record(query_text(query, self), "db", t0, type(exc), attrs_for(_SYSTEM, vars))
            raise
        attrs = attrs_for(_SYSTEM, vars)
        rows = getattr(self, "rowcount", -1)
        if isinstance(rows, int) and rows >= 0:
            attrs["rows"] = rows
        record(query_text(query, self), "db", t0, None, attrs)
        return result

    def executemany(self, query: Any, vars_list: Any) -> Any:
        parent: Any = super()
        if not (_active and _capture._capacity) or not recording():
            return parent.executemany(query, vars_list)
        t0 = _capture._now()
        try:
            result = parent.executemany(query, vars_list)
        except BaseException as exc:
            record(query_text(query, self), "db", t0, type(exc), attrs_for(_SYSTEM, None))
            raise
        record(query_text(query, self), "db", t0, None, attrs_for(_SYSTEM, None))
        return result

    def callproc(self, procname: Any, parameters: Any = None) -> Any:
        parent: Any = super()
        if not (_active and _capture._capacity) or not recording():
            return parent.callproc(procname, parameters)
        t0 = _capture._now()
        name = f"CALL {procname}"
        try:
            result = parent.callproc(procname, parameters)
        except BaseException as exc:
            record(name, "db", t0, type(exc), attrs_for(_SYSTEM, parameters))
            raise
        record(name, "db", t0, None, attrs_for(_SYSTEM, parameters))
        return result


def _timed_cursor(factory: Any) -> Any:
    if not isinstance(factory, type) or issubclass(factory, _TimedCursor):
        return factory
    timed = _timed_cursors.get(factory)
    if timed is None:
        timed = _timed_cursors[factory] = type(
            f"Timed{factory.__name__}", (_TimedCursor, factory), {}
        )
    return timed


class _TimedConnection:
    """Mixed into a psycopg2 connection class: every cursor it makes is timed."""

    _botpulse_default = False

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        from psycopg2 import extensions

        parent: Any = super()
        if self._botpulse_default and len(args) < 2 and kwargs.get("cursor_factory") is None:
            own: Any = getattr(self, "cursor_factory", None)
            kwargs["cursor_factory"] = _timed_cursor(own or extensions.cursor)
        elif kwargs.get("cursor_factory") is not None:
            kwargs["cursor_factory"] = _timed_cursor(kwargs["cursor_factory"])
        cur = parent.cursor(*args, **kwargs)
        if not isinstance(cur, _TimedCursor):
            # A factory chosen inside a connection subclass (RealDictConnection).
            with contextlib.suppress(TypeError):
                cur.__class__ = _timed_cursor(type(cur))
        return cur


def _timed_connection(factory: Any) -> Any:
    from psycopg2 import extensions

    base = factory or extensions.connection
    if not isinstance(base, type) or issubclass(base, _TimedConnection):
        return factory
    timed = _timed_connections.get(base)
    if timed is None:
        timed = _timed_connections[base] = type(
            f"Timed{base.__name__}",
            (_TimedConnection, base),
            {"_botpulse_default": base is extensions.connection},
        )
    return timed


def _connect(*args: Any, **kwargs: Any) -> Any:
    original = _original_connect
    if not _active or is_botpulse_caller():
        return original(*args, **kwargs)
    kwargs["connection_factory"] = _timed_connection(kwargs.get("connection_factory"))
    return original(*args, **kwargs)


def install() -> None:
    """Wrap ``psycopg2.connect`` (idempotent)."""
    global _original_connect, _active
    import psycopg2

    _active = True
    if _original_connect is None:
        _original_connect = psycopg2.connect
        psycopg2.connect = functools.wraps(_original_connect)(_connect)


def uninstall() -> None:
    """Restore ``psycopg2.connect``; connections already open stop recording."""
    global _original_connect, _active
    import psycopg2

    _active = False
    if _original_connect is not None:
        psycopg2.connect = _original_connect
        _original_connect = None
