"""Issue 6 end to end: an aiogram-style photo handler on a real asyncio loop, read back
through the report: per-flow steps, a tag split, the thread-pool child, handled failures
and a name given after routing."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import botpulse
from botpulse.analysis import build_report
from botpulse.testing import capture

CACHE: dict[int, bytes] = {}


def colorize(photo: int) -> bytes:  # runs in the bot's model thread pool
    with botpulse.measure("model.colorize"):
        time.sleep(0.002)
    return bytes([photo % 256])


async def handle_update(update: dict[str, object]) -> None:
    # The bot knows which command this is only after parsing: the flow is renamed then.
    async with botpulse.flow("update") as f:
        with botpulse.measure("db.user", kind="db"):
            await asyncio.sleep(0)
        command = str(update["text"]).split()[0].lstrip("/")
        f.rename(command)
        if command != "colorize":
            return
        photo = int(update["photo"])  # type: ignore[call-overload]
        if photo in CACHE:
            botpulse.tag(cache="hit")
        else:
            botpulse.tag(cache="miss")
            loop = asyncio.get_running_loop()
            CACHE[photo] = await loop.run_in_executor(None, colorize, photo)
        try:
            with botpulse.measure("tg.send_photo", kind="http"):
                if photo == 13:
                    raise ConnectionError("Telegram unreachable")
        except ConnectionError as exc:  # the bot answers "try again" instead
            botpulse.fail(type(exc).__name__)


def test_photo_handler_report() -> None:
    CACHE.clear()
    updates = [{"text": "/colorize", "photo": p} for p in (1, 2, 1, 1, 13, 2)]
    updates += [{"text": "/help"}] * 2

    async def bot() -> None:
        for update in updates:  # one after the other, so the cache fills as it would
            await handle_update(update)
        await asyncio.gather(*(handle_update(u) for u in updates[-2:]))  # and concurrently

    with capture() as recorded:
        asyncio.run(bot())
        recorded.flush()
        now = datetime.now(timezone.utc)
        report = build_report(
            recorded.store, now - timedelta(minutes=5), now + timedelta(minutes=1), by="cache"
        ).to_dict()
    flows = {op["name"]: op for op in report["operations"] if op["kind"] == "flow"}
    assert set(flows) == {"colorize", "help"}  # named after routing, never "update"
    assert flows["help"]["count"] == 4
    assert (flows["colorize"]["count"], flows["colorize"]["errors"]) == (6, 1)
    steps = {(s["flow"], s["name"]): s for s in report["steps"]}
    assert steps["colorize", "db.user"]["per_run"] == 1.0
    assert steps["help", "db.user"]["count"] == 4
    # The colorization ran in the default executor's thread and still belongs to the flow.
    assert steps["colorize", "model.colorize"]["count"] == 3  # photos 1, 2 and 13 missed
    assert steps["colorize", "tg.send_photo"]["errors"] == 1
    assert 0 < steps["colorize", "model.colorize"]["share"] < 1
    splits = {(s["name"], s["tags"]["cache"]): s["count"] for s in report["splits"]}
    assert splits == {("colorize", "hit"): 3, ("colorize", "miss"): 3}
    (failed,) = report["failed_flows"]
    assert (failed["name"], failed["error"]) == ("colorize", "ConnectionError")
    assert [c["name"] for c in failed["children"]] == [
        "db.user",
        "model.colorize",
        "tg.send_photo",
    ]
