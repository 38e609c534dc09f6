"""aiogram 3 driven offline: Dispatcher.feed_update with a mocked Bot API session."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator
from typing import Any

import pytest

pytest.importorskip("aiogram")

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.base import BaseSession
from aiogram.filters import Command
from aiogram.methods import TelegramMethod
from aiogram.types import ErrorEvent, Message, Update

import botpulse
from botpulse import ManualClock
from botpulse.integrations import _common
from botpulse.integrations import aiogram as bp_aiogram
from botpulse.integrations.admin import AdminCommands
from botpulse.testing import capture

from .conftest import Lenient, child_names

OWNER, STRANGER, CHAT = 42, 7, 1000


class FakeSession(BaseSession):
    """The Bot API without a network: answers sendMessage, 429 for the text "flood"."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        payload = method.model_dump(exclude_none=True)
        name = method.__api_method__
        await asyncio.sleep(0.001)
        if name == "sendMessage" and payload.get("text") == "flood":
            body = {"ok": False, "error_code": 429, "description": "Too Many Requests",
                    "parameters": {"retry_after": 3}}  # fmt: skip
            return self.check_response(bot, method, 429, json.dumps(body))
        self.sent.append({"method": name, **payload})
        result = {"message_id": len(self.sent), "date": int(time.time()),
                  "chat": {"id": payload.get("chat_id", CHAT), "type": "private"},
                  "text": payload.get("text", "")}  # fmt: skip
        return self.check_response(bot, method, 200, json.dumps({"ok": True, "result": result}))

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        yield b""


def update(update_id: int, text: str, *, user: int = OWNER, age_s: float = 0.0) -> Update:
    return Update.model_validate(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": int(time.time() - age_s),
                "chat": {"id": CHAT, "type": "private"},
                "from": {"id": user, "is_bot": False, "first_name": "U"},
                "text": text,
            },
        }
    )


def make_bot() -> tuple[Dispatcher, Bot, FakeSession, list[str]]:
    session = FakeSession()
    bot = Bot("123456:SECRET-TOKEN", session=session)
    dp = Dispatcher()
    router = Router(name="games")
    errors: list[str] = []

    @router.message(Command("start"))
    async def start(message: Message) -> None:
        with botpulse.measure("db.load_player", kind="db"):
            await asyncio.sleep(0.002)
        await message.answer("hello")

    @router.message(Command("flood"))
    async def flood(message: Message) -> None:
        await message.answer("flood")

    @router.message(Command("boom"))
    async def boom(message: Message) -> None:
        raise RuntimeError("handler bug")

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        errors.append(type(event.exception).__name__)
        return True

    dp.include_router(router)
    return dp, bot, session, errors


async def test_each_update_is_a_flow_named_by_its_handler_with_children_inside() -> None:
    dp, bot, session, errors = make_bot()
    bp_aiogram.instrument(dp)
    with capture() as recorded:
        await dp.feed_update(bot, update(1, "/start", age_s=2))
        await dp.feed_update(bot, update(2, "no command here"))
        await dp.feed_update(bot, update(3, "/boom"))
        await dp.feed_update(bot, update(4, "/flood"))
        assert recorded.count("start", kind="flow", status="ok") == 1
        assert recorded.count("unhandled.message", kind="flow", status="ok") == 1
        assert recorded.count("boom", kind="flow", status="error") == 1
        assert recorded.count("flood", kind="flow", status="error") == 1
        assert recorded.count("sendMessage", kind="http", status="ok") == 1
        assert recorded.count("sendMessage", kind="http", status="error") == 1
        start = recorded.traces("start")[0]
        assert child_names(start) == [("db.load_player", "db", "ok"), ("sendMessage", "http", "ok")]
        assert start.attrs["queue_delay_ms"] >= 1000
        boom = recorded.traces("boom")[0]
        assert boom.error == "RuntimeError"
        flood = recorded.traces("flood")[0]
        assert flood.error == "TelegramRetryAfter"
        assert flood.attrs["retry_after_s"] == 3
        assert [c.attrs.get("status") for c in flood.children] == [429]
        for trace in recorded.traces():
            assert "SECRET" not in repr(trace)
    assert errors == ["RuntimeError", "TelegramRetryAfter"]  # the bot's own error handler still ran
    assert [s["text"] for s in session.sent] == ["hello"]


async def test_concurrent_updates_keep_their_own_api_calls() -> None:
    dp, bot, _session, _errors = make_bot()
    bp_aiogram.instrument(dp)
    bp_aiogram.instrument(dp)  # twice: still one flow per update
    with capture() as recorded:
        await asyncio.gather(*(dp.feed_update(bot, update(10 + i, "/start")) for i in range(5)))
        traces = recorded.traces("start")
        assert len(traces) == 5
        assert recorded.count("start", kind="flow") == 5
        for trace in traces:
            assert child_names(trace) == [
                ("db.load_player", "db", "ok"),
                ("sendMessage", "http", "ok"),
            ]


async def test_durations_follow_the_injected_clock() -> None:
    clock = ManualClock()
    dp = Dispatcher()

    @dp.message(Command("slow"))
    async def slow(message: Message) -> None:
        clock.advance(0.25)

    bp_aiogram.instrument(dp)
    bot = Bot("123456:SECRET-TOKEN", session=FakeSession())
    with capture(clock=clock) as recorded:
        await dp.feed_update(bot, update(1, "/slow"))
        (trace,) = recorded.traces("slow")
        assert trace.duration_ns == 250_000_000


async def test_a_failing_hook_never_breaks_the_dispatcher(
    lenient: Lenient, monkeypatch: pytest.MonkeyPatch
) -> None:
    dp, bot, session, _errors = make_bot()
    bp_aiogram.instrument(dp)

    def broken(sent: Any) -> float:
        raise ValueError("botpulse bug")

    monkeypatch.setattr(bp_aiogram, "age_ms", broken)
    with capture():
        await dp.feed_update(bot, update(1, "/start"))
    assert [s["text"] for s in session.sent] == ["hello"]
    assert lenient.errors == 1


async def test_admin_commands_answer_owners_only_in_html() -> None:
    dp, bot, session, _errors = make_bot()
    admin = AdminCommands(owner_ids=[OWNER])
    bp_aiogram.instrument(dp, admin=admin)
    with capture() as recorded:
        for i in range(3):
            await dp.feed_update(bot, update(i, "/start"))
        recorded.flush()
        await dp.feed_update(bot, update(10, "/performance", user=STRANGER))
        await dp.feed_update(bot, update(11, "/health", user=STRANGER))
        assert [s["text"] for s in session.sent] == ["hello"] * 3
        await dp.feed_update(bot, update(12, "/performance"))
        await dp.feed_update(bot, update(13, "/health"))
    performance, health = session.sent[3]["text"], session.sent[4]["text"]
    assert session.sent[3]["parse_mode"] == "HTML"
    assert performance.startswith("<b>botpulse performance</b>, last 1h")
    assert "<pre>flow" in performance
    table_row = next(line for line in performance.splitlines() if line.startswith("start "))
    assert table_row.split()[1] == "3"
    assert "<b>Slowest:</b> start" in performance
    assert "db db.load_player" in performance  # the waterfall names the step and its kind
    assert health.startswith("<b>botpulse health</b>")
    for label in ("uptime", "rss", "cpu", "loop lag", "store", "events", "dropped"):
        assert f"<b>{label}</b>: " in health
    assert "ok memory://" in health


def test_owner_ids_are_required() -> None:
    with pytest.raises(botpulse.ConfigurationError, match="owner_ids"):
        AdminCommands(owner_ids=[])


def test_queue_delay_uses_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "wall_time", lambda: 1000.5)
    assert _common.age_ms(1000.0) == 500.0
    assert _common.age_ms(None) is None
    assert _common.age_ms("x") is None


async def test_performance_says_when_the_store_cannot_be_read(tmp_path: Any) -> None:
    from botpulse.integrations.admin import performance_lines, performance_telegram_html

    admin = AdminCommands(owner_ids=[OWNER], store=f"sqlite:///{tmp_path / 'missing.db'}")
    view = await admin.performance()
    assert view.error is not None
    assert view.flows == []
    assert performance_lines(view)[1].startswith("store unavailable: ")
    assert "<b>store unavailable</b>" in performance_telegram_html(view)
    health = await admin.health()
    assert not health.store_ok
