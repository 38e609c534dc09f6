"""``botpulse.instrument("sqlalchemy")``: time SQLAlchemy 2 statements through its events.

SQLAlchemy's own hooks are used: ``before_cursor_execute``/``after_cursor_execute`` on
the ``Engine`` class (so every engine, and every ``AsyncEngine``'s ``sync_engine``), and
``handle_error`` for failures (``after_cursor_execute`` does not fire on error). The
statement is the SQL SQLAlchemy sends (with its placeholders), so ORM queries get their
fingerprints too. While SQLAlchemy runs a statement, the driver's own instrumentation
(``"sqlite3"``, ``"asyncpg"``, ``"psycopg"``...) does not record it again.
"""

from __future__ import annotations

from typing import Any

from .. import _capture
from .._diagnostics import internal_error
from . import _common
from ._common import PARAMS_KEY, record, recording

__all__ = ["install", "uninstall"]

_installed = False
_KEY = "_botpulse"  # stashed on the ExecutionContext: (t0, statement, attrs, suppress token)


def _before(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool
) -> None:
    try:
        if context is None or not _capture._capacity or not recording():
            return
        attrs: dict[str, Any] = {"system": conn.dialect.name}
        if parameters and not executemany:
            attrs[PARAMS_KEY] = parameters
        previous = _common._suppress.get()
        _common._suppress.set(True)
        setattr(context, _KEY, (_capture._now(), statement, attrs, previous))
    except Exception as exc:  # noqa: BLE001 - an exception in an event fails the statement
        internal_error("instrument.sqlalchemy", exc)


def _end(context: Any, error: Any, rows: int) -> None:
    state = getattr(context, _KEY, None)
    if state is None:
        return
    setattr(context, _KEY, None)
    t0, statement, attrs, previous = state
    _common._suppress.set(previous)
    if rows >= 0:
        attrs["rows"] = rows
    record(statement, "db", t0, error, attrs)


def _after(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool
) -> None:
    try:
        rows = getattr(cursor, "rowcount", -1)
        _end(context, None, rows if isinstance(rows, int) else -1)
    except Exception as exc:  # noqa: BLE001
        internal_error("instrument.sqlalchemy", exc)


def _error(exception_context: Any) -> None:
    try:
        context = exception_context.execution_context
        if context is not None:
            _end(context, type(exception_context.original_exception), -1)
    except Exception as exc:  # noqa: BLE001
        internal_error("instrument.sqlalchemy", exc)


def install() -> None:
    """Listen to the cursor events of every engine (idempotent)."""
    global _installed
    if _installed:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", _before)
    event.listen(Engine, "after_cursor_execute", _after)
    event.listen(Engine, "handle_error", _error)
    _common.nesting = True
    _installed = True


def uninstall() -> None:
    """Remove the listeners."""
    global _installed
    if not _installed:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.remove(Engine, "before_cursor_execute", _before)
    event.remove(Engine, "after_cursor_execute", _after)
    event.remove(Engine, "handle_error", _error)
    _common.nesting = False
    _installed = False
