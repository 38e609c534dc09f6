"""Framework dispatch cost: a trivial command through each framework, with and without botpulse.

Each framework's real dispatch runs on one event loop with no network: aiogram
``Dispatcher.feed_update``, python-telegram-bot's update processor around
``Application.process_update``, discord.py ``Bot.process_commands`` (prefix) and the
gateway's ``parse_interaction_create`` (slash, in the tree's task), pydle ``on_raw``
of a PRIVMSG line. The handler does nothing. Contenders alternate in shuffled
rounds; the figure is the added CPU time of the bot's thread per dispatch (minimum
over rounds) over the plain framework's. botpulse is live on a large in-memory buffer
with no pipeline
thread (drained, untimed, after each sample): what the bot's own thread pays.

Peers where they install from PyPI: argus-dpy for discord.py (listeners registered
as ``Argus`` does, no metrics server), aiogram3-metrics for aiogram (its update
middleware, a private Prometheus registry).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import warnings
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from botpulse import _capture
from botpulse._buffer import EventBuffer

from ._common import Contender, Figure, Outcome, at_least, at_most, interleave, summarize

Batch = Callable[[int], Awaitable[None]]


# -- aiogram -------------------------------------------------------------------------


def _aiogram(loop: asyncio.AbstractEventLoop) -> dict[str, Batch]:
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.base import BaseSession
    from aiogram.filters import Command
    from aiogram.types import Message, Update

    from botpulse.integrations import aiogram as bp_aiogram

    class NoSession(BaseSession):
        async def close(self) -> None:
            return None

        async def make_request(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("no network in the benchmark")

        async def stream_content(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("no network in the benchmark")

    bot = Bot("123456:BENCH", session=NoSession())
    update = Update.model_validate({"update_id": 1, "message": {
        "message_id": 1, "date": int(time.time()), "chat": {"id": 1, "type": "private"},
        "from": {"id": 2, "is_bot": False, "first_name": "U"}, "text": "/ping"}})  # fmt: skip

    def dispatcher() -> Dispatcher:
        dp = Dispatcher()

        @dp.message(Command("ping"))
        async def ping(message: Message) -> None:
            return None

        return dp

    def batch(dp: Dispatcher) -> Batch:
        async def run(n: int) -> None:
            feed = dp.feed_update
            for _ in range(n):
                await feed(bot, update)

        return run

    batches = {"plain": batch(dispatcher()), "botpulse": batch(bp_aiogram.instrument(dispatcher()))}
    try:
        from aiogram_metrics import MetricsMiddleware
        from prometheus_client import CollectorRegistry

        peer = dispatcher()
        peer.update.outer_middleware(MetricsMiddleware("bench", registry=CollectorRegistry()))
        batches["aiogram3-metrics"] = batch(peer)
    except ImportError:
        pass
    return batches


# -- python-telegram-bot --------------------------------------------------------------


def _telegram(loop: asyncio.AbstractEventLoop) -> dict[str, Batch]:
    from telegram import Update
    from telegram.ext import Application, ApplicationBuilder, CommandHandler
    from telegram.request import BaseRequest

    from botpulse.integrations import telegram as bp_telegram

    class NoNetwork(BaseRequest):
        @property
        def read_timeout(self) -> float | None:
            return 1.0

        async def initialize(self) -> None:
            return None

        async def shutdown(self) -> None:
            return None

        async def do_request(self, url: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
            me = {"id": 1, "is_bot": True, "first_name": "B", "username": "b_bot"}
            return 200, json.dumps({"ok": True, "result": me}).encode()

    async def ping(update: Any, context: Any) -> None:
        return None

    def application() -> Application[Any, Any, Any, Any, Any, Any]:
        app = ApplicationBuilder().token("123456:BENCH").request(NoNetwork()).updater(None).build()
        app.add_handler(CommandHandler("ping", ping))
        return app

    plain, timed = application(), bp_telegram.instrument(application())
    for app in (plain, timed):
        loop.run_until_complete(app.initialize())
    data = {"update_id": 1, "message": {
        "message_id": 1, "date": int(time.time()), "chat": {"id": 1, "type": "private"},
        "from": {"id": 2, "is_bot": False, "first_name": "U"}, "text": "/ping",
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}}  # fmt: skip

    def batch(app: Application[Any, Any, Any, Any, Any, Any]) -> Batch:
        update = Update.de_json(data, app.bot)
        processor = app.update_processor

        async def run(n: int) -> None:
            for _ in range(n):  # what the application's update fetcher does per update
                await processor.process_update(update, app.process_update(update))

        return run

    return {"plain": batch(plain), "botpulse": batch(timed)}


# -- discord.py ----------------------------------------------------------------------


def _discord(loop: asyncio.AbstractEventLoop, interactions: bool) -> dict[str, Batch]:
    import discord
    from discord import utils
    from discord.ext import commands

    from botpulse.integrations import discord as bp_discord

    user = {"id": "42", "username": "u", "discriminator": "0", "global_name": "u",
            "avatar": None}  # fmt: skip

    def make_bot() -> commands.Bot:
        intents = discord.Intents.default()
        intents.message_content = True
        bot = commands.Bot(command_prefix="!", intents=intents, help_command=None)

        @bot.command()
        async def ping(ctx: Any) -> None:
            return None

        @bot.tree.command(name="ping", description="trivial")
        async def slash_ping(interaction: discord.Interaction) -> None:
            return None

        state = bot._connection
        state.user = discord.ClientUser(state=state, data={**user, "id": "1", "bot": True})
        state.application_id = 1002
        return bot

    def message(bot: commands.Bot) -> discord.Message:
        data = {"id": "1", "channel_id": "3000", "author": user, "content": "!ping",
                "timestamp": datetime.now(timezone.utc).isoformat(), "edited_timestamp": None,
                "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
                "attachments": [], "embeds": [], "pinned": False, "type": 0}  # fmt: skip
        channel, _ = bot._connection._get_guild_channel(data)  # type: ignore[arg-type]
        return discord.Message(state=bot._connection, channel=channel, data=data)  # type: ignore[arg-type]

    def interaction_payload() -> dict[str, Any]:
        return {"id": str(utils.time_snowflake(datetime.now(timezone.utc))),
                "application_id": "1002", "type": 2, "token": "T", "version": 1,
                "data": {"id": "77", "name": "ping", "type": 1}, "channel_id": "3000",
                "channel": {"id": "3000", "type": 1}, "user": user, "locale": "en-US",
                "app_permissions": "0", "entitlements": [], "authorizing_integration_owners": {},
                "context": 1, "attachment_size_limit": 1}  # fmt: skip

    async def settle() -> None:
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def batch(bot: commands.Bot) -> Batch:
        if interactions:
            payload = interaction_payload()
            parse = bot._connection.parse_interaction_create

            async def run_interactions(n: int) -> None:
                for i in range(n):
                    parse(payload)
                    if i % 64 == 63:
                        await settle()
                await settle()

            return run_interactions
        msg = message(bot)
        process = bot.process_commands

        async def run_prefix(n: int) -> None:
            for i in range(n):
                await process(msg)
                if i % 64 == 63:
                    await settle()  # on_command & co. are dispatched as tasks
            await settle()

        return run_prefix

    async def setup(bot: commands.Bot) -> commands.Bot:
        await bot._async_setup_hook()
        return bot

    plain = loop.run_until_complete(setup(make_bot()))
    timed = loop.run_until_complete(setup(make_bot()))
    bp_discord.instrument(timed, latency_interval=0)
    batches = {"plain": batch(plain), "botpulse": batch(timed)}
    try:
        from argus.cog import ArgusCog
        from argus.config import ArgusConfig

        peer = loop.run_until_complete(setup(make_bot()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ArgusCog(peer, ArgusConfig(dashboard=False))  # registers its listeners, no server
        batches["argus-dpy"] = batch(peer)
    except ImportError:
        pass
    return batches


# -- IRC (pydle) ---------------------------------------------------------------------


def _irc(loop: asyncio.AbstractEventLoop) -> dict[str, Batch]:
    import pydle
    from pydle.features.ircv3.tags import TaggedMessage

    from botpulse.integrations import irc as bp_irc

    class Bot(pydle.Client):
        async def on_channel_message(self, target: str, by: str, message: str) -> None:
            if message == "!ping":
                await self.ping(target)

        @bp_irc.command("ping")
        async def ping(self, target: str) -> None:
            return None

    class PlainBot(pydle.Client):
        async def on_channel_message(self, target: str, by: str, message: str) -> None:
            if message == "!ping":
                await self.ping(target)

        async def ping(self, target: str) -> None:
            return None

    line = TaggedMessage.parse(b":someone!u@127.0.0.1 PRIVMSG #chan :!ping\r\n")

    def batch(client: Any) -> Batch:
        async def run(n: int) -> None:
            on_raw = client.on_raw
            for _ in range(n):
                await on_raw(line)

        return run

    return {"plain": batch(PlainBot("bench")), "botpulse": batch(bp_irc.instrument(Bot("bench")))}


# -- the run -------------------------------------------------------------------------


def run(quick: bool) -> Outcome:
    rounds = 5 if quick else 21
    sample_ns = 3e6 if quick else 40e6
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    buffer = EventBuffer(20_000_000)

    def on() -> None:
        _capture.activate(time.perf_counter_ns, buffer)

    def off() -> None:
        _capture.deactivate()
        buffer.drain()

    frameworks: dict[str, Callable[[], dict[str, Batch]]] = {
        "aiogram": lambda: _aiogram(loop),
        "telegram": lambda: _telegram(loop),
        "discord_prefix": lambda: _discord(loop, interactions=False),
        "discord_slash": lambda: _discord(loop, interactions=True),
        "irc": lambda: _irc(loop),
    }
    details: dict[str, Any] = {}
    figures: list[Figure] = []
    added: dict[str, dict[str, float]] = {}
    try:
        for framework, build in frameworks.items():
            try:
                batches = build()
            except ImportError as exc:
                details[framework] = {"skipped": str(exc)}
                continue
            contenders = []
            for name, batch in batches.items():

                def timed(n: int, batch: Batch = batch) -> int:
                    # CPU time of this thread: on a shared machine, wall time mostly
                    # measures the other processes (everything here runs on this thread).
                    started = time.thread_time_ns()
                    loop.run_until_complete(batch(n))
                    return time.thread_time_ns() - started

                instrumented = name == "botpulse"
                contenders.append(
                    Contender(name, timed, before=on if instrumented else None,
                              after=off if instrumented else None)
                )  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                per_op = interleave(contenders, rounds, sample_ns)
            stats = {name: summarize(samples) for name, samples in per_op.items()}
            details[framework] = stats
            plain = stats["plain"]["min"]
            added[framework] = {n: s["min"] - plain for n, s in stats.items() if n != "plain"}
            pct = 100 * added[framework]["botpulse"] / plain
            figures.append(Figure(
                f"frameworks.{framework}_added_pct",
                f"{framework}: botpulse added to a trivial command's dispatch",
                pct, "%", "<= 5 %", at_most(pct, 5.0),
                note=f"plain {plain / 1e3:.1f} µs, +{added[framework]['botpulse'] / 1e3:.2f} µs",
            ))  # fmt: skip
            for peer, extra in added[framework].items():
                if peer == "botpulse":
                    continue
                figures.append(Figure(
                    f"frameworks.{framework}_{peer.replace('-', '_')}_added_pct",
                    f"{framework}: {peer} added to the same dispatch",
                    100 * extra / plain, "%", note=f"+{extra / 1e3:.2f} µs",
                ))  # fmt: skip
    finally:
        _capture.deactivate()
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
    slash = added.get("discord_slash", {})
    if "argus-dpy" in slash and slash.get("botpulse", 0) > 0:
        ratio = slash["argus-dpy"] / slash["botpulse"]
        figures.insert(0, Figure(
            "frameworks.argus_vs_botpulse_per_interaction",
            "argus-dpy ÷ botpulse, added cost per slash interaction",
            ratio, "x", ">= 3x", at_least(ratio, 3.0), ratio=True,
        ))  # fmt: skip
    return Outcome(figures, details)
