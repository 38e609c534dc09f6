"""The exceptions botpulse raises, all at configuration or read time, never on the hot path.

::

    BotpulseError
    ├── ConfigurationError      bad init() argument, store URL, duration, env value
    ├── LimitExceeded           a ConcurrencyLimiter or RateLimiter refused (your code's choice)
    └── StoreError              the store could not be opened, read or written
        └── StoreUnavailable    a transient outage (locked, missing, unreachable)

Instrumentation (``measure``, ``flow``, ``checkpoint``) never raises any of these into
the bot: internal failures there are counted and logged instead.
"""

from __future__ import annotations

__all__ = [
    "BotpulseError",
    "ConfigurationError",
    "LimitExceeded",
    "StoreError",
    "StoreUnavailable",
]


class BotpulseError(Exception):
    """Base class of every exception botpulse raises on purpose."""


class ConfigurationError(BotpulseError, ValueError):
    """A configuration value is invalid; the message names it and what would be valid.

    Example::

        >>> botpulse.init(store="mysql://db")  # doctest: +SKIP
        ConfigurationError: unknown store scheme 'mysql' in 'mysql://db'; valid: sqlite, memory
    """


class StoreError(BotpulseError):
    """The store failed; the underlying driver exception is chained as ``__cause__``."""


class StoreUnavailable(StoreError):
    """The store is temporarily unreachable (locked, file missing, server down); retry later."""


class LimitExceeded(BotpulseError):
    """A :class:`~botpulse.ConcurrencyLimiter` or :class:`~botpulse.RateLimiter` refused a call.

    Raised only by the limiters' own methods, which your code calls on purpose; the
    refusal is recorded (``botpulse report`` counts it) before it is raised.
    """
