"""A small aiogram 3 bot timed by botpulse. Run: TELEGRAM_TOKEN=... python examples/aiogram_bot.py

Owners (BOTPULSE_OWNER_IDS, Telegram user ids) can send /performance and /health.
"""

from __future__ import annotations

import asyncio
import os

from aiogram import Bot, Dispatcher
from aiogram.filters import CommandStart
from aiogram.types import Message

import botpulse
import botpulse.integrations.aiogram
from botpulse.integrations.admin import AdminCommands

dp = Dispatcher()


@dp.message(CommandStart())
async def start(message: Message) -> None:
    with botpulse.measure("db.load_profile", kind="db"):
        await asyncio.sleep(0.01)
    await message.answer("hello!")


async def main() -> None:
    # botpulse setup: these three lines.
    botpulse.init(service="aiogram-example")
    owners = os.environ.get("BOTPULSE_OWNER_IDS", "0").split(",")
    botpulse.integrations.aiogram.instrument(dp, admin=AdminCommands(owner_ids=owners))
    await dp.start_polling(Bot(os.environ["TELEGRAM_TOKEN"]))


if __name__ == "__main__":
    asyncio.run(main())
