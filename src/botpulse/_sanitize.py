"""Turn whatever the bot passed as names and attributes into bounded, storable values.

Runs in the pipeline, never on the hot path. Nothing here raises: a value that cannot
be represented becomes a placeholder. Strings are cut to a fixed size and made valid
UTF-8 (lone surrogates replaced); attribute keys that look like credentials are masked,
and credentials inside any text (names, attribute values, checkpoint names, error text,
findings) are replaced by ``***`` (:func:`scrub_secrets`).
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
    "scrub_secrets",
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
# clean_text scrubs this many characters past its limit before cutting.
_SCRUB_MARGIN = 256
# Credentials that turn up inside values. Each pattern keeps group 1 (the prefix) and
# masks what follows; each runs only when a cheap substring test says it may match,
# so ordinary names and values cost a few ``in`` checks.
# scheme://user:password@host or scheme://token@host (greedy up to the authority's
# last "@", so an unescaped "@" in a password does not leak the rest of it).
_URL_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s/?#]+)@")
# Telegram Bot API paths (/bot<id>:<token>/method) and bare bot tokens.
_TELEGRAM_PATH = re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+")
# (Searched from the ":" on, a literal, so ordinary text is skipped quickly.)
_TELEGRAM_SECRET = re.compile(r":[A-Za-z0-9_-]{30,}")
# Discord webhook and interaction tokens: /webhooks/<id>/<token>.
_DISCORD_HOOK = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.-]+")
# Authorization values: Bearer/Bot/Basic/Token <credential>.
_AUTH_VALUE = re.compile(
    r"\b((?:[Bb]earer|BEARER|Basic|Bot|Token|token)\s+)[A-Za-z0-9._~+/=:*-]{8,}"
)
# Three-part tokens: Discord bot tokens (base64 user id . time . hmac) and JWTs.
_DISCORD_TOKEN = re.compile(r"()\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}")
_JWT = re.compile(r"()eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_MASKED = r"\1" + _MASK
# key=value pairs (query strings, libpq DSNs, log-like text) whose key names a secret.
_SECRET_PARAM_PARTS = ("pass", "pwd", "secret", "token", "apikey", "api_key", "api-key")
_SECRET_PARAM_STARTS = ("auth", "sig", "key")
_PARAM_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_PARAM_VALUE_END = re.compile(r"[&;,\s\"']|$")


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match[2].partition(":")
    return f"{match[1]}{user}:{_MASK}@" if colon else f"{match[1]}{_MASK}@"


def _mask_telegram_tokens(text: str) -> str:
    """Mask ``<bot id>:<secret>`` (5+ digits, a colon, 30+ token characters)."""
    parts: list[str] = []
    start = 0
    for found in _TELEGRAM_SECRET.finditer(text):
        colon = found.start()
        digits = colon
        while digits > 0 and text[digits - 1].isdigit():
            digits -= 1
        if colon - digits >= 5 and (
            digits == 0 or not (text[digits - 1].isalnum() or text[digits - 1] in "_:")
        ):
            parts.append(text[start : colon + 1])
            parts.append(_MASK)
            start = found.end()
    if not parts:
        return text
    parts.append(text[start:])
    return "".join(parts)


def _is_secret_param(key: str) -> bool:
    if key.startswith(_SECRET_PARAM_STARTS) and (key[:3] != "key" or key == "key"):
        return True
    return any(part in key for part in _SECRET_PARAM_PARTS)


def _mask_secret_params(text: str) -> str:
    """Mask the values of ``password=...``, ``?token=...`` and the like (one pass per ``=``)."""
    parts: list[str] = []
    start = 0
    eq = text.find("=")
    while eq != -1:
        key_start = eq
        while key_start > 0 and text[key_start - 1] in _PARAM_KEY_CHARS:
            key_start -= 1
        end = eq + 1
        if key_start < eq and _is_secret_param(text[key_start:eq].lower()):
            found = _PARAM_VALUE_END.search(text, eq + 1)
            end = found.start() if found else len(text)
            if end > eq + 1:
                parts.append(text[start : eq + 1])
                parts.append(_MASK)
                start = end
        eq = text.find("=", end)
    if not parts:
        return text
    parts.append(text[start:])
    return "".join(parts)


def scrub_secrets(text: str) -> str:
    """``text`` with credentials masked: URL passwords, bot tokens, webhook tokens, auth values.

    Example::

        >>> scrub_secrets("https://api.telegram.org/bot123456:AAE-abc/sendMessage")
        'https://api.telegram.org/bot***/sendMessage'
        >>> scrub_secrets("postgresql://bot:hunter2@db/prod")
        'postgresql://bot:***@db/prod'
    """
    if "://" in text and "@" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    if ":" in text:
        if "/bot" in text:
            text = _TELEGRAM_PATH.sub(_MASKED, text)
        if len(text) >= 36 and _TELEGRAM_SECRET.search(text):
            text = _mask_telegram_tokens(text)
    if "/webhooks/" in text or "/interactions/" in text:
        text = _DISCORD_HOOK.sub(_MASKED, text)
    if "earer" in text or "EARER" in text or "Basic" in text or "Bot" in text or "oken" in text:
        text = _AUTH_VALUE.sub(_MASKED, text)
    if "=" in text:
        low = text.lower()
        if (
            "pass" in low
            or "pwd" in low
            or "secret" in low
            or "token" in low
            or "key" in low
            or "auth" in low
            or "sig" in low
        ):
            text = _mask_secret_params(text)
    if len(text) >= 59 and "." in text:
        text = _DISCORD_TOKEN.sub(_MASKED, text)
    if "eyJ" in text:
        text = _JWT.sub(_MASKED, text)
    return text


def clean_text(value: Any, limit: int) -> str:
    """``value`` as a valid UTF-8 string of at most ``limit`` characters."""
    text = value if isinstance(value, str) else safe_repr(value, limit + _SCRUB_MARGIN)
    # Scrub before cutting, so a cut never leaves the start of a secret its pattern
    # no longer recognises; only a bounded prefix is scanned.
    text = scrub_secrets(text[: limit + _SCRUB_MARGIN])
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
    if isinstance(value, (dict, list, tuple)):
        # Kept as text, but credential-like keys inside are masked first.
        value = _mask_nested_keys(value, 4)
    return clean_text(value, MAX_ATTR_CHARS)


def _mask_nested_keys(value: Any, depth: int) -> Any:
    """A copy of nested dicts/lists with the values of credential-like keys masked."""
    if depth <= 0:
        return value
    try:
        if isinstance(value, dict):
            return {
                key: _MASK
                if isinstance(key, str) and _SECRET_KEY.search(key)
                else _mask_nested_keys(item, depth - 1)
                for key, item in list(value.items())[: MAX_ATTRS * 4]
            }
        if isinstance(value, (list, tuple)):
            return [_mask_nested_keys(item, depth - 1) for item in list(value)[: MAX_ATTRS * 4]]
    except Exception:  # noqa: BLE001 - a mapping whose items() raises
        return "<unreadable>"
    return value


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
