"""A small python-telegram-bot bot timed by botpulse.

Run: TELEGRAM_TOKEN=... python examples/telegram_bot.py

Owners (BOTPULSE_OWNER_IDS, Telegram user ids) can send /performance and /health.
"""

from __future__ import annotations

import asyncio
import os

from telegram import Update
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

import botpulse
import botpulse.integrations.telegram
from botpulse.integrations.admin import AdminCommands


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    with botpulse.measure("db.load_profile", kind="db"):
        await asyncio.sleep(0.01)
    if update.effective_message is not None:
        await update.effective_message.reply_text("hello!")


def main() -> None:
    app = ApplicationBuilder().token(os.environ["TELEGRAM_TOKEN"]).build()
    app.add_handler(CommandHandler("start", start))
    # botpulse setup: these three lines.
    botpulse.init(service="telegram-example")
    owners = os.environ.get("BOTPULSE_OWNER_IDS", "0").split(",")
    botpulse.integrations.telegram.instrument(app, admin=AdminCommands(owner_ids=owners))
    app.run_polling()


if __name__ == "__main__":
    main()
