"""Storage growth: SQLite bytes per simulated day, and the steady-state size of 90 days.

Traffic (``_traffic``: 100 names, 10 of them flows with three children) with
explicit wall timestamps goes through the real write path, one flush per simulated
second as with the default ``flush_interval=1``: ``Aggregator.add_operations`` →
``batch(now)`` → ``SQLiteStore.write`` → ``commit``. Sizes are read after
``PRAGMA wal_checkpoint(TRUNCATE)`` as page_count × page_size, split per table with
the ``dbstat`` table, and the rollup pages split per resolution in proportion to
their payload.

A simulated day at 1,000 events/s is 86M operations, so the 100 and 1,000 events/s
cases simulate one hour (a few minutes in ``--quick``) and extrapolate to a day per
component: minute rows, hour rows and trace samples × 24, day rows × 1 (one per
series per day whatever the span). The 10 events/s case is simulated for a full day
and also extrapolated from its first hour, which checks the method.

"Bytes per day" is a fresh day at minute resolution, the stricter number the target
is compared with. In steady state retention deletes as much as a day adds; the
steady-state size of 90 days (``_history``) says what the history costs.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from botpulse._aggregate import Aggregator
from botpulse._model import DAY
from botpulse.store.sqlite import SQLiteStore

from ._common import MB, Figure, Outcome, at_most, sqlite_size
from ._history import INSTANCE, SERVICE, build_history, pools_for
from ._traffic import Traffic, series_specs

SIM_START_S = 1_767_225_600  # 2026-01-01T00:00:00Z, a day boundary


def breakdown(path: Path) -> dict[str, Any]:
    """File size and where the bytes are: tables, rollup resolutions, traces."""
    size = sqlite_size(path)
    conn = sqlite3.connect(path)
    try:
        per_res = {
            int(res): {"rows": rows, "sketch_bytes": int(sk or 0), "payload": int(pl or 0)}
            for res, rows, sk, pl in conn.execute(
                "SELECT resolution, COUNT(*), SUM(length(sketch)), SUM(length(sketch) + 24) "
                "FROM rollups GROUP BY resolution"
            )
        }
        trace_rows, body_bytes = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(body)), 0) FROM traces"
        ).fetchone()
        series = conn.execute("SELECT COUNT(*) FROM series").fetchone()[0]
    finally:
        conn.close()
    tables = size["tables"]
    rollup_pages = tables.get("rollups", 0)
    total_payload = sum(r["payload"] for r in per_res.values()) or 1
    for r in per_res.values():
        r["bytes"] = rollup_pages * r["payload"] / total_payload
    trace_bytes = tables.get("traces", 0) + tables.get("traces_by_start", 0)
    return {
        **size,
        "series": series,
        "rollups": per_res,
        "trace_rows": trace_rows,
        "trace_body_bytes": body_bytes,
        "trace_bytes": trace_bytes,
        "other_bytes": size["pages_bytes"] - rollup_pages - trace_bytes,
    }


def per_day(snapshot: dict[str, Any], elapsed_s: int, empty_bytes: int) -> dict[str, float]:
    """A fresh day's bytes, extrapolated per component from ``elapsed_s`` simulated seconds."""
    scale = DAY / elapsed_s
    hour_scale = DAY / max(elapsed_s, 3600)  # a started hour already has its hour row
    res = snapshot["rollups"]

    def part(resolution: int) -> float:
        return float(res.get(resolution, {}).get("bytes", 0.0))

    minute, hour, day = part(60) * scale, part(3600) * hour_scale, part(86400)
    traces = snapshot["trace_bytes"] * scale
    other = max(snapshot["pages_bytes"] - empty_bytes - part(60) - part(3600) - part(86400), 0)
    other -= snapshot["trace_bytes"]
    total = minute + hour + day + traces + max(other, 0)
    return {
        "total": total,
        "minute_rows": minute,
        "hour_rows": hour,
        "day_rows": day,
        "traces": traces,
        "other": max(other, 0),
        "minute_rows_per_day": res.get(60, {}).get("rows", 0) * scale,
        "trace_rows_per_day": snapshot["trace_rows"] * scale,
    }


def _components_note(entry: dict[str, Any]) -> str:
    parts = entry["per_day_extrapolated"]
    p = parts[max(parts, key=lambda k: int(k[5:-1]))]  # the longest span simulated
    return (
        f"; minute rows {p['minute_rows'] / MB:.1f}, traces {p['traces'] / MB:.1f}, "
        f"hour rows {p['hour_rows'] / MB:.1f} MB"
    )


def _retained_per_day(steady: dict[str, Any]) -> dict[str, float]:
    """MB per day of history each kind of row costs in the steady-state file."""
    res = steady["rollups"]
    return {
        "minute_rows_mb_per_day (kept 2 d)": res.get(60, {}).get("bytes", 0) / 2 / MB,
        "hour_rows_mb_per_day (kept 35 d)": res.get(3600, {}).get("bytes", 0) / 35 / MB,
        "day_rows_mb_per_day (kept 90 d)": res.get(86400, {}).get("bytes", 0) / 90 / MB,
        "traces_mb_per_day (kept 7 d)": steady["trace_bytes"] / 7 / MB,
    }


def simulate(
    path: Path, events_per_s: float, seconds: int, snapshot_at: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Feed ``seconds`` of traffic through Aggregator → SQLiteStore, one flush per second."""
    store = SQLiteStore(path)
    aggregator = Aggregator(SERVICE, INSTANCE, seed=3)
    traffic = Traffic(seed=1000 + int(events_per_s))
    snapshots: dict[int, Any] = {}
    events = 0
    write_s = 0.0
    t0 = time.perf_counter()
    for elapsed, (sec, ops) in enumerate(
        traffic.seconds(SIM_START_S, seconds, events_per_s), start=1
    ):
        events += aggregator.add_operations(ops)
        w0 = time.perf_counter()
        batch = aggregator.batch((sec + 1) * 10**9)
        batch.now_ns = (sec + 1) * 10**9  # the simulated clock: open minutes are staged
        store.write(batch)
        aggregator.commit()
        if sec % 60 == 0:  # as the pipeline does every minute
            store.fold(sec + 1, limit=4)
        write_s += time.perf_counter() - w0
        if elapsed in snapshot_at:
            snapshots[elapsed] = breakdown(path)
    final = aggregator.batch(None)
    final.final = True
    store.write(final)
    aggregator.commit()
    while store.fold(SIM_START_S + seconds + 2 * 3600, limit=100):
        pass
    store.close()
    snapshots[seconds] = breakdown(path)
    return {
        "events_per_s": events_per_s,
        "seconds": seconds,
        "events": events,
        "sim_s": time.perf_counter() - t0,
        "write_ms_per_flush": write_s * 1e3 / seconds,
        "snapshots": snapshots,
    }


def _empty_bytes(tmp: Path) -> int:
    path = tmp / "empty.db"
    SQLiteStore(path).close()
    return int(sqlite_size(path)["pages_bytes"])


def run(quick: bool) -> Outcome:
    # (events/s, simulated seconds, snapshot used for the per-day figure)
    hour = 3600
    if quick:
        plan = [(10, 1200, 1200), (100, 180, 180), (1000, 60, 60)]
    else:
        plan = [(10, DAY, DAY), (100, hour, hour), (1000, hour, hour)]
    details: dict[str, Any] = {"quick": quick, "rates": {}}
    day_bytes: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="botpulse-bench-") as name:
        tmp = Path(name)
        empty = _empty_bytes(tmp)
        details["empty_store_bytes"] = empty
        for rate, seconds, used in plan:
            check = hour if seconds == DAY else 300 if rate == 10 else 0
            snaps = (check,) if check and check != seconds else ()
            sim = simulate(tmp / f"growth-{rate}.db", rate, seconds, snaps)
            figures_for = {
                f"from_{s}s": per_day(snap, s, empty) for s, snap in sim["snapshots"].items()
            }
            actual = sim["snapshots"][seconds]["pages_bytes"] - empty if seconds == DAY else None
            day_bytes[rate] = (
                actual if actual is not None else figures_for[f"from_{used}s"]["total"]
            )
            entry: dict[str, Any] = {
                "simulated_s": seconds,
                "events": sim["events"],
                "sim_wall_s": sim["sim_s"],
                "write_ms_per_flush": sim["write_ms_per_flush"],
                "per_day_extrapolated": figures_for,
                "fresh_day_bytes": day_bytes[rate],
                "fresh_day_method": "measured over a full simulated day"
                if actual is not None
                else f"extrapolated from {used // 60} simulated min",
                "final": sim["snapshots"][seconds],
            }
            if snaps:
                extrapolated = figures_for[f"from_{snaps[0]}s"]["total"]
                reference = (
                    day_bytes[rate]
                    if actual is not None
                    else figures_for[f"from_{seconds}s"]["total"]
                )
                entry["extrapolation_check"] = {
                    "from_s": snaps[0],
                    "reference_s": seconds,
                    "extrapolated": extrapolated,
                    "reference": reference,
                    "error": (extrapolated - reference) / reference,
                }
            details["rates"][str(rate)] = entry

        # Steady state: 90 days at 1,000 events/s under the default retention.
        pools = pools_for(1000, quick)
        info = build_history(tmp / "steady-90d.db", pools, days=90)
        steady = breakdown(tmp / "steady-90d.db")
        steady_total = float(steady["pages_bytes"])
        if quick:  # scale the rollups by series and the traces by flow names
            all_specs = series_specs(pools.traffic, 1000)
            flows = {s.name for s in pools.specs if s.kind == "flow"}
            rollup_scale = len(all_specs) / len(pools.specs)
            trace_scale = len({s.name for s in all_specs if s.kind == "flow"}) / max(len(flows), 1)
            steady_total = (
                steady["tables"].get("rollups", 0) * rollup_scale
                + steady["trace_bytes"] * trace_scale
                + steady["other_bytes"]
            )
        details["steady_state_90d"] = {
            "events_per_s": 1000,
            "build": info,
            "size": steady,
            "total_bytes": steady_total,
            "per_day_of_retained_history": _retained_per_day(steady),
        }

    ratio = day_bytes[1000] / day_bytes[10]
    r10 = details["rates"]["10"]
    check = r10.get("extrapolation_check", {})
    method_1000 = details["rates"]["1000"]["fresh_day_method"]
    figures = [
        Figure(
            "storage.growth_ratio_100x_events",
            "bytes/day at 1,000 ev/s ÷ at 10 ev/s (100x the events)",
            ratio,
            "x",
            "<= 4x",
            at_most(ratio, 4),
            ratio=True,
        ),
    ]
    for rate in (10, 100, 1000):
        entry = details["rates"][str(rate)]
        figures.append(
            Figure(
                f"storage.fresh_day_mb_{rate}",
                f"fresh day at minute resolution, {rate:,} ev/s",
                day_bytes[rate] / MB,
                "MB/day",
                "<= 50 MB" if rate == 1000 else "",
                at_most(day_bytes[rate] / MB, 50) if rate == 1000 else None,
                note=entry["fresh_day_method"] + _components_note(entry),
            )
        )
    if check:
        figures.append(
            Figure(
                "storage.extrapolation_error_10",
                "10 ev/s: 1 h extrapolated vs full day measured"
                if not quick
                else "10 ev/s: 10 min extrapolated vs 1 h extrapolated",
                check["error"] * 100,
                "%",
            )
        )
    parts = details["rates"]["1000"]["per_day_extrapolated"]
    p = next(iter(parts.values()))
    flush_ms = details["rates"]["1000"]["write_ms_per_flush"]
    figures.append(
        Figure(
            "storage.write_ms_per_flush_1000",
            "batch + SQLiteStore.write per 1 s flush at 1,000 ev/s",
            flush_ms,
            "ms",
            note=f"{flush_ms / 10:.1f}% of a core; at 10 ev/s "
            f"{details['rates']['10']['write_ms_per_flush']:.2f} ms",
        )
    )
    figures.append(
        Figure(
            "storage.steady_state_90d_mb",
            "steady state, 90 days of 100 operations at 1,000 ev/s",
            steady_total / MB,
            "MB",
            "<= 500 MB",
            at_most(steady_total / MB, 500),
            note=(
                "default retention: minute rows 2 d, hour 35 d, day 90 d, traces 7 d"
                + ("; quick: 1/20 of the series, scaled" if quick else "")
            ),
        )
    )
    figures.append(
        Figure(
            "storage.steady_state_avg_mb_per_day",
            "steady state ÷ 90 days (growth per day is 0 once retention runs)",
            steady_total / MB / 90,
            "MB/day",
        )
    )
    details["fresh_day_1000_components_mb"] = {
        k: v / MB for k, v in p.items() if not k.endswith("_per_day")
    }
    details["note"] = f"1,000 ev/s fresh day: {method_1000}"
    return Outcome(figures, details)
