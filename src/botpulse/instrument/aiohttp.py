"""``botpulse.instrument("aiohttp")``: time aiohttp client requests through trace configs.

aiohttp's own hook is ``TraceConfig``: ``ClientSession.__init__`` is wrapped to add one
botpulse trace config to every session created afterwards. Its callbacks never raise
(a raising trace callback fails the request) and record method, host, route template
(ids and tokens replaced) and status code; a failed request is recorded with the
exception's type, 5xx responses as errors.
"""

from __future__ import annotations

import functools
from typing import Any

from .. import _capture
from .._diagnostics import internal_error
from . import _http
from ._common import record, recording

__all__ = ["install", "uninstall"]

_original_init: Any = None
_trace_config: Any = None


async def _on_start(_session: Any, ctx: Any, params: Any) -> None:
    try:
        if _trace_config is not None and _capture._capacity and recording():
            ctx.botpulse_t0 = _capture._now()
    except Exception as exc:  # noqa: BLE001 - a raising callback fails the request
        internal_error("instrument.aiohttp", exc)


def _finish(ctx: Any, method: str, url: Any, status: int | None, error: Any) -> None:
    t0 = getattr(ctx, "botpulse_t0", None)
    if t0 is None:
        return
    ctx.botpulse_t0 = None
    name, attrs = _http.describe(method, url.host or "", url.port, url.raw_path, url)
    attrs["system"] = "aiohttp"
    if status is not None:
        attrs["status_code"] = status
        if status >= 500 and error is None:
            error = f"HTTP {status}"
    record(name, "http", t0, error, attrs, source_key=name)


async def _on_end(_session: Any, ctx: Any, params: Any) -> None:
    try:
        _finish(ctx, params.method, params.url, params.response.status, None)
    except Exception as exc:  # noqa: BLE001
        internal_error("instrument.aiohttp", exc)


async def _on_exception(_session: Any, ctx: Any, params: Any) -> None:
    try:
        _finish(ctx, params.method, params.url, None, type(params.exception))
    except Exception as exc:  # noqa: BLE001
        internal_error("instrument.aiohttp", exc)


def _make_trace_config() -> Any:
    import aiohttp

    config = aiohttp.TraceConfig()
    config.on_request_start.append(_on_start)
    config.on_request_end.append(_on_end)
    config.on_request_exception.append(_on_exception)
    config.freeze()
    return config


def _wrap_init(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        if _trace_config is not None:
            configs = list(kwargs.get("trace_configs") or ())
            if _trace_config not in configs:
                configs.append(_trace_config)
            kwargs["trace_configs"] = configs
        original(self, *args, **kwargs)

    return __init__


def install() -> None:
    """Add botpulse's trace config to every new ``aiohttp.ClientSession`` (idempotent)."""
    global _original_init, _trace_config
    import aiohttp

    if _trace_config is None:
        _trace_config = _make_trace_config()
    if _original_init is None:
        _original_init = aiohttp.ClientSession.__dict__["__init__"]
        aiohttp.ClientSession.__init__ = _wrap_init(_original_init)  # type: ignore[method-assign]


def uninstall() -> None:
    """Stop adding the trace config; sessions already open stop recording."""
    global _original_init, _trace_config
    import aiohttp

    _trace_config = None
    if _original_init is not None:
        aiohttp.ClientSession.__init__ = _original_init  # type: ignore[method-assign]
        _original_init = None
