"""The performance report: per-operation latency and throughput, plus the slowest flows.

:func:`build_report` reads only through the store's reader API and returns a
:class:`Report`; :meth:`Report.to_dict` is the versioned JSON document
(``botpulse.report/1``) described in the README. Renderers (table, markdown, HTML)
live in the CLI and take a :class:`Report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._model import STATUSES, TraceSample
from .._sketch import RELATIVE_ACCURACY, Sketch
from ..store.base import SeriesFilter, Store, to_epoch_seconds
from .runtime import RuntimeSection, build_runtime, runtime_to_dict

__all__ = ["REPORT_SCHEMA", "FlowTrace", "OperationStats", "Report", "build_report"]

REPORT_SCHEMA = "botpulse.report/1"
_MS = 1e6


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


@dataclass(frozen=True, slots=True)
class OperationStats:
    """Latency and throughput of one operation over the report window."""

    service: str
    name: str
    kind: str
    count: int
    errors: int
    cancelled: int
    error_rate: float
    throughput_per_min: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    min_ms: float

    @property
    def total_ms(self) -> float:
        """Time spent in this operation over the window (count × mean)."""
        return self.count * self.mean_ms


@dataclass(frozen=True, slots=True)
class FlowTrace:
    """One sampled flow, for the waterfall: checkpoints and children as offsets in ms."""

    service: str
    name: str
    started_at: datetime
    duration_ms: float
    status: str
    error: str | None
    reason: str
    checkpoints: list[tuple[str, float]]
    children: list[dict[str, Any]]
    truncated: int

    @classmethod
    def from_sample(cls, sample: TraceSample) -> FlowTrace:
        """Convert a stored trace sample."""
        return cls(
            service=sample.service,
            name=sample.name,
            started_at=_from_ns(sample.started_ns),
            duration_ms=sample.duration_ns / _MS,
            status=sample.status,
            error=sample.error,
            reason=sample.reason,
            checkpoints=[(c.name, c.at_ns / _MS) for c in sample.checkpoints],
            children=[
                {
                    "name": c.name,
                    "kind": c.kind,
                    "start_ms": c.start_ns / _MS,
                    "duration_ms": c.duration_ns / _MS,
                    "status": c.status,
                    "error": c.error,
                    "depth": c.depth,
                }
                for c in sorted(sample.children, key=lambda c: c.start_ns)
            ],
            truncated=sample.truncated,
        )


@dataclass(slots=True)
class Report:
    """What ``botpulse report`` shows; also the input of every renderer."""

    since: datetime
    until: datetime
    covered_since: datetime
    covered_until: datetime
    store: str
    generated_at: datetime
    operations: list[OperationStats] = field(default_factory=list)
    slowest_flows: list[FlowTrace] = field(default_factory=list)
    dropped_events: int = 0
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    name_filter: str | None = None
    kind_filter: str | None = None
    runtime: RuntimeSection | None = None  # gauges, caches, pools (analysis/runtime.py)

    @property
    def services(self) -> list[str]:
        """The services that appear in the report."""
        return sorted({op.service for op in self.operations})

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (schema ``botpulse.report/1``)."""

        def r(value: float) -> float:
            return round(value, 3)

        return {
            "schema": REPORT_SCHEMA,
            "window": {"since": _iso(self.since), "until": _iso(self.until)},
            "covered": {"since": _iso(self.covered_since), "until": _iso(self.covered_until)},
            "generated_at": _iso(self.generated_at),
            "store": self.store,
            "relative_accuracy": RELATIVE_ACCURACY,
            "dropped_events": self.dropped_events,
            "dropped_by_reason": dict(sorted(self.dropped_by_reason.items())),
            "filters": {"name": self.name_filter, "kind": self.kind_filter},
            "operations": [
                {
                    "service": op.service,
                    "name": op.name,
                    "kind": op.kind,
                    "count": op.count,
                    "errors": op.errors,
                    "cancelled": op.cancelled,
                    "error_rate": round(op.error_rate, 6),
                    "throughput_per_min": r(op.throughput_per_min),
                    "mean_ms": r(op.mean_ms),
                    "p50_ms": r(op.p50_ms),
                    "p95_ms": r(op.p95_ms),
                    "p99_ms": r(op.p99_ms),
                    "max_ms": r(op.max_ms),
                    "min_ms": r(op.min_ms),
                }
                for op in self.operations
            ],
            "slowest_flows": [
                {
                    "service": f.service,
                    "name": f.name,
                    "started_at": f.started_at.isoformat(timespec="milliseconds").replace(
                        "+00:00", "Z"
                    ),
                    "duration_ms": r(f.duration_ms),
                    "status": f.status,
                    "error": f.error,
                    "sampled_because": f.reason.split(","),
                    "checkpoints": [{"name": n, "at_ms": r(at)} for n, at in f.checkpoints],
                    "children": [
                        {
                            "name": c["name"],
                            "kind": c["kind"],
                            "start_ms": r(c["start_ms"]),
                            "duration_ms": r(c["duration_ms"]),
                            "status": c["status"],
                            "error": c["error"],
                            "depth": c["depth"],
                        }
                        for c in f.children
                    ],
                    "truncated_children": f.truncated,
                }
                for f in self.slowest_flows
            ],
            **runtime_to_dict(self.runtime),
        }


def _operation_stats(
    service: str, name: str, kind: str, by_status: dict[str, Any], minutes: float
) -> OperationStats:
    count = sum(r.count for r in by_status.values())
    errors = by_status["error"].count if "error" in by_status else 0
    cancelled = by_status["cancelled"].count if "cancelled" in by_status else 0
    total_ns = sum(r.sum_ns for r in by_status.values())
    min_ns = min(r.min_ns for r in by_status.values())
    max_ns = max(r.max_ns for r in by_status.values())
    sketch = Sketch()
    for rollup in by_status.values():
        sketch.merge(rollup.sketch)
    p50, p95, p99 = (
        min(max(q or 0.0, float(min_ns)), float(max_ns))
        for q in sketch.quantiles((0.5, 0.95, 0.99))
    )
    return OperationStats(
        service=service,
        name=name,
        kind=kind,
        count=count,
        errors=errors,
        cancelled=cancelled,
        error_rate=errors / count if count else 0.0,
        throughput_per_min=count / minutes if minutes > 0 else float(count),
        mean_ms=total_ns / count / _MS if count else 0.0,
        p50_ms=p50 / _MS,
        p95_ms=p95 / _MS,
        p99_ms=p99 / _MS,
        max_ms=max_ns / _MS,
        min_ms=min_ns / _MS,
    )


def build_report(
    store: Store,
    since: datetime,
    until: datetime,
    *,
    name: str | None = None,
    kind: str | None = None,
    top: int = 5,
    now: datetime | None = None,
) -> Report:
    """Read the window ``[since, until)`` from ``store`` and compute the report.

    ``name`` is a glob over operation names, ``kind`` an exact kind; ``top`` is how
    many slowest flows to include. Operations are listed flows first, then by p95,
    slowest first.

    Example::

        report = build_report(store, since=now - timedelta(hours=1), until=now)
        print(report.to_dict()["operations"][0]["p95_ms"])
    """
    now = now or datetime.now(timezone.utc)
    selector = SeriesFilter(name=name, kind=kind)
    summary = store.summarize(since, until, selector, now=now)
    since_s, until_s = to_epoch_seconds(since), to_epoch_seconds(until)
    minutes = max(min(until_s, to_epoch_seconds(now)) - since_s, 1.0) / 60
    grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (service, op_name, op_kind, status), rollup in summary.rollups.items():
        grouped.setdefault((service, op_name, op_kind), {})[status] = rollup
    operations = [
        _operation_stats(service, op_name, op_kind, by_status, minutes)
        for (service, op_name, op_kind), by_status in grouped.items()
        if any(s in by_status for s in STATUSES) and (op_kind != "gauge" or kind == "gauge")
    ]
    operations.sort(key=lambda op: (op.kind != "flow", -op.p95_ms, op.name))
    flows: list[FlowTrace] = []
    if top > 0 and kind in (None, "flow"):
        samples = store.read_traces(since_s, until_s, SeriesFilter(name=name), limit=top)
        flows = [FlowTrace.from_sample(s) for s in samples]
    drops = store.read_drops(since_s, until_s)
    return Report(
        since=since,
        until=until,
        covered_since=datetime.fromtimestamp(summary.start, tz=timezone.utc),
        covered_until=datetime.fromtimestamp(summary.end, tz=timezone.utc),
        store=store.describe(),
        generated_at=now,
        operations=operations,
        slowest_flows=flows,
        dropped_events=sum(drops.values()),
        dropped_by_reason=drops,
        name_filter=name,
        kind_filter=kind,
        runtime=build_runtime(store, since, until, now=now)
        if name is None and kind is None
        else None,
    )
