"""The simulated chat bot: commands with different latency shapes, run as botpulse flows.

:meth:`DemoBot.handle` is the bot framework's part: it parses a message, opens
``botpulse.flow(command)`` around the handler (what a framework middleware does)
and, like a framework's error handler, catches whatever the handler raised, so one
failed command never stops the bot. The flow sees the exception first and is
recorded as ``error``.

The commands, and the shape each one shows in ``botpulse report``:

- ``/ping``: about a millisecond, nothing inside.
- ``/profile [player]``: bimodal; a cache hit answers in microseconds, a miss runs
  ``db.profile_load``, which scans the unindexed ``scores`` table (~10 ms).
- ``/leaderboard [season|ranked|all]``: the slow one, with a heavy tail. Its step
  ``db.leaderboard_scores`` scans and aggregates the 200,000 score rows (~30 ms for
  a season, ~100 ms all-time on one core, much more while other queries compete for
  the CPU); a render step follows; checkpoints ``guard_checks``,
  ``scores_loaded`` and ``rendered`` mark its phases.
- ``/stats [n]``: an N+1 pattern; one ``db.recent_matches`` query, then one
  ``db.match_score`` query per match.
- ``/trade <item> <price>``: rejected with :class:`TradeRejected` when the offer is
  below the item's floor price (lowball offers are about 8% of trades).
- ``/weather [city]``: an HTTP call with a log-normal latency tail.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import botpulse

from .database import LEADERBOARD_SCOPES, GameDatabase, Profile
from .render import render_leaderboard_card
from .services import TTLCache, WeatherClient

__all__ = ["DemoBot", "Message", "TradeRejected"]

Handler = Callable[[botpulse.Flow, "Message", list[str]], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message sent to the bot: who sent it and its text, e.g. ``"/trade 42 600"``."""

    player_id: int
    text: str


class TradeRejected(Exception):
    """The market refused a trade (the bot answers with the reason)."""


class DemoBot:
    """A small game bot backed by :class:`GameDatabase`.

    ``rng`` drives the simulated network (the weather API's latency).

    Example::

        bot = DemoBot(db, random.Random(1))
        ok = await bot.handle(Message(player_id=7, text="/leaderboard all"))
    """

    PROFILE_TTL_S = 30.0

    def __init__(self, db: GameDatabase, rng: random.Random) -> None:
        self.db = db
        self.profiles: TTLCache[Profile | None] = TTLCache(self.PROFILE_TTL_S)
        self.weather = WeatherClient(rng)
        self.handled = 0
        self.failed = 0
        self.ignored = 0
        self.failures: dict[str, int] = {}
        self.commands: dict[str, Handler] = {
            "/ping": self.ping,
            "/profile": self.profile,
            "/leaderboard": self.leaderboard,
            "/stats": self.stats,
            "/trade": self.trade,
            "/weather": self.forecast,
        }

    # -- the framework's part ----------------------------------------------------------

    async def handle(self, message: Message) -> bool:
        """Run the command in ``message`` as a flow; return False if it failed or is unknown.

        Never raises for a failing command: the failure is counted per exception type
        in :attr:`failures` (the user would get an apology). Counters: :attr:`handled`
        commands (one flow each), :attr:`failed` among them, :attr:`ignored` messages.
        """
        command, *args = message.text.split() or [""]
        handler = self.commands.get(command)
        if handler is None:  # not ours: a real bot ignores it or suggests /help
            self.ignored += 1
            return False
        self.handled += 1
        try:
            async with botpulse.flow(command, player_id=message.player_id) as flow:
                await handler(flow, message, args)
        except Exception as exc:  # noqa: BLE001 - the framework's error handler
            self.failed += 1
            name = type(exc).__name__
            self.failures[name] = self.failures.get(name, 0) + 1
            return False
        return True

    # -- commands ------------------------------------------------------------------------

    async def ping(self, flow: botpulse.Flow, message: Message, args: list[str]) -> str:
        """Answer ``pong``; the sleep stands for writing the reply to the gateway."""
        await asyncio.sleep(0.001)
        return "pong"

    async def profile(self, flow: botpulse.Flow, message: Message, args: list[str]) -> str:
        """A player's profile, from the cache when it is there."""
        player_id = int(args[0]) if args else message.player_id
        async with botpulse.measure("cache.profile", kind="cache") as lookup:
            profile = self.profiles.get(player_id)
            lookup.set(hit=profile is not None)
        if profile is None:
            profile = await self.db.profile_load(player_id)
            self.profiles.put(player_id, profile)
        if profile is None:
            return f"no player {player_id}"
        return (
            f"{profile.name}: rating {profile.rating}, {profile.games} games, "
            f"{profile.average_points:.1f} points on average, best {profile.best_points}"
        )

    async def leaderboard(self, flow: botpulse.Flow, message: Message, args: list[str]) -> str:
        """The top ten of a scope, as a rendered card."""
        scope = args[0] if args else "season"
        if scope not in LEADERBOARD_SCOPES:
            return f"unknown leaderboard {scope!r}; try: {', '.join(LEADERBOARD_SCOPES)}"
        flow.set(scope=scope)
        if not await self.db.guard_player(message.player_id):
            return "you are not allowed to use this command"
        flow.checkpoint("guard_checks")
        rows = await self.db.leaderboard_scores(scope)
        flow.checkpoint("scores_loaded")
        async with botpulse.measure("render.leaderboard_card"):
            card = await asyncio.to_thread(render_leaderboard_card, rows)
        flow.checkpoint("rendered")
        return f"leaderboard ({scope}): {len(rows)} players, card of {len(card)} bytes"

    async def stats(self, flow: botpulse.Flow, message: Message, args: list[str]) -> str:
        """Totals of the latest matches, fetched the naive way: one query per match."""
        limit = int(args[0]) if args else 10
        matches = await self.db.recent_matches(limit)
        totals = [await self.db.match_score(match_id) for match_id in matches]
        points = sum(total for _players, total, _kills in totals)
        return f"{len(matches)} recent matches, {points} points scored"

    async def trade(self, flow: botpulse.Flow, message: Message, args: list[str]) -> str:
        """Buy an item at the offered price if the market accepts it."""
        item_id, price = int(args[0]), int(args[1])
        if not await self.db.guard_player(message.player_id):
            return "you are not allowed to trade"
        flow.checkpoint("guard_checks")
        floor = await self.db.item_price(item_id)
        self.check_offer(item_id, price, floor)
        await self.db.trade_write(message.player_id, item_id, price)
        flow.checkpoint("trade_recorded")
        return f"bought item {item_id} for {price} gold"

    @botpulse.measure("trade.check_offer")
    def check_offer(self, item_id: int, price: int, floor: int | None) -> None:
        """Raise :class:`TradeRejected` unless ``price`` meets the item's floor price."""
        if floor is None:
            raise TradeRejected(f"there is no item {item_id}")
        if price < floor:
            raise TradeRejected(f"offer {price} is below the floor price {floor} of item {item_id}")

    async def forecast(self, flow: botpulse.Flow, message: Message, args: list[str]) -> str:
        """Today's weather, from the (simulated) weather API."""
        return await self.weather.forecast(args[0] if args else "Lisbon")
