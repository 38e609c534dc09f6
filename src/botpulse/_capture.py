"""The hot path: ``measure()``, ``flow()`` and ``checkpoint()`` time code and queue one record.

Everything on this page runs inside the bot, so it only reads the clock, sets a few
slots and appends the timer itself to the bounded buffer: the finished
:class:`Timer` *is* the event record (``name``, ``kind``, ``attrs``, ``_t0``, ``_t1``,
``_flow``, ``_depth``); one that ended with an exception is queued as the pair
``(timer, exc_type)``. Turning it into a status, sanitising names and
attributes, aggregating, sampling and I/O all happen later in the pipeline thread.
Nothing here raises into the bot: internal failures go to
:func:`botpulse._diagnostics.internal_error`.

``botpulse.measure`` and ``botpulse.flow`` are the :class:`Timer` and :class:`Flow`
classes, so a measurement costs one object and no extra call. Whether they record
is decided once, at ``init()``/``shutdown()``: :func:`activate` and
:func:`deactivate` swap their ``__enter__``/``__exit__`` between the live and the
no-op versions (STYLE.md: decide at configuration time, not per call).

A timer object is single-use: create one per operation (``with measure("x"):``) or
use it as a decorator, which creates one per call.
"""

from __future__ import annotations

import functools
import inspect
import time
import types
from collections.abc import Callable, Sized
from contextvars import ContextVar, Token
from typing import Any, TypeVar, cast

from ._buffer import EventBuffer
from ._diagnostics import internal_error

__all__ = [
    "GAUGE_SCALE",
    "MAX_CHECKPOINTS",
    "MAX_CHILDREN",
    "Flow",
    "Timer",
    "activate",
    "checkpoint",
    "current_flow",
    "deactivate",
    "fail",
    "gauge",
    "now_ns",
    "outcome",
    "record_operation",
    "tag",
]

#: A flow keeps at most this many children and checkpoints for its trace; the rest
#: are still counted in rollups and noted in ``Flow.truncated``.
MAX_CHILDREN = 256
MAX_CHECKPOINTS = 64

F = TypeVar("F", bound=Callable[..., Any])


def _discard(record: object) -> None:
    """The sink while botpulse is not initialised."""


# Rebound by activate()/deactivate(): the clock and the buffer. EventBuffer.offer()
# is inlined in __exit__ (length check, append) because a method call would cost a
# third of a measurement; past the buffer's wake threshold (_capacity here) records go
# through _overflow, which wakes the pipeline or counts a drop.
_now: Callable[[], int] = time.perf_counter_ns
_events: Sized = ()
_append: Callable[[object], None] = _discard
_capacity = 0
_overflow: Callable[[object], None] = _discard

# Set by the loop monitor while it times task steps: told when a flow opens outside
# any other, so a step that began before its flow (the first step of a decorated
# handler) is attributed to that flow when it blocks or is sampled.
flow_opened: Callable[[Any], None] | None = None

# The innermost open timer inside a flow (a Flow, or a Timer nested in one): lets
# operations, including those in tasks spawned inside the flow, attach to it.
_current: ContextVar[Timer | None] = ContextVar("botpulse_current", default=None)
_current_get = _current.get
_current_set = _current.set
_current_reset = _current.reset
_new = object.__new__


def outcome(exc_type: type[BaseException] | None) -> tuple[str, str | None]:
    """``(status, error type name)`` of a finished timer (called off the hot path)."""
    if exc_type is None:
        return "ok", None
    if issubclass(exc_type, Exception):
        return "error", exc_type.__name__
    # CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit: not a failure of
    # the operation, and they always propagate.
    return "cancelled", exc_type.__name__


def _hot_path_error(err: Exception) -> None:
    internal_error("capture", err)


def _reset(token: Token[Timer | None]) -> None:
    try:  # noqa: SIM105 - contextlib.suppress() is slower
        _current_reset(token)
    except (ValueError, RuntimeError):
        # The same timer object entered twice, or exited in another task/context:
        # misuse of a single-use timer, not a botpulse failure. Nothing to undo.
        pass


class Timer:
    """One timed operation: ``botpulse.measure(name, kind="op", **attrs)``.

    Usable as ``with``, ``async with`` and as a decorator of sync and async
    functions. ``kind`` is ``op``, ``db``, ``http``, ``redis``, ``cache``, ``event``
    or a word of your own. Attributes are kept, bounded, in trace samples. An
    exception marks the operation ``error`` (with the exception's type name) and is
    re-raised unchanged; ``CancelledError``/``KeyboardInterrupt``/``SystemExit``
    are recorded as ``cancelled``.

    Example::

        with botpulse.measure("db.load_rows", kind="db"):
            rows = load_rows()

        @botpulse.measure("render_profile")
        async def render_profile(user): ...
    """

    __slots__ = (
        "_attrs",
        "_depth",
        "_exc",
        "_flow",
        "_t0",
        "_t1",
        "_tags",
        "_token",
        "kind",
        "name",
    )
    _is_flow = False
    # Slots filled while timing (the record the pipeline reads).
    _t0: int
    _t1: int
    _exc: Any  # the exception type that ended it (unset if none), or (status, error) for imports
    _flow: Flow | None
    _depth: int
    _token: Token[Timer | None]

    def __init__(
        self, name: Any, /, kind: str = "op", *, tags: dict[str, Any] | None = None, **attrs: Any
    ) -> None:
        self.name = name
        self.kind = kind
        if attrs:  # an empty dict is not kept: one object less to allocate and collect
            self._attrs = attrs
        self._tags = tags  # always set: the pipeline reads it for every record

    @property
    def attrs(self) -> dict[str, Any]:
        """The operation's attributes (a dict you may update; see also :meth:`set`)."""
        try:
            return self._attrs
        except AttributeError:
            self._attrs = {}
            return self._attrs

    def set(self, **attrs: Any) -> None:
        """Add attributes to the operation (kept, bounded, in trace samples)."""
        self.attrs.update(attrs)

    @property
    def tags(self) -> dict[str, Any]:
        """The operation's tags: low-cardinality dimensions that split its rollups."""
        tags = self._tags
        if tags is None:
            tags = self._tags = {}
        return tags

    def tag(self, **tags: Any) -> None:
        """Add tags (e.g. ``cache="hit"``): each distinct set of values gets its own percentiles.

        Keep values few (a path, an outcome, a shard), never ids: each key keeps at
        most ``max_tag_values`` values (``init()``), the rest are counted as ``(other)``.
        """
        self.tags.update(tags)

    def rename(self, name: Any) -> None:
        """Give the operation its final name, e.g. once a bot has routed a message to a command."""
        self.name = name

    # The live versions; activate()/deactivate() install these or the no-ops below.
    def _live_enter(self) -> Any:
        parent = _current_get()
        if parent is None:
            self._flow = None
        else:
            self._flow = parent._flow
            self._depth = parent._depth + 1
            self._token = _current_set(self)
        self._t0 = _now()
        return self

    def _live_exit(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        self._t1 = _now()
        record: Any = self
        if exc_type is not None:
            # Unset means "no exception"; a failure is queued as (timer, exc_type) so
            # the pipeline never has to probe an unset slot (which costs an exception).
            self._exc = exc_type
            record = (self, exc_type)
        try:
            flow = self._flow
        except AttributeError:  # entered before init(): nothing to record
            return
        try:
            if flow is not None:
                _reset(self._token)
                flow._add_child(self)
                if exc_type is not None:
                    flow._step_failed = True
            if len(_events) < _capacity:
                _append(record)
            else:
                _overflow(record)
        except Exception as err:  # noqa: BLE001 - never raise into the bot
            _hot_path_error(err)

    def _noop_enter(self) -> Any:
        return self

    def _noop_exit(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        return None

    __enter__ = _noop_enter
    __exit__ = _noop_exit

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: object, tb: object
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _fresh(self) -> Timer:
        timer: Timer = _new(Timer)
        timer.name = self.name
        timer.kind = self.kind
        attrs = getattr(self, "_attrs", None)
        if attrs:
            timer._attrs = attrs
        tags = self._tags
        timer._tags = dict(tags) if tags else None
        return timer

    def __call__(self, func: F) -> F:
        """Decorate ``func``: each call is timed by a fresh timer with this one's settings.

        The wrapper keeps ``func``'s name, docstring, annotations and signature
        (``functools.wraps``) and lives in ``func``'s module globals, so frameworks
        that resolve string annotations in the wrapper's ``__globals__`` (FastAPI
        before 0.100) find the user's types as they would on ``func`` itself.
        """
        if inspect.iscoroutinefunction(func):
            wrapper = _async_wrapper(func, self._fresh)
        elif self._is_flow or getattr(self, "_attrs", None) or self._tags:
            wrapper = _sync_wrapper(func, self._fresh)
        else:
            # The common case, a plain @measure("name"): the fresh timer built inline.
            wrapper = _plain_wrapper(func, self.name, self.kind, _new, Timer)
        return cast(F, _rehome(wrapper, func))

    def __repr__(self) -> str:
        return f"<botpulse.{type(self).__name__} {self.name!r} kind={self.kind!r}>"


# The decorator's wrappers. Each is built by a factory so that everything it calls is
# a closure variable: the code makes no global lookups, so :func:`_rehome` can rebind
# it to the decorated function's module globals without breaking it.


def _async_wrapper(func: Callable[..., Any], fresh: Callable[[], Timer]) -> Callable[..., Any]:
    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
        async with fresh():
            return await func(*args, **kwargs)

    return async_wrapper


def _sync_wrapper(func: Callable[..., Any], fresh: Callable[[], Timer]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with fresh():
            return func(*args, **kwargs)

    return wrapper


def _plain_wrapper(
    func: Callable[..., Any],
    name: Any,
    kind: str,
    new: Callable[[type[Timer]], Timer],
    timer_cls: type[Timer],
) -> Callable[..., Any]:
    def plain_wrapper(*args: Any, **kwargs: Any) -> Any:
        timer = new(timer_cls)
        timer.name = name
        timer.kind = kind
        timer._tags = None
        with timer:
            return func(*args, **kwargs)

    return plain_wrapper


def _rehome(wrapper: Callable[..., Any], func: Callable[..., Any]) -> Callable[..., Any]:
    """``wrapper`` with ``func``'s module globals and metadata (name, doc, annotations, ...).

    Frameworks resolve a handler's string annotations (``from __future__ import
    annotations``) in ``handler.__globals__``; FastAPI before 0.100 reads the
    *wrapper's*, which would otherwise be botpulse's module and miss the user's types.
    """
    target_globals = getattr(func, "__globals__", None)
    if isinstance(target_globals, dict) and isinstance(wrapper, types.FunctionType):
        wrapper = types.FunctionType(
            wrapper.__code__,
            target_globals,
            wrapper.__name__,
            wrapper.__defaults__,
            wrapper.__closure__,
        )
    return functools.update_wrapper(wrapper, func)


class Flow(Timer):
    """A user-facing command or handler, end to end: ``botpulse.flow(name, **attrs)``.

    A tree of checkpoints and of the operations measured while it is open,
    including those in tasks created inside it (``asyncio.gather``, ``create_task``).
    Usable as ``with``, ``async with`` and as a decorator; inside a decorated
    function, :func:`botpulse.checkpoint` marks checkpoints.

    Example::

        async with botpulse.flow("queue", user_id=1) as f:
            f.checkpoint("guard_checks")
            ...
    """

    __slots__ = ("_failure", "_outer", "_step_failed", "checkpoints", "children", "truncated")
    _is_flow = True

    def __init__(self, name: Any, /, *, tags: dict[str, Any] | None = None, **attrs: Any) -> None:
        self.name = name
        self.kind = "flow"
        if attrs:
            self._attrs = attrs
        self._tags = tags
        self._init_tree()

    def _init_tree(self) -> None:
        self._flow = self
        self._depth = 0
        self._t1 = 0  # set when the flow ends; its steps wait for it in the pipeline
        self._outer: Timer | None = None
        self._failure: Any = None
        self._step_failed = False
        self.checkpoints: list[tuple[Any, int]] = []
        self.children: list[Timer] = []
        self.truncated = 0

    def fail(self, reason: Any = "failed") -> None:
        """Mark the flow failed without raising (a handled error); ``reason`` is its error type.

        Example::

            try:
                await db.save(result)
            except asyncpg.PostgresError as exc:
                botpulse.fail(type(exc).__name__)   # counted in errors, sampled as a failure
                await message.answer("Try again later")
        """
        self._failure = reason if reason is not None else "failed"

    def checkpoint(self, name: Any, **attrs: Any) -> None:
        """Mark a point in the flow (e.g. ``"guard_checks"``) at the current offset.

        Attributes are accepted for symmetry with ``measure`` and not stored.
        """
        try:
            if len(self.checkpoints) < MAX_CHECKPOINTS:
                self.checkpoints.append((name, _now()))
            else:
                self.truncated += 1
        except Exception as err:  # noqa: BLE001
            _hot_path_error(err)

    def _add_child(self, child: Timer) -> None:
        if len(self.children) < MAX_CHILDREN:
            self.children.append(child)
        else:
            self.truncated += 1

    def _live_enter(self) -> Any:
        # A flow opened inside another flow is a child of it and a trace of its own.
        self._outer = outer = _current_get()
        self._token = _current_set(self)
        self._t0 = _now()
        if outer is None and flow_opened is not None:
            flow_opened(self)
        return self

    def _live_exit(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        self._t1 = _now()
        record: Any = self
        if exc_type is not None:
            self._exc = exc_type
            record = (self, exc_type)
        elif self._failure is not None:
            self._exc = ("error", self._failure)
            record = (self, self._exc)
        try:
            token = self._token
        except AttributeError:  # entered before init(): nothing to record
            return
        try:
            _reset(token)
            if len(_events) < _capacity:
                _append(record)
            else:
                _overflow(record)
            outer = self._outer
            if outer is not None and outer._flow is not None:
                outer._flow._add_child(_FlowAsChild(self, outer._depth + 1))
        except Exception as err:  # noqa: BLE001
            _hot_path_error(err)

    def _noop_checkpoint(self, name: Any, **attrs: Any) -> None:
        return None

    __enter__ = Timer._noop_enter
    __exit__ = Timer._noop_exit

    def _fresh(self) -> Timer:
        # Attributes may change through current_flow().set(): copy them per call.
        flow: Flow = _new(Flow)
        flow.name = self.name
        flow.kind = "flow"
        attrs = getattr(self, "_attrs", None)
        if attrs:
            flow._attrs = dict(attrs)
        tags = self._tags
        flow._tags = dict(tags) if tags else None
        flow._init_tree()
        return flow


class _FlowAsChild(Timer):
    """How a nested flow appears among its outer flow's children (its own record is separate)."""

    __slots__ = ()

    def __init__(self, flow: Flow, depth: int) -> None:
        self.name = flow.name
        self.kind = "flow"
        attrs = getattr(flow, "_attrs", None)
        if attrs:
            self._attrs = attrs
        self._tags = None
        self._t0 = flow._t0
        self._t1 = flow._t1
        self._exc = getattr(flow, "_exc", None)
        self._flow = None
        self._depth = depth


def current_flow() -> Flow | None:
    """The flow the calling code runs in, or ``None`` outside any flow."""
    current = _current_get()
    return None if current is None else current._flow


def tag(**tags: Any) -> None:
    """Tag the current flow (e.g. ``botpulse.tag(cache="hit")``); does nothing outside a flow.

    Tags split the flow's rollups, so ``botpulse report --by cache`` shows percentiles
    per value. Use a few values per key (paths, outcomes), never ids.
    """
    current = _current_get()
    if current is not None and current._flow is not None:
        try:
            current._flow.tags.update(tags)
        except Exception as err:  # noqa: BLE001
            _hot_path_error(err)


def fail(reason: Any = "failed") -> None:
    """Mark the current flow failed without raising; does nothing outside a flow.

    For handlers that catch their own exceptions: the flow counts as an error, with
    ``reason`` (e.g. the exception's type name) as its error type.
    """
    current = _current_get()
    if current is not None and current._flow is not None:
        current._flow.fail(reason)


def checkpoint(name: Any, **attrs: Any) -> None:
    """Mark a checkpoint in the current flow; does nothing outside a flow.

    Handy inside a function decorated with ``@botpulse.flow(...)``, which has no ``f``.
    """
    current = _current_get()
    if current is not None and current._flow is not None:
        current._flow.checkpoint(name, **attrs)


#: Gauge values are stored in the duration columns multiplied by this, so a report's
#: ``*_ms`` figures of a gauge read as the value itself (``loop.lag_ms`` 2.5 → 2.5).
GAUGE_SCALE = 1_000_000


def now_ns() -> int:
    """The clock botpulse times with (monotonic ns; an injected clock in tests)."""
    return _now()


def record_operation(
    name: Any,
    kind: str,
    start_ns: int,
    end_ns: int,
    error: type[BaseException] | str | None = None,
    attrs: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
) -> None:
    """Record an operation that was timed elsewhere (a driver's hook, a framework callback).

    ``start_ns``/``end_ns`` come from :func:`now_ns`. ``error`` is the exception type
    (or its name) when it failed. The operation joins the current flow like ``measure``.
    For integrations; never raises.
    """
    if _capacity == 0:  # not initialised
        return
    try:
        timer: Timer = _new(Timer)
        timer.name = name
        timer.kind = kind
        if attrs:
            timer._attrs = attrs
        timer._tags = tags or None
        timer._t0 = start_ns
        timer._t1 = end_ns
        record: Any = timer
        if error is not None:
            exc: Any = error if isinstance(error, type) else ("error", str(error))
            timer._exc = exc
            record = (timer, exc)
        parent = _current_get()
        flow = None if parent is None else parent._flow
        timer._flow = flow
        if flow is not None and parent is not None:
            timer._depth = parent._depth + 1
            flow._add_child(timer)
            if error is not None:
                flow._step_failed = True
        if len(_events) < _capacity:
            _append(record)
        else:
            _overflow(record)
    except Exception as err:  # noqa: BLE001
        _hot_path_error(err)


def gauge(name: Any, value: float) -> None:
    """Record one sample of a gauge (RSS, loop lag, pool in use, ...), rolled up per minute.

    Never raises; non-finite or negative values are recorded as 0.
    """
    try:
        if _capacity == 0:
            return
        scaled = int(value * GAUGE_SCALE) if value == value and 0 < value < 1e12 else 0  # noqa: PLR0124
        timer: Timer = _new(Timer)
        timer.name = name
        timer.kind = "gauge"
        timer._tags = None
        timer._flow = None
        t0 = _now()
        timer._t0 = t0
        timer._t1 = t0 + scaled
        if len(_events) < _capacity:
            _append(timer)
        else:
            _overflow(timer)
    except Exception as err:  # noqa: BLE001
        _hot_path_error(err)


def _install(enter_exit: tuple[tuple[type[Timer], str, Callable[..., Any]], ...]) -> None:
    for cls, attr, method in enter_exit:
        setattr(cls, attr, method)


_LIVE = (
    (Timer, "__enter__", Timer._live_enter),
    (Timer, "__exit__", Timer._live_exit),
    (Flow, "__enter__", Flow._live_enter),
    (Flow, "__exit__", Flow._live_exit),
)
_NOOP = (
    (Timer, "__enter__", Timer._noop_enter),
    (Timer, "__exit__", Timer._noop_exit),
    (Flow, "__enter__", Timer._noop_enter),
    (Flow, "__exit__", Timer._noop_exit),
)


def activate(now: Callable[[], int], buffer: EventBuffer) -> None:
    """Make instrumentation live: read ``now`` for timestamps, append records to ``buffer``."""
    global _now, _events, _append, _capacity, _overflow
    _now = now
    _events, _append, _capacity, _overflow = buffer.hot_path()
    capacity = buffer.capacity

    def set_threshold(n: int) -> None:
        # The hot path compares with _capacity: the wake threshold while the pipeline
        # sleeps, the real capacity once it has been woken (until it drained), -1 while
        # it is idle (the next event wakes it; 0 means "not initialised").
        global _capacity
        if _events is buffer._events:  # still this buffer's hot path
            _capacity = -1 if n <= 0 else min(n, capacity)

    buffer.threshold_hook = set_threshold
    _install(_LIVE)


def deactivate() -> None:
    """Turn instrumentation back into cheap no-ops."""
    global _now, _events, _append, _capacity, _overflow
    _install(_NOOP)
    buffer_of = getattr(_overflow, "__self__", None)
    if buffer_of is not None:
        buffer_of.threshold_hook = None
    _events, _append, _capacity, _overflow = (), _discard, 0, _discard
    _now = time.perf_counter_ns
