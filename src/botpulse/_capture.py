"""The hot path: ``measure()``, ``flow()`` and ``checkpoint()`` time code and append one record.

Everything on this page runs inside the bot, so it only reads the clock, builds one
tuple and offers it to the bounded buffer; aggregation, sanitising of names and
attributes, sampling and I/O all happen later in the pipeline thread. Nothing here
raises into the bot: internal failures go to :func:`botpulse._diagnostics.internal_error`.

Whether instrumentation is live is decided once, at ``init()``/``shutdown()``, by
rebinding the module-level factories (:func:`activate`, :func:`deactivate`); before
``init()`` the factories build no-op objects.

An event record is a tuple laid out as the ``NAME`` … ``DEPTH`` indexes below. A record
whose ``FLOW`` slot holds a :class:`Flow` is the root of a flow; the pipeline reads
that flow's checkpoints and children from it.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from ._diagnostics import internal_error

__all__ = [
    "ATTRS",
    "DEPTH",
    "END",
    "ERROR",
    "FLOW",
    "KIND",
    "MAX_CHECKPOINTS",
    "MAX_CHILDREN",
    "NAME",
    "START",
    "STATUS",
    "Flow",
    "NoopFlow",
    "NoopTimer",
    "Timer",
    "activate",
    "checkpoint",
    "current_flow",
    "deactivate",
    "flow",
    "measure",
]

NAME, KIND, START, END, STATUS, ERROR, ATTRS, FLOW, DEPTH = range(9)

#: A flow keeps at most this many children and checkpoints for its trace; the rest
#: are still counted in rollups and noted in ``Flow.truncated``.
MAX_CHILDREN = 256
MAX_CHECKPOINTS = 64

F = TypeVar("F", bound=Callable[..., Any])


def _discard(record: object) -> None:
    """The sink while botpulse is not initialised."""


# Rebound by activate()/deactivate(): the clock and the buffer's offer().
_now: Callable[[], int] = time.perf_counter_ns
_offer: Callable[[object], None] = _discard

# The innermost open timer inside a flow (a Flow or a Timer nested in one); lets
# operations, including those in tasks spawned inside the flow, attach to it.
_current: ContextVar[Timer | None] = ContextVar("botpulse_current", default=None)
_current_get = _current.get
_current_set = _current.set
_current_reset = _current.reset


def _outcome(exc_type: type[BaseException] | None) -> tuple[str, str | None]:
    if exc_type is None:
        return "ok", None
    if issubclass(exc_type, Exception):
        return "error", exc_type.__name__
    # CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit: not a failure of
    # the operation, and they always propagate.
    return "cancelled", exc_type.__name__


class _Decorating:
    """Makes a timer usable as a decorator of sync and async functions.

    The wrapper builds a fresh timer through the live factory on every call, so a
    function decorated at import time (before ``init()``) is measured once
    botpulse is initialised.
    """

    __slots__ = ()
    name: Any
    kind: str
    attrs: dict[str, Any]

    def _factory(self) -> Callable[[Any, str, dict[str, Any]], Any]:
        raise NotImplementedError

    def __call__(self, func: F) -> F:
        name, kind, attrs = self.name, self.kind, self.attrs
        make = self._factory()

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with make(name, kind, dict(attrs)):
                    return await func(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with make(name, kind, dict(attrs)):
                return func(*args, **kwargs)

        return cast(F, wrapper)


class Timer(_Decorating):
    """One timed operation: a context manager, an async context manager and a decorator.

    Built by :func:`botpulse.measure`; a fresh instance per use.
    """

    __slots__ = ("_depth", "_flow", "_t0", "_token", "attrs", "kind", "name")

    def __init__(self, name: Any, kind: str, attrs: dict[str, Any]) -> None:
        self.name = name
        self.kind = kind
        self.attrs = attrs
        self._flow: Flow | None = None

    def _factory(self) -> Callable[[Any, str, dict[str, Any]], Any]:
        return _timer_factory

    def set(self, **attrs: Any) -> None:
        """Add attributes to the operation (kept, bounded, in trace samples)."""
        self.attrs.update(attrs)

    def __enter__(self) -> Timer:
        parent = _current_get()
        if parent is not None:
            self._flow = parent._flow
            self._depth = parent._depth + 1
            self._token = _current_set(self)
        self._t0 = _now()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        end = _now()
        try:
            status, error = _outcome(exc_type)
            flow = self._flow
            if flow is None:
                _offer((self.name, self.kind, self._t0, end, status, error, self.attrs, None, 0))
            else:
                record = (
                    self.name, self.kind, self._t0, end, status, error, self.attrs, None,
                    self._depth,
                )  # fmt: skip
                _current_reset(self._token)
                _offer(record)
                flow._add_child(record)
        except Exception as err:  # noqa: BLE001 - never raise into the bot
            _hot_path_error(err)

    async def __aenter__(self) -> Timer:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: object, tb: object
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class Flow(Timer):
    """A user-facing command or handler, end to end: a tree of checkpoints and operations.

    Built by :func:`botpulse.flow`. Operations measured while the flow is open,
    including in tasks created inside it, become its children.
    """

    __slots__ = ("_outer", "checkpoints", "children", "truncated")

    def __init__(self, name: Any, kind: str, attrs: dict[str, Any]) -> None:
        self.name = name
        self.kind = kind
        self.attrs = attrs
        self._flow = self
        self._depth = 0
        self._outer: Timer | None = None
        self.checkpoints: list[tuple[Any, int, dict[str, Any]]] = []
        self.children: list[tuple[Any, ...]] = []
        self.truncated = 0

    def _factory(self) -> Callable[[Any, str, dict[str, Any]], Any]:
        return _flow_factory

    def checkpoint(self, name: Any, **attrs: Any) -> None:
        """Mark a point in the flow (e.g. ``"guard_checks"``) at the current offset."""
        try:
            if len(self.checkpoints) < MAX_CHECKPOINTS:
                self.checkpoints.append((name, _now(), attrs))
            else:
                self.truncated += 1
        except Exception as err:  # noqa: BLE001
            _hot_path_error(err)

    def _add_child(self, record: tuple[Any, ...]) -> None:
        if len(self.children) < MAX_CHILDREN:
            self.children.append(record)
        else:
            self.truncated += 1

    def __enter__(self) -> Flow:
        # A flow opened inside another flow is a child of it and a trace of its own.
        self._outer = _current_get()
        self._token = _current_set(self)
        self._t0 = _now()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        end = _now()
        try:
            status, error = _outcome(exc_type)
            _current_reset(self._token)
            record = (self.name, self.kind, self._t0, end, status, error, self.attrs, self, 0)
            _offer(record)
            outer = self._outer
            if outer is not None:
                outer_flow = outer._flow
                if outer_flow is not None:
                    outer_flow._add_child(
                        (self.name, self.kind, self._t0, end, status, error, self.attrs, None,
                         outer._depth + 1)
                    )  # fmt: skip
        except Exception as err:  # noqa: BLE001
            _hot_path_error(err)

    async def __aenter__(self) -> Flow:
        return self.__enter__()


class NoopTimer(_Decorating):
    """What :func:`botpulse.measure` returns before ``init()`` and after ``shutdown()``."""

    __slots__ = ("attrs", "kind", "name")

    def __init__(self, name: Any, kind: str, attrs: dict[str, Any]) -> None:
        self.name = name
        self.kind = kind
        self.attrs = attrs

    def _factory(self) -> Callable[[Any, str, dict[str, Any]], Any]:
        return _timer_factory

    def set(self, **attrs: Any) -> None:
        """Accepted and ignored."""

    def __enter__(self) -> NoopTimer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        return None

    async def __aenter__(self) -> NoopTimer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: object, tb: object
    ) -> None:
        return None


class NoopFlow(NoopTimer):
    """What :func:`botpulse.flow` returns before ``init()`` and after ``shutdown()``."""

    __slots__ = ()

    def _factory(self) -> Callable[[Any, str, dict[str, Any]], Any]:
        return _flow_factory

    def checkpoint(self, name: Any, **attrs: Any) -> None:
        """Accepted and ignored."""


def _hot_path_error(err: Exception) -> None:
    internal_error("capture", err)


# The live factories, rebound by activate()/deactivate(): "decide at configuration
# time, not per call".
_make_timer: Callable[[Any, str, dict[str, Any]], Timer | NoopTimer] = NoopTimer
_make_flow: Callable[[Any, str, dict[str, Any]], Flow | NoopFlow] = NoopFlow


def _timer_factory(name: Any, kind: str, attrs: dict[str, Any]) -> Timer | NoopTimer:
    return _make_timer(name, kind, attrs)


def _flow_factory(name: Any, kind: str, attrs: dict[str, Any]) -> Flow | NoopFlow:
    return _make_flow(name, kind, attrs)


def measure(name: Any, kind: str = "op", **attrs: Any) -> Any:
    """Time one operation; use as ``with``, ``async with`` or a decorator.

    ``kind`` is one of ``op``, ``db``, ``http``, ``redis``, ``cache``, ``event`` (or
    your own word). Attributes are kept, truncated, in trace samples.

    Example::

        with botpulse.measure("db.load_rows", kind="db"):
            rows = load_rows()

        @botpulse.measure("render_profile")
        async def render_profile(user): ...
    """
    if callable(name) and not isinstance(name, str):
        # Bare ``@botpulse.measure``: name the operation after the function.
        return NoopTimer(getattr(name, "__qualname__", repr(name)), kind, attrs)(name)
    return _make_timer(name, kind, attrs)


def flow(name: Any, **attrs: Any) -> Any:
    """Time a user-facing command end to end, with checkpoints and nested operations.

    Example::

        async with botpulse.flow("queue", user_id=1) as f:
            f.checkpoint("guard_checks")
            ...

        @botpulse.flow("leaderboard")
        async def leaderboard(ctx): ...
    """
    if callable(name) and not isinstance(name, str):
        return NoopFlow(getattr(name, "__qualname__", repr(name)), "flow", attrs)(name)
    return _make_flow(name, "flow", attrs)


def current_flow() -> Flow | None:
    """The flow the calling code runs in, or ``None`` outside any flow."""
    current = _current_get()
    return None if current is None else current._flow


def checkpoint(name: Any, **attrs: Any) -> None:
    """Mark a checkpoint in the current flow; does nothing outside a flow.

    Handy inside a function decorated with ``@botpulse.flow``, which has no ``f``.
    """
    current = _current_get()
    if current is not None and current._flow is not None:
        current._flow.checkpoint(name, **attrs)


def activate(now: Callable[[], int], offer: Callable[[object], None]) -> None:
    """Make instrumentation live: read ``now`` for timestamps and ``offer`` records."""
    global _now, _offer, _make_timer, _make_flow
    _now = now
    _offer = offer
    _make_timer = Timer
    _make_flow = Flow


def deactivate() -> None:
    """Turn instrumentation back into cheap no-ops."""
    global _now, _offer, _make_timer, _make_flow
    _make_timer = NoopTimer
    _make_flow = NoopFlow
    _offer = _discard
    _now = time.perf_counter_ns
