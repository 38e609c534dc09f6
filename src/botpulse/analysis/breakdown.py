"""Where a command's time goes, and how its paths differ: per-flow steps and tag splits.

Pure functions over :meth:`Store.summarize` with a grouping: :func:`flow_steps` rolls
the operations measured inside each flow up per (flow, step); :func:`tag_splits`
splits operations by the values of one tag (``service`` and ``instance`` work as keys
too). Both return plain records that every report format renders and the JSON
document carries (``steps``, ``splits``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._model import Rollup, SeriesKey
from .._sketch import Sketch
from ..store.base import SeriesFilter, Store, Summary

__all__ = ["SplitStats", "StepStats", "flow_steps", "tag_splits"]

_MS = 1e6


@dataclass(frozen=True, slots=True)
class StepStats:
    """One step of one flow: how often it runs per flow run and what share of the time it takes.

    ``per_run`` is step count ÷ flow count; ``share`` is the step's total time ÷ the
    flow's total time (nested steps overlap their parents, so shares may add up to
    more than 1).
    """

    service: str
    flow: str
    name: str
    kind: str
    count: int
    per_run: float
    errors: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    share: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry of ``steps``."""
        return {
            "service": self.service,
            "flow": self.flow,
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "per_run": round(self.per_run, 3),
            "errors": self.errors,
            "mean_ms": round(self.mean_ms, 3),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "share": round(self.share, 4),
        }


@dataclass(frozen=True, slots=True)
class SplitStats:
    """One operation restricted to one value of the split key (``tags: {key: value}``)."""

    service: str
    name: str
    kind: str
    tags: dict[str, str]
    count: int
    errors: int
    error_rate: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry of ``splits``."""
        return {
            "service": self.service,
            "name": self.name,
            "kind": self.kind,
            "tags": dict(self.tags),
            "count": self.count,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "mean_ms": round(self.mean_ms, 3),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
        }


def _merged(by_status: dict[str, Rollup]) -> tuple[int, int, int, int, int, Sketch]:
    count = sum(r.count for r in by_status.values())
    errors = by_status["error"].count if "error" in by_status else 0
    total = sum(r.sum_ns for r in by_status.values())
    lo = min(r.min_ns for r in by_status.values())
    hi = max(r.max_ns for r in by_status.values())
    sketch = Sketch()
    for r in by_status.values():
        sketch.merge(r.sketch)
    return count, errors, total, lo, hi, sketch


def _percentiles(sketch: Sketch, lo: int, hi: int) -> tuple[float, float, float]:
    p50, p95, p99 = (
        min(max(q or 0.0, float(lo)), float(hi)) / _MS for q in sketch.quantiles((0.5, 0.95, 0.99))
    )
    return p50, p95, p99


def flow_steps(
    store: Store,
    since: datetime | float,
    until: datetime | float,
    *,
    now: datetime | float | None = None,
    service: str | None = None,
    instance: str | None = None,
    per_series: Summary | None = None,
) -> list[StepStats]:
    """Every (flow, step) of the window: per-run counts, percentiles and share of the flow.

    Sorted by flow, then by share of the flow's time, largest first. ``per_series``
    is the window already read per series (``group=series_group``, at least the
    series of ``service``/``instance``): it is regrouped instead of read again.
    """
    selector = SeriesFilter(service=service, instance=instance)

    def group(k: SeriesKey) -> tuple[str, ...]:
        return (k.service, k.flow, k.name, k.kind, k.status)

    summary = _summary(store, since, until, selector, now, group, per_series)
    flows: dict[tuple[str, str], list[int]] = {}  # (service, flow) -> [count, sum_ns]
    steps: dict[tuple[str, str, str, str], dict[str, Rollup]] = {}
    for (svc, flow, name, kind, status), rollup in summary.rollups.items():
        if kind == "flow" and not flow:
            acc = flows.setdefault((svc, name), [0, 0])
            acc[0] += rollup.count
            acc[1] += rollup.sum_ns
        elif flow:
            steps.setdefault((svc, flow, name, kind), {})[status] = rollup
    out: list[StepStats] = []
    for (svc, flow, name, kind), by_status in steps.items():
        count, errors, total, lo, hi, sketch = _merged(by_status)
        runs, flow_ns = flows.get((svc, flow), [0, 0])
        p50, p95, p99 = _percentiles(sketch, lo, hi)
        out.append(
            StepStats(
                service=svc,
                flow=flow,
                name=name,
                kind=kind,
                count=count,
                per_run=count / runs if runs else 0.0,
                errors=errors,
                mean_ms=total / count / _MS if count else 0.0,
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
                max_ms=hi / _MS,
                share=total / flow_ns if flow_ns else 0.0,
            )
        )
    out.sort(key=lambda s: (s.service, s.flow, -s.share, s.name))
    return out


def tag_splits(
    store: Store,
    since: datetime | float,
    until: datetime | float,
    key: str,
    *,
    now: datetime | float | None = None,
    name: str | None = None,
    kind: str | None = None,
    service: str | None = None,
    instance: str | None = None,
    per_series: Summary | None = None,
) -> list[SplitStats]:
    """Operations split by the value of tag ``key`` (or of ``service``/``instance``).

    Operations without that tag are left out (``service``/``instance`` apply to all).
    Sorted by operation, then by p95, slowest first. ``per_series``: as in
    :func:`flow_steps`.
    """
    selector = SeriesFilter(name=name, kind=kind, service=service, instance=instance)

    def group(k: SeriesKey) -> tuple[str, ...]:
        if key == "service":
            value: str | None = k.service
        elif key == "instance":
            value = k.instance
        else:
            value = k.tag_dict.get(key) if k.tags else None
        return (k.service, k.name, k.kind, k.status, "" if value is None else "=" + value)

    summary = _summary(store, since, until, selector, now, group, per_series)
    grouped: dict[tuple[str, str, str, str], dict[str, Rollup]] = {}
    for (svc, op_name, op_kind, status, value), rollup in summary.rollups.items():
        if value:
            grouped.setdefault((svc, op_name, op_kind, value[1:]), {})[status] = rollup
    out: list[SplitStats] = []
    for (svc, op_name, op_kind, value), by_status in grouped.items():
        count, errors, total, lo, hi, sketch = _merged(by_status)
        p50, p95, p99 = _percentiles(sketch, lo, hi)
        out.append(
            SplitStats(
                service=svc,
                name=op_name,
                kind=op_kind,
                tags={key: value},
                count=count,
                errors=errors,
                error_rate=errors / count if count else 0.0,
                mean_ms=total / count / _MS if count else 0.0,
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
                max_ms=hi / _MS,
            )
        )
    out.sort(key=lambda s: (s.kind != "flow", s.service, s.name, -s.p95_ms))
    return out


def _summary(
    store: Store,
    since: datetime | float,
    until: datetime | float,
    selector: SeriesFilter,
    now: datetime | float | None,
    group: Callable[[SeriesKey], tuple[str, ...]],
    per_series: Summary | None,
) -> Summary:
    """``store.summarize`` of the window, or ``per_series`` regrouped when the caller has it."""
    if per_series is not None:
        return per_series.regroup(group, selector)
    return store.summarize(since, until, selector, now=now, group=group)
