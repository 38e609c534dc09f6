"""aiogram 3: a flow per update, named by the handler that took it, and its Bot API calls.

One line after ``botpulse.init()``::

    botpulse.integrations.aiogram.instrument(dp)

- An outer middleware on ``dp.update`` opens a flow per update (``handled``,
  ``unhandled`` or ``error``, with the exception's type, seen before ``@dp.errors()``
  handles it) with ``queue_delay_ms`` from the message date to handling start.
- Each handler is wrapped so that, once aiogram has routed the update, the flow is
  renamed to the handler's function name with its router as tag ``router`` (routers
  included after ``instrument()`` are wrapped when polling starts).
  Updates no handler took are named ``unhandled.<event type>``.
- A request middleware, added to each bot's session the first time it is seen, records
  Bot API calls as ``http`` operations named by the method (``sendMessage``), never the
  token, with ``retry_after`` when Telegram answers 429.

``admin=AdminCommands(...)`` adds ``/performance`` and ``/health`` for the owners.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._capture import Flow, current_flow, now_ns, record_operation
from ._common import age_ms, hook_error, require

require("aiogram", "aiogram")

from aiogram import BaseMiddleware, Bot, Dispatcher, Router  # noqa: E402
from aiogram.client.session.middlewares.base import (  # noqa: E402
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.dispatcher.event.bases import UNHANDLED  # noqa: E402
from aiogram.filters import Command  # noqa: E402
from aiogram.types import Message, TelegramObject, Update  # noqa: E402

if TYPE_CHECKING:
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import Response

    from .admin import AdminCommands

__all__ = ["ApiCallTimer", "UpdateTimer", "admin_router", "instrument", "wrap_handlers"]

_MARK = "_botpulse_instrumented"


class UpdateTimer(BaseMiddleware):
    """Outer update middleware: one flow per update, end to end."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        flow = _open_flow(event, data)
        if flow is None:
            return await handler(event, data)
        with flow:
            result = await handler(event, data)
            if result is UNHANDLED:
                _unhandled(flow)
            return result


def _open_flow(event: TelegramObject, data: dict[str, Any]) -> Flow | None:
    try:
        bot = data.get("bot")
        if bot is not None and not getattr(bot.session, _MARK, False):
            bot.session.middleware(ApiCallTimer())
            setattr(bot.session, _MARK, True)
        event_type, inner = _event_of(event)
        chat = getattr(inner, "chat", None)
        tags = {"update": event_type}
        if chat is not None:
            tags["chat_type"] = chat.type or "unknown"
        delay = age_ms(getattr(inner, "date", None))
        if delay is None:
            return Flow(f"telegram.{event_type}", tags=tags)
        return Flow(f"telegram.{event_type}", tags=tags, queue_delay_ms=round(delay, 3))
    except Exception as exc:  # noqa: BLE001 - never break the dispatcher
        hook_error("aiogram.update", exc)
        return None


_COMMON_TYPES = ("message", "callback_query", "edited_message", "inline_query")


def _event_of(update: TelegramObject) -> tuple[str, Any]:
    """The update's type and payload, read directly: ``Update.event_type``/``.event`` are
    cached by aiogram with an ``lru_cache`` that compares whole pydantic models."""
    if not isinstance(update, Update):
        return "update", None
    for field in _COMMON_TYPES:
        inner = getattr(update, field)
        if inner is not None:
            return field, inner
    event_type = update.event_type
    return event_type, getattr(update, event_type, None)


def _unhandled(flow: Flow) -> None:
    try:
        flow.rename(f"unhandled.{flow.tags.get('update', 'update')}")
        flow.set(handled=False)
    except Exception as exc:  # noqa: BLE001
        hook_error("aiogram.unhandled", exc)


def _name_flow(name: str, router: str) -> None:
    try:
        flow = current_flow()
        if flow is not None:
            flow.rename(name)
            flow.tags["router"] = router
    except Exception as exc:  # noqa: BLE001
        hook_error("aiogram.handler", exc)


def wrap_handlers(router: Router) -> None:
    """Name flows after the handlers of ``router`` and its sub-routers (idempotent).

    :func:`instrument` calls it, and again when the dispatcher starts polling, so
    routers included later are covered too.
    """
    for observer_name, observer in router.observers.items():
        if observer_name in {"update", "error"}:
            continue
        for handler in observer.handlers:
            _wrap_handler(handler, router.name or "dispatcher")
    for sub_router in router.sub_routers:
        wrap_handlers(sub_router)


def _wrap_handler(handler: Any, router: str) -> None:
    callback = handler.callback
    if getattr(callback, _MARK, False):
        return
    name = getattr(callback, "__name__", None) or type(callback).__name__
    named: Any
    if handler.awaitable:

        async def named_async(*args: Any, **kwargs: Any) -> Any:
            _name_flow(name, router)
            return await callback(*args, **kwargs)

        named = named_async
    else:

        def named_sync(*args: Any, **kwargs: Any) -> Any:
            _name_flow(name, router)
            return callback(*args, **kwargs)

        named = named_sync
    setattr(named, _MARK, True)
    handler.callback = named


class ApiCallTimer(BaseRequestMiddleware):
    """Session middleware: each Bot API call as an ``http`` operation named by its method."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        start = now_ns()
        error: type[BaseException] | None = None
        try:
            return await make_request(bot, method)
        except BaseException as exc:
            error = type(exc)
            _note_retry(exc)
            raise
        finally:
            _record_call(method, start, error)


def _api_name(method: Any) -> str:
    name = getattr(method, "__api_method__", None) or type(method).__name__
    return str(name)


def _note_retry(exc: BaseException) -> None:
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        flow = current_flow()
        if flow is not None:
            flow.set(retry_after_s=retry_after)


def _record_call(method: Any, start: int, error: type[BaseException] | None) -> None:
    try:
        attrs: dict[str, Any] = {"api": "telegram"}
        if error is not None and error.__name__ == "TelegramRetryAfter":
            attrs["status"] = 429
        record_operation(_api_name(method), "http", start, now_ns(), error=error, attrs=attrs)
    except Exception as exc:  # noqa: BLE001
        hook_error("aiogram.api", exc)


def admin_router(admin: AdminCommands) -> Router:
    """A router answering ``/performance`` and ``/health`` to the owners, in Telegram HTML."""
    from .admin import health_telegram_html, performance_telegram_html

    router = Router(name="botpulse-admin")

    def owner(message: Message) -> bool:
        user = message.from_user
        return user is not None and admin.allowed(user.id)

    @router.message(Command(admin.performance_command), owner)
    async def botpulse_performance(message: Message) -> None:
        view = await admin.performance()
        await message.answer(performance_telegram_html(view), parse_mode="HTML")

    @router.message(Command(admin.health_command), owner)
    async def botpulse_health(message: Message) -> None:
        view = await admin.health()
        await message.answer(health_telegram_html(view), parse_mode="HTML")

    return router


def instrument(dp: Dispatcher, *, admin: AdminCommands | None = None) -> Dispatcher:
    """Time every update ``dp`` handles and the Bot API calls made meanwhile; returns ``dp``.

    Calling it twice does nothing more. Example::

        dp = Dispatcher()
        botpulse.init(service="mybot")
        botpulse.integrations.aiogram.instrument(dp)
    """
    if getattr(dp, _MARK, False):
        return dp
    setattr(dp, _MARK, True)
    dp.update.outer_middleware(UpdateTimer())
    if admin is not None:
        dp.include_router(admin_router(admin))
    wrap_handlers(dp)

    async def wrap_later_routers() -> None:
        wrap_handlers(dp)

    dp.startup.register(wrap_later_routers)
    return dp
