"""Instrumentation of DB drivers, Redis and HTTP clients: ``botpulse.instrument(...)``.

One line times every query and call, attributed to the flow (command) that caused it::

    botpulse.init(store="sqlite:///botpulse.db", service="mybot")
    botpulse.instrument("asyncpg", "redis", "aiohttp")

Each library uses its own hook where it has one (aiohttp trace configs, SQLAlchemy
events, httpx transports, DB-API connection/cursor factories) and a reversible
method wrapper where it has none (asyncpg, redis). Operations get kind ``db``,
``redis`` or ``http``; SQL is stored as a fingerprint (literals replaced, never the
parameter values), HTTP as method, host and route template (ids and tokens replaced).
The pipeline's query detectors (N+1, slow query, repeated identical read) run while
instrumentation is on; ``botpulse audit`` ranks what they found.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from typing import Any

__all__ = ["LIBRARIES", "instrument", "instrumented", "uninstrument"]

#: library -> (module to import, botpulse extra that installs it, kind)
LIBRARIES: dict[str, tuple[str, str, str]] = {
    "sqlite3": ("sqlite3", "sql", "db"),
    "aiosqlite": ("aiosqlite", "sqlite", "db"),
    "asyncpg": ("asyncpg", "postgres", "db"),
    "psycopg": ("psycopg", "postgres", "db"),
    "psycopg2": ("psycopg2", "postgres", "db"),
    "sqlalchemy": ("sqlalchemy", "sqlalchemy", "db"),
    "redis": ("redis", "redis", "redis"),
    "aiohttp": ("aiohttp", "http", "http"),
    "httpx": ("httpx", "http", "http"),
}

_lock = threading.Lock()
_installed: set[str] = set()


def _module(library: str) -> Any:
    return importlib.import_module(f"botpulse.instrument.{library}")


def _require(library: str) -> None:
    module, extra, kind = LIBRARIES[library]
    needed = [module] + (["sqlparse"] if kind == "db" else [])
    for name in needed:
        if importlib.util.find_spec(name) is None:
            raise ImportError(
                f"botpulse.instrument({library!r}) needs {name}, which is not installed: "
                f"pip install 'botpulse[{extra}]'"
            )


def _check_names(libraries: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for library in libraries:
        if not isinstance(library, str) or library not in LIBRARIES:
            valid = ", ".join(LIBRARIES)
            raise ValueError(f"botpulse.instrument(): unknown library {library!r}; valid: {valid}")
        if library not in names:
            names.append(library)
    return names


def instrument(*libraries: str, **options: Any) -> None:
    """Time every query or call of ``libraries`` and watch them for N+1 and slow queries.

    Idempotent and reversible (:func:`uninstrument`). Call it once at start-up, before
    the bot opens its connections, pools and sessions. With no library it only turns on
    the query detectors, for operations measured by hand with ``kind="db"``, ``"redis"``
    or ``"http"``. An unknown name raises ``ValueError``; a library that is not installed
    raises ``ImportError`` naming the extra to install.

    Options (all optional):

    - ``n_plus_one_count`` (5) and ``n_plus_one_ms`` (20): the same statement run this
      many times in a row within one flow, taking at least this long in total, is an N+1.
    - ``slow_ms`` (100): a statement whose p95 is above this is slow; ``very_slow_ms``
      (500): any single execution above this is reported.
    - ``repeat_count`` (3) and ``repeat_window_s`` (10): the same read with the same
      parameters this many times within one flow or this window is a caching candidate.
    - ``source_ms`` (10): operations slower than this carry the calling source line; the
      others get it at most once every ``source_every_s`` (10) per statement or route.
    - ``flows``: per-flow overrides, by flow name or glob pattern, e.g.
      ``flows={"leaderboard": {"n_plus_one_count": 20}, "admin.*": {"slow_ms": 1000}}``.

    Example::

        botpulse.instrument("sqlite3", "httpx", slow_ms=250)
    """
    names = _check_names(libraries)
    for library in names:
        _require(library)
    from . import _common

    if options:
        _common.settings.update(options)
    with _lock:
        for library in names:
            if library in _installed:
                continue
            _module(library).install()
            _installed.add(library)
        _enable_pipeline_side(db=any(LIBRARIES[n][2] == "db" for n in _installed))


def uninstrument(*libraries: str) -> None:
    """Undo :func:`instrument` for ``libraries`` (all when none are given); idempotent.

    Example::

        botpulse.uninstrument("httpx")
    """
    names = _check_names(libraries) if libraries else list(_installed)
    with _lock:
        for library in names:
            if library not in _installed:
                continue
            _module(library).uninstall()
            _installed.discard(library)
        if not libraries:
            _disable_pipeline_side()
        else:
            _enable_pipeline_side(db=any(LIBRARIES[n][2] == "db" for n in _installed))


def instrumented() -> tuple[str, ...]:
    """The libraries currently instrumented."""
    return tuple(sorted(_installed))


def _enable_pipeline_side(*, db: bool) -> None:
    from .. import _detect
    from . import detectors

    if db or importlib.util.find_spec("sqlparse") is not None:
        from ._sql import normalize_name

        _detect.register_normalizer("db", normalize_name)
    detectors.enable()


def _disable_pipeline_side() -> None:
    from .. import _detect
    from . import detectors

    _detect.unregister_normalizer("db")
    detectors.disable()
