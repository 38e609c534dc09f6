"""Internal failures: count them, log each call site at most once a minute, raise in strict mode.

botpulse runs inside someone else's bot, so its own bugs must never reach the bot.
Tests set ``BOTPULSE_STRICT=1`` so that a swallowed internal error fails the suite
instead of hiding (RELIABILITY.md).
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["RateLimitedLog", "internal_error", "internal_error_count", "logger", "strict"]

logger = logging.getLogger("botpulse")

_STRICT = False  # set from BOTPULSE_STRICT by _config, where environment variables are read
_errors_lock = threading.Lock()
_error_count = 0


def strict() -> bool:
    """True when internal errors are re-raised (``BOTPULSE_STRICT=1``, set by the test suite)."""
    return _STRICT


class RateLimitedLog:
    """Log at most one line per key per ``interval`` seconds; count what it suppresses."""

    def __init__(self, interval: float = 60.0) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self.suppressed = 0
        self._lock = threading.Lock()

    def log(self, level: int, key: str, message: str, *args: object) -> bool:
        """Log ``message`` unless ``key`` was logged within the interval; return True if logged."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self.suppressed += 1
                return False
            if len(self._last) > 1000:
                self._last.clear()
            self._last[key] = now
        logger.log(level, message, *args)
        return True


_site_log = RateLimitedLog()


def internal_error(site: str, exc: BaseException) -> None:
    """Record an internal failure at ``site``; re-raise it when strict mode is on."""
    global _error_count
    with _errors_lock:
        _error_count += 1
    _site_log.log(
        logging.WARNING,
        site,
        "botpulse internal error in %s (instrumentation continues): %s: %s",
        site,
        type(exc).__name__,
        exc,
    )
    if _STRICT:
        raise exc


def internal_error_count() -> int:
    """How many internal errors happened in this process (tests assert it stays 0)."""
    return _error_count
