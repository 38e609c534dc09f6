"""Run in a fresh interpreter by ``allin.py``: a bot-like workload, recorded or not.

The workload: flows of 1 + 4 measured steps, paced like a bot (an absolute schedule
of ``rate`` events a second, each flow being 5 events), 10 flow names and 20 step
names. ``variant`` says who records it: ``off`` (botpulse imported, initialised under
``BOTPULSE_DISABLED=1``), ``botpulse`` (SQLite store in a temporary file),
``prometheus`` (a ``Histogram`` per step and per flow), ``otel`` (SDK spans, batch
processor, no-op exporter), ``bare`` (no instrumentation at all). ``mode=stall``
instead records the latency of each trivial flow + step pair and reports the tail.

Prints one JSON line: process CPU seconds over the measured window, the bot
thread's CPU, events recorded, wall seconds.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any

FLOWS = [f"cmd{i}" for i in range(10)]
STEPS = [f"step{i}" for i in range(20)]
PLAN = [(FLOWS[i], [STEPS[(2 * i + j) % 20] for j in range(4)]) for i in range(10)]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_recorder(variant: str, db: str) -> tuple[Any, Any, Any]:
    """``(flow(name), step(name), stop())`` for the variant."""
    if variant in ("off", "botpulse"):
        import botpulse

        if variant == "off":
            os.environ["BOTPULSE_DISABLED"] = "1"
        botpulse.init(store=f"sqlite:///{db}", service="allin")
        return botpulse.flow, botpulse.measure, botpulse.shutdown
    if variant == "prometheus":
        from prometheus_client import CollectorRegistry, Histogram

        registry = CollectorRegistry()
        flow_h = Histogram("flow_seconds", "flows", ["name"], registry=registry)
        step_h = Histogram("step_seconds", "steps", ["name"], registry=registry)
        flows = {n: flow_h.labels(n) for n in FLOWS}
        steps = {n: step_h.labels(n) for n in STEPS}
        return (lambda n: flows[n].time()), (lambda n: steps[n].time()), (lambda: None)
    if variant == "otel":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class NoOpExporter(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(NoOpExporter()))
        tracer = provider.get_tracer("allin")
        return (
            (lambda n: tracer.start_as_current_span(n)),
            (lambda n: tracer.start_as_current_span(n)),
            provider.shutdown,
        )
    none: AbstractContextManager[Any] = nullcontext()
    return (lambda n: none), (lambda n: none), (lambda: None)


def work() -> int:
    return sum(range(10))


def main() -> None:
    args = json.loads(sys.argv[1])
    variant, rate, seconds, db = args["variant"], args["rate"], args["seconds"], args["db"]
    mode = args.get("mode", "cpu")
    flow, step, stop = make_recorder(variant, db)
    time.sleep(args.get("warmup", 2.5))  # threads started, first flush, fold and retention done
    out: dict[str, Any] = {}
    if mode == "stall":
        # A thread running trivial flow + step pairs; the latency of each pair recorded.
        pairs = max(1, rate // 2)
        interval = 1.0 / pairs
        lat: list[int] = []
        deadline = time.monotonic() + seconds
        nxt = time.monotonic()
        clock = time.perf_counter_ns
        while time.monotonic() < deadline:
            for _ in range(max(1, pairs // 1000)):
                t0 = clock()
                with flow("pair"), step("inner"):
                    pass
                lat.append(clock() - t0)
            nxt += interval * max(1, pairs // 1000)
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        lat.sort()
        out = {
            "pairs": len(lat),
            "p50_us": lat[len(lat) // 2] / 1e3,
            "p999_us": lat[min(len(lat) - 1, int(len(lat) * 0.999))] / 1e3,
            "max_us": lat[-1] / 1e3,
        }
    else:
        flows_per_s = rate / 5
        c0, t0, w0 = cpu(), time.thread_time(), time.monotonic()
        events = 0
        if flows_per_s > 0:
            interval = 1.0 / flows_per_s
            # Batch flows per wake-up at high rates so the pacing sleep stays above 1 ms.
            batch = max(1, int(flows_per_s / 500))
            nxt = w0
            i = 0
            end = w0 + seconds
            while True:
                now = time.monotonic()
                if now >= end:
                    break
                for _ in range(batch):
                    name, steps = PLAN[i % 10]
                    i += 1
                    with flow(name):
                        for s in steps:
                            with step(s):
                                work()
                    events += 5
                nxt += interval * batch
                delay = nxt - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        else:
            time.sleep(seconds)
        out = {
            "cpu_s": cpu() - c0,
            "thread_cpu_s": time.thread_time() - t0,
            "wall_s": time.monotonic() - w0,
            "events": events,
        }
    stop()
    out["variant"] = variant
    print(json.dumps(out))


if __name__ == "__main__":
    main()
