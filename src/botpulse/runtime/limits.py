"""Concurrency and per-user rate limits whose queueing and refusals show up in reports.

:class:`ConcurrencyLimiter` is an asyncio semaphore (``async with limiter:``) that
records how long callers waited (operations ``limit.<name>.acquire``), how many wait
and run (gauges ``limit.<name>.waiting`` / ``.in_use`` / ``.size``), and refusals when
the queue is full or a wait times out (the acquire operation fails with
``LimitExceeded``). :class:`RateLimiter` is a per-key token bucket (a user, a chat)
whose refusals are operations ``ratelimit.<name>.rejected``; keys live only in
memory, bounded by ``max_keys``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from .. import _capture
from ..errors import ConfigurationError, LimitExceeded
from .pools import PoolMonitor, register

__all__ = ["ConcurrencyLimiter", "RateLimiter"]


def _positive(name: str, value: object, *, integer: bool = False, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not 0 < value < 1e12:
        what = "a positive integer" if integer else "a positive number"
        raise ConfigurationError(f"{name}={value!r} must be {what}")
    return value


class ConcurrencyLimiter:
    """At most ``limit`` callers inside at once; the rest queue (and are measured doing so).

    ``max_waiting`` refuses callers when that many already wait (default: no bound);
    ``timeout`` refuses a caller that waited that many seconds (default: wait forever).
    A refusal raises :class:`~botpulse.errors.LimitExceeded` and is recorded.

    Example::

        renders = botpulse.ConcurrencyLimiter(4, name="render", max_waiting=50)

        async def on_photo(message):
            async with renders:
                await render(message)
    """

    def __init__(
        self,
        limit: int,
        *,
        name: str = "limiter",
        max_waiting: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self.limit = _positive("limit", limit, integer=True)
        self.max_waiting = _positive("max_waiting", max_waiting, integer=True, allow_none=True)
        self.timeout = _positive("timeout", timeout, allow_none=True)
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ConfigurationError(
                f"name={name!r} must be a non-empty string of at most 100 chars"
            )
        self.name = name.strip()
        self.in_use = 0
        self.waiting = 0
        self.rejected = 0
        self._semaphore: asyncio.Semaphore | None = None
        self._held: list[int] = []
        self.monitor = register(self._monitor(self.name))

    def _monitor(self, name: str, **options: Any) -> PoolMonitor:
        return PoolMonitor(
            name,
            "limiter",
            size=lambda: self.limit,
            in_use=lambda: self.in_use,
            waiting=lambda: self.waiting,
            prefix="limit",
            **options,
        )

    def _refuse(self, started: int, why: str) -> LimitExceeded:
        self.rejected += 1
        error = LimitExceeded(f"{self.name}: {why}")
        self.monitor.end_acquire(started, error)
        return error

    async def acquire(self) -> None:
        """Wait for a slot (or raise :class:`~botpulse.errors.LimitExceeded`)."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        started = self.monitor.start_acquire()
        semaphore = self._semaphore
        if semaphore.locked() and self.max_waiting is not None and self.waiting >= self.max_waiting:
            raise self._refuse(started, f"{self.waiting} callers already waiting")
        self.waiting += 1
        try:
            if self.timeout is None:
                await semaphore.acquire()
            else:
                await asyncio.wait_for(semaphore.acquire(), self.timeout)
        except asyncio.TimeoutError:
            raise self._refuse(started, f"no slot within {self.timeout} s") from None
        except BaseException as exc:
            self.monitor.end_acquire(started, exc)
            raise
        finally:
            self.waiting -= 1
        self.in_use += 1
        self._held.append(self.monitor.end_acquire(started))

    def release(self) -> None:
        """Give the slot back."""
        if self._semaphore is None or not self._held:
            raise RuntimeError(f"ConcurrencyLimiter {self.name!r} released more than acquired")
        self.in_use -= 1
        self.monitor.release(self._held.pop())
        self._semaphore.release()

    async def __aenter__(self) -> ConcurrencyLimiter:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"<botpulse.ConcurrencyLimiter {self.name!r} limit={self.limit} "
            f"in_use={self.in_use} waiting={self.waiting} rejected={self.rejected}>"
        )


class RateLimiter:
    """Per-key token buckets: each key (a user, a chat) may make ``rate`` calls per ``per`` seconds.

    ``burst`` is the bucket size (default ``rate``). :meth:`allow` answers and records
    a refusal; :meth:`check` raises :class:`~botpulse.errors.LimitExceeded` instead.
    At most ``max_keys`` keys are remembered (least recently seen forgotten first).
    Thread-safe.

    Example::

        per_user = botpulse.RateLimiter(5, per=10.0, name="commands")

        async def on_command(message):
            if not per_user.allow(message.from_user.id):
                return await message.answer("Slow down a little")
            ...
    """

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        *,
        burst: float | None = None,
        name: str = "ratelimit",
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = float(_positive("rate", rate))
        self.per = float(_positive("per", per))
        self.burst = float(_positive("burst", burst, allow_none=True) or self.rate)
        self.max_keys = _positive("max_keys", max_keys, integer=True)
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ConfigurationError(
                f"name={name!r} must be a non-empty string of at most 100 chars"
            )
        self.name = name.strip()
        self.operation = f"ratelimit.{self.name}.rejected"
        self._clock = clock
        self._refill = self.rate / self.per
        self._buckets: dict[Hashable, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self.allowed = 0
        self.rejected = 0

    def allow(self, key: Hashable, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens from ``key``'s bucket; ``False`` (recorded) if it has too few."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self._refill)
            ok = tokens >= cost
            if ok:
                tokens -= cost
                self.allowed += 1
            else:
                self.rejected += 1
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_keys:
                del self._buckets[next(iter(self._buckets))]
        if not ok:
            at = _capture.now_ns()
            _capture.record_operation(self.operation, "limit", at, at, "rejected")
        return ok

    def check(self, key: Hashable, cost: float = 1.0) -> None:
        """Like :meth:`allow`, but raise :class:`~botpulse.errors.LimitExceeded` when refused."""
        if not self.allow(key, cost):
            raise LimitExceeded(f"{self.name}: rate limit of {self.rate:g} per {self.per:g} s")

    def retry_after(self, key: Hashable, cost: float = 1.0) -> float:
        """Seconds until ``key`` could spend ``cost`` tokens (0 if it can now)."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self._refill)
        return max(cost - tokens, 0.0) / self._refill

    def __len__(self) -> int:
        return len(self._buckets)

    def __repr__(self) -> str:
        return (
            f"<botpulse.RateLimiter {self.name!r} {self.rate:g}/{self.per:g}s "
            f"allowed={self.allowed} rejected={self.rejected}>"
        )
