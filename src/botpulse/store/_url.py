"""Store URLs: parse them at the boundary with a one-line error, and mask credentials."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from ..errors import ConfigurationError

__all__ = ["SCHEMES", "StoreURL", "parse_store_url", "redact_url"]

#: The schemes ``open_store`` understands (``postgres://`` is read as ``postgresql://``).
SCHEMES = ("sqlite", "memory", "postgresql")
_ALIASES = {"postgres": "postgresql"}
_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@"
)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (also inside longer text)."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL."""

    scheme: str
    path: str  # the database file for sqlite, the database name for postgresql, "" for memory
    raw: str

    def __str__(self) -> str:
        return redact_url(self.raw)


def _port_ok(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return True


def _postgres_url(url: str, port: int | None, shown: str) -> StoreURL:
    parts = urlsplit(url)
    if parts.netloc and port is None and _has_port(parts.netloc):
        raise ConfigurationError(
            f"store URL {shown!r} has an invalid port; use e.g. "
            "'postgresql://user:password@localhost:5432/botpulse'"
        )
    if "\x00" in url:
        raise ConfigurationError(f"store URL {shown!r} contains a NUL character")
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"store URL {shown!r} is not valid text (lone surrogate)"
        ) from None
    return StoreURL("postgresql", parts.path.lstrip("/"), url)


def _has_port(netloc: str) -> bool:
    host = netloc.rsplit("@", 1)[-1]
    return ":" in host.rsplit("]", 1)[-1]


def parse_store_url(url: str) -> StoreURL:
    """Parse ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``memory://`` or
    ``postgresql://user:password@host:5432/dbname`` (libpq URL parameters allowed).

    Raises :class:`ConfigurationError` naming the bad value and what is valid.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            f"store URL must be a non-empty string like 'sqlite:///botpulse.db', got {url!r}"
        )
    url = url.strip()
    shown = redact_url(url)
    if "://" not in url:
        raise ConfigurationError(
            f"store URL {shown!r} has no scheme; use e.g. 'sqlite:///botpulse.db' "
            f"(valid schemes: {', '.join(SCHEMES)})"
        )
    scheme = url.split("://", 1)[0].lower()
    scheme = _ALIASES.get(scheme, scheme)
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"unknown store scheme {scheme!r} in {shown!r}; valid schemes: {', '.join(SCHEMES)}"
        )
    if scheme == "memory":
        return StoreURL("memory", "", url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for sqlite://[x
        raise ConfigurationError(
            f"store URL {shown!r} is not a valid URL ({exc}); use e.g. 'sqlite:///botpulse.db'"
        ) from None
    if scheme == "postgresql":
        return _postgres_url(url, parts.port if _port_ok(parts) else None, shown)
    if parts.netloc:
        raise ConfigurationError(
            f"store URL {shown!r} has a host part {parts.netloc!r}; SQLite URLs are "
            "'sqlite:///relative/path.db' (three slashes) or 'sqlite:////absolute/path.db'"
        )
    path = url[len("sqlite:///") :] if url.lower().startswith("sqlite:///") else ""
    if not path or path.endswith("/"):
        raise ConfigurationError(
            f"store URL {shown!r} names no database file; use e.g. 'sqlite:///botpulse.db'"
        )
    if path == ":memory:":
        raise ConfigurationError(
            f"store URL {shown!r}: an in-memory SQLite database is private to one "
            "connection; use 'memory://' instead"
        )
    if "\x00" in path:
        raise ConfigurationError(f"store URL {shown!r} contains a NUL character")
    return StoreURL("sqlite", path, url)
