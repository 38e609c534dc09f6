"""IRC: a flow per message a pydle (or jaraco ``irc``) bot handles, and a decorator for any bot.

pydle, one line after creating the client::

    bot = MyBot("pulsebot")
    botpulse.integrations.irc.instrument(bot)

- Each PRIVMSG/NOTICE line from someone else is a flow (``irc.privmsg``), renamed to
  the command once the bot routes it through a function decorated with
  :func:`command` (or calls ``botpulse.current_flow().rename(...)``).
- ``queue_delay_ms``: how long the line waited between pydle reading it from the
  socket and its handler starting (pydle runs every line in its own task).
- The bot's own messages (pydle calls ``on_message`` for what the bot sends, and
  servers with ``echo-message`` send them back) are never counted as user traffic.
- An exception in ``on_message``/``on_channel_message``/``on_private_message`` marks
  the flow ``error`` with its type (pydle logs and swallows it).

jaraco's ``irc``: :func:`instrument_reactor` times each event its reactor dispatches.
Hand-written bots: decorate each command with :func:`command`; it opens a flow when
none is open. ``admin=AdminCommands(owner_ids={"nick"})`` answers ``!performance``
and ``!health`` to the owners (nicks or services accounts) in private, in lines
that fit the protocol's 512 bytes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .._capture import Flow, current_flow, now_ns
from ._common import hook_error

if TYPE_CHECKING:
    from .admin import AdminCommands

__all__ = ["command", "instrument", "instrument_reactor"]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "_botpulse_instrumented"
_arrived: ContextVar[int | None] = ContextVar("botpulse_irc_arrived", default=None)
_CHANNEL_PREFIXES = frozenset("#&!+")
#: Reply lines stay well under IRC's 512 bytes once pydle adds the prefix and target.
LINE_BYTES = 400


def command(name: str) -> Callable[[F], F]:
    """Name the current flow after the command the bot routed to; open one if none is open.

    Works on sync and async functions, with or without an IRC library. Example::

        @botpulse.integrations.irc.command("weather")
        async def weather(bot, target, city): ...
    """

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_routed(*args: Any, **kwargs: Any) -> Any:
                flow = _route(name)
                if flow is None:
                    with Flow(name, tags={"irc": "command"}):
                        return await func(*args, **kwargs)
                try:
                    return await func(*args, **kwargs)
                except Exception as exc:
                    flow.fail(type(exc).__name__)
                    raise

            return cast(F, async_routed)

        @functools.wraps(func)
        def routed(*args: Any, **kwargs: Any) -> Any:
            flow = _route(name)
            if flow is None:
                with Flow(name, tags={"irc": "command"}):
                    return func(*args, **kwargs)
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                flow.fail(type(exc).__name__)
                raise

        return cast(F, routed)

    return decorate


def _route(name: str) -> Flow | None:
    """Rename the open flow (if any) to ``name``; the open flow, or None."""
    try:
        flow = current_flow()
        if flow is not None:
            flow.rename(name)
            flow.tag(irc="command")
        return flow
    except Exception as exc:  # noqa: BLE001
        hook_error("irc.route", exc)
        return None


def _note_failure(exc: Exception) -> None:
    flow = current_flow()
    if flow is not None and getattr(flow, "_failure", None) is None:
        flow.fail(type(exc).__name__)


def _wrap_handler(client: Any, attr: str) -> None:
    original = getattr(client, attr, None)
    if original is None or not inspect.iscoroutinefunction(original):
        return

    @functools.wraps(original)
    async def noting(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, **kwargs)
        except Exception as exc:
            try:
                _note_failure(exc)
            except Exception as err:  # noqa: BLE001
                hook_error("irc.error", err)
            raise

    setattr(client, attr, noting)


def instrument(
    client: Any,
    *,
    events: Iterable[str] = ("PRIVMSG", "NOTICE"),
    admin: AdminCommands | None = None,
    prefix: str = "!",
) -> Any:
    """Time each line of ``events`` a pydle client handles; returns the client.

    Example::

        bot = MyBot("pulsebot", realname="botpulse example")
        botpulse.integrations.irc.instrument(bot)
        bot.run("irc.libera.chat", tls=True)
    """
    if getattr(client, _MARK, False):
        return client
    setattr(client, _MARK, True)
    timed = frozenset(e.upper() for e in events)
    original_on_data = client.on_data
    original_on_raw = client.on_raw

    async def on_data(data: Any) -> None:
        # pydle starts one task per line inside on_data: the task copies this context.
        try:
            _arrived.set(now_ns())
        except Exception as exc:  # noqa: BLE001
            hook_error("irc.data", exc)
        await original_on_data(data)

    async def on_raw(message: Any) -> None:
        flow = _open_line_flow(client, message, timed)
        if flow is None:
            await original_on_raw(message)
            return
        with flow:
            if admin is not None and await _admin_reply(client, message, admin, prefix):
                flow.rename(f"botpulse.{_admin_word(message, prefix)}")
                return
            await original_on_raw(message)

    client.on_data = on_data
    client.on_raw = on_raw
    for attr in ("on_message", "on_channel_message", "on_private_message"):
        _wrap_handler(client, attr)
    return client


def _open_line_flow(client: Any, message: Any, timed: frozenset[str]) -> Flow | None:
    try:
        command_name = str(message.command).upper()
        if command_name not in timed:
            return None
        source = str(message.source or "")
        if "!" not in source:
            return None  # from the server (notices while connecting), not from a user
        nick = source.split("!", 1)[0]
        if nick.lower() == str(client.nickname).lower():
            return None  # our own message echoed back (echo-message): not user traffic
        target = message.params[0] if message.params else ""
        where = "channel" if target[:1] in _CHANNEL_PREFIXES else "private"
        arrived = _arrived.get()
        if arrived is None:
            return Flow(f"irc.{command_name.lower()}", tags={"target": where})
        delay = round(max(0, now_ns() - arrived) / 1e6, 3)
        return Flow(f"irc.{command_name.lower()}", tags={"target": where}, queue_delay_ms=delay)
    except Exception as exc:  # noqa: BLE001
        hook_error("irc.line", exc)
        return None


def _admin_word(message: Any, prefix: str) -> str:
    params: Any = getattr(message, "params", None) or ()
    text = str(params[-1]) if len(params) >= 2 else ""
    if not text.startswith(prefix):
        return ""
    return text[len(prefix) :].strip().split(" ", 1)[0].lower()


async def _admin_reply(client: Any, message: Any, admin: AdminCommands, prefix: str) -> bool:
    """Answer an owner's ``!performance``/``!health``; True when the line was one of those."""
    from .admin import health_lines, performance_lines

    if str(message.command).upper() != "PRIVMSG":
        return False
    word = _admin_word(message, prefix)
    if word not in {admin.performance_command, admin.health_command}:
        return False
    nick = str(message.source or "").split("!", 1)[0]
    account = (getattr(client, "users", {}).get(nick) or {}).get("account")
    if not (admin.allowed(nick) or (account and admin.allowed(account))):
        return False
    if word == admin.performance_command:
        lines = performance_lines(await admin.performance(), LINE_BYTES)
    else:
        lines = health_lines(await admin.health(), LINE_BYTES)
    for line in lines:
        await client.notice(nick, line)
    return True


def instrument_reactor(reactor: Any, *, events: Iterable[str] = ("pubmsg", "privmsg")) -> Any:
    """Time each event of ``events`` a jaraco ``irc`` reactor dispatches; returns the reactor.

    Handlers run synchronously inside the reactor, so the flow covers all of them. Example::

        client = irc.client.SimpleIRCClient()
        botpulse.integrations.irc.instrument_reactor(client.reactor)
    """
    if getattr(reactor, _MARK, False):
        return reactor
    setattr(reactor, _MARK, True)
    timed = frozenset(events)
    original = reactor._handle_event

    def handle_event(connection: Any, event: Any) -> None:
        flow = None
        try:
            if event.type in timed:
                nick = str(event.source or "").split("!", 1)[0]
                own = nick and nick == getattr(connection, "real_nickname", None)
                if not own:
                    where = "channel" if event.type == "pubmsg" else "private"
                    flow = Flow(f"irc.{event.type}", tags={"target": where})
        except Exception as exc:  # noqa: BLE001
            hook_error("irc.reactor", exc)
        if flow is None:
            original(connection, event)
            return
        with flow:
            original(connection, event)

    reactor._handle_event = handle_event
    return reactor
