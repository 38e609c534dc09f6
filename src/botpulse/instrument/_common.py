"""What every instrumentation shares: the settings, the caller's source line, recording.

Kept small and fast: each instrumented call reads the clock twice, builds one small
attribute dict and hands it to :func:`botpulse._capture.record_operation`. The calling
source line (a frame walk) is taken only for slow operations, and otherwise at most once
every ``source_every_s`` per statement or route, so an N+1 loop still names its line.
"""

from __future__ import annotations

import contextlib
import os
import site
import sys
import sysconfig
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from typing import Any

from .. import _capture
from .._diagnostics import internal_error

__all__ = [
    "PARAMS_KEY",
    "Settings",
    "caller_source",
    "is_botpulse_caller",
    "record",
    "recording",
    "settings",
    "sql_text",
    "suppressed",
]

#: Attribute holding the raw SQL parameters for the repeated-read detector. The key
#: matches the secret-key pattern of botpulse._sanitize, so whatever reaches a trace
#: is stored as ``***``; the detector hashes the value in the pipeline.
PARAMS_KEY = "params_secret"


@dataclass
class Settings:
    """Options of :func:`botpulse.instrument` (see its docstring)."""

    source_ms: float = 10.0
    source_every_s: float = 10.0
    n_plus_one_count: int = 5
    n_plus_one_ms: float = 20.0
    slow_ms: float = 100.0
    very_slow_ms: float = 500.0
    repeat_count: int = 3
    repeat_window_s: float = 10.0
    flows: dict[str, dict[str, float]] = field(default_factory=dict)

    def update(self, options: dict[str, Any]) -> None:
        """Apply ``options``; an unknown name or a bad value raises ``ValueError``/``TypeError``."""
        names = {f.name for f in fields(self)}
        for key in options:
            if key not in names:
                valid = ", ".join(sorted(names))
                raise TypeError(f"botpulse.instrument(): unknown option {key!r}; valid: {valid}")
        for key, value in options.items():
            if key == "flows":
                self.flows = _check_flows(value)
                continue
            number = _number(key, value)
            setattr(self, key, int(number) if key.endswith("_count") else number)
        _refresh()

    def for_flow(self, flow: str) -> Settings:
        """These settings with the overrides of the first ``flows`` pattern matching ``flow``."""
        if not self.flows:
            return self
        import fnmatch

        for pattern, overrides in self.flows.items():
            if pattern == flow or fnmatch.fnmatchcase(flow, pattern):
                merged = Settings(**{f.name: getattr(self, f.name) for f in fields(self)})
                for key, value in overrides.items():
                    setattr(merged, key, int(value) if key.endswith("_count") else value)
                return merged
        return self


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # noqa: PLR0124
        raise TypeError(f"botpulse.instrument(): {key} must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"botpulse.instrument(): {key} must be >= 0, got {value!r}")
    return float(value)


_FLOW_OPTIONS = frozenset(
    {"n_plus_one_count", "n_plus_one_ms", "slow_ms", "very_slow_ms", "repeat_count"}
)


def _check_flows(value: Any) -> dict[str, dict[str, float]]:
    if not isinstance(value, dict):
        raise TypeError(
            "botpulse.instrument(): flows must be a dict like {'stats': {'n_plus_one_count': 10}}"
        )
    out: dict[str, dict[str, float]] = {}
    for pattern, overrides in value.items():
        if not isinstance(pattern, str) or not isinstance(overrides, dict):
            raise TypeError(
                f"botpulse.instrument(): flows[{pattern!r}] must map option names to numbers"
            )
        for key in overrides:
            if key not in _FLOW_OPTIONS:
                valid = ", ".join(sorted(_FLOW_OPTIONS))
                raise TypeError(
                    f"botpulse.instrument(): flows[{pattern!r}] has unknown option {key!r}; "
                    f"valid: {valid}"
                )
        out[pattern] = {key: _number(key, v) for key, v in overrides.items()}
    return out


settings = Settings()
_source_ns = int(settings.source_ms * 1e6)
_source_every_ns = int(settings.source_every_s * 1e9)


#: Bumped whenever the settings change (detectors cache per-flow settings by it).
generation = 0


def _refresh() -> None:
    global _source_ns, _source_every_ns, generation
    generation += 1
    _source_ns = int(settings.source_ms * 1e6)
    _source_every_ns = int(settings.source_every_s * 1e9)


# -- which calls are recorded ----------------------------------------------------------

_local = threading.local()
_suppress: ContextVar[bool] = ContextVar("botpulse_instrument_suppress", default=False)
#: True while an instrumentation that wraps drivers (SQLAlchemy) is on: the sqlite3
#: fast path then also checks :func:`suppressed`.
nesting = False


def recording() -> bool:
    """False on botpulse's own threads (pipeline, store) and inside :func:`suppressed`."""
    try:
        on: bool = _local.on
    except AttributeError:
        on = _local.on = not threading.current_thread().name.startswith("botpulse")
    return on and not _suppress.get()


class suppressed:  # noqa: N801 - used like a function: ``with suppressed():``
    """Do not record driver calls made inside (a pool's own reset queries, botpulse's reads)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _suppress.set(True)

    def __exit__(self, *exc: object) -> None:
        _suppress.reset(self._token)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_DEMO_DIR = _PACKAGE_DIR + "demo" + os.sep


def is_botpulse_caller(depth: int = 2) -> bool:
    """True when the code ``depth`` frames up is botpulse itself (its store), not the bot."""
    try:
        frame: Any = sys._getframe(depth)
        name = frame.f_globals.get("__name__", "")
        return (
            isinstance(name, str)
            and name.startswith("botpulse.")
            and not name.startswith(("botpulse.demo", "botpulse.instrument"))
        )
    except Exception:  # noqa: BLE001
        return False


# -- the calling source line ---------------------------------------------------------


def _library_dirs() -> tuple[str, ...]:
    dirs: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(os.path.abspath(path) + os.sep)
    with contextlib.suppress(Exception):  # some embedded interpreters lack it
        dirs.update(os.path.abspath(p) + os.sep for p in site.getsitepackages())
    dirs.add(_PACKAGE_DIR)
    return tuple(sorted(dirs, key=len, reverse=True))


_LIBRARY_DIRS = _library_dirs()
_skip_code: dict[Any, bool] = {}
_cwd = os.getcwd() + os.sep


def _skipped(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen ...>, <string>
        return not filename.startswith("<stdin")
    path = os.path.abspath(filename)
    if path.startswith(_DEMO_DIR):
        return False
    return path.startswith(_LIBRARY_DIRS) or "site-packages" in path or "dist-packages" in path


def caller_source(depth: int = 2) -> str | None:
    """``path:line in function`` of the nearest caller outside botpulse, libraries and stdlib."""
    try:
        frame: Any = sys._getframe(depth)
    except ValueError:
        return None
    while frame is not None:
        code = frame.f_code
        skip = _skip_code.get(code)
        if skip is None:
            if len(_skip_code) > 10_000:
                _skip_code.clear()
            skip = _skip_code[code] = _skipped(code.co_filename)
        if not skip:
            filename = code.co_filename
            if filename.startswith(_cwd):
                filename = filename[len(_cwd) :]
            return f"{filename}:{frame.f_lineno} in {code.co_name}"
        frame = frame.f_back
    return None


_last_source: dict[Any, int] = {}


def _want_source(key: Any, t0: int, t1: int) -> bool:
    if t1 - t0 >= _source_ns:
        return True
    last = _last_source.get(key)
    if last is None or t1 - last >= _source_every_ns:
        if len(_last_source) > 4096:
            _last_source.clear()
        _last_source[key] = t1
        return True
    return False


# -- recording -----------------------------------------------------------------------


def record(
    name: Any,
    kind: str,
    t0: int,
    error: type[BaseException] | str | None,
    attrs: dict[str, Any],
    source_key: Any = None,
    depth: int = 3,
    t1: int | None = None,
) -> None:
    """Record an operation that started at ``t0`` and ends now; adds the source line if due.

    ``depth`` is where the frame walk starts; ``t1`` the end when it was not now.
    Never raises.
    """
    try:
        if t1 is None:
            t1 = _capture._now()
        if _want_source(name if source_key is None else source_key, t0, t1):
            source = caller_source(depth)
            if source is not None:
                attrs["source"] = source
        _capture.record_operation(name, kind, t0, t1, error, attrs)
    except Exception as exc:  # noqa: BLE001 - never raise into the bot
        internal_error("instrument.record", exc)


def sql_text(query: Any) -> str:
    """A statement as text: str as is, bytes decoded; other objects by their SQL text."""
    if isinstance(query, str):
        return query
    if isinstance(query, (bytes, bytearray)):
        return bytes(query).decode("utf-8", "replace")
    text = getattr(query, "text", None)  # SQLAlchemy TextClause
    if isinstance(text, str):
        return text
    return f"({type(query).__name__})"
