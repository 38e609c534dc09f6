"""The simulated bot's parts on their own: database, commands, cache, card, users."""

from __future__ import annotations

import random
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

import botpulse
from botpulse.demo.bot import DemoBot, Message, TradeRejected
from botpulse.demo.database import PLAYERS, SCORES, GameDatabase
from botpulse.demo.render import render_leaderboard_card
from botpulse.demo.services import TTLCache
from botpulse.demo.users import COMMAND_MIX, make_users
from botpulse.store import MemoryStore


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GameDatabase]:
    database = GameDatabase.create(tmp_path_factory.mktemp("game"))
    yield database
    database.close()


def _count(db: GameDatabase, sql: str) -> int:
    with sqlite3.connect(db.path) as conn:
        value: int = conn.execute(sql).fetchone()[0]
    return value


def test_the_database_is_seeded_with_real_rows(db: GameDatabase) -> None:
    assert _count(db, "SELECT COUNT(*) FROM players") == PLAYERS
    assert _count(db, "SELECT COUNT(*) FROM scores") == SCORES
    assert _count(db, "SELECT COUNT(DISTINCT player_id) FROM scores") > PLAYERS * 0.9


def test_close_removes_the_temporary_directory(tmp_path: Path) -> None:
    database = GameDatabase.create(tmp_path)
    assert database.path.is_file()
    assert database.directory.parent == tmp_path
    database.close()
    assert list(tmp_path.iterdir()) == []


async def test_leaderboards_are_sorted_and_all_time_beats_one_season(db: GameDatabase) -> None:
    season = await db.leaderboard_scores("season")
    all_time = await db.leaderboard_scores("all")
    assert len(season) == len(all_time) == 10
    assert [row[1] for row in season] == sorted((row[1] for row in season), reverse=True)
    assert all_time[0][1] >= season[0][1]
    assert all_time[0][2] > season[0][2]  # more games counted over all seasons


async def test_every_command_succeeds(db: GameDatabase) -> None:
    bot = DemoBot(db, random.Random(1))
    texts = [
        "/ping",
        "/profile",
        "/profile 12",
        "/leaderboard",
        "/leaderboard ranked",
        "/stats 9",
        "/trade 7 600",
        "/weather Oslo",
    ]
    results = [await bot.handle(Message(5, text)) for text in texts]
    assert results == [True] * len(texts)
    assert (bot.handled, bot.failed, bot.failures) == (len(texts), 0, {})


async def test_a_lowball_trade_is_rejected_and_not_written(db: GameDatabase) -> None:
    bot = DemoBot(db, random.Random(1))
    trades = _count(db, "SELECT COUNT(*) FROM trades")
    assert await bot.handle(Message(5, "/trade 3 2")) is False
    assert (bot.handled, bot.failed, bot.failures) == (1, 1, {"TradeRejected": 1})
    assert _count(db, "SELECT COUNT(*) FROM trades") == trades
    with pytest.raises(TradeRejected, match="below the floor price"):
        bot.check_offer(3, 2, 10)


async def test_a_failed_command_is_an_error_flow(db: GameDatabase) -> None:
    store = MemoryStore()
    botpulse.init(store=store, service="test", flush_interval=60)
    bot = DemoBot(db, random.Random(1))
    assert await bot.handle(Message(5, "/trade 3 2")) is False
    assert await bot.handle(Message(5, "/ping")) is True
    botpulse.shutdown()
    summary = store.summarize(0, 2**32)
    statuses = {(name, status): r.count for (_s, name, _k, status), r in summary.rollups.items()}
    assert statuses[("/trade", "error")] == 1
    assert statuses[("trade.check_offer", "error")] == 1
    assert statuses[("/ping", "ok")] == 1
    assert ("db.trade_write", "ok") not in statuses


async def test_unknown_commands_are_ignored_not_counted(db: GameDatabase) -> None:
    bot = DemoBot(db, random.Random(1))
    assert await bot.handle(Message(5, "/nope")) is False
    assert await bot.handle(Message(5, "")) is False
    assert (bot.handled, bot.failed, bot.ignored) == (0, 0, 2)


async def test_profiles_are_cached_after_the_first_load(db: GameDatabase) -> None:
    bot = DemoBot(db, random.Random(1))
    for _ in range(3):
        await bot.handle(Message(77, "/profile"))
    assert (bot.profiles.misses, bot.profiles.hits) == (1, 2)


def test_cache_entries_expire() -> None:
    now = [100.0]
    cache: TTLCache[str] = TTLCache(ttl=5, clock=lambda: now[0])
    cache.put(1, "alice")
    assert cache.get(1) == "alice"
    now[0] += 5
    assert cache.get(1) is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_leaderboard_card_is_a_png() -> None:
    png = render_leaderboard_card([("ana", 900, 12), ("bo", 450, 9)])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (640, 2 * 24 + 2 * 28)
    assert png.endswith(b"IEND\xaeB`\x82")


def test_the_same_seed_sends_the_same_messages() -> None:
    def messages(seed: int) -> list[Message]:
        return [user.next_message() for user in make_users(5, seed) for _ in range(40)]

    assert messages(42) == messages(42)
    assert messages(42) != messages(43)
    assert {m.text.split()[0] for m in messages(42)} == set(COMMAND_MIX)
    players = {m.player_id for m in messages(42)}
    assert len(players) == 5
