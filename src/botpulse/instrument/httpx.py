"""``botpulse.instrument("httpx")``: time httpx requests, sync and async, failures included.

httpx's event hooks have no error hook (a refused connection never reaches the response
hook), so the documented extension point below them is used: the transports.
``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request`` are
wrapped (reversibly), which covers every client, mounts and proxies included. The time
is until the response headers (what the transport does); each redirect hop is its own
request. A failure is recorded with the exception's type, 5xx responses as errors.
"""

from __future__ import annotations

import functools
from typing import Any

from .. import _capture
from .._diagnostics import internal_error
from . import _http
from ._common import record, recording
from ._patch import Patches

__all__ = ["install", "uninstall"]

_patches = Patches()


def _describe(request: Any) -> tuple[str, dict[str, Any]]:
    url = request.url
    path = url.raw_path.decode("ascii", "replace") if isinstance(url.raw_path, bytes) else url.path
    name, attrs = _http.describe(request.method, url.host, url.port, path, url)
    attrs["system"] = "httpx"
    return name, attrs


def _safe_describe(request: Any) -> tuple[str, dict[str, Any]] | None:
    try:
        return _describe(request)
    except Exception as exc:  # noqa: BLE001 - the request itself must still happen
        internal_error("instrument.httpx", exc)
        return None


def _done(name: str, attrs: dict[str, Any], t0: int, response: Any, error: Any) -> None:
    if response is not None:
        status = response.status_code
        attrs["status_code"] = status
        if status >= 500:
            error = f"HTTP {status}"
    record(name, "http", t0, error, attrs, source_key=name)


def _wrap_sync(original: Any) -> Any:
    @functools.wraps(original)
    def handle_request(self: Any, request: Any) -> Any:
        described = _safe_describe(request) if _capture._capacity and recording() else None
        if described is None:
            return original(self, request)
        name, attrs = described
        t0 = _capture._now()
        try:
            response = original(self, request)
        except BaseException as exc:
            _done(name, attrs, t0, None, type(exc))
            raise
        _done(name, attrs, t0, response, None)
        return response

    return handle_request


def _wrap_async(original: Any) -> Any:
    @functools.wraps(original)
    async def handle_async_request(self: Any, request: Any) -> Any:
        described = _safe_describe(request) if _capture._capacity and recording() else None
        if described is None:
            return await original(self, request)
        name, attrs = described
        t0 = _capture._now()
        try:
            response = await original(self, request)
        except BaseException as exc:
            _done(name, attrs, t0, None, type(exc))
            raise
        _done(name, attrs, t0, response, None)
        return response

    return handle_async_request


def install() -> None:
    """Wrap httpx's transports (idempotent)."""
    if _patches:
        return
    import httpx

    sync = httpx.HTTPTransport
    _patches.replace(sync, "handle_request", _wrap_sync(sync.__dict__["handle_request"]))
    asynchronous = httpx.AsyncHTTPTransport
    _patches.replace(
        asynchronous,
        "handle_async_request",
        _wrap_async(asynchronous.__dict__["handle_async_request"]),
    )


def uninstall() -> None:
    """Restore httpx's transports."""
    _patches.undo()
