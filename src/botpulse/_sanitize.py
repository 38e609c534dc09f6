"""Turn whatever the bot passed as names and attributes into bounded, storable values.

Runs in the pipeline, never on the hot path. Nothing here raises: a value that cannot
be represented becomes a placeholder. Strings are cut to a fixed size and made valid
UTF-8 (lone surrogates replaced); attribute keys that look like credentials are masked.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "MAX_ATTRS",
    "MAX_ATTR_CHARS",
    "MAX_KIND_CHARS",
    "MAX_NAME_CHARS",
    "clean_attrs",
    "clean_json",
    "clean_text",
    "safe_repr",
]

MAX_NAME_CHARS = 200
MAX_KIND_CHARS = 32
MAX_ATTR_CHARS = 1024
MAX_ATTR_KEY_CHARS = 64
MAX_ATTRS = 32
_ELLIPSIS = "…"
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|authorization|^auth$|credential|cookie", re.I
)
_MASK = "***"
_JSON_SAFE_INT = 2**53


def clean_text(value: Any, limit: int) -> str:
    """``value`` as a valid UTF-8 string of at most ``limit`` characters."""
    text = value if isinstance(value, str) else safe_repr(value, limit)
    if len(text) > limit:
        text = text[: limit - 1] + _ELLIPSIS
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def safe_repr(value: Any, limit: int = MAX_ATTR_CHARS) -> str:
    """``str(value)`` for strings, ``repr`` otherwise, cut to ``limit``; never raises."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        # Never keep raw bytes: they may be message content.
        return f"<{type(value).__name__} of {len(value)} bytes>"
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:  # noqa: BLE001 - a user object whose __repr__ raises
        try:
            return f"<unrepresentable {type(value).__name__}>"
        except Exception:  # noqa: BLE001
            return "<unrepresentable>"
    return text[:limit]


def _clean_value(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_JSON_SAFE_INT < value < _JSON_SAFE_INT else clean_text(value, 64)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return clean_text(value, MAX_ATTR_CHARS)


def clean_attrs(attrs: Any) -> dict[str, Any]:
    """At most ``MAX_ATTRS`` attributes with short string keys and JSON-safe, bounded values."""
    if not attrs:
        return {}
    out: dict[str, Any] = {}
    try:
        items = list(attrs.items())
    except Exception:  # noqa: BLE001
        return {"attrs": "<unreadable>"}
    for key, value in items[:MAX_ATTRS]:
        name = clean_text(key, MAX_ATTR_KEY_CHARS)
        out[name] = _MASK if _SECRET_KEY.search(name) else _clean_value(value)
    if len(items) > MAX_ATTRS:
        out["attrs_truncated"] = len(items) - MAX_ATTRS
    return out


def clean_json(value: Any, depth: int = 4) -> Any:
    """A JSON-safe, bounded copy of nested dicts and lists (findings' examples and details).

    Dicts keep at most ``MAX_ATTRS`` keys (credential-like keys masked), lists at most
    64 items, strings ``MAX_ATTR_CHARS``; deeper nesting than ``depth`` becomes text.
    """
    if isinstance(value, dict):
        if depth <= 0:
            return clean_text(value, MAX_ATTR_CHARS)
        out: dict[str, Any] = {}
        for key, item in list(value.items())[:MAX_ATTRS]:
            name = clean_text(key, MAX_ATTR_KEY_CHARS)
            out[name] = _MASK if _SECRET_KEY.search(name) else clean_json(item, depth - 1)
        return out
    if isinstance(value, (list, tuple)):
        if depth <= 0:
            return clean_text(value, MAX_ATTR_CHARS)
        return [clean_json(item, depth - 1) for item in list(value)[:64]]
    return _clean_value(value)
