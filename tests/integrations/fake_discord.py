"""A fake Discord REST API on 127.0.0.1 (aiohttp), and gateway payloads to feed a real bot.

The bot logs in against it for real (``Route.BASE`` points here), so discord.py's
HTTP client, rate-limit handling and interaction responses all run; gateway events
are handed to the bot's own parsers (``ConnectionState.parse_*``), the path a
websocket dispatch takes.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web
from discord import utils

_interaction_ids = itertools.count(1)  # snowflakes of one millisecond differ in the low bits
BOT_ID, APP_ID, OWNER_ID, STRANGER_ID, CHANNEL_ID = 1001, 1002, 42, 7, 3000


def user(user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name,
            "avatar": None, "bot": bot}  # fmt: skip


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses JSON only when Content-Type is exactly application/json.
    return web.Response(
        body=json.dumps(data).encode(), status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )  # fmt: skip


class FakeDiscord:
    """REST routes a bot needs; records what it was sent. ``flood`` texts get one 429."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.rate_limited = 0
        self._ids = itertools.count(5000)
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/api/v10/users/@me", self._me)
        app.router.add_get("/api/v10/oauth2/applications/@me", self._application)
        app.router.add_post("/api/v10/channels/{channel_id}/messages", self._send)
        app.router.add_post("/api/v10/interactions/{id}/{token}/callback", self._callback)
        app.router.add_post("/api/v10/webhooks/{app_id}/{token}", self._followup)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}/api/v10"
        return self.base

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _me(self, request: web.Request) -> web.Response:
        return _json(user(BOT_ID, "pulse", bot=True))

    async def _application(self, request: web.Request) -> web.Response:
        return _json({"id": str(APP_ID), "name": "pulse", "description": "", "icon": None,
                      "bot_public": True, "bot_require_code_grant": False,
                      "owner": user(OWNER_ID, "owner"), "verify_key": "k", "flags": 0})  # fmt: skip

    async def _send(self, request: web.Request) -> web.Response:
        payload = await request.json()
        if payload.get("content") == "flood" and not self.rate_limited:
            self.rate_limited += 1
            body = {"message": "You are being rate limited.", "retry_after": 0.05, "global": False}
            headers = {"Via": "1.1 google", "Retry-After": "0.05", "X-RateLimit-Scope": "user"}
            return _json(body, 429, headers)
        self.messages.append(payload)
        return _json(message(int(request.match_info["channel_id"]), payload.get("content") or "",
                             author=user(BOT_ID, "pulse", bot=True), message_id=next(self._ids)))  # fmt: skip

    async def _callback(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.responses.append(payload)
        return _json({"interaction": {"id": request.match_info["id"], "type": 2},
                      "resource": {"type": payload.get("type", 4)}})  # fmt: skip

    async def _followup(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.messages.append(payload)
        return _json(message(CHANNEL_ID, payload.get("content") or "",
                             author=user(BOT_ID, "pulse", bot=True), message_id=next(self._ids)))  # fmt: skip


def message(channel_id: int, content: str, *, author: dict[str, Any] | None = None,
            message_id: int = 1) -> dict[str, Any]:  # fmt: skip
    return {
        "id": str(message_id), "channel_id": str(channel_id),
        "author": author or user(OWNER_ID, "owner"), "content": content,
        "timestamp": datetime.now(timezone.utc).isoformat(), "edited_timestamp": None,
        "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": [], "pinned": False, "type": 0,
    }  # fmt: skip


def interaction(kind: int, data: dict[str, Any], *, user_id: int = OWNER_ID,
                age_s: float = 0.0, with_message: bool = False) -> dict[str, Any]:  # fmt: skip
    created = datetime.now(timezone.utc) - timedelta(seconds=age_s)
    payload: dict[str, Any] = {
        "id": str(utils.time_snowflake(created) + next(_interaction_ids)), "application_id": str(APP_ID), "type": kind,
        "token": "INTERACTION-TOKEN-SECRET", "version": 1, "data": data,
        "channel_id": str(CHANNEL_ID), "channel": {"id": str(CHANNEL_ID), "type": 1},
        "user": user(user_id, "someone"), "locale": "en-US", "app_permissions": "0",
        "entitlements": [], "authorizing_integration_owners": {}, "context": 1,
        "attachment_size_limit": 1000000,
    }  # fmt: skip
    if with_message:
        payload["message"] = message(CHANNEL_ID, "menu", author=user(BOT_ID, "pulse", bot=True))
    return payload


def slash(name: str, **kwargs: Any) -> dict[str, Any]:
    return interaction(2, {"id": "77", "name": name, "type": 1}, **kwargs)


def button(custom_id: str, **kwargs: Any) -> dict[str, Any]:
    return interaction(
        3, {"custom_id": custom_id, "component_type": 2}, with_message=True, **kwargs
    )
