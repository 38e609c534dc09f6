"""Simulated chat users: each one sends the bot a random mix of commands with short pauses.

Every user has its own ``random.Random``, derived from the demo's seed, so what a
user sends (its commands, arguments and pauses) is the same sequence in every run
with that seed, however the users' commands interleave. Only how far into the
sequence a user gets depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from .bot import DemoBot, Message
from .database import ITEMS, PLAYERS

__all__ = ["COMMAND_MIX", "SimulatedUser", "make_users"]

#: Relative frequency of each command.
COMMAND_MIX: dict[str, int] = {
    "/ping": 22,
    "/profile": 24,
    "/leaderboard": 12,
    "/stats": 14,
    "/trade": 16,
    "/weather": 12,
}
#: The share of trades offered below any item's floor price (the bot rejects them).
LOWBALL_SHARE = 0.08
THINK_S = (0.02, 0.25)
CITIES = ("Lisbon", "Oslo", "Nairobi", "Lima", "Osaka", "Tbilisi")


@dataclass(slots=True)
class SimulatedUser:
    """One chat user: a player of the game with friends among the other users."""

    player_id: int
    friends: list[int]
    rng: random.Random

    def next_message(self) -> Message:
        """What this user sends next."""
        rng = self.rng
        command = rng.choices(list(COMMAND_MIX), weights=list(COMMAND_MIX.values()))[0]
        args: list[object] = []
        if command == "/profile":
            roll = rng.random()
            if roll < 0.25 and self.friends:
                args = [rng.choice(self.friends)]
            elif roll < 0.40:
                args = [rng.randint(1, PLAYERS)]
        elif command == "/leaderboard":
            args = [rng.choices(("season", "ranked", "all"), weights=(60, 25, 15))[0]]
        elif command == "/stats":
            args = [rng.randint(8, 16)]
        elif command == "/trade":
            lowball = rng.random() < LOWBALL_SHARE
            # Floor prices are 10..499: offers of 500+ always pass, under 10 never do.
            price = rng.randint(1, 9) if lowball else rng.randint(500, 999)
            args = [rng.randint(1, ITEMS), price]
        elif command == "/weather":
            args = [rng.choice(CITIES)]
        return Message(self.player_id, " ".join([command, *map(str, args)]))

    async def chat(self, bot: DemoBot, deadline: float) -> None:
        """Send commands until ``deadline`` (``time.monotonic()``); always at least one.

        Returns at the deadline or, if a command is in flight then, once it finished.
        """
        await asyncio.sleep(self.rng.uniform(0, THINK_S[0] * 2))  # users do not start in sync
        while True:
            await bot.handle(self.next_message())
            think = self.rng.uniform(*THINK_S)
            left = deadline - time.monotonic()
            if think >= left:  # no time for another command: idle until the end
                await asyncio.sleep(max(left, 0.0))
                return
            await asyncio.sleep(think)


def make_users(count: int, seed: int | None) -> list[SimulatedUser]:
    """``count`` users with distinct players; reproducible for a given ``seed``."""
    base = random.Random(seed)
    players = base.sample(range(1, PLAYERS + 1), count)
    return [
        SimulatedUser(
            player_id,
            friends=[p for p in players if p != player_id],
            rng=random.Random(base.getrandbits(64)),
        )
        for player_id in players
    ]
