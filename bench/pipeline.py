"""Pipeline throughput: events per second drained, aggregated and written to SQLite.

The buffer is filled (untimed) with finished timers recorded through the real hot
path under a synthetic clock (see ``_traffic``: 100 names, 10% of units are flows
with three children and two checkpoints), at 50,000 events per simulated second.
Then, per chunk of 50,000 events (one simulated second, i.e. one ``flush_interval``
at that rate), the timed part is exactly what the pipeline thread does:
``Pipeline.drain()`` (aggregate) and ``Pipeline.flush()`` (one SQLite transaction
writing minute rows folded into hour and day rows, plus trace samples). One thread,
so this is what one core sustains.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import botpulse
from botpulse import ManualClock, _capture
from botpulse._aggregate import Aggregator
from botpulse._buffer import EventBuffer
from botpulse._pipeline import Pipeline
from botpulse.store.sqlite import SQLiteStore

from ._common import Figure, Outcome, at_least
from ._traffic import EVENTS_PER_UNIT, FLOW_NAMES, STEP_KINDS, STEP_NAMES, Traffic, flow_attrs

RATE = 50_000  # events per simulated second
CHUNK = 50_000  # events per flush
PERF0 = 10**12
WALL0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


class _Failure(Exception):
    pass


def build_records(n_events: int, seed: int = 11) -> list[Any]:
    """Finished timers, recorded by the real hot path under a synthetic clock."""
    traffic = Traffic(seed)
    now = [PERF0]
    buffer = EventBuffer(n_events * 2)
    _capture.activate(lambda: now[0], buffer)
    measure, flow = botpulse.measure, botpulse.flow
    second = 0
    try:
        while len(buffer) < n_events:
            units = traffic.units(PERF0 + second * 10**9, 10**9, int(RATE / EVENTS_PER_UNIT))
            second += 1
            for u in units:
                s = u.start_ns
                now[0] = s
                if u.flow < 0:
                    try:
                        with measure(STEP_NAMES[u.step], STEP_KINDS[u.step]):
                            now[0] = s + u.duration_ns
                            if u.failed:
                                raise _Failure
                    except _Failure:
                        pass
                    continue
                try:
                    with flow(FLOW_NAMES[u.flow], **flow_attrs(s)) as f:
                        (cp1, at1), (cp2, at2) = u.checkpoints
                        now[0] = s + at1
                        f.checkpoint(cp1)
                        for step, off, dur, fail in u.children:
                            now[0] = s + off
                            try:
                                with measure(STEP_NAMES[step], STEP_KINDS[step]):
                                    now[0] = s + off + dur
                                    if fail:
                                        raise _Failure
                            except _Failure:
                                pass
                        now[0] = s + at2
                        f.checkpoint(cp2)
                        now[0] = s + u.duration_ns
                        if u.failed:
                            raise _Failure
                except _Failure:
                    pass
    finally:
        _capture.deactivate()
    return buffer.drain()[:n_events]


def drive(records: list[Any], path: Path) -> dict[str, Any]:
    """Feed ``records`` through a real Pipeline into a new SQLite file; time drain and flush."""
    store = SQLiteStore(path)
    clock = ManualClock(wall_ns=WALL0, perf_ns=PERF0)
    buffer = EventBuffer(CHUNK * 4)
    pipeline = Pipeline(buffer, Aggregator("bench", "bench-1", seed=1), store, clock)
    drain_s = flush_s = 0.0
    cpu = 0.0
    flushes = 0
    for i in range(0, len(records), CHUNK):
        chunk = records[i : i + CHUNK]
        deque(map(buffer.offer, chunk), maxlen=0)  # untimed: the bot did this
        clock.advance(len(chunk) / RATE)
        c0, t0 = time.process_time(), time.perf_counter()
        pipeline.drain()
        t1 = time.perf_counter()
        pipeline.flush()
        t2 = time.perf_counter()
        cpu += time.process_time() - c0
        drain_s += t1 - t0
        flush_s += t2 - t1
        flushes += 1
    c0, t0 = time.process_time(), time.perf_counter()
    pipeline.drain()
    ok = pipeline.flush(final=True)
    flush_s += time.perf_counter() - t0
    cpu += time.process_time() - c0
    stats = pipeline.stats()
    store.close()
    conn = sqlite3.connect(path)
    rows = dict(conn.execute("SELECT resolution, COUNT(*) FROM rollups GROUP BY resolution"))
    traces = conn.execute("SELECT COUNT(*) FROM traces").fetchone()[0]
    conn.close()
    total = drain_s + flush_s
    return {
        "events": len(records),
        "flushes": flushes + 1,
        "written": stats.written,
        "final_flush_ok": ok,
        "drain_s": drain_s,
        "flush_s": flush_s,
        "wall_s": total,
        "cpu_s": cpu,
        "events_per_s": len(records) / total,
        "events_per_cpu_s": len(records) / cpu if cpu else float("inf"),
        "rollup_rows": {str(k): v for k, v in rows.items()},
        "trace_rows": traces,
    }


def run(quick: bool) -> Outcome:
    n = 100_000 if quick else 1_000_000
    t0 = time.perf_counter()
    records = build_records(n)
    build_s = time.perf_counter() - t0
    flows = sum(1 for r in records if (r[0] if isinstance(r, tuple) else r).kind == "flow")
    runs = []
    with tempfile.TemporaryDirectory(prefix="botpulse-bench-") as tmp:
        for rep in range(1 if quick else 3):
            runs.append(drive(records, Path(tmp) / f"pipeline-{rep}.db"))
    best = max(runs, key=lambda r: r["events_per_s"])
    assert best["written"] == len(records), "the pipeline lost events"
    figure = Figure(
        "pipeline.events_per_s",
        "pipeline drain+aggregate+SQLite write, one thread",
        best["events_per_s"],
        "events/s",
        ">= 250,000",
        at_least(best["events_per_s"], 250_000),
        note=(
            f"{best['events']:,} events, {flows / len(records):.1%} flows; "
            f"aggregate {best['drain_s'] / best['wall_s']:.0%} / write "
            f"{best['flush_s'] / best['wall_s']:.0%} of the time"
        ),
    )
    cpu_figure = Figure(
        "pipeline.events_per_cpu_s",
        "pipeline throughput per CPU second",
        best["events_per_cpu_s"],
        "events/s",
    )
    return Outcome(
        [figure, cpu_figure],
        {
            "events": len(records),
            "flow_records": flows,
            "rate_per_simulated_s": RATE,
            "events_per_flush": CHUNK,
            "build_records_s": build_s,
            "runs": runs,
            "best": best,
        },
    )
