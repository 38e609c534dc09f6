"""Query instrumentation cost: each DB driver and HTTP client, bare vs instrumented.

Side by side in one run, interleaved (the order shuffled every round) so a busy
machine's noise falls on all contenders alike:

- **sqlite3** in memory, ``SELECT 1`` on a cursor: what the bot's thread pays per query
  (botpulse live on a large buffer, no pipeline thread, the buffer drained untimed
  after each sample, as ``hot_path`` does), and the **all-in** cost: the whole
  process's CPU per query with the real pipeline running (fingerprinting, aggregation,
  the query detectors), from ``init()`` to the end of ``shutdown()``.
- **PostgreSQL on loopback** (the test server, ``BOTPULSE_TEST_POSTGRES_URL``):
  ``SELECT 1`` with asyncpg, psycopg 3 and psycopg2, bare and instrumented: % wall
  time added per query on the bot's thread (no pipeline thread, as above), then the
  all-in process CPU and wall added with the real pipeline running.
- **HTTP on loopback** (an aiohttp server in the same process): a GET with aiohttp and
  with httpx (async), bare and instrumented: µs and % added per request.

Figures are medians over rounds of (instrumented − bare) per operation.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

import botpulse
from botpulse import _capture
from botpulse._buffer import EventBuffer
from botpulse.instrument import instrument, uninstrument

from ._common import Figure, Outcome, at_most

_US = 1000.0


# -- interleaving with wall and CPU per operation -----------------------------------


def _interleave(
    pairs: dict[str, tuple[Callable[[int], None], Callable[[int], None]]],
    n: int,
    rounds: int,
    between: Callable[[], None] | None = None,
) -> dict[str, dict[str, float]]:
    """For each name: median wall/CPU ns per op of bare and instrumented, and the deltas."""
    rng = random.Random(7)
    samples: dict[str, dict[str, list[float]]] = {
        name: {
            k: []
            for k in (
                "bare_wall",
                "bare_cpu",
                "bare_thread",
                "inst_wall",
                "inst_cpu",
                "inst_thread",
            )
        }
        for name in pairs
    }
    jobs = [(name, which) for name in pairs for which in ("bare", "inst")]
    for _ in range(rounds):
        rng.shuffle(jobs)
        for name, which in jobs:
            fn = pairs[name][0 if which == "bare" else 1]
            c0, w0, t0 = time.process_time_ns(), time.perf_counter_ns(), time.thread_time_ns()
            fn(n)
            thread = time.thread_time_ns() - t0
            wall, cpu = time.perf_counter_ns() - w0, time.process_time_ns() - c0
            samples[name][f"{which}_wall"].append(wall / n)
            samples[name][f"{which}_cpu"].append(cpu / n)
            samples[name][f"{which}_thread"].append(thread / n)
            if between is not None:
                between()
    out: dict[str, dict[str, float]] = {}
    for name, s in samples.items():
        med = {key: statistics.median(values) for key, values in s.items()}
        mins = {key: min(values) for key, values in s.items()}
        med["added_wall_ns"] = med["inst_wall"] - med["bare_wall"]
        med["added_cpu_ns"] = med["inst_cpu"] - med["bare_cpu"]
        med["added_wall_min_ns"] = mins["inst_wall"] - mins["bare_wall"]
        # What the bot's thread pays: its own CPU time added (scheduling noise of a
        # shared machine does not enter), relative to the fastest bare round trip.
        med["added_thread_ns"] = mins["inst_thread"] - mins["bare_thread"]
        med["bare_wall_min"] = mins["bare_wall"]
        med["added_pct"] = 100.0 * med["added_thread_ns"] / mins["bare_wall"]
        out[name] = med
    return out


def _thread_and_all_in(
    pairs: dict[str, tuple[Callable[[int], None], Callable[[int], None]]], n: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Twice: the bot's thread alone (live on a big buffer drained between samples, no
    pipeline thread), then all-in with the real pipeline (process CPU, its wall too)."""
    buffer = EventBuffer(50_000_000)
    _capture.activate(time.perf_counter_ns, buffer)
    try:
        thread = _interleave(pairs, n, rounds, between=buffer.drain)
    finally:
        _capture.deactivate()
        buffer.drain()
    botpulse.init(store="memory://", service="bench")
    try:
        all_in = _interleave(pairs, n, max(2, rounds // 2))
    finally:
        botpulse.shutdown()
    for name, r in thread.items():
        r["all_in_added_cpu_ns"] = all_in[name]["added_cpu_ns"]
        r["all_in_added_wall_ns"] = all_in[name]["added_wall_ns"]
        r["all_in_added_pct"] = all_in[name]["added_pct"]
    return thread


# -- sqlite3 -------------------------------------------------------------------------


def _sqlite_thread(quick: bool) -> dict[str, float]:
    """ns the bot's thread pays per instrumented sqlite3 query (no pipeline thread)."""
    from botpulse.instrument import sqlite3 as timed

    bare = sqlite3.connect(":memory:")
    instrument("sqlite3")
    inst = sqlite3.connect(":memory:")
    assert isinstance(inst, timed.TimedConnection)
    bare_cur, inst_cur = bare.cursor(), inst.cursor()
    buffer = EventBuffer(50_000_000)

    def run_bare(n: int) -> None:
        execute = bare_cur.execute
        for _ in range(n):
            execute("SELECT 1")

    def run_inst(n: int) -> None:
        execute = inst_cur.execute
        for _ in range(n):
            execute("SELECT 1")

    _capture.activate(time.perf_counter_ns, buffer)
    try:
        result = _interleave(
            {"sqlite3": (run_bare, run_inst)},
            n=2_000 if quick else 20_000,
            rounds=10 if quick else 60,
            between=buffer.drain,
        )["sqlite3"]
        assert len(buffer.drain()) == 0
    finally:
        _capture.deactivate()
        uninstrument()
        bare.close()
        inst.close()
    return result


def _sqlite_all_in(quick: bool) -> dict[str, float]:
    """Whole-process CPU per query, pipeline included, minus the bare driver's."""
    n = 20_000 if quick else 200_000

    def queries(conn: sqlite3.Connection) -> float:
        cur = conn.cursor()
        execute = cur.execute
        c0 = time.process_time_ns()
        for i in range(n):
            execute("SELECT ?", (i,))
        return time.process_time_ns() - c0

    best: dict[str, float] | None = None
    for _ in range(1 if quick else 3):
        bare = sqlite3.connect(":memory:")
        bare_cpu = queries(bare)
        bare.close()
        instrument("sqlite3")
        botpulse.init(store="memory://", service="bench", buffer_size=n + 1)
        c0 = time.process_time_ns()
        conn = sqlite3.connect(":memory:")
        with botpulse.flow("bench"):  # the detectors see one flow (children are capped)
            conn.execute("SELECT 1")
        thread_cpu = queries(conn)
        stats = botpulse.shutdown(timeout=120)
        total = time.process_time_ns() - c0
        uninstrument()
        conn.close()
        assert stats is not None
        result = {
            "queries": n,
            "written": stats.written,
            "bare_cpu_ns": bare_cpu / n,
            "bot_thread_added_ns": (thread_cpu - bare_cpu) / n,
            "all_in_added_ns": (total - bare_cpu) / n,
        }
        if best is None or result["all_in_added_ns"] < best["all_in_added_ns"]:
            best = result
    assert best is not None
    return best


# -- PostgreSQL ----------------------------------------------------------------------


def _postgres(quick: bool, url: str) -> dict[str, dict[str, float]]:
    import asyncpg
    import psycopg
    import psycopg2

    n = 100 if quick else 1_000
    rounds = 6 if quick else 40
    loop = asyncio.new_event_loop()
    bare_psy = psycopg.connect(url, autocommit=True)
    bare_psy2 = psycopg2.connect(url)
    bare_psy2.autocommit = True
    bare_apg = loop.run_until_complete(asyncpg.connect(url))
    instrument("psycopg", "psycopg2")
    inst_psy = psycopg.connect(url, autocommit=True)
    inst_psy2 = psycopg2.connect(url)
    inst_psy2.autocommit = True
    inst_apg = loop.run_until_complete(asyncpg.connect(url))

    def psy(conn: Any) -> Callable[[int], None]:
        cur = conn.cursor()

        def run(k: int) -> None:
            for _ in range(k):
                cur.execute("SELECT 1")
                cur.fetchone()

        return run

    async def apg_loop(conn: Any, k: int) -> None:
        for _ in range(k):
            await conn.fetchval("SELECT 1")

    from botpulse.instrument import asyncpg as apg_module

    def apg_bare(k: int) -> None:
        apg_module.uninstall()
        loop.run_until_complete(apg_loop(bare_apg, k))

    def apg_inst(k: int) -> None:
        apg_module.install()
        try:
            loop.run_until_complete(apg_loop(inst_apg, k))
        finally:
            apg_module.uninstall()

    try:
        return _thread_and_all_in(
            {
                "asyncpg": (apg_bare, apg_inst),
                "psycopg": (psy(bare_psy), psy(inst_psy)),
                "psycopg2": (psy(bare_psy2), psy(inst_psy2)),
            },
            n=n,
            rounds=rounds,
        )
    finally:
        uninstrument()
        for conn in (bare_psy, inst_psy, bare_psy2, inst_psy2):
            conn.close()
        loop.run_until_complete(bare_apg.close())
        loop.run_until_complete(inst_apg.close())
        loop.close()


# -- HTTP ----------------------------------------------------------------------------


def _http(quick: bool) -> dict[str, dict[str, float]]:
    import aiohttp
    import httpx
    from aiohttp import web

    n = 50 if quick else 500
    rounds = 6 if quick else 30
    loop = asyncio.new_event_loop()

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/users/{id}", hello)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/users/42"

    async def make() -> tuple[Any, Any]:
        return aiohttp.ClientSession(), httpx.AsyncClient()

    bare_aio, bare_httpx = loop.run_until_complete(make())
    instrument("aiohttp", "httpx")
    inst_aio, inst_httpx = loop.run_until_complete(make())
    from botpulse.instrument import httpx as httpx_module

    async def aio_loop(session: Any, k: int) -> None:
        for _ in range(k):
            async with session.get(url) as response:
                await response.read()

    async def httpx_loop(client: Any, k: int) -> None:
        for _ in range(k):
            await client.get(url)

    def httpx_bare(k: int) -> None:
        httpx_module.uninstall()
        loop.run_until_complete(httpx_loop(bare_httpx, k))

    def httpx_inst(k: int) -> None:
        httpx_module.install()
        try:
            loop.run_until_complete(httpx_loop(inst_httpx, k))
        finally:
            httpx_module.uninstall()

    try:
        return _thread_and_all_in(
            {
                "aiohttp": (
                    lambda k: loop.run_until_complete(aio_loop(bare_aio, k)),
                    lambda k: loop.run_until_complete(aio_loop(inst_aio, k)),
                ),
                "httpx": (httpx_bare, httpx_inst),
            },
            n=n,
            rounds=rounds,
        )
    finally:
        uninstrument()

        async def close() -> None:
            for session in (bare_aio, inst_aio):
                await session.close()
            for client in (bare_httpx, inst_httpx):
                await client.aclose()
            await runner.cleanup()

        loop.run_until_complete(close())
        loop.close()


# -- figures -------------------------------------------------------------------------


def run(quick: bool) -> Outcome:
    details: dict[str, Any] = {}
    figures: list[Figure] = []
    thread = _sqlite_thread(quick)
    details["sqlite3_thread"] = thread
    added = max(thread["added_wall_min_ns"], 0.0)
    figures.append(
        Figure(
            "queries.sqlite3_thread_ns",
            "sqlite3 SELECT 1 in memory: added on the bot's thread (min over rounds)",
            added,
            "ns",
            "<= 1500 ns",
            at_most(added, 1500),
            note=f"bare {thread['bare_wall']:.0f} ns/query; median added "
            f"{thread['added_wall_ns']:.0f} ns",
        )
    )
    all_in = _sqlite_all_in(quick)
    details["sqlite3_all_in"] = all_in
    figures.append(
        Figure(
            "queries.sqlite3_all_in_ns",
            "sqlite3 SELECT ?: all-in process CPU added per query (pipeline included)",
            all_in["all_in_added_ns"],
            "ns",
            "<= 5000 ns",
            at_most(all_in["all_in_added_ns"], 5000),
            note=f"{all_in['bot_thread_added_ns']:.0f} ns of it while the queries ran",
        )
    )
    url = os.environ.get("BOTPULSE_TEST_POSTGRES_URL", "").strip()
    if url:
        pg = _postgres(quick, url)
        details["postgres"] = pg
        for driver in ("asyncpg", "psycopg", "psycopg2"):
            r = pg[driver]
            figures.append(
                Figure(
                    f"queries.{driver}_pct",
                    f"{driver} SELECT 1 on loopback PostgreSQL: bot's wall time added",
                    r["added_pct"],
                    "%",
                    "<= 3%",
                    at_most(r["added_pct"], 3.0),
                    note=f"bare {r['bare_wall_min'] / _US:.0f} µs, thread CPU "
                    f"+{r['added_thread_ns'] / _US:.1f} µs; "
                    f"all-in +{r['all_in_added_cpu_ns'] / _US:.1f} µs CPU, "
                    f"{r['all_in_added_pct']:+.1f}% wall",
                )
            )
    else:
        details["postgres"] = "BOTPULSE_TEST_POSTGRES_URL unset (scripts/services/postgres.sh)"
        for driver in ("asyncpg", "psycopg", "psycopg2"):
            figures.append(
                Figure(
                    f"queries.{driver}_pct",
                    f"{driver} SELECT 1 on loopback PostgreSQL: bot's wall time added",
                    None,
                    "%",
                    "<= 3%",
                    None,
                    note="PostgreSQL not running",
                )
            )
    web = _http(quick)
    details["http"] = web
    for client in ("aiohttp", "httpx"):
        r = web[client]
        figures.append(
            Figure(
                f"queries.{client}_us",
                f"{client} GET on loopback: bot's thread CPU added per request",
                r["added_thread_ns"] / _US,
                "µs",
                note=f"{r['added_pct']:.1f}% of {r['bare_wall_min'] / _US:.0f} µs; "
                f"all-in +{r['all_in_added_cpu_ns'] / _US:.1f} µs CPU",
            )
        )
    return Outcome(figures, details)
