"""A small pydle IRC bot timed by botpulse; runs against any server, e.g. a local ngIRCd.

    IRC_SERVER=127.0.0.1:6667 IRC_CHANNEL=#test python examples/irc_bot.py

Say ``!ping`` in the channel; owners (BOTPULSE_OWNER_IDS, nicks) can say ``!performance``
and ``!health``. Stop it with Ctrl-C: botpulse flushes to the store on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import pydle

import botpulse
from botpulse.integrations import irc
from botpulse.integrations.admin import AdminCommands

CHANNEL = os.environ.get("IRC_CHANNEL", "#botpulse")


class PingBot(pydle.Client):
    async def on_connect(self) -> None:
        await super().on_connect()
        await self.join(CHANNEL)

    async def on_channel_message(self, target: str, by: str, message: str) -> None:
        await super().on_channel_message(target, by, message)
        if by != self.nickname and message.strip() == "!ping":
            await self.ping(target)

    @irc.command("ping")  # names the flow once the bot has routed the line
    async def ping(self, target: str) -> None:
        with botpulse.measure("db.lookup", kind="db"):
            await asyncio.sleep(0.005)
        await self.message(target, "pong")


def main() -> None:
    host, port = os.environ.get("IRC_SERVER", "127.0.0.1:6667").rsplit(":", 1)
    bot = PingBot(os.environ.get("IRC_NICK", "pulsebot"))
    # botpulse setup: these three lines.
    botpulse.init(service="irc-example", flush_interval=1.0)
    owners = os.environ.get("BOTPULSE_OWNER_IDS", "nobody").split(",")
    irc.instrument(bot, admin=AdminCommands(owner_ids=owners))
    # Ctrl-C ends it; botpulse.shutdown() runs at exit and writes what is buffered.
    with contextlib.suppress(KeyboardInterrupt):
        bot.run(host, int(port), tls=False)


if __name__ == "__main__":
    main()
