"""instrument_cache() and the limiters against the real libraries: exact counts."""

from __future__ import annotations

import asyncio
import functools

import cachetools
import pytest

import botpulse
from botpulse.runtime.caches import key_shape
from botpulse.store import MemoryStore

_ALL = (0, 2**40)


def _gauge_sum(store: MemoryStore, name: str) -> float:
    summary = store.summarize(0, 2**40, now=2**40)
    return (
        sum(
            r.sum_ns for (_s, n, k, _st), r in summary.rollups.items() if n == name and k == "gauge"
        )
        / 1e6
    )


def test_cachetools_scripted_pattern_gives_exact_counts(memory_store: MemoryStore) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    cache: cachetools.LRUCache[object, int] = cachetools.LRUCache(maxsize=100)
    monitor = botpulse.instrument_cache(cache, name="profiles")

    @cachetools.cached(cache)
    def profile(user_id: int) -> int:
        return user_id * 10

    for user in [1, 2, 1, 1, 3, 2, 4, 1]:  # misses: 1, 2, 3, 4; hits: 1, 1, 2, 1
        profile(user)
    assert cache.get("user:42:name") is None  # a miss
    assert "user:42:name" not in cache
    assert isinstance(cache, cachetools.LRUCache)
    assert (monitor.hits, monitor.misses, monitor.hit_ratio) == (4, 5, 4 / 9)
    botpulse.shutdown()
    assert _gauge_sum(memory_store, "cache.profiles.hits") == 4
    assert _gauge_sum(memory_store, "cache.profiles.misses") == 5
    shapes = dict(monitor.missed_shapes())
    assert shapes == {"(int)": 4, "user:{n}:{s}": 1}


def test_lru_cache_counts_come_from_cache_info(memory_store: MemoryStore) -> None:
    @functools.lru_cache(maxsize=8)
    def parse(text: str) -> int:
        return len(text)

    parse("warm")
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    monitor = botpulse.instrument_cache(parse, name="parse")
    for word in ["a", "b", "a", "warm", "a"]:
        parse(word)
    assert (monitor.hits, monitor.misses) == (3, 2)
    botpulse.shutdown()
    assert _gauge_sum(memory_store, "cache.parse.hits") == 3
    assert _gauge_sum(memory_store, "cache.parse.size") == 3


async def test_aiocache_and_cashews_lookups_are_counted_and_timed(
    memory_store: MemoryStore,
) -> None:
    from aiocache import SimpleMemoryCache
    from cashews import Cache

    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    aio = SimpleMemoryCache()
    aio_monitor = botpulse.instrument_cache(aio, name="aio")
    await aio.set("k1", "v")
    for key in ["k1", "k2", "k1"]:
        await aio.get(key)
    cashews = Cache()
    cashews.setup("mem://")
    cashews_monitor = botpulse.instrument_cache(cashews, name="cashews")
    await cashews.set("a", 1)
    async with botpulse.flow("lookup"):
        for key in ["a", "b", "c", "a"]:
            await cashews.get(key)
    assert (aio_monitor.hits, aio_monitor.misses) == (2, 1)
    assert (cashews_monitor.hits, cashews_monitor.misses) == (2, 2)
    botpulse.shutdown()
    summary = memory_store.summarize(0, 2**40, now=2**40)
    counts = {n: r.count for (_s, n, k, _st), r in summary.rollups.items() if k == "cache"}
    assert counts == {"cache.aio.get": 3, "cache.cashews.get": 4}


def test_hand_written_cache_two_call_api_and_low_hit_ratio_finding(
    memory_store: MemoryStore,
) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    images = botpulse.instrument_cache(name="images", min_lookups=10)
    for i in range(30):
        if i % 3 == 0:
            images.hit()
        else:
            images.miss(f"image:{i}:thumb")
    botpulse.shutdown()
    (finding,) = memory_store.read_findings(*_ALL, type="cache_low_hit_ratio")
    assert finding.subject == "images"
    assert (finding.details["hits"], finding.details["misses"]) == (10, 20)
    assert finding.details["most_missed_shapes"] == [{"shape": "image:{n}:{s}", "misses": 20}]


def test_key_shapes_never_keep_contents() -> None:
    assert key_shape("user:123456:alice") == "user:{n}:{s}"
    assert key_shape("alice") == "alice"  # a lone word is a namespace, kept
    assert key_shape("session/deadbeefcafe1234") == "session/{hex}"
    assert key_shape(("bob", 3)) == "(str, int)"
    assert "secret" not in key_shape("cache:secret-token")


async def test_concurrency_limiter_under_burst_rejects_exactly(memory_store: MemoryStore) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    limiter = botpulse.ConcurrencyLimiter(2, name="render", max_waiting=3)

    async def job() -> str:
        try:
            async with limiter:
                await asyncio.sleep(0.05)
                return "ok"
        except botpulse.LimitExceeded:
            return "rejected"

    results = await asyncio.gather(*(job() for _ in range(10)))
    assert results.count("ok") == 5
    assert results.count("rejected") == 5
    assert (limiter.rejected, limiter.in_use, limiter.waiting) == (5, 0, 0)
    botpulse.shutdown()
    summary = memory_store.summarize(0, 2**40, now=2**40)
    by_status = {
        st: r.count for (_s, n, _k, st), r in summary.rollups.items() if n == "limit.render.acquire"
    }
    assert by_status == {"ok": 5, "error": 5}


def test_rate_limiter_per_user_rejects_exactly(memory_store: MemoryStore) -> None:
    now = [0.0]
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    limiter = botpulse.RateLimiter(3, per=60, name="commands", clock=lambda: now[0])
    assert [limiter.allow("alice") for _ in range(10)].count(False) == 7
    assert [limiter.allow("bob") for _ in range(2)] == [True, True]
    now[0] = 20.0  # one token back for alice
    assert limiter.allow("alice")
    with pytest.raises(botpulse.LimitExceeded):
        limiter.check("alice")
    assert (limiter.allowed, limiter.rejected) == (6, 8)
    assert limiter.retry_after("alice") == pytest.approx(20.0)
    botpulse.shutdown()
    summary = memory_store.summarize(0, 2**40, now=2**40)
    (rejected,) = [
        r for (_s, n, _k, _st), r in summary.rollups.items() if n == "ratelimit.commands.rejected"
    ]
    assert rejected.count == 8


def test_limiters_validate_their_settings() -> None:
    with pytest.raises(botpulse.ConfigurationError, match="limit=0"):
        botpulse.ConcurrencyLimiter(0)
    with pytest.raises(botpulse.ConfigurationError, match="rate"):
        botpulse.RateLimiter(-1)


async def test_redis_client_used_as_a_cache(memory_store: MemoryStore) -> None:
    from tests.servers import server_url

    url = server_url("BOTPULSE_TEST_REDIS_URL", "Redis")
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    await client.delete("bp:img:1", "bp:img:2")
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    monitor = botpulse.instrument_cache(client, name="images")
    await client.set("bp:img:1", b"png")
    for key in ["bp:img:1", "bp:img:2", "bp:img:1"]:
        await client.get(key)
    await client.aclose()
    assert (monitor.hits, monitor.misses) == (2, 1)
    assert dict(monitor.missed_shapes()) == {"bp:{s}:{n}": 1}


def test_sync_redis_client_used_as_a_cache(memory_store: MemoryStore) -> None:
    from tests.servers import server_url

    url = server_url("BOTPULSE_TEST_REDIS_URL", "Redis")
    import redis

    client = redis.Redis.from_url(url)
    client.delete("bp:sync:1", "bp:sync:2")
    client.set("bp:sync:1", b"x")
    botpulse.init(store=memory_store, service="bot", instance="i", resources_interval=None)
    monitor = botpulse.instrument_cache(client, name="sync")
    with botpulse.flow("lookup"):
        assert [client.get(k) for k in ["bp:sync:1", "bp:sync:2"]] == [b"x", None]
    client.close()
    assert (monitor.hits, monitor.misses) == (1, 1)
    botpulse.shutdown()
    (trace,) = memory_store.read_traces(0, 2**40)
    assert [c.name for c in trace.children] == ["cache.sync.get", "cache.sync.get"]
