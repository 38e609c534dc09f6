"""Timing for DB-API cursors (psycopg 3, psycopg2): shared describe/record helpers."""

from __future__ import annotations

from typing import Any

from ._common import PARAMS_KEY, sql_text

__all__ = ["attrs_for", "query_text"]


def query_text(query: Any, context: Any) -> str:
    """The SQL of ``query``: a string, or a ``psycopg.sql`` object rendered for ``context``.

    Never raises (an odd query object is named by its type).
    """
    if isinstance(query, str):
        return query
    try:
        as_string = getattr(query, "as_string", None)
        if as_string is not None:
            return str(as_string(context))
        return sql_text(query)
    except Exception:  # noqa: BLE001
        return f"({type(query).__name__})"


def attrs_for(system: str, params: Any) -> dict[str, Any]:
    """The attributes of one execution (parameter values only under the masked key)."""
    attrs: dict[str, Any] = {"system": system}
    if params:
        attrs[PARAMS_KEY] = params
    return attrs
