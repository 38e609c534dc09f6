"""``instrument_cache()``: hits, misses, hit ratio, size and latency of the caches a bot uses.

botpulse ships no cache of its own; it observes ``cachetools`` caches,
``functools.lru_cache`` functions, ``aiocache`` and ``cashews`` caches and Redis clients
used as a cache (a ``GET`` that returns ``None`` is a miss), and gives hand-written
caches a two-call API::

    images = botpulse.instrument_cache(name="images")   # no cache object: report by hand
    data = await redis.get(key)
    if data is None:
        images.miss(key)
        data = await render(...)
    else:
        images.hit()

Every few seconds the runtime thread records per cache the gauges
``cache.<name>.hits`` and ``cache.<name>.misses`` (lookups since the last sample, so
their sums over any window give the hit ratio) and ``cache.<name>.size``. Lookups of
remote caches (aiocache, cashews, Redis) are also operations ``cache.<name>.get``
(kind ``cache``) in the flow that made them. Missed keys are counted by *shape*
(``user:{n}:{s}``, ``(int, str)``), never by content; a cache whose hit ratio over a
minute is below ``low_hit_ratio`` (with at least ``min_lookups`` lookups) gets a
``cache_low_hit_ratio`` finding naming its most-missed shapes.
"""

from __future__ import annotations

import inspect
import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from .. import _capture, _findings
from .._buffer import counter_value
from .._diagnostics import internal_error
from ..errors import ConfigurationError

__all__ = ["CacheMonitor", "caches", "emit_caches", "instrument_cache", "key_shape"]

_MAX_SHAPES = 50
_TOKEN = re.compile(r"[^:/|.,;=\- _#@]+|[:/|.,;=\- _#@]")
_NAMESPACE = re.compile(r"[A-Za-z_]{1,32}")
_HEX = re.compile(r"[0-9a-fA-F]{8,}")
_now = time.perf_counter_ns


def key_shape(key: Any) -> str:
    """The shape of a cache key with its contents removed: ``"user:42:name"`` → ``"user:{n}:{s}"``.

    Only a leading namespace word survives; numbers become ``{n}``, long hex ids
    ``{hex}``, anything else ``{s}``. Tuples (memoised function arguments) become
    their element types.
    """
    if isinstance(key, (str, bytes)):
        text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        out: list[str] = []
        for index, token in enumerate(_TOKEN.findall(text[:200])):
            if (len(token) == 1 and not token.isalnum()) or (
                index == 0 and _NAMESPACE.fullmatch(token)
            ):
                out.append(token)
            elif token.isdigit():
                out.append("{n}")
            elif _HEX.fullmatch(token):
                out.append("{hex}")
            else:
                out.append("{s}")
        return "".join(out)[:120] or "{empty}"
    if isinstance(key, tuple):
        return "(" + ", ".join(type(item).__name__ for item in key[:8]) + ")"
    return type(key).__name__


class CacheMonitor:
    """Hit and miss counts of one cache; also the two-call API (:meth:`hit`, :meth:`miss`).

    Example::

        images = botpulse.instrument_cache(name="images")
        images.hit()
        images.miss("image:42")    # only the key's shape is kept
    """

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        size: Callable[[], int] | None = None,
        totals: Callable[[], tuple[int, int]] | None = None,
        low_hit_ratio: float = 0.5,
        min_lookups: int = 100,
        window: float = 60.0,
    ) -> None:
        self.name = name
        self.kind = kind
        self.operation = f"cache.{name}.get"
        self._size = size
        self._totals = totals
        self.low_hit_ratio = low_hit_ratio
        self.min_lookups = min_lookups
        self.window = window
        self._hits: itertools.count[int] = itertools.count()
        self._misses: itertools.count[int] = itertools.count()
        self._shapes: Counter[str] = Counter()
        self._shapes_lock = threading.Lock()
        self._emitted = (0, 0)
        self._window_start = time.monotonic()
        self._window_counts = (0, 0)

    @property
    def hits(self) -> int:
        """Hits since instrumentation."""
        return self._totals()[0] if self._totals is not None else counter_value(self._hits)

    @property
    def misses(self) -> int:
        """Misses since instrumentation."""
        return self._totals()[1] if self._totals is not None else counter_value(self._misses)

    @property
    def hit_ratio(self) -> float | None:
        """Hits / lookups since instrumentation (``None`` before the first lookup)."""
        hits, misses = self.hits, self.misses
        return hits / (hits + misses) if hits + misses else None

    def hit(self, key: Any = None, *, latency_ns: int | None = None) -> None:
        """Count a hit (``key`` is accepted for symmetry and ignored)."""
        next(self._hits)
        if latency_ns is not None:
            ended = _now()
            _capture.record_operation(self.operation, "cache", ended - latency_ns, ended)

    def miss(self, key: Any = None, *, latency_ns: int | None = None) -> None:
        """Count a miss; ``key``'s shape (never its content) is counted among the most missed."""
        next(self._misses)
        if key is not None:
            try:
                shape = key_shape(key)
                with self._shapes_lock:
                    if shape in self._shapes or len(self._shapes) < _MAX_SHAPES:
                        self._shapes[shape] += 1
                    else:
                        self._shapes["(other)"] += 1
            except Exception as exc:  # noqa: BLE001
                internal_error("runtime.cache.shape", exc)
        if latency_ns is not None:
            ended = _now()
            _capture.record_operation(
                self.operation, "cache", ended - latency_ns, ended, attrs={"miss": True}
            )

    def missed_shapes(self, top: int = 5) -> list[tuple[str, int]]:
        """The most-missed key shapes and their miss counts."""
        with self._shapes_lock:
            return self._shapes.most_common(top)

    def size(self) -> int | None:
        """Entries in the cache now, when the library tells."""
        return None if self._size is None else int(self._size())

    def emit(self, now: float, *, final: bool = False) -> None:
        """Record the gauges for lookups since the last call (runtime thread)."""
        hits, misses = self.hits, self.misses
        last_hits, last_misses = self._emitted
        self._emitted = (hits, misses)
        prefix = f"cache.{self.name}."
        _capture.gauge(prefix + "hits", max(hits - last_hits, 0))
        _capture.gauge(prefix + "misses", max(misses - last_misses, 0))
        size = self.size()
        if size is not None:
            _capture.gauge(prefix + "size", size)
        if final or now - self._window_start >= self.window:
            self._check_ratio(hits, misses)
            self._window_start = now

    def _check_ratio(self, hits: int, misses: int) -> None:
        start_hits, start_misses = self._window_counts
        self._window_counts = (hits, misses)
        window_hits, window_misses = hits - start_hits, misses - start_misses
        lookups = window_hits + window_misses
        if lookups < self.min_lookups or lookups <= 0:
            return
        ratio = window_hits / lookups
        if ratio >= self.low_hit_ratio:
            return
        shapes = self.missed_shapes()
        _findings.report_finding(
            "cache_low_hit_ratio",
            self.name,
            count=window_misses,
            at_ns=time.time_ns(),
            source=self.kind,
            details={
                "cache": self.name,
                "kind": self.kind,
                "hits": window_hits,
                "misses": window_misses,
                "hit_ratio": round(ratio, 4),
                "threshold": self.low_hit_ratio,
                "size": self.size(),
                "most_missed_shapes": [{"shape": s, "misses": n} for s, n in shapes],
            },
        )


_registry: dict[str, CacheMonitor] = {}
_registry_lock = threading.Lock()


def caches() -> list[CacheMonitor]:
    """The instrumented caches."""
    return list(_registry.values())


def emit_caches(now: float, *, final: bool = False) -> None:
    """Record every cache's gauges (runtime thread)."""
    for monitor in caches():
        try:
            monitor.emit(now, final=final)
        except Exception as exc:  # noqa: BLE001
            internal_error("runtime.caches", exc)


# -- adapters ------------------------------------------------------------------------

_swapped_classes: dict[type[Any], type[Any]] = {}


def _cachetools(cache: Any, monitor: CacheMonitor) -> None:
    base = type(cache)
    cls = _swapped_classes.get(base)
    if cls is None:

        def __getitem__(self: Any, key: Any) -> Any:  # noqa: N807
            try:
                value = base.__getitem__(self, key)
            except KeyError:
                self._botpulse_cache.miss(key)
                raise
            self._botpulse_cache.hit()
            return value

        def get(self: Any, key: Any, default: Any = None) -> Any:
            try:
                value = base.__getitem__(self, key)
            except KeyError:
                self._botpulse_cache.miss(key)
                return default
            self._botpulse_cache.hit()
            return value

        cls = type(base.__name__, (base,), {"__getitem__": __getitem__, "get": get})
        cls.__module__ = base.__module__
        cls.__qualname__ = base.__qualname__
        _swapped_classes[base] = cls
    cache._botpulse_cache = monitor
    cache.__class__ = cls


class _AiocachePlugin:
    """An aiocache plugin counting ``get`` hits (a value) and misses (``None``)."""

    def __init__(self, monitor: CacheMonitor) -> None:
        self.monitor = monitor

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("pre_", "post_")):
            return _noop_hook
        raise AttributeError(name)

    async def post_get(
        self, client: Any, key: Any, took: float = 0, ret: Any = None, **kw: Any
    ) -> None:
        latency = int(took * 1e9)
        if ret is None:
            self.monitor.miss(key, latency_ns=latency)
        else:
            self.monitor.hit(latency_ns=latency)


async def _noop_hook(*args: Any, **kwargs: Any) -> None:
    return None


def _cashews_middleware(monitor: CacheMonitor) -> Callable[..., Any]:
    from cashews.commands import Command

    async def middleware(call: Any, cmd: Any, backend: Any, *args: Any, **kwargs: Any) -> Any:
        if cmd != Command.GET:
            return await call(*args, **kwargs)
        started = _now()
        value = await call(*args, **kwargs)
        latency = _now() - started
        if value is kwargs.get("default"):
            monitor.miss(kwargs.get("key", args[0] if args else None), latency_ns=latency)
        else:
            monitor.hit(latency_ns=latency)
        return value

    return middleware


def _redis(client: Any, monitor: CacheMonitor) -> None:
    original = client.get

    def count(name: Any, value: Any, started: int) -> Any:
        latency = _now() - started
        if value is None:
            monitor.miss(name, latency_ns=latency)
        else:
            monitor.hit(latency_ns=latency)
        return value

    async def finish(name: Any, pending: Any, started: int) -> Any:
        return count(name, await pending, started)

    def get(name: Any, *args: Any, **kwargs: Any) -> Any:
        # redis.asyncio's get() is a plain function returning an awaitable.
        started = _now()
        value = original(name, *args, **kwargs)
        if inspect.isawaitable(value):
            return finish(name, value, started)
        return count(name, value, started)

    client.get = get


def instrument_cache(
    cache: Any = None,
    name: str | None = None,
    *,
    low_hit_ratio: float = 0.5,
    min_lookups: int = 100,
) -> CacheMonitor:
    """Count hits and misses of ``cache`` (or, with no cache, give a hand-written one the API).

    ``cache`` is a ``cachetools`` cache, a ``functools.lru_cache``-decorated function,
    an ``aiocache`` cache, a ``cashews`` ``Cache``, a ``redis`` / ``redis.asyncio``
    client used as a cache, or ``None`` (then call ``.hit()`` / ``.miss(key)`` on the
    returned :class:`CacheMonitor`). ``name`` labels its gauges (``cache.<name>.hits``).

    Example::

        profiles = cachetools.TTLCache(maxsize=10_000, ttl=300)
        botpulse.instrument_cache(profiles, name="profiles")

        @functools.lru_cache(maxsize=1024)
        def parse(text): ...
        botpulse.instrument_cache(parse, name="parse")
    """
    label = name if name is not None else getattr(cache, "__name__", type(cache).__name__)
    if not isinstance(label, str) or not label.strip() or len(label) > 100:
        raise ConfigurationError(f"name={name!r} must be a non-empty string of at most 100 chars")
    if (
        isinstance(low_hit_ratio, bool)
        or not isinstance(low_hit_ratio, (int, float))
        or not (0 <= low_hit_ratio <= 1)
    ):
        raise ConfigurationError(f"low_hit_ratio={low_hit_ratio!r} must be between 0 and 1")
    if isinstance(min_lookups, bool) or not isinstance(min_lookups, int) or min_lookups < 1:
        raise ConfigurationError(f"min_lookups={min_lookups!r} must be a positive integer")
    label = label.strip()
    options: dict[str, Any] = {"low_hit_ratio": float(low_hit_ratio), "min_lookups": min_lookups}
    module = type(cache).__module__
    if cache is None:
        monitor = CacheMonitor(label, "manual", **options)
    elif (
        callable(getattr(cache, "cache_info", None))
        and callable(getattr(cache, "cache_clear", None))
        and not module.startswith("cachetools")
    ):
        info = cache.cache_info
        start = info()

        monitor = CacheMonitor(
            label,
            "lru_cache",
            size=lambda: info().currsize,
            totals=lambda: (info().hits - start.hits, info().misses - start.misses),
            **options,
        )
    elif module.startswith("cachetools") and hasattr(cache, "maxsize"):
        monitor = CacheMonitor(label, "cachetools", size=lambda: len(cache), **options)
        _cachetools(cache, monitor)
    elif module.startswith("aiocache") and hasattr(cache, "plugins"):
        monitor = CacheMonitor(label, "aiocache", **options)
        cache.plugins = [*cache.plugins, _AiocachePlugin(monitor)]
    elif module.startswith("cashews") and hasattr(cache, "add_middleware"):
        monitor = CacheMonitor(label, "cashews", **options)
        cache.add_middleware(_cashews_middleware(monitor))
    elif module.startswith("redis") and callable(getattr(cache, "get", None)):
        monitor = CacheMonitor(label, "redis", **options)
        _redis(cache, monitor)
    else:
        raise ConfigurationError(
            f"instrument_cache() does not know {module}.{type(cache).__name__}; supported: "
            "cachetools caches, functools.lru_cache functions, aiocache, cashews, redis "
            "clients, or no cache (call .hit()/.miss() yourself)"
        )
    with _registry_lock:
        _registry[label] = monitor
    return monitor
