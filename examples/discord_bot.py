"""A small discord.py bot timed by botpulse. Run: DISCORD_TOKEN=... python examples/discord_bot.py

Then ``botpulse report --since 1h``; owners (BOTPULSE_OWNER_IDS) can also type
``!performance`` / ``!health`` or use the slash commands once synced (``!sync``).
"""

from __future__ import annotations

import asyncio
import os

import discord
from discord.ext import commands

import botpulse
import botpulse.integrations.discord
from botpulse.integrations.admin import AdminCommands

intents = discord.Intents.default()
intents.message_content = True
bot = commands.Bot(command_prefix="!", intents=intents)

# botpulse setup: these three lines.
botpulse.init(service="discord-example")
owners = [int(i) for i in os.environ.get("BOTPULSE_OWNER_IDS", "0").split(",")]
botpulse.integrations.discord.instrument(bot, admin=AdminCommands(owner_ids=owners))


@bot.command()
async def ping(ctx: commands.Context[commands.Bot]) -> None:
    with botpulse.measure("db.lookup", kind="db"):  # your own steps nest inside the command
        await asyncio.sleep(0.01)
    await ctx.send("pong")


@bot.tree.command(name="hello", description="Say hello")
async def hello(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("hi")


@bot.command()
@commands.is_owner()
async def sync(ctx: commands.Context[commands.Bot]) -> None:
    await bot.tree.sync()
    await ctx.send("slash commands synced")


if __name__ == "__main__":
    bot.run(os.environ["DISCORD_TOKEN"])
