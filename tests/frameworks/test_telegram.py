"""aiogram and python-telegram-bot run decorated handlers with the arguments their signatures ask for.

Both frameworks read the handler's signature to decide what to pass (aiogram passes
only the keyword arguments a handler names; python-telegram-bot checks it is a
coroutine function). Driven offline through a real Dispatcher and a real Application;
only the Telegram Bot API server is replaced (python-telegram-bot's request object
answers ``getMe``; aiogram's handlers never call the API here).
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from typing import Any

from aiogram import Bot as AiogramBot
from aiogram import Dispatcher, Router
from aiogram.filters import Command
from aiogram.types import Message as AiogramMessage
from aiogram.types import Update as AiogramUpdate
from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes
from telegram.request import BaseRequest, RequestData

import botpulse
from botpulse.testing import capture

TOKEN = "123456:TEST-token-for-offline-tests"


class Greeter:
    """A dependency only this module defines (aiogram passes it from workflow data)."""

    def greet(self, name: str) -> str:
        return f"hello {name}"


def _message_payload(text: str) -> dict[str, Any]:
    return {
        "message_id": 1,
        "date": int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp()),
        "chat": {"id": 10, "type": "private"},
        "from": {"id": 10, "is_bot": False, "first_name": "Ann"},
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
    }


async def test_aiogram_handler_gets_the_arguments_its_signature_names() -> None:
    router = Router()
    seen: list[str] = []

    @router.message(Command("start"))
    @botpulse.flow("tg.start")
    async def start(message: AiogramMessage, greeter: Greeter) -> str:
        seen.append(greeter.greet(message.from_user.first_name if message.from_user else "?"))
        return "handled"

    hints = typing.get_type_hints(start)
    assert hints["greeter"] is Greeter
    assert hints["message"] is AiogramMessage

    dispatcher = Dispatcher(greeter=Greeter())
    dispatcher.include_router(router)
    bot = AiogramBot(TOKEN)
    update = AiogramUpdate.model_validate({"update_id": 1, "message": _message_payload("/start")})
    with capture() as recorded:
        result = await dispatcher.feed_update(bot, update)
        assert result == "handled"
        assert seen == ["hello Ann"]
        assert recorded.count("tg.start", kind="flow") == 1
    await bot.session.close()


class _GetMeOnly(BaseRequest):
    """Stands in for the Telegram Bot API: answers getMe, refuses anything else."""

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        assert url.endswith("/getMe"), url
        me = {"id": 123456, "is_bot": True, "first_name": "Test", "username": "test_bot"}
        return 200, json.dumps({"ok": True, "result": me}).encode()


async def test_python_telegram_bot_command_handler_runs_the_decorated_callback() -> None:
    seen: list[tuple[str, list[str]]] = []

    @botpulse.flow("tg.echo")
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        seen.append((update.effective_message.text or "", list(context.args or [])))

    hints = typing.get_type_hints(echo)
    assert hints["update"] is Update

    request = _GetMeOnly()
    app = Application.builder().token(TOKEN).request(request).get_updates_request(request)
    application = app.updater(None).build()
    application.add_handler(CommandHandler("echo", echo))
    with capture() as recorded:
        async with application:
            update = Update.de_json(
                {"update_id": 2, "message": _message_payload("/echo one two")}, application.bot
            )
            await application.process_update(update)
        assert seen == [("/echo one two", ["one", "two"])]
        assert recorded.count("tg.echo", kind="flow") == 1
