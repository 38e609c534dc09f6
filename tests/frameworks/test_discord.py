"""discord.py resolves decorated commands' string annotations: prefix commands and app commands.

Driven offline: a real ``commands.Bot`` parses and converts a command's arguments with a
custom converter defined in this module and runs the callback; a real app-command tree
builds the command's options from its annotations (discord.py reads them in the
callback's ``__globals__``) and runs it. No gateway, no HTTP: only the message and the
interaction are stand-ins, since the Discord server cannot run here.
"""

from __future__ import annotations

import enum
from types import SimpleNamespace
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands
from discord.ext.commands.view import StringView

import botpulse
from botpulse.testing import capture


class Item:
    def __init__(self, name: str) -> None:
        self.name = name


class ItemConverter(commands.Converter[Item]):
    """A custom converter only this module defines."""

    async def convert(self, ctx: commands.Context[Any], argument: str) -> Item:
        return Item(argument.upper())


class Colour(enum.Enum):
    red = 1
    blue = 2


def _bot() -> commands.Bot:
    return commands.Bot(command_prefix="!", intents=discord.Intents.none())


async def test_prefix_command_with_custom_converter() -> None:
    bot = _bot()
    seen: list[tuple[str, int]] = []

    @bot.command(name="buy")
    @botpulse.flow("discord.buy")
    async def buy(ctx: commands.Context[Any], item: ItemConverter, count: int = 1) -> None:
        seen.append((item.name, count))  # type: ignore[attr-defined]

    command = bot.get_command("buy")
    assert command is not None
    assert command.params["item"].converter is ItemConverter
    assert command.params["count"].converter is int
    assert command.signature == "<item> [count=1]"

    with capture() as recorded:
        message = SimpleNamespace(
            content="!buy sword 3",
            author=None,
            guild=None,
            channel=None,
            attachments=[],
            _state=bot._connection,
        )
        ctx: commands.Context[Any] = commands.Context(
            message=message,  # type: ignore[arg-type]
            bot=bot,
            view=StringView("sword 3"),
            prefix="!",
            invoked_with="buy",
            command=command,
        )
        await command.invoke(ctx)
        assert seen == [("SWORD", 3)]
        assert recorded.count("discord.buy", kind="flow") == 1
    await bot.close()


async def test_app_command_options_come_from_the_annotations() -> None:
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    seen: list[tuple[Colour, int]] = []

    @tree.command(name="paint", description="Paint something")
    @botpulse.flow("discord.paint")
    async def paint(interaction: discord.Interaction, colour: Colour, layers: int = 1) -> None:
        seen.append((colour, layers))

    command = tree.get_command("paint")
    assert isinstance(command, app_commands.Command)
    options = {o["name"]: o for o in command.to_dict(tree)["options"]}
    assert options["colour"]["type"] == discord.AppCommandOptionType.integer.value
    assert [c["name"] for c in options["colour"]["choices"]] == ["red", "blue"]
    assert options["layers"]["type"] == discord.AppCommandOptionType.integer.value
    assert options["layers"]["required"] is False

    with capture() as recorded:
        await command.callback(SimpleNamespace(), Colour.blue, 2)  # type: ignore[arg-type]
        assert seen == [(Colour.blue, 2)]
        assert recorded.count("discord.paint", kind="flow") == 1
    await client.close()
