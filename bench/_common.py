"""What every benchmark shares: the figure record, interleaved timing, machine facts.

A benchmark module exposes ``run(quick: bool) -> Outcome``: a list of
:class:`Figure` (what the table and RESULTS.md show, each with its target) and a
``details`` dict of raw numbers for the JSON file.
"""

from __future__ import annotations

import gc
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

MB = 1_000_000
MiB = 1 << 20


@dataclass(slots=True)
class Figure:
    """One number of the results table, with its target when it has one.

    ``passed`` is ``None`` for figures shown for information only. ``ratio`` marks
    figures that are ratios between things measured in the same run (shown first).
    """

    key: str
    label: str
    value: float | None
    unit: str
    target: str = ""
    passed: bool | None = None
    note: str = ""
    ratio: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Outcome:
    """What one benchmark module reports."""

    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


# -- timing ------------------------------------------------------------------------

# A measured function takes an iteration count and returns elapsed nanoseconds for
# that many operations (the loop is inside, so call overhead is paid once).
Timed = Callable[[int], int]


@dataclass(slots=True)
class Contender:
    """One function of an interleaved comparison.

    ``before``/``after`` run untimed around every sample (switch instrumentation on
    or off, clear the buffer the previous sample filled).
    """

    name: str
    timed: Timed
    before: Callable[[], object] | None = None
    after: Callable[[], object] | None = None
    iterations: int = 0  # set by calibration


def calibrate(contender: Contender, sample_ns: float) -> int:
    """How many iterations make one sample last about ``sample_ns``."""
    n = 64
    while True:
        if contender.before:
            contender.before()
        elapsed = contender.timed(n)
        if contender.after:
            contender.after()
        if elapsed >= sample_ns / 4 or n >= 1 << 24:
            return max(16, int(n * sample_ns / max(elapsed, 1)))
        n *= 4


def interleave(
    contenders: list[Contender], rounds: int, sample_ns: float, seed: int = 1
) -> dict[str, list[float]]:
    """ns per operation of every contender in every round, the order shuffled per round.

    Interleaving spreads the machine's noise over all contenders alike, so ratios of
    their minima (or of their medians) are fair even on a shared, busy machine.
    """
    for c in contenders:
        c.iterations = calibrate(c, sample_ns)
    rng = random.Random(seed)
    per_op: dict[str, list[float]] = {c.name: [] for c in contenders}
    order = list(contenders)
    for _ in range(rounds):
        rng.shuffle(order)
        for c in order:
            if c.before:
                c.before()
            elapsed = c.timed(c.iterations)
            if c.after:
                c.after()
            per_op[c.name].append(elapsed / c.iterations)
    return per_op


def summarize(samples: list[float]) -> dict[str, float]:
    """min, median and 90th percentile of per-round samples."""
    ordered = sorted(samples)
    return {
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p90": ordered[int(0.9 * (len(ordered) - 1))],
        "rounds": len(ordered),
    }


def quiet_gc() -> None:
    """Start a measurement from a clean heap."""
    gc.collect()


def cpu_and_wall(fn: Callable[[], object]) -> tuple[float, float]:
    """Process CPU seconds and wall seconds spent in ``fn()``."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


# -- SQLite file size ---------------------------------------------------------------


def sqlite_size(path: Path) -> dict[str, int]:
    """Checkpoint the WAL into the file, then report its size and page accounting."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        freelist = conn.execute("PRAGMA freelist_count").fetchone()[0]
        tables: dict[str, int] = {}
        try:
            rows = conn.execute(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
            tables = {name: int(size) for name, size in rows}
        except sqlite3.Error:  # SQLite built without dbstat
            tables = {}
    finally:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    return {
        "file_bytes": path.stat().st_size,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        "page_size": page_size,
        "page_count": page_count,
        "pages_bytes": page_size * page_count,
        "freelist_pages": freelist,
        "tables": tables,  # type: ignore[dict-item]
    }


# -- machine -------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """The facts needed to compare two result files."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    try:
        mem_total = next(
            int(line.split()[1]) * 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_total = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": mem_total,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
        "botpulse": _version("botpulse"),
        "git_commit": _git_commit(),
        "peers": {
            name: _version(name)
            for name in ("prometheus-client", "opentelemetry-sdk", "ddsketch", "numpy", "psutil")
        },
        "executable": sys.executable,
    }
