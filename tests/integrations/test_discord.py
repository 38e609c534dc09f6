"""discord.py driven offline: a real Bot logged in against a fake Discord REST API on 127.0.0.1.

Gateway events go through the bot's own parsers (what the websocket would call), so
commands, the command tree, views and listeners all run as in production, in tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("discord")

import discord
from discord.ext import commands

import botpulse
from botpulse import ManualClock
from botpulse.integrations import _discord as bp_impl
from botpulse.integrations import discord as bp_discord
from botpulse.integrations.admin import AdminCommands
from botpulse.testing import capture

from . import fake_discord as fake
from .conftest import Lenient, child_names


class Vote(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="yes", custom_id="vote:123:yes")
    async def yes(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        with botpulse.measure("db.save_vote", kind="db"):
            await asyncio.sleep(0.001)
        await interaction.response.send_message("counted", ephemeral=True)

    @discord.ui.button(label="broken", custom_id="vote:456:broken")
    async def broken(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        raise LookupError("no such poll")

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: Any) -> None:
        errors.append(type(error).__name__)


errors: list[str] = []


class Feedback(discord.ui.Modal, title="Feedback"):
    text: discord.ui.TextInput[Any] = discord.ui.TextInput(label="text", custom_id="text")

    def __init__(self) -> None:
        super().__init__(custom_id="feedback:77", timeout=None)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("thanks", ephemeral=True)


def make_bot(clock: ManualClock | None = None) -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.Bot(command_prefix="!", intents=intents, help_command=None)

    @bot.command()
    async def ping(ctx: commands.Context[Any]) -> None:
        with botpulse.measure("db.lookup", kind="db"):
            await asyncio.sleep(0.001)
        await ctx.send("pong")

    @bot.command()
    async def flood(ctx: commands.Context[Any]) -> None:
        await ctx.send("flood")

    @bot.command()
    async def boom(ctx: commands.Context[Any]) -> None:
        raise ZeroDivisionError

    @bot.command()
    @commands.is_owner()
    async def secret(ctx: commands.Context[Any]) -> None:
        await ctx.send("only owner")

    @bot.tree.command(name="hello", description="say hello")
    async def hello(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("hi")

    @bot.tree.command(name="slow", description="answers late")
    async def slow(interaction: discord.Interaction) -> None:
        if clock is not None:
            clock.advance(0.3)
        await interaction.response.defer()
        await interaction.followup.send("done")

    @bot.tree.command(name="fail", description="raises")
    async def fail(interaction: discord.Interaction) -> None:
        raise KeyError("x")

    @bot.tree.context_menu(name="Inspect")
    async def inspect(interaction: discord.Interaction, member: discord.User) -> None:
        await interaction.response.send_message(f"{member.id}", ephemeral=True)

    @bot.listen("on_member_join")
    async def welcome(member: Any) -> None:
        await asyncio.sleep(0)

    @bot.event
    async def on_command_error(ctx: commands.Context[Any], error: Exception) -> None:
        errors.append(type(error).__name__)

    bot.add_view(Vote())
    return bot


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[fake.FakeDiscord]:
    discord_api = fake.FakeDiscord()
    base = await discord_api.start()
    monkeypatch.setattr(discord.http.Route, "BASE", base)
    errors.clear()
    yield discord_api
    await discord_api.stop()


async def settle(bot: commands.Bot) -> None:
    """Let the tasks discord.py started for the events finish."""
    for _ in range(50):
        await asyncio.sleep(0.01)
        pending = [
            t for t in asyncio.all_tasks()
            if t is not asyncio.current_task() and (t.get_name().startswith(("discord", "Command")))
        ]  # fmt: skip
        if not pending:
            return
        await asyncio.wait(pending, timeout=2)


def say(bot: commands.Bot, text: str, *, author: int = fake.OWNER_ID) -> None:
    data = fake.message(fake.CHANNEL_ID, text, author=fake.user(author, "someone"))
    bot._connection.parse_message_create(data)


def interact(bot: commands.Bot, payload: dict[str, Any]) -> None:
    bot._connection.parse_interaction_create(payload)


async def logged_in(bot: commands.Bot) -> commands.Bot:
    await bot.login("BOT-TOKEN-SECRET")
    return bot


async def test_prefix_commands_are_flows_with_rest_children(server: fake.FakeDiscord) -> None:
    bot = make_bot()
    bp_discord.instrument(bot, latency_interval=0)
    with capture() as recorded:
        await logged_in(bot)
        try:
            for text in ("!ping", "!ping", "!boom", "!nosuch", "!secret", "!flood", "hello"):
                say(bot, text, author=fake.STRANGER_ID if text == "!secret" else fake.OWNER_ID)
                await settle(bot)
        finally:
            await bot.close()
        assert recorded.count("ping", kind="flow", status="ok") == 2
        assert recorded.count("boom", kind="flow", status="error") == 1
        assert recorded.count("unknown_command", kind="flow", status="error") == 1
        assert recorded.count("secret", kind="flow", status="error") == 1
        assert recorded.count("flood", kind="flow", status="ok") == 1
        ping = recorded.traces("ping")[0]
        route = "POST /channels/{channel_id}/messages"
        assert child_names(ping) == [("db.lookup", "db", "ok"), (route, "http", "ok")]
        assert ping.children[1].attrs["status"] == 200
        assert recorded.traces("boom")[0].error == "ZeroDivisionError"
        assert recorded.traces("secret")[0].error == "NotOwner"
        (flood_call,) = recorded.traces("flood")[0].children
        assert flood_call.attrs["rate_limited"] == 1
        assert flood_call.attrs["retry_after_s"] == 0.05
        # every message is an on_message event; the command ran inside it
        assert recorded.count("event.message", kind="flow") == 7
        assert "SECRET" not in repr(recorded.traces()) + repr(recorded.names())
    assert errors == ["CommandInvokeError", "CommandNotFound", "NotOwner"]
    assert [m["content"] for m in server.messages] == ["pong", "pong", "flood"]
    assert server.rate_limited == 1


async def test_app_commands_components_and_listeners(server: fake.FakeDiscord) -> None:
    bot = make_bot()
    bp_discord.instrument(bot, latency_interval=0)
    with capture() as recorded:
        await logged_in(bot)
        try:
            interact(bot, fake.slash("hello"))
            interact(bot, fake.slash("fail"))
            interact(bot, fake.button("vote:123:yes"))
            interact(bot, fake.button("vote:789:yes"))  # unknown to the view store
            interact(bot, fake.button("vote:456:broken"))
            await settle(bot)
            bot.dispatch("member_join", object())
            await settle(bot)
        finally:
            await bot.close()
        assert recorded.count("hello", kind="flow", status="ok") == 1
        hello = recorded.traces("hello")[0]
        callback = "POST /interactions/{webhook_id}/{webhook_token}/callback"
        assert child_names(hello) == [(callback, "http", "ok")]
        assert 0 <= hello.attrs["time_to_first_response_ms"] < 2500, hello.attrs
        assert recorded.traces("fail")[0].error == "KeyError"
        assert recorded.count("component:vote:{n}:yes", kind="flow", status="ok") == 1
        vote = recorded.traces("component:vote:{n}:yes")[0]
        assert child_names(vote) == [("db.save_vote", "db", "ok"), (callback, "http", "ok")]
        assert recorded.traces("component:vote:{n}:broken")[0].error == "LookupError"
        assert recorded.count("event.member_join.welcome", kind="flow") == 1
        assert "INTERACTION-TOKEN" not in repr(recorded.traces()) + repr(recorded.names())
    assert errors == ["LookupError"]
    assert [r["data"].get("content") for r in server.responses] == ["hi", "counted"]


async def test_interaction_deadline_findings(server: fake.FakeDiscord) -> None:
    clock = ManualClock()
    bot = make_bot(clock)
    bp_discord.instrument(bot, latency_interval=0)
    with capture(clock=clock) as recorded:
        await logged_in(bot)
        try:
            interact(bot, fake.slash("slow", age_s=2.4))  # 2.4 s old + 0.3 s handler: slow
            await settle(bot)
            interact(bot, fake.slash("slow", age_s=2.8))  # 2.8 + 0.3: deadline missed
            await settle(bot)
            interact(bot, fake.slash("hello", age_s=0.0))
            await settle(bot)
        finally:
            await bot.close()
        recorded.flush()
        findings = recorded.store.read_findings(0, 2**40)
        by_type = {f.type: f for f in findings}
        assert set(by_type) == {"interaction_slow_response", "interaction_deadline_missed"}
        assert by_type["interaction_slow_response"].subject == "slow"
        assert by_type["interaction_slow_response"].count == 2
        assert by_type["interaction_deadline_missed"].count == 1
        assert by_type["interaction_deadline_missed"].details["time_to_first_response_ms"] > 3000
        ttfr = sorted(t.attrs["time_to_first_response_ms"] for t in recorded.traces("slow"))
        assert 2650 <= ttfr[0] < 2900
        assert 3050 <= ttfr[1] < 3300


async def test_a_failing_hook_never_breaks_the_bot(
    server: fake.FakeDiscord, lenient: Lenient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = make_bot()
    bp_discord.instrument(bot, latency_interval=0)

    def broken(*args: Any) -> None:
        raise ValueError("botpulse bug")

    monkeypatch.setattr(bp_impl, "_tags", broken)
    monkeypatch.setattr(bp_impl, "_track_interaction", broken)
    with capture():
        await logged_in(bot)
        try:
            say(bot, "!ping")
            interact(bot, fake.slash("hello"))
            interact(bot, fake.button("vote:123:yes"))
            await settle(bot)
        finally:
            await bot.close()
    assert [m["content"] for m in server.messages] == ["pong"]
    assert [r["data"].get("content") for r in server.responses] == ["hi", "counted"]
    assert lenient.errors >= 3


async def test_gateway_latency_gauge() -> None:
    class Measured(commands.Bot):
        @property
        def latency(self) -> float:
            return 0.0105

    bot = Measured(command_prefix="!", intents=discord.Intents.default())
    with capture() as recorded:
        bp_discord.sample_latency(bot)
        assert recorded.count("discord.gateway.latency_ms", kind="gauge") == 1
        summary = recorded.store.summarize(0, 2**40, now=2**40)
        (rollup,) = [r for k, r in summary.rollups.items() if k[1] == "discord.gateway.latency_ms"]
        assert rollup.max_ns / 1e6 == pytest.approx(10.5)


async def test_gateway_latency_gauge_per_shard() -> None:
    class Sharded(commands.AutoShardedBot):
        @property
        def latencies(self) -> list[tuple[int, float]]:
            return [(0, 0.020), (1, 0.035), (2, float("inf"))]  # shard 2 has no heartbeat yet

    bot = Sharded(command_prefix="!", intents=discord.Intents.default(), shard_count=3)
    with capture() as recorded:
        bp_discord.sample_latency(bot)
        names = sorted(k.name for k in recorded.names() if k.kind == "gauge")
        assert names == ["discord.gateway.shard0.latency_ms", "discord.gateway.shard1.latency_ms"]


async def test_load_extension_instruments_the_bot(server: fake.FakeDiscord) -> None:
    bot = make_bot()
    with capture() as recorded:
        await logged_in(bot)
        await bot.load_extension("botpulse.integrations.discord")
        try:
            say(bot, "!ping")
            say(bot, "!flood")
            await settle(bot)
        finally:
            await bot.close()
        assert recorded.count("ping", kind="flow") == 1
        # loaded after login: statuses and 429s are still seen
        (flood_call,) = recorded.traces("flood")[0].children
        assert flood_call.attrs["rate_limited"] == 1


async def test_admin_commands_render_embeds_for_owners_only(server: fake.FakeDiscord) -> None:
    bot = make_bot()
    bp_discord.instrument(bot, admin=AdminCommands(owner_ids=[fake.OWNER_ID]), latency_interval=0)
    with capture() as recorded:
        await logged_in(bot)
        try:
            say(bot, "!ping")
            await settle(bot)
            recorded.flush()
            say(bot, "!performance", author=fake.STRANGER_ID)
            interact(bot, fake.slash("health", user_id=fake.STRANGER_ID))
            await settle(bot)
            assert [m["content"] for m in server.messages] == ["pong"]
            refusal = server.responses[-1]
            assert refusal["data"]["flags"] == 64  # ephemeral
            assert "owners" in refusal["data"]["content"]
            say(bot, "!performance")
            interact(bot, fake.slash("health"))
            await settle(bot)
        finally:
            await bot.close()
    (performance,) = server.messages[1]["embeds"]
    assert performance["title"] == "botpulse performance"
    ping_field = next(f for f in performance["fields"] if f["name"] == "ping")
    assert "1 runs" in ping_field["value"]
    assert any(f["name"].startswith("slowest: ") for f in performance["fields"])
    health = server.responses[-1]["data"]["embeds"][0]
    assert health["title"] == "botpulse health"
    assert [f["name"] for f in health["fields"]] == [
        "uptime", "rss", "cpu", "loop lag", "store", "events", "dropped",
    ]  # fmt: skip


async def test_modals_and_context_menus(server: fake.FakeDiscord) -> None:
    bot = make_bot()
    bp_discord.instrument(bot, latency_interval=0)
    with capture() as recorded:
        await logged_in(bot)
        try:
            bot._connection._view_store.add_view(Feedback())
            text = {"type": 4, "custom_id": "text", "value": "hello"}
            submit = {"custom_id": "feedback:77", "components": [{"type": 1, "components": [text]}]}
            interact(bot, fake.interaction(5, submit))
            menu = {"id": "78", "name": "Inspect", "type": 2, "target_id": str(fake.OWNER_ID),
                    "resolved": {"users": {str(fake.OWNER_ID): fake.user(fake.OWNER_ID, "o")}}}  # fmt: skip
            interact(bot, fake.interaction(2, menu))
            await settle(bot)
        finally:
            await bot.close()
        assert recorded.count("modal:feedback:{n}", kind="flow", status="ok") == 1
        assert recorded.count("Inspect", kind="flow", status="ok") == 1
        for name in ("modal:feedback:{n}", "Inspect"):
            assert recorded.traces(name)[0].attrs["time_to_first_response_ms"] >= 0
    assert [r["data"].get("content") for r in server.responses] == ["thanks", str(fake.OWNER_ID)]


def test_custom_id_templates_group_ids() -> None:
    assert bp_discord.custom_id_template("vote:123:yes") == "vote:{n}:yes"
    assert bp_discord.custom_id_template("0123456789abcdef0123456789abcdef") == "{id}"
    assert bp_discord.custom_id_template("page-2") == "page-{n}"
