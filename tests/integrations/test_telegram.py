"""python-telegram-bot driven offline: a real Application with a custom request class."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

pytest.importorskip("telegram")

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest, RequestData

import botpulse
from botpulse.integrations import telegram as bp_telegram
from botpulse.integrations.admin import AdminCommands
from botpulse.testing import capture

from .conftest import Lenient, child_names

# PTB warns about its own RetryAfter.retry_after type change when it raises one.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TOKEN = "123456:SECRET-TOKEN"
OWNER, STRANGER, CHAT = 42, 7, 1000


class FakeRequest(BaseRequest):
    """The Bot API without a network: getMe, sendMessage; 429 for the text "flood"."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.urls: list[str] = []

    @property
    def read_timeout(self) -> float | None:
        return 5.0

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
        self.urls.append(url)
        endpoint = url.rsplit("/", 1)[-1]
        params = request_data.parameters if request_data else {}
        await asyncio.sleep(0.001)
        if endpoint == "getMe":
            result: Any = {"id": 1, "is_bot": True, "first_name": "B", "username": "b_bot"}
        elif endpoint == "sendMessage":
            if params.get("text") == "flood":
                body = {"ok": False, "error_code": 429, "description": "Too Many Requests",
                        "parameters": {"retry_after": 3}}  # fmt: skip
                return 429, json.dumps(body).encode()
            self.sent.append(dict(params))
            result = {"message_id": len(self.sent), "date": int(time.time()),
                      "chat": {"id": CHAT, "type": "private"}, "text": params.get("text")}  # fmt: skip
        else:
            result = True
        return 200, json.dumps({"ok": True, "result": result}).encode()


def update(app: Application[Any, Any, Any, Any, Any, Any], update_id: int, text: str,
           *, user: int = OWNER, age_s: float = 0.0) -> Update:  # fmt: skip
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": int(time.time() - age_s),
                "chat": {"id": CHAT, "type": "private"},
                "from": {"id": user, "is_bot": False, "first_name": "U"},
                "text": text,
                "entities": (
                    [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
                    if text.startswith("/")
                    else []
                ),
            },
        },
        app.bot,
    )


def build(concurrent: int = 1) -> tuple[Application[Any, Any, Any, Any, Any, Any], FakeRequest, list[str]]:  # fmt: skip
    request = FakeRequest()
    app = (
        ApplicationBuilder().token(TOKEN).request(request).updater(None)
        .concurrent_updates(concurrent).build()
    )  # fmt: skip
    errors: list[str] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        with botpulse.measure("db.load_player", kind="db"):
            await asyncio.sleep(0.002)
        assert update.effective_message is not None
        await update.effective_message.reply_text("hello")

    async def background(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await asyncio.sleep(0.05)
        with botpulse.measure("db.slow_report", kind="db"):
            await asyncio.sleep(0.002)
        assert update.effective_message is not None
        await update.effective_message.reply_text("done")

    async def boom(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        raise RuntimeError("handler bug")

    async def flood(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("flood")

    async def audit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        return None  # a TypeHandler that sees every update, as bots use for logging

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        errors.append(type(context.error).__name__)

    app.add_handler(TypeHandler(Update, audit), group=-1)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("bg", background, block=False))
    app.add_handler(CommandHandler("boom", boom))
    app.add_handler(CommandHandler("flood", flood))
    app.add_error_handler(on_error)
    return app, request, errors


async def run(app: Application[Any, Any, Any, Any, Any, Any], updates: list[Update]) -> None:
    """Feed updates through the update queue, as polling and webhooks do."""
    await app.initialize()
    await app.start()
    for item in updates:
        await app.update_queue.put(item)
    await app.update_queue.join()
    await app.stop()
    await app.shutdown()


async def test_each_update_is_a_flow_named_by_its_handler() -> None:
    app, request, errors = build()
    bp_telegram.instrument(app)
    with capture() as recorded:
        await run(app, [
            update(app, 1, "/start", age_s=2), update(app, 2, "just chatting"),
            update(app, 3, "/boom"), update(app, 4, "/flood"),
        ])  # fmt: skip
        assert recorded.count("start", kind="flow", status="ok") == 1
        assert recorded.count("audit", kind="flow") == 1  # only a TypeHandler took it
        assert recorded.count("boom", kind="flow", status="error") == 1
        assert recorded.count("flood", kind="flow", status="error") == 1
        assert recorded.count("getMe", kind="http") == 1  # initialize(), outside any flow
        start = recorded.traces("start")[0]
        assert child_names(start) == [("db.load_player", "db", "ok"), ("sendMessage", "http", "ok")]
        assert start.attrs["queue_delay_ms"] >= 1000
        assert recorded.traces("boom")[0].error == "RuntimeError"
        flood = recorded.traces("flood")[0]
        assert flood.error == "RetryAfter"
        assert flood.attrs["retry_after_s"] == 3
        assert child_names(flood) == [("sendMessage", "http", "error")]
        assert "SECRET" not in repr(recorded.traces()) + repr(recorded.names())
    assert errors == ["RuntimeError", "RetryAfter"]
    assert [s["text"] for s in request.sent] == ["hello"]


async def test_unhandled_updates_are_counted_apart() -> None:
    request = FakeRequest()
    app = ApplicationBuilder().token(TOKEN).request(request).updater(None).build()
    app.add_handler(CommandHandler("start", lambda u, c: asyncio.sleep(0)))
    bp_telegram.instrument(app)
    with capture() as recorded:
        await run(app, [update(app, 1, "hello?")])
        assert recorded.count("unhandled.message", kind="flow") == 1


async def test_block_false_handlers_and_concurrent_updates_are_timed_end_to_end() -> None:
    app, request, _errors = build(concurrent=4)
    bp_telegram.instrument(app)
    bp_telegram.instrument(app)  # twice: no double counting
    with capture() as recorded:
        await run(app, [update(app, 1, "/bg"), *(update(app, 10 + i, "/start") for i in range(4))])
        (bg,) = recorded.traces("background")
        assert bg.duration_ns >= 50_000_000  # the handler's own time, not the 0.1 ms dispatch
        assert bg.attrs["background"] is True
        assert child_names(bg) == [("db.slow_report", "db", "ok"), ("sendMessage", "http", "ok")]
        starts = recorded.traces("start")
        assert len(starts) == 4
        for trace in starts:
            assert child_names(trace) == [
                ("db.load_player", "db", "ok"),
                ("sendMessage", "http", "ok"),
            ]
    assert sorted(s["text"] for s in request.sent) == ["done"] + ["hello"] * 4


async def test_handlers_added_after_instrument_are_timed() -> None:
    request = FakeRequest()
    app = ApplicationBuilder().token(TOKEN).request(request).updater(None).build()
    bp_telegram.instrument(app)

    async def late(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        return None

    app.add_handler(MessageHandler(filters.TEXT, late))
    with capture() as recorded:
        await run(app, [update(app, 1, "hi")])
        assert recorded.count("late", kind="flow") == 1


async def test_a_failing_hook_never_breaks_polling(
    lenient: Lenient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, request, _errors = build()
    bp_telegram.instrument(app)

    def broken(sent: Any) -> float:
        raise ValueError("botpulse bug")

    monkeypatch.setattr(bp_telegram, "age_ms", broken)
    with capture():
        await run(app, [update(app, 1, "/start"), update(app, 2, "/start")])
    assert [s["text"] for s in request.sent] == ["hello", "hello"]  # the queue kept going
    assert lenient.errors == 2


async def test_admin_commands_answer_owners_only() -> None:
    app, request, _errors = build()
    bp_telegram.instrument(app, admin=AdminCommands(owner_ids=[OWNER]))
    with capture() as recorded:
        await run(app, [update(app, i, "/start") for i in range(3)])
        recorded.flush()
        app2_updates = [
            update(app, 10, "/performance", user=STRANGER),
            update(app, 11, "/health", user=STRANGER),
            update(app, 12, "/performance"),
            update(app, 13, "/health"),
        ]
        await run(app, app2_updates)
    texts = [s["text"] for s in request.sent]
    assert texts[:3] == ["hello"] * 3
    assert len(texts) == 5  # strangers got nothing
    performance, health = texts[3], texts[4]
    assert request.sent[3]["parse_mode"] == "HTML"
    assert performance.startswith("<b>botpulse performance</b>")
    row = next(line for line in performance.splitlines() if line.startswith("start "))
    assert row.split()[1] == "3"
    assert "<b>Slowest:</b> start" in performance
    assert health.startswith("<b>botpulse health</b>")
    assert "<b>store</b>: ok memory://" in health
