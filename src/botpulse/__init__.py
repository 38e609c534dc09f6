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

import importlib
from typing import TYPE_CHECKING, Any

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
from .instrument import instrument, uninstrument

if TYPE_CHECKING:
    from .runtime.caches import CacheMonitor, instrument_cache
    from .runtime.limits import ConcurrencyLimiter, RateLimiter
    from .runtime.pools import PoolMonitor, instrument_pool

# Runtime health (pools, caches, limits) loads asyncio: imported on first use, so that
# `import botpulse` stays light for programs that never touch them.
_LAZY = {
    "CacheMonitor": "caches",
    "instrument_cache": "caches",
    "ConcurrencyLimiter": "limits",
    "RateLimiter": "limits",
    "PoolMonitor": "pools",
    "instrument_pool": "pools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'botpulse' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".runtime.{module}", __name__), name)
    globals()[name] = value
    return value


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
    "instrument",
    "instrument_cache",
    "instrument_pool",
    "measure",
    "shutdown",
    "stats",
    "tag",
    "uninstrument",
]
