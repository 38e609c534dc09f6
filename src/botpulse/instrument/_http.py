"""HTTP operation names: method, host and a route template with ids and tokens replaced.

``GET https://api.telegram.org/bot123456:AAE.../getUpdates?offset=5`` is recorded as
``GET api.telegram.org/bot{token}/getUpdates``: the query string is dropped, numeric and
hex/UUID ids become ``{id}``, long random-looking segments become ``{token}``. The full
URL never reaches the store (the repeated-read detector sees it under a masked key).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ._common import PARAMS_KEY

__all__ = ["describe", "route_template"]

_TELEGRAM_BOT = re.compile(r"^(bot|file/bot)\d+:[A-Za-z0-9_-]+$")
_NUMBER = re.compile(r"^[+-]?\d+$")
_HEX_ID = re.compile(r"^[0-9a-fA-F-]{16,}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MIXED = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_.~=-]{20,}$")
_MAX_SEGMENTS = 12


@functools.lru_cache(maxsize=4096)
def route_template(path: str) -> str:
    """``path`` with ids and tokens replaced, e.g. ``/users/42/avatar`` → ``/users/{id}/avatar``."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    segments = path.split("/")
    out: list[str] = []
    for segment in segments[: _MAX_SEGMENTS + 1]:
        if not segment:
            out.append(segment)
        elif _TELEGRAM_BOT.match(segment):
            out.append(segment.split("bot", 1)[0] + "bot{token}")
        elif _NUMBER.match(segment) or _UUID.match(segment) or _HEX_ID.match(segment):
            out.append("{id}")
        elif _MIXED.match(segment) or len(segment) > 64:
            out.append("{token}")
        elif re.search(r"\d{4,}", segment):  # "user_123456.png", "12345-slug"
            out.append(re.sub(r"\d{4,}", "{id}", segment))
        else:
            out.append(segment)
    if len(segments) > _MAX_SEGMENTS + 1:
        out.append("…")
    return "/".join(out) or "/"


def describe(
    method: str, host: str, port: int | None, path: str, url: Any
) -> tuple[str, dict[str, Any]]:
    """``(name, attrs)`` of one request."""
    method = method.upper()
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    route = route_template(path or "/")
    attrs: dict[str, Any] = {"method": method, "host": netloc, "route": route}
    if method in ("GET", "HEAD"):
        attrs[PARAMS_KEY] = str(url)
    return f"{method} {netloc}{route}", attrs
