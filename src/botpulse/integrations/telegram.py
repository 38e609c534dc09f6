"""python-telegram-bot 21+: a flow per update, end to end, and the Bot API calls inside it.

One line after building the application::

    app = ApplicationBuilder().token(TOKEN).build()
    botpulse.integrations.telegram.instrument(app)

- Every update the application takes from its queue (polling or webhook) is a flow,
  named by the handler callback that took it (``unhandled.<type>`` when none did),
  with ``queue_delay_ms`` from the message date to handling start. Concurrent updates
  each get their own flow; a ``block=False`` handler runs in its own task, and the
  flow waits for it (without holding up the application) so it is timed end to end.
- An exception in a handler marks the flow ``error`` with its type, before the
  application's error handlers see it.
- Bot API calls (``sendMessage`` ...) are ``http`` operations named by the method,
  never the URL with the token; 429 answers carry ``retry_after_s``. Long-polling
  ``getUpdates`` calls are not recorded.

``instrument`` swaps in a timing update processor and request wrapper on the built
application (PTB has no public setter after ``build()``); the classes
:class:`TimedUpdateProcessor` and :class:`TimedRequest` can also be given to
``ApplicationBuilder.concurrent_updates()`` / ``.request()`` directly.
``admin=AdminCommands(...)`` adds ``/performance`` and ``/health`` for the owners.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .._capture import Flow, current_flow, now_ns, record_operation
from ._common import age_ms, hook_error, require

require("telegram.ext", "telegram")

from telegram import Update  # noqa: E402
from telegram.ext import (  # noqa: E402
    Application,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    CommandHandler,
    ContextTypes,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest, RequestData  # noqa: E402

if TYPE_CHECKING:
    from .admin import AdminCommands

__all__ = ["TimedRequest", "TimedUpdateProcessor", "admin_handlers", "instrument"]

_WRAPPED = "_botpulse_wrapped"
_ADMIN_GROUP = -1_000_000


class _UpdateState:
    """One update in flight: its flow, whether a handler named it, background handlers left."""

    __slots__ = ("flow", "idle", "named", "pending", "task")

    def __init__(self, flow: Flow, task: asyncio.Task[Any] | None) -> None:
        self.flow = flow
        self.task = task
        self.named = ""  # "", "generic" (a TypeHandler) or "handler"
        self.pending = 0
        self.idle: asyncio.Event | None = None


_state: ContextVar[_UpdateState | None] = ContextVar("botpulse_ptb_update", default=None)


def _update_type(update: object) -> str:
    if not isinstance(update, Update):
        return type(update).__name__
    for field in Update.ALL_TYPES:
        if getattr(update, field, None) is not None:
            return str(field)
    return "update"


class TimedUpdateProcessor(BaseUpdateProcessor):
    """Wraps an update processor so that each update is a flow (see the module docstring).

    Example (instead of :func:`instrument`)::

        app = (ApplicationBuilder().token(TOKEN)
               .concurrent_updates(TimedUpdateProcessor(SimpleUpdateProcessor(8))).build())
    """

    def __init__(
        self,
        inner: BaseUpdateProcessor,
        application: Application[Any, Any, Any, Any, Any, Any] | None = None,
    ) -> None:
        super().__init__(inner.max_concurrent_updates)
        self.inner = inner
        self.application = application
        self._handler_count = -1
        self._may_spawn = False  # some handler runs as a task (block=False)
        self._flows: set[asyncio.Task[None]] = set()

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        """Let flows still waiting for background handlers finish (at most 5 s)."""
        if self._flows:
            await asyncio.wait(set(self._flows), timeout=5)
        await self.inner.shutdown()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        flow = self._open(update)
        if flow is None:
            await self.inner.do_process_update(update, coroutine)
            return
        if not self._may_spawn:
            await self._inline(flow, update, coroutine)
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        # The flow lives in its own task so it can outlast background (block=False)
        # handlers while the application moves on as soon as the update is processed.
        task = loop.create_task(self._timed(flow, update, coroutine, done))
        self._flows.add(task)
        task.add_done_callback(self._flows.discard)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def _inline(self, flow: Flow, update: object, coroutine: Awaitable[Any]) -> None:
        """No handler runs as a task: the flow is simply the processing, in this task."""
        token = _state.set(_UpdateState(flow, asyncio.current_task()))
        try:
            with flow:
                await self.inner.do_process_update(update, coroutine)
                state = _state.get()
                if state is not None and not state.named:
                    _name_unhandled(flow)
        finally:
            _state.reset(token)

    def _open(self, update: object) -> Flow | None:
        try:
            if self.application is not None:
                self._wrap_new_handlers(self.application)
            kind = (
                "message" if getattr(update, "message", None) is not None else _update_type(update)
            )
            tags = {"update": kind}
            chat = getattr(update, "effective_chat", None)
            if chat is not None:
                tags["chat_type"] = chat.type or "unknown"
            message = getattr(update, "effective_message", None)
            delay = None if message is None else age_ms(message.date)
            if delay is None:
                return Flow(f"telegram.{kind}", tags=tags)
            return Flow(f"telegram.{kind}", tags=tags, queue_delay_ms=round(delay, 3))
        except Exception as exc:  # noqa: BLE001 - a raising processor kills polling
            hook_error("telegram.update", exc)
            return None

    def _wrap_new_handlers(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        count = sum(len(group) for group in app.handlers.values())
        if count != self._handler_count:
            self._handler_count = count
            defaults = getattr(app.bot, "defaults", None)
            spawn_by_default = defaults is not None and not defaults.block
            for group in app.handlers.values():
                for handler in group:
                    wrap_handler(handler)
                    explicit = handler.block is True or handler.block is False
                    if handler.block is False or (spawn_by_default and not explicit):
                        self._may_spawn = True

    async def _timed(
        self, flow: Flow, update: object, coroutine: Awaitable[Any], done: asyncio.Future[None]
    ) -> None:
        # An exception reaches the application through `done`; the task keeps none.
        with contextlib.suppress(BaseException):
            await self._timed_flow(flow, update, coroutine, done)

    async def _timed_flow(
        self, flow: Flow, update: object, coroutine: Awaitable[Any], done: asyncio.Future[None]
    ) -> None:
        state = _UpdateState(flow, asyncio.current_task())
        _state.set(state)  # this task's own context: nothing leaks to the application
        with flow:
            try:
                await self.inner.do_process_update(update, coroutine)
            except BaseException as exc:
                if not done.done():
                    done.set_exception(exc)
                raise
            else:
                if not done.done():
                    done.set_result(None)
            if self._may_spawn:
                # A block=False handler's task was created but has not started yet: let
                # it start (and count itself) before deciding whether to wait for it.
                await asyncio.sleep(0)
            if not state.named:
                _name_unhandled(flow)
            if state.pending:
                state.idle = asyncio.Event()
                await state.idle.wait()


def _name_unhandled(flow: Flow) -> None:
    try:
        flow.rename(f"unhandled.{flow.tags.get('update', 'update')}")
        flow.set(handled=False)
    except Exception as exc:  # noqa: BLE001
        hook_error("telegram.unhandled", exc)


def wrap_handler(handler: Any) -> None:
    """Time ``handler``'s callback inside the update's flow (nested handlers included)."""
    try:
        callback = getattr(handler, "callback", None)
        if callback is not None and not getattr(callback, _WRAPPED, False):
            handler.callback = _timed_callback(callback, isinstance(handler, TypeHandler))
        for attr in ("entry_points", "fallbacks"):  # ConversationHandler
            for inner in getattr(handler, attr, None) or ():
                wrap_handler(inner)
        for inner_list in (getattr(handler, "states", None) or {}).values():
            for inner in inner_list:
                wrap_handler(inner)
    except Exception as exc:  # noqa: BLE001
        hook_error("telegram.wrap", exc)


def _timed_callback(
    callback: Callable[..., Awaitable[Any]], generic: bool
) -> Callable[..., Awaitable[Any]]:
    name = getattr(callback, "__name__", None) or type(callback).__name__

    @functools.wraps(callback)
    async def timed(update: Any, context: Any) -> Any:
        state = _begin(name, generic)
        try:
            return await callback(update, context)
        except ApplicationHandlerStop:
            raise
        except Exception as exc:
            if state is not None:
                state.flow.fail(type(exc).__name__)
            raise
        finally:
            if state is not None and state.task is not asyncio.current_task():
                _end_background(state)

    setattr(timed, _WRAPPED, True)
    return timed


def _begin(name: str, generic: bool) -> _UpdateState | None:
    try:
        state = _state.get()
        if state is None:
            return None
        if not state.named or (state.named == "generic" and not generic):
            state.flow.rename(name)
            state.named = "generic" if generic else "handler"
        if state.task is not asyncio.current_task():
            state.pending += 1
            state.flow.set(background=True)
        return state
    except Exception as exc:  # noqa: BLE001
        hook_error("telegram.handler", exc)
        return None


def _end_background(state: _UpdateState) -> None:
    state.pending -= 1
    if state.pending <= 0 and state.idle is not None:
        state.idle.set()


class TimedRequest(BaseRequest):
    """Wraps a :class:`telegram.request.BaseRequest`: each Bot API call is an ``http`` operation."""

    def __init__(self, inner: BaseRequest) -> None:
        self.inner = inner

    @property
    def read_timeout(self) -> float | None:
        return self.inner.read_timeout

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        start = now_ns()
        try:
            code, payload = await self.inner.do_request(
                url, method, request_data, read_timeout, write_timeout, connect_timeout,
                pool_timeout,
            )  # fmt: skip
        except BaseException as exc:
            _record_api(url, start, None, b"", type(exc))
            raise
        _record_api(url, start, code, payload, None)
        return code, payload


def _record_api(
    url: str, start: int, code: int | None, payload: bytes, error: type[BaseException] | None
) -> None:
    try:
        attrs: dict[str, Any] = {"api": "telegram"}
        failure: type[BaseException] | str | None = error
        if code is not None:
            attrs["status"] = code
            if code == 429:
                failure = "RetryAfter"
                retry = json.loads(payload).get("parameters", {}).get("retry_after")
                if retry is not None:
                    attrs["retry_after_s"] = retry
                    flow = current_flow()
                    if flow is not None:
                        flow.set(retry_after_s=retry)
            elif code >= 400:
                failure = f"HTTP{code}"
        method = url.rsplit("/", 1)[-1] or "unknown"  # never the /bot<token>/ part
        record_operation(method, "http", start, now_ns(), error=failure, attrs=attrs)
    except Exception as exc:  # noqa: BLE001
        hook_error("telegram.api", exc)


def admin_handlers(admin: AdminCommands) -> list[CommandHandler[Any, Any]]:
    """``/performance`` and ``/health`` handlers for the owners, answering in Telegram HTML."""
    from .admin import health_telegram_html, performance_telegram_html

    owners = filters.User(user_id=[int(o) for o in admin.owner_ids if o.lstrip("-").isdigit()])

    async def botpulse_performance(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message is not None:
            view = await admin.performance()
            await update.effective_message.reply_html(performance_telegram_html(view))
        raise ApplicationHandlerStop

    async def botpulse_health(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message is not None:
            view = await admin.health()
            await update.effective_message.reply_html(health_telegram_html(view))
        raise ApplicationHandlerStop

    return [
        CommandHandler(admin.performance_command, botpulse_performance, filters=owners),
        CommandHandler(admin.health_command, botpulse_health, filters=owners),
    ]


def instrument(
    app: Application[Any, Any, Any, Any, Any, Any], *, admin: AdminCommands | None = None
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Time every update ``app`` handles and its Bot API calls; returns ``app``.

    Call it after ``build()`` and before ``run_polling()``/``initialize()``; calling it
    twice does nothing more. Example::

        app = ApplicationBuilder().token(os.environ["TELEGRAM_TOKEN"]).build()
        botpulse.integrations.telegram.instrument(app)
    """
    processor = app.update_processor
    if isinstance(processor, TimedUpdateProcessor):
        return app
    if admin is not None:
        for command in admin_handlers(admin):
            app.add_handler(command, group=_ADMIN_GROUP)
    # PTB offers no setter once built: swap the slots its builder filled.
    app._update_processor = TimedUpdateProcessor(processor, app)
    bot = app.bot
    updates_request, api_request = bot._request
    if not isinstance(api_request, TimedRequest):
        bot._request = (updates_request, TimedRequest(api_request))
    for group in app.handlers.values():
        for handler in group:
            wrap_handler(handler)
    return app
