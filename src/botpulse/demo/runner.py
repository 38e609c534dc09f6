"""``run_demo()``: record a simulated chat bot under load for a few seconds, then clean up.

The run: ``botpulse.init()`` on the given store, a seeded SQLite game database in a
temporary directory, ``users`` simulated users chatting with :class:`DemoBot` on one
asyncio loop until ``seconds`` after the call, then ``botpulse.shutdown()`` (which
flushes everything to the store) and removal of the database. Nothing is printed;
``on_progress`` gets the fraction done a few times a second and ``1.0`` at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import botpulse

from .bot import DemoBot
from .database import GameDatabase
from .users import make_users

__all__ = ["DemoSummary", "run_demo"]

SERVICE = "demo-bot"
FLUSH_INTERVAL_S = 0.5
PROGRESS_EVERY_S = 0.2
MAX_USERS = 1000


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What a demo run did; ``[started_at, finished_at]`` is the window to report on."""

    started_at: datetime  # aware, UTC
    finished_at: datetime
    commands: int  # commands handled, one flow each
    errors: int  # commands that failed (their flows have status "error")
    store: str


def run_demo(
    store: str,
    seconds: float = 20.0,
    *,
    users: int = 8,
    seed: int | None = None,
    on_progress: Callable[[float], None] | None = None,
    database_dir: str | Path | None = None,
) -> DemoSummary:
    """Run the demo bot for ``seconds`` (setup included), recording into ``store``.

    ``seed`` makes what the users send reproducible. ``on_progress(fraction)`` is
    called from the demo's event loop with increasing fractions, last with ``1.0``
    once everything is written. ``database_dir`` is where the temporary game
    database goes (default: the system's temporary directory). Must not be called
    from a running event loop. Raises ``ValueError`` for a bad ``seconds`` or
    ``users`` and :class:`botpulse.ConfigurationError` for a bad store URL.

    Example::

        summary = run_demo("sqlite:///botpulse.db", seconds=20, seed=1)
        print(summary.commands, "commands,", summary.errors, "failed")
    """
    number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    if not number or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"seconds={seconds!r} must be a number of seconds above 0")
    if isinstance(users, bool) or not isinstance(users, int) or not 1 <= users <= MAX_USERS:
        raise ValueError(f"users={users!r} must be an integer between 1 and {MAX_USERS}")
    started = time.monotonic()
    started_at = datetime.now(timezone.utc)
    botpulse.init(store=store, service=SERVICE, flush_interval=FLUSH_INTERVAL_S)
    botpulse.instrument()  # the query detectors: /stats is an N+1 for `botpulse audit`
    db: GameDatabase | None = None
    try:
        db = GameDatabase.create(database_dir)
        bot = DemoBot(db, random.Random(seed))
        asyncio.run(_simulate(bot, users, seed, started, seconds, on_progress))
    finally:
        botpulse.shutdown()  # the last flush still runs the detectors
        botpulse.uninstrument()
        if db is not None:
            db.close()
    finished_at = datetime.now(timezone.utc)
    if on_progress is not None:
        on_progress(1.0)
    return DemoSummary(started_at, finished_at, bot.handled, bot.failed, store)


async def _simulate(
    bot: DemoBot,
    users: int,
    seed: int | None,
    started: float,
    seconds: float,
    on_progress: Callable[[float], None] | None,
) -> None:
    """Let the users chat until the deadline while reporting progress."""
    deadline = started + seconds
    sessions: asyncio.Future[Any] = asyncio.gather(
        *(user.chat(bot, deadline) for user in make_users(users, seed))
    )
    ticker: asyncio.Future[Any] = asyncio.ensure_future(
        _report_progress(on_progress, started, seconds)
    )
    try:
        await asyncio.wait({sessions, ticker}, return_when=asyncio.FIRST_COMPLETED)
        if ticker.done():
            ticker.result()  # on_progress raised: stop the demo with its error
        await sessions
    finally:
        for task in (ticker, sessions):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(ticker, sessions, return_exceptions=True)


async def _report_progress(
    on_progress: Callable[[float], None] | None, started: float, seconds: float
) -> None:
    """Call ``on_progress`` every few tenths of a second until cancelled; never with 1.0."""
    if on_progress is None:
        return
    last = -1.0
    while True:
        fraction = min((time.monotonic() - started) / seconds, 0.99)
        if fraction > last:
            on_progress(fraction)
            last = fraction
        await asyncio.sleep(PROGRESS_EVERY_S)
