"""``botpulse.instrument("redis")``: time redis-py commands, sync and asyncio, pipelines too.

redis-py has no timing hook (only OpenTelemetry metrics that need a meter provider),
so ``Redis.execute_command`` and ``Pipeline.execute`` of ``redis`` and ``redis.asyncio``
are wrapped (reversibly). A command is named by its command word (``GET``, ``HSET``;
never the key, which is usually an id); a pipeline is one operation named ``PIPELINE``
plus its distinct commands. Keys and values are only seen, masked, by the
repeated-read detector.
"""

from __future__ import annotations

from typing import Any

from ._common import PARAMS_KEY
from ._patch import Patches, timed_async, timed_sync

__all__ = ["install", "uninstall"]

_patches = Patches()


def _command_name(command: Any) -> str:
    if isinstance(command, bytes):
        command = command.decode("ascii", "replace")
    return str(command).upper()[:32]


def _describe_command(_self: Any, *args: Any, **_options: Any) -> Any:
    if not args:
        return None
    attrs: dict[str, Any] = {"system": "redis"}
    if len(args) > 1:
        attrs[PARAMS_KEY] = args[1:]
    return _command_name(args[0]), attrs


def _describe_pipeline(self: Any, *_a: Any, **_k: Any) -> Any:
    stack = getattr(self, "command_stack", None) or []
    names: list[str] = []
    for entry in stack:
        args = entry[0] if isinstance(entry, tuple) else getattr(entry, "args", ())
        if args:
            name = _command_name(args[0])
            if name not in names:
                names.append(name)
    shown = " ".join(names[:5]) + (" …" if len(names) > 5 else "")
    name = f"PIPELINE {shown}".strip()
    return name, {"system": "redis", "commands": len(stack)}


def install() -> None:
    """Wrap redis-py's command and pipeline execution (idempotent)."""
    if _patches:
        return
    import redis
    import redis.asyncio
    import redis.asyncio.client
    import redis.client

    sync = redis.Redis
    _patches.replace(
        sync,
        "execute_command",
        timed_sync(sync.__dict__["execute_command"], "redis", _describe_command),
    )
    pipe = redis.client.Pipeline
    _patches.replace(
        pipe, "execute", timed_sync(pipe.__dict__["execute"], "redis", _describe_pipeline)
    )
    asynchronous = redis.asyncio.Redis
    _patches.replace(
        asynchronous,
        "execute_command",
        timed_async(asynchronous.__dict__["execute_command"], "redis", _describe_command),
    )
    apipe = redis.asyncio.client.Pipeline
    _patches.replace(
        apipe, "execute", timed_async(apipe.__dict__["execute"], "redis", _describe_pipeline)
    )


def uninstall() -> None:
    """Restore redis-py's methods."""
    _patches.undo()
