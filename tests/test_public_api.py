"""The public surface is exactly what DESIGN.md names (plus additions), pinned here."""

from __future__ import annotations

import botpulse


def test_all_is_pinned_and_sorted() -> None:
    assert botpulse.__all__ == [
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
    assert botpulse.__all__ == sorted(botpulse.__all__, key=lambda n: (n[0].islower(), n))


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in botpulse.__all__:
        obj = getattr(botpulse, name)
        if name != "__version__":
            assert obj.__doc__, f"{name} has no docstring"


def test_import_is_standard_library_only() -> None:
    import subprocess
    import sys

    code = (
        "import sys, botpulse\n"
        "botpulse.init(store='memory://'); botpulse.shutdown()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'click','rich','numpy','prometheus_client','opentelemetry','ddsketch',"
        "'sqlparse','asyncpg','psycopg','psycopg2','sqlalchemy','redis','aiohttp','httpx','aiosqlite'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
