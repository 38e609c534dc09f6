"""The demo bot's other dependencies: an in-memory profile cache and a simulated weather API.

Both are timed the way a bot author would time them: the cache lookup as
``measure("cache.profile", kind="cache")`` by the bot, the API call as
``measure("http.weather", kind="http")`` here.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import botpulse

__all__ = ["TTLCache", "WeatherClient"]

V = TypeVar("V")


class TTLCache(Generic[V]):
    """A dictionary whose entries expire ``ttl`` seconds after they were stored.

    Example::

        cache: TTLCache[str] = TTLCache(ttl=30)
        cache.put(1, "alice")
        cache.get(1)  # "alice" for the next 30 seconds, then None
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[int, tuple[float, V]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: int) -> V | None:
        """The stored value, or ``None`` if there is none or it expired."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            self._entries.pop(key, None)
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def put(self, key: int, value: V) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        self._entries[key] = (self._clock() + self.ttl, value)


class WeatherClient:
    """A pretend HTTP weather API: log-normal latency, usually ~6 ms, sometimes 5x that.

    The latency is an ``asyncio.sleep`` (the network is not what the demo is about);
    it never fails, so ``/weather`` shows a latency tail without errors.
    """

    MEDIAN_S = 0.006
    SIGMA = 0.7
    CAP_S = 0.04

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def _latency(self) -> float:
        return min(self._rng.lognormvariate(math.log(self.MEDIAN_S), self.SIGMA), self.CAP_S)

    async def forecast(self, city: str) -> str:
        """Today's forecast for ``city``."""
        async with botpulse.measure("http.weather", kind="http", endpoint="/v1/forecast"):
            await asyncio.sleep(self._latency())
        outlook = ("sunny", "cloudy", "rain", "snow", "windy")[sum(city.encode()) % 5]
        return f"{city}: {outlook}"
