"""All-in cost: what botpulse costs the whole bot process, idle and busy, next to its peers.

Each run is a fresh interpreter (``_allin_child.py``) running a bot-like workload —
flows of 1 + 4 measured steps, paced like a bot, 10 flow names and 20 step names —
for a fixed time, and reporting the process CPU it used (all threads: the hot path,
the pipeline's wake-ups, aggregation, trace sampling and SQLite writes) and the bot
thread's own CPU. Variants, interleaved round by round (five rounds), best (least CPU) of each:

- ``off``: botpulse imported and initialised under ``BOTPULSE_DISABLED=1`` (the
  measure/flow calls are no-ops): botpulse's baseline, as the issue defines it;
- ``botpulse``: recording into a SQLite file;
- ``bare``: no instrumentation at all: the peers' baseline;
- ``prometheus``: prometheus_client, a ``Histogram`` per step and per flow;
- ``otel``: the OpenTelemetry SDK, a span per flow and step, batch processor,
  no-op exporter.

Added cost = CPU(variant) − CPU(its baseline), as % of one core. The stall part runs
trivial flow + step pairs at a rate and reports the bot thread's p99.9 and max
latency of one pair, botpulse on vs off.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._common import BENCH_DIR, Figure, Outcome, at_most

VARIANTS = ("off", "botpulse", "bare", "prometheus", "otel")
BASELINE = {"botpulse": "off", "prometheus": "bare", "otel": "bare", "off": "bare"}
#: (events/s, seconds measured): full run, quick run.
RATES = ((0, 15.0, 2.0), (100, 12.0, 2.0), (1000, 10.0, 2.0), (10000, 5.0, 1.0))
TARGETS = {0: 0.05, 100: 0.15, 1000: 0.6}
_FLOOR_PERCENT = 0.01  # % of a core: below this, runs of these lengths cannot tell
STALL_RATES = ((1000, 5.0, 1.5), (10000, 5.0, 1.5), (50000, 4.0, 1.0))


def child(args: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(BENCH_DIR / "_allin_child.py"), json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> Outcome:
    # At 1,000 events/s the workload's own pacing (sleeps, timer wake-ups on a shared VM)
    # varies by more than botpulse adds: five interleaved rounds, not three, so the
    # best of each variant is a stable figure (the samples are all in the JSON).
    rounds = 1 if quick else 5
    warmup = 0.5 if quick else 2.5
    rng = random.Random(5)
    best: dict[tuple[int, str], dict[str, Any]] = {}
    samples: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="botpulse-allin-") as tmp:
        for round_no in range(rounds):
            for rate, seconds, quick_seconds in RATES:
                order = list(VARIANTS)
                rng.shuffle(order)
                for variant in order:
                    db = str(Path(tmp) / f"{variant}-{rate}-{round_no}.db")
                    r = child(
                        {
                            "variant": variant,
                            "rate": rate,
                            "seconds": quick_seconds if quick else seconds,
                            "db": db,
                            "warmup": warmup,
                        }
                    )
                    samples.setdefault(f"{variant}@{rate}", []).append(r)
                    have = best.get((rate, variant))
                    if have is None or r["cpu_s"] < have["cpu_s"]:
                        best[(rate, variant)] = r
        stall: dict[tuple[int, str], dict[str, Any]] = {}
        for round_no in range(1 if quick else 2):
            for rate, seconds, quick_seconds in STALL_RATES:
                for variant in ("off", "botpulse"):
                    db = str(Path(tmp) / f"stall-{variant}-{rate}-{round_no}.db")
                    r = child(
                        {
                            "variant": variant,
                            "rate": rate,
                            "seconds": quick_seconds if quick else seconds,
                            "db": db,
                            "mode": "stall",
                            "warmup": warmup,
                        }
                    )
                    samples.setdefault(f"stall-{variant}@{rate}", []).append(r)
                    have = stall.get((rate, variant))
                    if have is None or r["max_us"] < have["max_us"]:
                        stall[(rate, variant)] = r
    figures: list[Figure] = []

    def added(rate: int, variant: str) -> float:
        r, base = best[(rate, variant)], best[(rate, BASELINE[variant])]
        return max(0.0, (r["cpu_s"] - base["cpu_s"]) / r["wall_s"] * 100)

    details: dict[str, Any] = {"samples": samples, "added_percent": {}}
    for rate, _s, _q in RATES:
        ours = added(rate, "botpulse")
        prom = added(rate, "prometheus")
        otel = added(rate, "otel")
        details["added_percent"][rate] = {"botpulse": ours, "prometheus": prom, "otel": otel}
        label = "idle (nothing recorded)" if rate == 0 else f"{rate:,} events/s"
        target = TARGETS.get(rate)
        figures.append(
            Figure(
                f"allin.botpulse_{rate}",
                f"botpulse added process CPU, {label}",
                ours,
                "%",
                f"<= {target}%" if target is not None else "",
                at_most(ours, target) if target is not None else None,
                note=f"prometheus_client {prom:.3f}%, OpenTelemetry SDK {otel:.3f}%",
            )
        )
        if rate:
            on, off = best[(rate, "botpulse")], best[(rate, "off")]
            per_event = (on["cpu_s"] - off["cpu_s"]) / max(on["events"], 1) * 1e9
            thread = (on["thread_cpu_s"] - off["thread_cpu_s"]) / max(on["events"], 1) * 1e9
            figures.append(
                Figure(
                    f"allin.per_event_{rate}",
                    f"botpulse all-in CPU per event at {rate:,} events/s",
                    per_event,
                    "ns/op",
                    note=f"of which the bot thread {thread:,.0f} ns (hot path, GC, GIL sharing)",
                )
            )
    for rate in (1000,):
        ours = details["added_percent"][rate]["botpulse"]
        prom = details["added_percent"][rate]["prometheus"]
        # A peer whose added CPU is below what a run can resolve counts as that floor.
        ratio = ours / max(prom, _FLOOR_PERCENT)
        figures.append(
            Figure(
                "allin.vs_prometheus_1000",
                "botpulse ÷ prometheus_client all-in added CPU at 1,000 events/s",
                ratio,
                "x",
                "<= 4x",
                at_most(ratio, 4),
                ratio=True,
                note="prometheus_client keeps counters and buckets only, no traces",
            )
        )
    for rate, _s, _q in STALL_RATES:
        on, off = stall[(rate, "botpulse")], stall[(rate, "off")]
        excess_ms = (on["max_us"] - off["max_us"]) / 1e3
        is_target = rate == 10000
        figures.append(
            Figure(
                f"allin.stall_max_{rate}",
                f"bot thread: worst flow+step pair above disabled, {rate:,} events/s",
                excess_ms,
                "ms",
                "<= 5 ms" if is_target else "",
                at_most(excess_ms, 5) if is_target else None,
                note=(
                    f"max {on['max_us'] / 1e3:.2f} vs {off['max_us'] / 1e3:.2f} ms; "
                    f"p99.9 {on['p999_us']:.0f} vs {off['p999_us']:.0f} us"
                ),
            )
        )
    details["stall"] = {f"{k[1]}@{k[0]}": v for k, v in stall.items()}
    return Outcome(figures, details)
