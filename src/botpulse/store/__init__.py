"""Stores: where rollups and trace samples live. ``open_store(url)`` picks the backend.

The embedded default is SQLite (``sqlite:///botpulse.db``); ``memory://`` keeps data
in the process; ``postgresql://user:password@host:5432/dbname`` (extra ``postgres``)
lets many processes and hosts share one store. Every backend implements :class:`Store`
and passes the contract tests.
"""

from __future__ import annotations

from .._model import Batch, Checkpoint, Child, DropCount, Operation, Rollup, SeriesKey, TraceSample
from ._url import SCHEMES, StoreURL, parse_store_url, redact_url
from .base import Retention, SeriesFilter, Store, Summary, plan_window
from .memory import MemoryStore

__all__ = [
    "SCHEMES",
    "Batch",
    "Checkpoint",
    "Child",
    "DropCount",
    "MemoryStore",
    "Operation",
    "Retention",
    "Rollup",
    "SeriesFilter",
    "SeriesKey",
    "Store",
    "StoreURL",
    "Summary",
    "TraceSample",
    "open_store",
    "parse_store_url",
    "plan_window",
    "redact_url",
]


def open_store(
    url: str | Store,
    *,
    create: bool = True,
    retention: Retention | None = None,
    connect: bool = True,
) -> Store:
    """The store for ``url`` (or ``url`` itself if it already is a :class:`Store`).

    ``create=False`` refuses to create a missing SQLite file (readers such as the CLI
    use it so a typo does not leave an empty database behind; for PostgreSQL it refuses
    a database without botpulse's tables). ``connect=False`` opens nothing yet: the
    first write connects (the pipeline retries until it can). Raises
    :class:`~botpulse.errors.ConfigurationError` for a bad URL and
    :class:`~botpulse.errors.StoreError` when the store cannot be opened.

    Example::

        with open_store("sqlite:///botpulse.db", create=False) as store:
            print(store.series())
    """
    if isinstance(url, Store):
        return url
    parsed = parse_store_url(url)
    if parsed.scheme == "memory":
        return MemoryStore(retention)
    if parsed.scheme == "postgresql":
        from .postgres import PostgresStore  # imports psycopg: only when asked for

        return PostgresStore(parsed.raw, create=create, retention=retention, connect=connect)
    from .sqlite import SQLiteStore

    return SQLiteStore(parsed.path, create=create, retention=retention, connect=connect)
