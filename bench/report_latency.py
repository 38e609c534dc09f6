"""Report latency: ``build_report`` over 30 days and over 24 hours of 100 operations.

The store holds 30 days of history at 1,000 events/s as the default retention keeps
it (minute rows for the last 2 days, hour rows before, day rows folded in; trace
samples for 7 days), written through ``SQLiteStore.write`` by ``_history``. The
report is read through a separate reader store, as the CLI does; the figure is the
minimum of several runs, the first (cold connection) run is reported beside it.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from botpulse.analysis.report import build_report
from botpulse.store.sqlite import SQLiteStore

from ._common import Figure, Outcome, at_most, sqlite_size
from ._history import NOW_S, build_history, pools_for

WINDOWS = {"30d": timedelta(days=30), "24h": timedelta(hours=24), "1h": timedelta(hours=1)}


def run(quick: bool) -> Outcome:
    repeats = 2 if quick else 7
    now = datetime.fromtimestamp(NOW_S, tz=timezone.utc)
    details: dict[str, Any] = {"windows": {}}
    with tempfile.TemporaryDirectory(prefix="botpulse-bench-") as name:
        path = Path(name) / "report-30d.db"
        pools = pools_for(1000, quick)
        details["build"] = build_history(path, pools, days=30)
        details["size_bytes"] = sqlite_size(path)["pages_bytes"]
        for label, window in WINDOWS.items():
            times = []
            operations = 0
            for _ in range(repeats):
                store = SQLiteStore(path, create=False)  # a fresh reader, as the CLI opens
                try:
                    t0 = time.perf_counter()
                    report = build_report(store, since=now - window, until=now, now=now)
                    times.append(time.perf_counter() - t0)
                finally:
                    store.close()
                operations = len(report.operations)
            details["windows"][label] = {
                "min_s": min(times),
                "first_s": times[0],
                "all_s": times,
                "operations": operations,
                "slowest_flows": len(report.slowest_flows),
            }
    figures = []
    for label in ("30d", "24h"):
        w = details["windows"][label]
        figures.append(
            Figure(
                f"report.latency_{label}_s",
                f"build_report over {label} (30 days stored, {w['operations']} operations)",
                w["min_s"],
                "s",
                "<= 1 s",
                at_most(w["min_s"], 1.0),
                note=f"first run {w['first_s']:.3f} s"
                + ("; quick: 1/20 of the series" if quick else ""),
            )
        )
    w = details["windows"]["1h"]
    figures.append(Figure("report.latency_1h_s", "build_report over 1h", w["min_s"], "s"))
    return Outcome(figures, details)
