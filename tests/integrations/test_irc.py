"""IRC against a real ngIRCd (scripts/services/ngircd.sh): pydle and jaraco's irc bots."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("pydle")

import pydle
from tests.servers import server_url

import botpulse
from botpulse.integrations import irc as bp_irc
from botpulse.integrations.admin import AdminCommands
from botpulse.testing import capture

from .conftest import Lenient, child_names
from .irc_client import RawUser

_ids = itertools.count(os.getpid() % 1000)


def nick(base: str) -> str:
    return f"{base}{next(_ids)}"


class PingBot(pydle.Client):
    """A small bot as people write them: on_channel_message routes "!word" to a command."""

    def __init__(self, *args: Any, channel: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel = channel
        self.ready = asyncio.Event()
        self.own_messages_seen = 0

    async def on_connect(self) -> None:
        await super().on_connect()
        await self.join(self.channel)
        self.ready.set()

    async def on_channel_message(self, target: str, by: str, message: str) -> None:
        await super().on_channel_message(target, by, message)
        if by == self.nickname:
            self.own_messages_seen += 1  # pydle echoes what we send
            return
        if message == "!ping":
            await self.ping(target)
        elif message == "!boom":
            await self.boom(target)

    @bp_irc.command("ping")
    async def ping(self, target: str) -> None:
        with botpulse.measure("db.lookup", kind="db"):
            await asyncio.sleep(0.002)
        await self.message(target, "pong")

    @bp_irc.command("boom")
    async def boom(self, target: str) -> None:
        raise RuntimeError("handler bug")


@pytest.fixture
def irc_address() -> str:
    return server_url("BOTPULSE_TEST_IRC", "ngIRCd")


@pytest.fixture
async def channel() -> str:
    return f"#bp{next(_ids)}"


async def start_bot(address: str, channel: str, **instrument: Any) -> PingBot:
    host, port = address.rsplit(":", 1)
    bot = PingBot(nick("pulse"), channel=channel)
    bp_irc.instrument(bot, **instrument)
    await bot.connect(host, int(port), tls=False)
    await asyncio.wait_for(bot.ready.wait(), 10)
    return bot


@pytest.fixture
async def user(irc_address: str, channel: str) -> AsyncIterator[RawUser]:
    person = RawUser(nick("user"))
    await person.connect(irc_address)
    await person.join(channel)
    yield person
    await person.close()


async def test_each_user_line_is_a_flow_named_by_its_command(
    irc_address: str, channel: str, user: RawUser
) -> None:
    with capture() as recorded:
        bot = await start_bot(irc_address, channel)
        try:
            await asyncio.sleep(0.2)  # the bot's JOIN reaches the user
            for _ in range(3):
                mark = len(user.lines)
                user.say(channel, "!ping")
                await user.wait_for("pong", start=mark)
            user.say(channel, "!boom")
            user.say(channel, "hello everyone")
            user.say(channel, "!ping")
            await user.wait_for("pong", start=mark + 1)
            await asyncio.sleep(0.1)
        finally:
            await bot.disconnect()
        assert recorded.count("ping", kind="flow", status="ok") == 4
        assert recorded.count("boom", kind="flow", status="error") == 1
        assert recorded.count("irc.privmsg", kind="flow", status="ok") == 1  # no command
        # the bot's own "pong"s reached on_channel_message but are not user traffic
        assert bot.own_messages_seen == 4
        assert recorded.count("*", kind="flow") == 6
        trace = recorded.traces("ping")[0]
        assert child_names(trace) == [("db.lookup", "db", "ok")]
        assert 0 <= trace.attrs["queue_delay_ms"] < 1000
        assert recorded.traces("boom")[0].error == "RuntimeError"


async def test_a_failing_hook_never_breaks_the_bot(
    irc_address: str, channel: str, user: RawUser, lenient: Lenient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def broken() -> int:
        raise ValueError("botpulse bug")

    with capture():
        bot = await start_bot(irc_address, channel)
        monkeypatch.setattr(bp_irc, "now_ns", broken)
        try:
            await asyncio.sleep(0.2)
            user.say(channel, "!ping")
            await user.wait_for("pong")
        finally:
            await bot.disconnect()
    assert lenient.errors >= 1


async def test_admin_commands_answer_owners_in_short_lines(
    irc_address: str, channel: str, user: RawUser
) -> None:
    stranger = RawUser(nick("eve"))
    await stranger.connect(irc_address)
    await stranger.join(channel)
    with capture() as recorded:
        bot = await start_bot(
            irc_address, channel, admin=AdminCommands(owner_ids=[user.nick.upper()])
        )
        try:
            await asyncio.sleep(0.2)
            user.say(channel, "!ping")
            await user.wait_for("pong")
            recorded.flush()
            stranger.say(channel, "!performance")
            stranger.say(bot.nickname, "!health")
            mark = len(user.lines)
            user.say(bot.nickname, "!performance")
            await user.wait_for("dropped events", "waterfall", "█", start=mark)
            user.say(channel, "!health")
            await user.wait_for(":dropped: ", start=mark)
            await asyncio.sleep(0.2)
        finally:
            await bot.disconnect()
            await stranger.close()
    notices = [line for line in user.lines[mark:] if " NOTICE " in line]
    text = [line.split(" :", 1)[1] for line in notices]
    assert text[0] == "botpulse performance, last 1h:"
    row = next(line for line in text if line.startswith("ping "))
    assert row.split()[1] == "1"
    assert any(line.startswith("slowest: ping") for line in text)
    for label in ("uptime", "rss", "cpu", "loop lag", "store", "events", "dropped"):
        assert any(line.startswith(f"{label}: ") for line in text)
    assert all(len(line.encode()) <= 512 for line in notices)
    assert not [line for line in stranger.lines if " NOTICE " in line and "botpulse" in line]


def test_the_decorator_opens_a_flow_in_hand_written_bots() -> None:
    @bp_irc.command("roll")
    def roll(sides: int) -> int:
        with botpulse.measure("rng", kind="op"):
            return sides

    @bp_irc.command("fail")
    async def fail() -> None:
        raise KeyError("x")

    with capture() as recorded:
        assert roll(6) == 6
        with pytest.raises(KeyError):
            asyncio.run(fail())
        assert recorded.count("roll", kind="flow", status="ok") == 1
        assert child_names(recorded.traces("roll")[0]) == [("rng", "op", "ok")]
        assert recorded.count("fail", kind="flow", status="error") == 1


async def test_jaraco_irc_reactor_events_are_flows(
    irc_address: str, channel: str, user: RawUser
) -> None:
    irc_client = pytest.importorskip("irc.client_aio")
    host, port = irc_address.rsplit(":", 1)

    class Jaraco(irc_client.AioSimpleIRCClient):  # type: ignore[name-defined,misc]
        def on_welcome(self, connection: Any, event: Any) -> None:
            connection.join(channel)

        def on_join(self, connection: Any, event: Any) -> None:
            joined.set()

        def on_pubmsg(self, connection: Any, event: Any) -> None:
            if event.arguments[0] == "!ping":
                with botpulse.measure("db.lookup", kind="db"):
                    pass
                connection.privmsg(channel, "pong")

    joined = asyncio.Event()
    with capture() as recorded:
        client = Jaraco()
        bp_irc.instrument_reactor(client.reactor)
        await client.connection.connect(host, int(port), nick("jar"))
        try:
            await asyncio.wait_for(joined.wait(), 10)
            await asyncio.sleep(0.2)
            mark = len(user.lines)
            user.say(channel, "!ping")
            await user.wait_for("pong", start=mark)
        finally:
            client.connection.disconnect()
        assert recorded.count("irc.pubmsg", kind="flow") == 1
        assert child_names(recorded.traces("irc.pubmsg")[0]) == [("db.lookup", "db", "ok")]
