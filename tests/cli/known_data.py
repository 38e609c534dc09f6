"""Test data for the CLI: a SQLite store with known operations at past times."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from botpulse.store import Batch, Checkpoint, Child, DropCount, Operation, open_store

SERVICE = "testbot"
SCRIPT_NAME = "<script>alert(1)</script>"
IMG_NAME = "<img src=x onerror=alert(2)>"


def ms(value: float) -> int:
    """Milliseconds as integer nanoseconds."""
    return round(value * 1_000_000)


def true_quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank value: rank ``ceil(q * n)`` of ``values`` (what the report estimates)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


@dataclass
class KnownStore:
    """A store filled with operations whose statistics the tests know exactly."""

    url: str
    path: Path
    base: int  # epoch seconds of the first operation
    since: str  # ISO window that covers all operations
    until: str
    queue_ms: list[float] = field(default_factory=list)
    queue_errors: int = 0
    db_ms: list[float] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)

    def window(self) -> list[str]:
        """``--store``, ``--since`` and ``--until`` arguments for this store's data."""
        return ["--store", self.url, "--since", self.since, "--until", self.until]


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat()


def _slow_queue(start_ns: int) -> Operation:
    """The slowest flow: 5 s, failed; the matchmaker HTTP call is its slow step."""
    return Operation(
        "queue",
        start_ns,
        ms(5000),
        kind="flow",
        status="error",
        error="TimeoutError: matchmaker did not answer",
        checkpoints=[Checkpoint("guard_checks", ms(5)), Checkpoint("matchmaking", ms(4800))],
        children=[
            Child("db.get_player", "db", ms(1), ms(3), "ok"),
            Child("http.matchmaker", "http", ms(10), ms(4700), "ok"),
            Child("db.lock", "db", ms(20), ms(50), "error", "OperationalError: locked", 2),
            Child("redis.set", "redis", ms(4810), ms(100), "ok"),
        ],
    )


def build_known_store(tmp_path: Path) -> KnownStore:
    """400 + 1 ``queue`` flows, one hostile-named flow, 300 ``db.get_player`` calls, 10 drops.

    Everything lies in the half hour after a whole hour three hours ago.
    """
    base = (int(time.time()) // 3600 - 3) * 3600
    path = tmp_path / "known.db"
    known = KnownStore(
        url=f"sqlite:///{path}",
        path=path,
        base=base,
        since=_iso(base - 60),
        until=_iso(base + 3600),
        drops={"buffer_full": 7, "store_unavailable": 3},
    )
    ops: list[Operation] = []
    for i in range(400):
        duration = (i + 1) * 0.5
        failed = i % 20 == 0
        known.queue_ms.append(duration)
        known.queue_errors += failed
        ops.append(
            Operation(
                "queue",
                (base + i * 4) * 1_000_000_000,
                ms(duration),
                kind="flow",
                status="error" if failed else "ok",
                error="ValueError: bad input" if failed else None,
            )
        )
    ops.append(_slow_queue((base + 1700) * 1_000_000_000))
    known.queue_ms.append(5000.0)
    known.queue_errors += 1
    ops.append(
        Operation(
            SCRIPT_NAME,
            (base + 1750) * 1_000_000_000,
            ms(3000),
            kind="flow",
            children=[Child(IMG_NAME, "op", ms(100), ms(2000), "ok")],
        )
    )
    for i in range(300):
        duration = 2.0 + (i % 10)
        known.db_ms.append(duration)
        ops.append(Operation("db.get_player", (base + i * 5) * 1_000_000_000, ms(duration), "db"))
    with open_store(known.url) as store:
        store.write_operations(ops, service=SERVICE, instance="test-1")
        store.write(
            Batch(
                drops=[
                    DropCount(SERVICE, "test-1", base + 120, reason, count)
                    for reason, count in known.drops.items()
                ]
            )
        )
    return known
