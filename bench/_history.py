"""Long store histories (30 or 90 days) written through the real ``SQLiteStore.write``.

Writing 90 days of minute traffic would take hours, and retention would delete most
of it; so this writes exactly what the default retention keeps, at the resolution
it keeps it, through the real write path:

- the last 2 days as minute rollups (the store folds them into hour and day rows);
- older hours up to 35 days as hour rollups (folded into day rows);
- older days up to 90 days as day rollups;
- trace samples of the last 7 days,

then runs ``apply_retention(now)``. Rollups come from durations sampled per series
from the traffic model (``_traffic.sample_durations``, counts Poisson at the series'
rate) and bucketed with the sketch's own mapping; pools of distinct minute and hour
rollups are reused, day rollups merge 24 pooled hours. Trace samples come from the
real ``Aggregator`` run over a few minutes of the traffic model, shifted in time.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import numpy as np

from botpulse._aggregate import Aggregator
from botpulse._model import DAY, HOUR, MINUTE, Batch, Rollup, SeriesKey, TraceSample
from botpulse._sketch import MULTIPLIER, Sketch
from botpulse.store.base import Retention
from botpulse.store.sqlite import SQLiteStore

from ._traffic import SeriesSpec, Traffic, sample_durations, series_specs

SERVICE, INSTANCE = "bench", "bench-1"
#: 2026-03-01T12:00:00Z: the synthetic "now" of every history.
NOW_S = 1_772_366_400


def rollup_from(key: SeriesKey, start: int, resolution: int, values: np.ndarray) -> Rollup:
    """A rollup of ``values`` (ns) exactly as the aggregator would build it."""
    keys, counts = np.unique(
        np.ceil(np.log(values.astype(np.float64)) * MULTIPLIER).astype(np.int64),
        return_counts=True,
    )
    sketch = Sketch(dict(zip(keys.tolist(), counts.tolist(), strict=True)))
    return Rollup(
        key,
        start,
        resolution,
        len(values),
        int(values.sum()),
        int(values.min()),
        int(values.max()),
        sketch,
    )


class Pools:
    """Reusable minute/hour rollups per series, and trace samples per minute."""

    def __init__(
        self,
        events_per_s: float,
        *,
        minutes: int = 30,
        hours: int = 6,
        trace_minutes: int = 5,
        series_stride: int = 1,
        seed: int = 99,
    ) -> None:
        self.traffic = Traffic(seed)
        rng = np.random.default_rng(seed)
        self.specs: list[SeriesSpec] = series_specs(self.traffic, events_per_s)[::series_stride]
        self.keys = [SeriesKey(SERVICE, INSTANCE, s.name, s.kind, s.status) for s in self.specs]
        self.minute: list[list[Rollup | None]] = []
        self.hour: list[list[Rollup | None]] = []
        for spec, key in zip(self.specs, self.keys, strict=True):
            self.minute.append(self._pool(spec, key, MINUTE, minutes, rng))
            self.hour.append(self._pool(spec, key, HOUR, hours, rng))
        self.traces = self._trace_pool(events_per_s, trace_minutes, {s.name for s in self.specs})

    def _pool(
        self, spec: SeriesSpec, key: SeriesKey, res: int, size: int, rng: np.random.Generator
    ) -> list[Rollup | None]:
        out: list[Rollup | None] = []
        for count in rng.poisson(spec.per_second * res, size).tolist():
            if count == 0:
                out.append(None)
            else:
                out.append(
                    rollup_from(key, 0, res, sample_durations(self.traffic, spec, count, rng))
                )
        return out

    def _trace_pool(
        self, events_per_s: float, minutes: int, names: set[str]
    ) -> list[list[TraceSample]]:
        aggregator = Aggregator(SERVICE, INSTANCE, seed=5)
        start = 1_700_000_040  # a minute boundary
        for _sec, ops in self.traffic.seconds(start, minutes * 60, events_per_s):
            aggregator.add_operations(ops)
        per_minute: list[list[TraceSample]] = [[] for _ in range(minutes)]
        for t in aggregator.batch(None).traces:
            if t.name in names:
                offset_ns = t.started_ns - start * 10**9
                per_minute[offset_ns // (MINUTE * 10**9)].append(
                    dataclasses.replace(t, started_ns=offset_ns % (MINUTE * 10**9))
                )
        return per_minute

    def at(self, pool: list[list[Rollup | None]], i: int, index: int, start: int) -> Rollup | None:
        """A copy of pooled rollup ``index`` of series ``i``, moved to ``start``."""
        source = pool[i][index % len(pool[i])]
        if source is None:
            return None
        copy = source.copy()
        copy.start = start
        return copy


@functools.lru_cache(maxsize=4)
def pools_for(events_per_s: float, quick: bool) -> Pools:
    """Pools shared by the storage and report benchmarks (``--quick``: 1/20 of the series)."""
    return Pools(events_per_s, series_stride=20 if quick else 1, trace_minutes=2 if quick else 5)


def build_history(
    path: Path,
    pools: Pools,
    *,
    days: int,
    now_s: int = NOW_S,
    retention: Retention | None = None,
    seed: int = 3,
) -> dict[str, Any]:
    """Write ``days`` days of history ending at ``now_s`` as retention would keep it."""
    retention = retention or Retention()
    rng = np.random.default_rng(seed)
    store = SQLiteStore(path, retention=retention)
    n = len(pools.specs)
    t0 = time.perf_counter()
    begin = (now_s - days * DAY) // DAY * DAY
    minute_from = int(now_s - retention.minute_rollups_days * DAY) // HOUR * HOUR
    hour_from = max(begin, int(now_s - retention.hour_rollups_days * DAY) // DAY * DAY)
    written = {"day": 0, "hour": 0, "minute": 0, "traces": 0}

    # Days older than the hour horizon: one day rollup per series, 24 pooled hours merged.
    for day in range(begin, hour_from, DAY):
        rollups = []
        for i in range(n):
            merged: Rollup | None = None
            for h in rng.integers(0, len(pools.hour[i]), 24).tolist():
                r = pools.at(pools.hour, i, h, day)
                if r is None:
                    continue
                if merged is None:
                    merged = r
                    merged.resolution = DAY
                else:
                    merged.merge(r)
            if merged is not None:
                rollups.append(merged)
        store.write(Batch(rollups))
        written["day"] += len(rollups)

    # Hours up to the minute horizon, one batch per day (the store folds them into days).
    for day in range(hour_from, minute_from, DAY):
        rollups = []
        for hour in range(day, min(day + DAY, minute_from), HOUR):
            for i in range(n):
                r = pools.at(pools.hour, i, int(rng.integers(0, 1 << 30)), hour)
                if r is not None:
                    rollups.append(r)
        store.write(Batch(rollups))
        written["hour"] += len(rollups)

    # The last days at minute resolution, one batch per hour.
    for hour in range(minute_from, now_s, HOUR):
        rollups = []
        for minute in range(hour, min(hour + HOUR, now_s), MINUTE):
            for i in range(n):
                r = pools.at(pools.minute, i, int(rng.integers(0, 1 << 30)), minute)
                if r is not None:
                    rollups.append(r)
        store.write(Batch(rollups))
        written["minute"] += len(rollups)

    # Trace samples of the last days, one batch per hour.
    trace_from = int(now_s - retention.traces_days * DAY) // MINUTE * MINUTE
    for hour in range(trace_from, now_s, HOUR):
        traces = []
        for minute in range(hour, min(hour + HOUR, now_s), MINUTE):
            base = minute * 10**9
            for t in pools.traces[(minute // MINUTE) % len(pools.traces)]:
                traces.append(dataclasses.replace(t, started_ns=base + t.started_ns))
        store.write(Batch([], traces))
        written["traces"] += len(traces)

    # What the pipeline does every minute: complete the closed hours and days.
    while store.fold(now_s, limit=1000):
        pass
    deleted = store.apply_retention(now_s)
    store.close()
    return {
        "series": n,
        "rollups_written": written,
        "deleted_by_retention": deleted,
        "build_s": time.perf_counter() - t0,
        "now_s": now_s,
        "days": days,
    }
