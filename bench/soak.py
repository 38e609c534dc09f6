"""Soak: RSS of a bot recording 1,000 events/s stays flat after its first hour.

Simulated time (a ``ManualClock``): the workload of ``allin`` (flows of 1 + 4 steps, 10
flow names, 20 step names) at 1,000 events/s for three hours, the pipeline driven by
hand once per simulated second (drain, flush) into a real SQLite file, folding every
simulated minute. RSS is read after each hour; the figure is the growth from the end of
hour 1 to the end of hour 3. Real time is not the point: memory is.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._common import MB, Figure, Outcome, at_most

CHILD = r"""
import gc, json, sys, time
import botpulse
from botpulse import _config

def rss():
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

db, hours, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
clock = botpulse.ManualClock(wall_ns=1_800_000_000 * 10**9)
botpulse.init(store=f"sqlite:///{db}", service="soak", clock=clock, flush_interval=3600)
pipe = _config._running.pipeline
pipe._stop.set(); pipe._wake.set(); pipe._thread.join()  # driven by hand below
FLOWS = [f"cmd{i}" for i in range(10)]
STEPS = [f"step{i}" for i in range(20)]
PLAN = [(FLOWS[i], [STEPS[(2 * i + j) % 20] for j in range(4)]) for i in range(10)]
flows_per_s = rate // 5
out = {"rss": [rss()]}
for hour in range(hours):
    for second in range(3600):
        for i in range(flows_per_s):
            name, steps = PLAN[i % 10]
            with botpulse.flow(name):
                for s in steps:
                    with botpulse.measure(s):
                        clock.advance(0.00005)
            clock.advance(1.0 / flows_per_s - 0.0002)
        pipe.drain()
        pipe.flush()
        if second % 60 == 0:
            pipe.store.fold(clock.time_ns() / 1e9, limit=4)
    out["rss"].append(rss())
stats = botpulse.shutdown()
out["written"] = stats.written
out["dropped"] = stats.dropped_total
print(json.dumps(out))
"""


def run(quick: bool) -> Outcome:
    hours, rate = (2, 50) if quick else (3, 1000)
    with tempfile.TemporaryDirectory(prefix="botpulse-soak-") as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(Path(tmp) / "soak.db"), str(hours), str(rate)],
            capture_output=True,
            text=True,
            check=True,
            timeout=3600,
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    rss = result["rss"]
    growth = (rss[-1] - rss[1]) / MB
    return Outcome(
        [
            Figure(
                "soak.rss_growth_after_first_hour",
                f"RSS growth after the first hour, {rate:,} events/s for {hours} simulated hours",
                growth,
                "MB",
                "<= 1 MB",
                at_most(growth, 1.0),
                note=(
                    "RSS per hour: "
                    + ", ".join(f"{r / MB:.1f}" for r in rss)
                    + f" MB; {result['written']:,} written, {result['dropped']} dropped"
                ),
            )
        ],
        {"rss_bytes": rss, **result},
    )
