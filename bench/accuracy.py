"""Quantile accuracy of our sketch next to ``ddsketch.DDSketch`` (both at 1% accuracy).

Samples (nanosecond integers, fixed numpy seed): a lognormal (median 20 ms,
sigma 1) and a bimodal mixture (70% around 1.5 ms, 30% around 120 ms). The exact
quantile is the nearest rank, ``sorted[ceil(q * n) - 1]``; the error is
``|estimate - exact| / exact``.
``add`` is timed in interleaved chunks, the minimum per-chunk ns/add is reported.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from ddsketch import DDSketch

from botpulse._sketch import Sketch

from ._common import Figure, Outcome, at_most

QUANTILES = (0.5, 0.95, 0.99)
CHUNK = 50_000


def distributions(n: int, seed: int = 2024) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    lognormal = rng.lognormal(math.log(20e6), 1.0, n)
    fast = rng.lognormal(math.log(1.5e6), 0.25, n)
    slow = rng.lognormal(math.log(120e6), 0.4, n)
    bimodal = np.where(rng.random(n) < 0.7, fast, slow)
    return {
        "lognormal": np.maximum(np.rint(lognormal), 1).astype(np.int64).tolist(),
        "bimodal": np.maximum(np.rint(bimodal), 1).astype(np.int64).tolist(),
    }


def _fill(values: list[int]) -> tuple[Sketch, DDSketch, float, float]:
    ours, theirs = Sketch(), DDSketch(relative_accuracy=0.01)
    ours_ns, theirs_ns = [], []
    for k, i in enumerate(range(0, len(values), CHUNK)):
        chunk = values[i : i + CHUNK]
        order = [("ours", ours.add), ("theirs", theirs.add)]
        if k % 2:
            order.reverse()
        for who, add in order:
            t0 = time.perf_counter_ns()
            for v in chunk:
                add(v)
            per = (time.perf_counter_ns() - t0) / len(chunk)
            (ours_ns if who == "ours" else theirs_ns).append(per)
    return ours, theirs, min(ours_ns), min(theirs_ns)


def run(quick: bool) -> Outcome:
    n = 200_000 if quick else 1_000_000
    details: dict[str, Any] = {"samples": n, "quantiles": QUANTILES, "distributions": {}}
    worst_ours = worst_theirs = 0.0
    add_ours: list[float] = []
    add_theirs: list[float] = []
    sizes: dict[str, int] = {}
    for name, values in distributions(n).items():
        ordered = sorted(values)
        ours, theirs, ns_ours, ns_theirs = _fill(values)
        add_ours.append(ns_ours)
        add_theirs.append(ns_theirs)
        rows = {}
        for q in QUANTILES:
            exact = ordered[math.ceil(q * n) - 1]
            est_ours = ours.quantile(q)
            est_theirs = theirs.get_quantile_value(q)
            assert est_ours is not None
            assert est_theirs is not None
            err_ours = abs(est_ours - exact) / exact
            err_theirs = abs(est_theirs - exact) / exact
            worst_ours = max(worst_ours, err_ours)
            worst_theirs = max(worst_theirs, err_theirs)
            rows[f"p{round(q * 100)}"] = {
                "exact_ms": exact / 1e6,
                "ours_ms": est_ours / 1e6,
                "ddsketch_ms": est_theirs / 1e6,
                "ours_rel_error": err_ours,
                "ddsketch_rel_error": err_theirs,
            }
        encoded = ours.to_bytes()
        assert Sketch.from_bytes(encoded) == ours
        sizes[name] = len(encoded)
        details["distributions"][name] = {
            "quantiles": rows,
            "buckets": len(ours.bins),
            "serialized_bytes": len(encoded),
            "add_ns_ours": ns_ours,
            "add_ns_ddsketch": ns_theirs,
        }
    # A typical stored minute: 1,000 samples of the lognormal.
    minute = Sketch()
    minute.extend(distributions(1000, seed=5)["lognormal"])
    details["minute_sketch_1000_samples_bytes"] = len(minute.to_bytes())
    details["minute_sketch_1000_samples_buckets"] = len(minute.bins)
    figures = [
        Figure(
            "accuracy.worst_rel_error_ours",
            "our sketch: worst relative error of p50/p95/p99",
            worst_ours * 100,
            "%",
            "<= 1%",
            at_most(worst_ours, 0.01),
            note="lognormal + bimodal, 1M samples each" if not quick else "quick: 200k samples",
        ),
        Figure(
            "accuracy.worst_rel_error_ddsketch",
            "ddsketch.DDSketch(0.01): worst relative error",
            worst_theirs * 100,
            "%",
        ),
        Figure("accuracy.add_ns_ours", "our Sketch.add", min(add_ours), "ns/add"),
        Figure("accuracy.add_ns_ddsketch", "ddsketch DDSketch.add", min(add_theirs), "ns/add"),
        Figure(
            "accuracy.serialized_bytes",
            "our sketch serialized (lognormal / bimodal, all samples)",
            float(max(sizes.values())),
            "bytes",
            note=" / ".join(f"{k} {v:,} B" for k, v in sizes.items())
            + f"; a 1,000-sample minute {details['minute_sketch_1000_samples_bytes']} B",
        ),
    ]
    return Outcome(figures, details)
