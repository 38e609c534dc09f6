"""discord.py 2.x: a flow per command, interaction and event listener, REST calls inside them.

Either line, after ``botpulse.init()``::

    await bot.load_extension("botpulse.integrations.discord")     # e.g. in setup_hook
    botpulse.integrations.discord.instrument(bot)                  # before bot.run()

What becomes a flow (tag ``type``; tag ``shard`` when the bot knows it):

- a prefix command, end to end through checks, converters, the callback and error
  dispatch, named by its qualified name; messages invoking no known command are
  ``unknown_command``;
- an application command or context menu (``type`` ``slash``/``context_menu``);
- a component interaction (buttons, selects: ``component:<custom_id template>``, digits
  and ids replaced so one button is one series) and a modal submit (``modal:...``);
- each event listener run (``event.<name>``).

Status and error type come from the framework's own error paths (``on_command_error``
dispatch, ``CommandTree`` errors, a view's ``on_error``). For interactions,
``time_to_first_response_ms`` runs from the interaction's creation (its snowflake) to
the end of the first response (defer or send); a ``interaction_slow_response`` finding
is reported above 2.5 s and a separate ``interaction_deadline_missed`` one above 3 s
(or when a flow ended without answering after 3 s). REST calls are ``http`` operations
named by route template (``POST /channels/{channel_id}/messages``; never a token),
with the status and, for 429s, ``rate_limited``/``retry_after_s``. Gateway latency is
sampled every 30 s as the gauge ``discord.gateway.latency_ms`` (per shard:
``discord.gateway.shard<N>.latency_ms``).

Interaction handling and view dispatch are timed by wrapping discord.py's own methods
(the bot's ``http``, ``tree`` and view store; ``View``/``Modal`` dispatch and the
webhook adapter, once per process); every wrapper is guarded so a botpulse failure
never reaches the bot.
"""

from __future__ import annotations

from typing import Any

from ._discord import (
    DEADLINE_MS,
    LATENCY_INTERVAL_S,
    SLOW_RESPONSE_MS,
    custom_id_template,
    health_embed,
    instrument,
    performance_embed,
    sample_latency,
)

__all__ = [
    "DEADLINE_MS",
    "LATENCY_INTERVAL_S",
    "SLOW_RESPONSE_MS",
    "custom_id_template",
    "health_embed",
    "instrument",
    "performance_embed",
    "sample_latency",
    "setup",
]


async def setup(bot: Any) -> None:
    """``await bot.load_extension("botpulse.integrations.discord")`` calls this."""
    instrument(bot)
