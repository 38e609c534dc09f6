"""botpulse: performance monitoring, analysis and alerting for Python chat bots.

Example::

    import botpulse

    botpulse.init(store="sqlite:///botpulse.db", service="mybot")

    @botpulse.flow("leaderboard")
    async def leaderboard(ctx):
        with botpulse.measure("db.load_rows", kind="db"):
            rows = await load_rows()
        botpulse.checkpoint("rows_loaded")
        ...

Then ``botpulse report --since 1h`` prints latency percentiles per operation and the
slowest flows as waterfalls.
"""

from __future__ import annotations

from ._capture import Flow, Timer, checkpoint, current_flow, fail, tag
from ._capture import Flow as flow  # noqa: N813 - the public verbs are the classes
from ._capture import Timer as measure  # noqa: N813
from ._clock import Clock, ManualClock, SystemClock
from ._config import init, shutdown, stats
from ._pipeline import Stats
from ._version import __version__
from .errors import (
    BotpulseError,
    ConfigurationError,
    LimitExceeded,
    StoreError,
    StoreUnavailable,
)
from .runtime.caches import CacheMonitor, instrument_cache
from .runtime.limits import ConcurrencyLimiter, RateLimiter
from .runtime.pools import PoolMonitor, instrument_pool

__all__ = [
    "BotpulseError",
    "CacheMonitor",
    "Clock",
    "ConcurrencyLimiter",
    "ConfigurationError",
    "Flow",
    "LimitExceeded",
    "ManualClock",
    "PoolMonitor",
    "RateLimiter",
    "Stats",
    "StoreError",
    "StoreUnavailable",
    "SystemClock",
    "Timer",
    "__version__",
    "checkpoint",
    "current_flow",
    "fail",
    "flow",
    "init",
    "instrument_cache",
    "instrument_pool",
    "measure",
    "shutdown",
    "stats",
    "tag",
]
