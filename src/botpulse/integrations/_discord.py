"""discord.py hooks (implementation of :mod:`botpulse.integrations.discord`).

``bot.load_extension()`` executes the extension module afresh; keeping the hooks and
their shared state here means a second copy never patches twice.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections import OrderedDict
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .._capture import Flow, current_flow, gauge, now_ns, record_operation
from .._findings import report_finding
from ._common import age_ms, hook_error, require

require("discord", "discord")

import aiohttp  # noqa: E402
import discord  # noqa: E402
from discord.ext import commands  # noqa: E402
from discord.ui import Modal  # noqa: E402
from discord.ui.view import BaseView  # noqa: E402
from discord.webhook.async_ import AsyncWebhookAdapter  # noqa: E402

if TYPE_CHECKING:
    from .admin import AdminCommands

__all__ = [
    "DEADLINE_MS",
    "SLOW_RESPONSE_MS",
    "custom_id_template",
    "health_embed",
    "instrument",
    "performance_embed",
    "sample_latency",
]

SLOW_RESPONSE_MS = 2500.0
DEADLINE_MS = 3000.0
LATENCY_INTERVAL_S = 30.0
_MARK = "_botpulse_instrumented"
_SKIPPED_EVENTS = frozenset(
    {"command", "command_completion", "command_error", "app_command_completion",
     "socket_event_type", "socket_raw_receive", "socket_raw_send"}
)  # fmt: skip

# A REST call in progress (set by the HTTP wrapper, filled by the aiohttp trace).
_rest_call: ContextVar[dict[str, Any] | None] = ContextVar("botpulse_discord_rest", default=None)


class _Pending:
    """An interaction waiting for its first response."""

    __slots__ = ("age_ms", "flow", "name", "received_ns")

    def __init__(self, flow: Flow, name: str, received_ns: int, age: float) -> None:
        self.flow = flow
        self.name = name
        self.received_ns = received_ns
        self.age_ms = age


# interaction id -> waiting for its first response; bounded (oldest dropped first).
_pending: OrderedDict[int, _Pending] = OrderedDict()
_MAX_PENDING = 10_000


# -- names ---------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")
_HEXISH = re.compile(r"\b[0-9a-fA-F]{16,}\b")


def custom_id_template(custom_id: str) -> str:
    """``vote:123:yes`` -> ``vote:{n}:yes``; long hex ids -> ``{id}``; at most 80 chars."""
    return _DIGITS.sub("{n}", _HEXISH.sub("{id}", custom_id))[:80]


def _tags(kind: str, guild_id: Any, client: Any) -> dict[str, str]:
    """``type`` and, for a sharded bot, ``shard`` (computed from the guild id as Discord does)."""
    count = getattr(client, "shard_count", None)
    if count and count > 1 and guild_id is not None:
        return {"type": kind, "shard": str((int(guild_id) >> 22) % count)}
    return {"type": kind}


# -- interactions: first response and deadline ----------------------------------------


_DISCORD_EPOCH_MS = 1_420_070_400_000


def _track_interaction(flow: Flow, interaction: Any, name: str) -> None:
    # The interaction's creation time is in its snowflake id (ms since Discord's epoch).
    age = age_ms(((interaction.id >> 22) + _DISCORD_EPOCH_MS) / 1000.0) or 0.0
    if len(_pending) >= _MAX_PENDING:
        _pending.popitem(last=False)
    _pending[interaction.id] = _Pending(flow, name, now_ns(), age)
    flow.attrs["interaction_age_ms"] = round(age, 3)


def _first_response(interaction_id: Any) -> None:
    try:
        waiting = _pending.pop(int(interaction_id), None)
        if waiting is None:
            return
        elapsed = waiting.age_ms + (now_ns() - waiting.received_ns) / 1e6
        waiting.flow.set(time_to_first_response_ms=round(elapsed, 3))
        _deadline_findings(waiting, elapsed, responded=True)
    except Exception as exc:  # noqa: BLE001
        hook_error("discord.response", exc)


def _no_response(interaction: Any) -> None:
    waiting = _pending.pop(interaction.id, None)
    if waiting is None:
        return
    elapsed = waiting.age_ms + (now_ns() - waiting.received_ns) / 1e6
    waiting.flow.attrs["responded"] = False
    if elapsed > DEADLINE_MS:
        _deadline_findings(waiting, elapsed, responded=False)


def _deadline_findings(waiting: _Pending, elapsed_ms: float, *, responded: bool) -> None:
    if elapsed_ms <= SLOW_RESPONSE_MS:
        return
    total = int(elapsed_ms * 1e6)
    details = {"time_to_first_response_ms": round(elapsed_ms, 1), "responded": responded,
               "deadline_ms": DEADLINE_MS}  # fmt: skip
    report_finding(
        "interaction_slow_response", waiting.name, flow=waiting.name, total_ns=total,
        max_ns=total, source="discord", details={**details, "threshold_ms": SLOW_RESPONSE_MS,
        "advice": "defer() first, then do the slow work and send a followup"},
    )  # fmt: skip
    if elapsed_ms > DEADLINE_MS:
        report_finding(
            "interaction_deadline_missed", waiting.name, flow=waiting.name, total_ns=total,
            max_ns=total, source="discord",
            details={**details, "advice": "Discord shows 'interaction failed' after 3 s: "
                     "defer() as the first thing the handler does"},
        )  # fmt: skip


def _interaction_started(flow: Flow, interaction: Any, name: str) -> None:
    try:
        _track_interaction(flow, interaction, name)
    except Exception as exc:  # noqa: BLE001
        hook_error("discord.interaction", exc)


def _interaction_ended(interaction: Any) -> None:
    try:
        _no_response(interaction)
    except Exception as exc:  # noqa: BLE001
        hook_error("discord.interaction", exc)


async def _interaction_flow(flow: Flow, interaction: Any, name: str, run: Any, *args: Any) -> Any:
    """``await run(*args)`` inside ``flow``, tracking the interaction's first response.

    An exception leaves the flow marked with the *original* error's type (discord.py
    wraps handler errors in ``CommandInvokeError``) and is re-raised unchanged.
    """
    failure: Exception | None = None
    result: Any = None
    with flow:
        _interaction_started(flow, interaction, name)
        try:
            result = await run(*args)
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the flow closed
            _note_failure(exc, flow)
            failure = exc
        finally:
            _interaction_ended(interaction)
    if failure is not None:
        raise failure
    return result


# -- wrappers installed per bot ------------------------------------------------------


def _wrap_invoke(bot: commands.Bot) -> None:
    original = bot.invoke

    @functools.wraps(original)
    async def invoke(ctx: commands.Context[Any]) -> None:
        flow = None
        try:
            if ctx.invoked_with:
                name = ctx.command.qualified_name if ctx.command is not None else "unknown_command"
                flow = Flow(name, tags=_tags("prefix", ctx.guild and ctx.guild.id, bot))
        except Exception as exc:  # noqa: BLE001
            hook_error("discord.invoke", exc)
        if flow is None:
            await original(ctx)
            return
        with flow:
            await original(ctx)
            if ctx.command is None:
                flow.set(found=False)

    bot.invoke = invoke  # type: ignore[method-assign]


def _wrap_dispatch(bot: commands.Bot) -> None:
    """Note command errors on the flow: discord.py dispatches them inside invoke()."""
    original = bot.dispatch

    @functools.wraps(original)
    def dispatch(event: str, /, *args: Any, **kwargs: Any) -> None:
        if event == "command_error" and len(args) >= 2 and isinstance(args[1], Exception):
            _note_failure(args[1])
        original(event, *args, **kwargs)

    bot.dispatch = dispatch  # type: ignore[method-assign]


def _wrap_run_event(bot: commands.Bot) -> None:
    original = bot._run_event

    @functools.wraps(original)
    async def run_event(coro: Any, event_name: str, *args: Any, **kwargs: Any) -> None:
        flow = None
        try:
            event = event_name[3:] if event_name.startswith("on_") else event_name
            if event not in _SKIPPED_EVENTS:
                listener = getattr(coro, "__name__", "") or ""
                name = f"event.{event}"
                if listener and listener != f"on_{event}":
                    name = f"{name}.{listener}"
                flow = Flow(name, tags={"type": "event"})
        except Exception as exc:  # noqa: BLE001
            hook_error("discord.event", exc)
        if flow is None:
            await original(coro, event_name, *args, **kwargs)
            return

        async def listener_then_note() -> None:
            try:
                await coro(*args, **kwargs)
            except Exception as exc:
                flow.fail(type(exc).__name__)
                raise

        with flow:
            await original(lambda *a, **k: listener_then_note(), event_name, *args, **kwargs)

    bot._run_event = run_event  # type: ignore[method-assign]


def _wrap_tree(bot: commands.Bot) -> None:
    tree = bot.tree
    original = tree._call

    @functools.wraps(original)
    async def call(interaction: discord.Interaction[Any]) -> None:
        try:
            data: Any = interaction.data or {}
            kind = "slash" if data.get("type", 1) == 1 else "context_menu"
            # The tree resolves the command (subcommands included) in _call; until then
            # the flow carries the top-level name Discord sent.
            name = str(data.get("name") or "unknown_app_command")
            flow = Flow(name, tags=_tags(kind, interaction.guild_id, bot))
        except Exception as exc:  # noqa: BLE001
            hook_error("discord.tree", exc)
            await original(interaction)
            return
        failure: Exception | None = None
        with flow:
            _interaction_started(flow, interaction, name)
            try:
                await original(interaction)
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the flow closed
                _note_failure(exc, flow)
                failure = exc
            else:
                if interaction.command_failed and flow._failure is None:
                    flow.fail("AppCommandError")  # the tree handled it; its type is gone
            finally:
                _interaction_ended(interaction)
                _name_resolved(flow, interaction)
        if failure is not None:
            raise failure

    tree._call = call  # type: ignore[method-assign]
    original_on_error = tree.on_error

    @functools.wraps(original_on_error)
    async def on_error(interaction: Any, error: Any) -> None:
        # The tree handles a slash command's error itself: note its type on the flow first.
        _note_failure(error)
        await original_on_error(interaction, error)

    tree.on_error = on_error  # type: ignore[method-assign]


def _name_resolved(flow: Flow, interaction: Any) -> None:
    try:
        command = getattr(interaction, "_cs_command", None)  # filled in by CommandTree._call
        qualified = getattr(command, "qualified_name", None)
        if qualified:
            flow.rename(qualified)
    except Exception as exc:  # noqa: BLE001
        hook_error("discord.tree", exc)


def _wrap_http(bot: commands.Bot) -> None:
    http = bot.http
    original = http.request

    @functools.wraps(original)
    async def request(route: Any, **kwargs: Any) -> Any:
        call: dict[str, Any] = {}
        token = _rest_call.set(call)
        start = now_ns()
        error: BaseException | None = None
        try:
            return await original(route, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            _rest_call.reset(token)
            _record_rest(route, start, call, error)

    http.request = request  # type: ignore[method-assign]
    _install_trace(http)


def _record_rest(route: Any, start: int, call: dict[str, Any], error: BaseException | None) -> None:
    try:
        attrs: dict[str, Any] = {"api": "discord"}
        status = getattr(error, "status", None) or call.get("status")
        if status is None and error is None:
            status = 200
        if status is not None:
            attrs["status"] = status
        for key in ("rate_limited", "retry_after_s"):
            if key in call:
                attrs[key] = call[key]
        retry = getattr(error, "retry_after", None)
        if retry is not None:
            attrs["retry_after_s"] = retry
        failure: type[BaseException] | None = None if error is None else type(error)
        name = f"{route.method} {route.path}"
        record_operation(name, "http", start, now_ns(), error=failure, attrs=attrs)
    except Exception as exc:  # noqa: BLE001
        hook_error("discord.http", exc)


async def _on_request_end(session: Any, context: Any, params: Any) -> None:
    try:
        call = _rest_call.get()
        if call is None:
            return
        status = params.response.status
        call["status"] = status
        if status == 429:
            call["rate_limited"] = call.get("rate_limited", 0) + 1
            headers = params.response.headers
            retry = headers.get("Retry-After") or headers.get("X-RateLimit-Reset-After")
            if retry is not None:
                call["retry_after_s"] = float(retry)
    except Exception as exc:  # noqa: BLE001 - a raising trace callback fails the request
        hook_error("discord.trace", exc)


def _install_trace(http: Any) -> None:
    """See response statuses (429s included) through aiohttp's public trace hooks."""
    try:
        trace = http.http_trace
        if trace is None:
            trace = aiohttp.TraceConfig()
            http.http_trace = trace  # used when the session is created at login
        if not trace.on_request_end.frozen:
            trace.on_request_end.append(_on_request_end)
        # Already logged in (extension loaded in setup_hook): the session exists.
        session = getattr(http, "_HTTPClient__session", None)
        configs = getattr(session, "_trace_configs", None)
        if isinstance(configs, list) and trace not in configs:
            ours = aiohttp.TraceConfig()
            ours.on_request_end.append(_on_request_end)
            ours.freeze()
            configs.append(ours)
    except Exception as exc:  # noqa: BLE001
        hook_error("discord.trace", exc)


# -- wrappers installed once per process (views, modals, the webhook adapter) ----------

_patched = False


def _patch_classes() -> None:
    global _patched
    if _patched:
        return
    _patched = True
    view_task = BaseView._scheduled_task
    modal_task = Modal._scheduled_task
    adapter_request = AsyncWebhookAdapter.request

    @functools.wraps(view_task)
    async def view_scheduled_task(self: Any, item: Any, interaction: Any) -> Any:
        if not _instrumented(interaction.client):
            return await view_task(self, item, interaction)
        try:
            custom_id = str(getattr(item, "custom_id", None) or "")
            template = custom_id_template(custom_id)
            if not custom_id or template == "{id}":  # discord.py's generated ids
                callback = getattr(item.callback, "__name__", type(item).__name__)
                template = f"{type(self).__name__}.{callback}"
            name = f"component:{template}"
            flow = Flow(name, tags=_tags("component", interaction.guild_id, interaction.client))
            _note_view_errors(self)
        except Exception as exc:  # noqa: BLE001
            hook_error("discord.view", exc)
            return await view_task(self, item, interaction)
        return await _interaction_flow(flow, interaction, name, view_task, self, item, interaction)

    @functools.wraps(modal_task)
    async def modal_scheduled_task(self: Any, interaction: Any, *args: Any) -> Any:
        if not _instrumented(interaction.client):
            return await modal_task(self, interaction, *args)
        try:
            custom_id = str(getattr(self, "custom_id", None) or "")
            template = custom_id_template(custom_id)
            if not custom_id or template == "{id}":
                template = type(self).__name__
            name = f"modal:{template}"
            flow = Flow(name, tags=_tags("modal", interaction.guild_id, interaction.client))
            _note_view_errors(self)
        except Exception as exc:  # noqa: BLE001
            hook_error("discord.modal", exc)
            return await modal_task(self, interaction, *args)
        return await _interaction_flow(
            flow, interaction, name, modal_task, self, interaction, *args
        )

    @functools.wraps(adapter_request)
    async def webhook_request(self: Any, route: Any, session: Any, **kwargs: Any) -> Any:
        start = now_ns()
        error: BaseException | None = None
        try:
            return await adapter_request(self, route, session, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            _record_rest(route, start, {}, error)
            if error is None and str(route.path).endswith("/callback"):
                _first_response(route.webhook_id)

    BaseView._scheduled_task = view_scheduled_task  # type: ignore[method-assign]
    Modal._scheduled_task = modal_scheduled_task  # type: ignore[method-assign,assignment]
    AsyncWebhookAdapter.request = webhook_request  # type: ignore[method-assign]


def _instrumented(client: Any) -> bool:
    """Whether ``client`` went through :func:`instrument` (other bots in the process did not)."""
    return bool(getattr(client, "__dict__", {}).get(_MARK, False))


def _note_failure(error: BaseException, flow: Flow | None = None) -> None:
    """Mark ``flow`` (default: the current one) failed with ``error``'s original type."""
    try:
        flow = flow or current_flow()
        if flow is not None:
            original = getattr(error, "original", None)
            flow.fail(type(original if isinstance(original, Exception) else error).__name__)
    except Exception as exc:  # noqa: BLE001
        hook_error("discord.error", exc)


def _note_view_errors(view: Any) -> None:
    """Mark the flow failed when the view's (or modal's) on_error runs."""
    if getattr(view, _MARK, False):
        return
    original = view.on_error

    @functools.wraps(original)
    async def on_error(interaction: Any, error: Exception, *args: Any) -> Any:
        _note_failure(error)
        return await original(interaction, error, *args)

    view.on_error = on_error
    setattr(view, _MARK, True)


# -- gateway latency -----------------------------------------------------------------


def sample_latency(bot: discord.Client) -> None:
    """Record the gateway latency gauge(s) now (the loop started by :func:`instrument` calls it)."""
    try:
        latencies = getattr(bot, "latencies", None)
        if isinstance(bot, discord.AutoShardedClient) and latencies:
            for shard_id, seconds in latencies:
                if seconds == seconds and seconds != float("inf"):  # noqa: PLR0124 - NaN check
                    gauge(f"discord.gateway.shard{shard_id}.latency_ms", seconds * 1000.0)
            return
        seconds = bot.latency
        if seconds == seconds and seconds != float("inf"):  # noqa: PLR0124
            gauge("discord.gateway.latency_ms", seconds * 1000.0)
    except Exception as exc:  # noqa: BLE001
        hook_error("discord.latency", exc)


async def _latency_loop(bot: discord.Client, interval: float) -> None:
    while not bot.is_closed():
        await asyncio.sleep(interval)
        if bot.is_ready():
            sample_latency(bot)


def _start_latency_loop(bot: commands.Bot, interval: float) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        original = bot.setup_hook

        async def setup_hook() -> None:
            _start_latency_loop(bot, interval)
            await original()

        bot.setup_hook = setup_hook  # type: ignore[method-assign]
        return
    task = loop.create_task(_latency_loop(bot, interval), name="botpulse-discord-latency")
    bot.__dict__["_botpulse_latency_task"] = task


# -- admin commands ------------------------------------------------------------------


def performance_embed(view: Any) -> discord.Embed:
    """``performance`` as a Discord embed."""
    from .admin import _window, slowest_title, waterfall_rows

    embed = discord.Embed(
        title="botpulse performance", description=f"top flows, last {_window(view)}",
        colour=discord.Colour.blurple(),
    )  # fmt: skip
    if view.error:
        embed.add_field(name="store unavailable", value=view.error[:1024], inline=False)
    elif not view.flows:
        embed.add_field(name="flows", value="no flows recorded yet", inline=False)
    for line in view.flows:
        embed.add_field(
            name=line.name[:256],
            value=(
                f"p50 {line.p50_ms:.1f} · p95 {line.p95_ms:.1f} · p99 {line.p99_ms:.1f} ms\n"
                f"{line.count} runs · {line.per_min:.1f}/min · errors {line.error_rate:.1%}"
            ),
            inline=False,
        )
    if view.slowest is not None:
        rows = "\n".join(waterfall_rows(view.slowest, bar=16, limit=10)) or "(no steps)"
        embed.add_field(
            name=f"slowest: {slowest_title(view.slowest)}"[:256],
            value=f"```\n{rows[:1000]}\n```",
            inline=False,
        )
    if view.dropped_events:
        embed.set_footer(text=f"dropped events: {view.dropped_events}")
    return embed


def health_embed(view: Any) -> discord.Embed:
    """``health`` as a Discord embed."""
    from .admin import health_pairs

    colour = discord.Colour.green() if view.store_ok else discord.Colour.red()
    embed = discord.Embed(title="botpulse health", colour=colour)
    for label, value in health_pairs(view):
        embed.add_field(name=label, value=value[:1024], inline=label not in {"store", "events"})
    return embed


def _add_admin(bot: commands.Bot, admin: AdminCommands) -> None:
    """Hybrid (prefix and slash) ``performance``/``health`` commands for the owners."""

    async def refuse(ctx: commands.Context[Any]) -> bool:
        if admin.allowed(ctx.author.id):
            return True
        if ctx.interaction is not None:  # a slash command must be answered
            await ctx.send("Only the bot's owners can run this.", ephemeral=True)
        return False

    @commands.hybrid_command(name=admin.performance_command, description="botpulse: top flows")
    async def botpulse_performance(ctx: commands.Context[Any]) -> None:
        if await refuse(ctx):
            if ctx.interaction is not None:
                await ctx.defer(ephemeral=True)
            await ctx.send(embed=performance_embed(await admin.performance()), ephemeral=True)

    @commands.hybrid_command(name=admin.health_command, description="botpulse: bot health")
    async def botpulse_health(ctx: commands.Context[Any]) -> None:
        if await refuse(ctx):
            await ctx.send(embed=health_embed(await admin.health()), ephemeral=True)

    bot.add_command(botpulse_performance)
    bot.add_command(botpulse_health)


# -- entry points --------------------------------------------------------------------


def instrument(
    bot: commands.Bot,
    *,
    admin: AdminCommands | None = None,
    latency_interval: float = LATENCY_INTERVAL_S,
) -> commands.Bot:
    """Time ``bot``'s commands, interactions, listeners and REST calls; returns ``bot``.

    Calling it again only adds ``admin`` commands if given. Example::

        bot = commands.Bot(command_prefix="!", intents=intents)
        botpulse.init(service="mybot")
        botpulse.integrations.discord.instrument(bot, admin=AdminCommands(owner_ids={MY_ID}))
    """
    if not bot.__dict__.get(_MARK, False):
        bot.__dict__[_MARK] = True
        _patch_classes()
        _wrap_invoke(bot)
        _wrap_dispatch(bot)
        _wrap_run_event(bot)
        _wrap_tree(bot)
        _wrap_http(bot)
        if latency_interval > 0:
            _start_latency_loop(bot, latency_interval)
    if admin is not None and not bot.__dict__.get("_botpulse_admin", False):
        bot.__dict__["_botpulse_admin"] = True
        _add_admin(bot, admin)
    return bot
