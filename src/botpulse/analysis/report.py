"""The performance report: per-operation latency and throughput, plus the slowest flows.

:func:`build_report` reads only through the store's reader API and returns a
:class:`Report`; :meth:`Report.to_dict` is the versioned JSON document
(``botpulse.report/1``) described in the README. Renderers (table, markdown, HTML)
live in the CLI and take a :class:`Report`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._model import STATUSES, Rollup, TraceSample
from .._sketch import RELATIVE_ACCURACY, Sketch, nearest_rank
from ..store.base import (
    Activity,
    SeriesFilter,
    Store,
    default_group,
    merge_spans,
    series_group,
    to_epoch_seconds,
)
from .audit import findings_summary
from .breakdown import SplitStats, StepStats, flow_steps, tag_splits
from .runtime import RuntimeSection, build_runtime, runtime_to_dict

__all__ = [
    "ALL_FLOWS",
    "REPORT_SCHEMA",
    "FlowTrace",
    "InstanceSummary",
    "OperationStats",
    "Report",
    "build_report",
]

REPORT_SCHEMA = "botpulse.report/1"
#: The name of the line that sums up every flow (``Report.all_flows``).
ALL_FLOWS = "(all flows)"
_MS = 1e6
_QUANTILES = (0.5, 0.95, 0.99)
#: An instance whose last data is this many minutes older than the newest is flagged quiet.
QUIET_MINUTES = 2


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
    active_minutes: float = 0.0

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

    @property
    def checkpoint_marks(self) -> list[tuple[str, float, float, str | None]]:
        """``(name, at_ms, since_previous_ms, previous name or None for the start)``.

        Checkpoints are moments, not phases: ``at_ms`` is when the flow reached it,
        ``since_previous_ms`` how long after the previous checkpoint (or the start).
        """
        marks: list[tuple[str, float, float, str | None]] = []
        previous_at, previous_name = 0.0, None
        for name, at_ms in sorted(self.checkpoints, key=lambda c: c[1]):
            marks.append((name, at_ms, max(at_ms - previous_at, 0.0), previous_name))
            previous_at, previous_name = at_ms, name
        return marks


@dataclass(frozen=True, slots=True)
class InstanceSummary:
    """What one process (service, instance) recorded: counts, first and last seen.

    ``quiet_minutes`` is how long before the newest data of its service this instance
    went silent: a worker that died shows a large value while its siblings go on.
    """

    service: str
    instance: str
    count: int
    errors: int
    cancelled: int
    first_seen: datetime
    last_seen: datetime
    active_minutes: float
    quiet_minutes: int

    @property
    def quiet(self) -> bool:
        """Whether this instance stopped recording well before the others."""
        return self.quiet_minutes >= QUIET_MINUTES


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
    service_filter: str | None = None
    instance_filter: str | None = None
    failed_flows: list[FlowTrace] = field(default_factory=list)
    all_flows: OperationStats | None = None
    instances: list[InstanceSummary] = field(default_factory=list)
    window_minutes: float = 0.0
    active_minutes: float = 0.0
    has_data: bool = True
    steps: list[StepStats] = field(default_factory=list)
    split_by: str | None = None
    splits: list[SplitStats] = field(default_factory=list)
    findings_line: str | None = None  # one line pointing to `botpulse audit`, if any
    runtime: RuntimeSection | None = None  # gauges, caches, pools (analysis/runtime.py)

    @property
    def services(self) -> list[str]:
        """The services that appear in the report."""
        return sorted({op.service for op in self.operations})

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (schema ``botpulse.report/1``)."""
        covered: dict[str, str | None] = {"since": None, "until": None}
        if self.has_data:
            covered = {"since": _iso(self.covered_since), "until": _iso(self.covered_until)}
        return {
            "schema": REPORT_SCHEMA,
            "window": {"since": _iso(self.since), "until": _iso(self.until)},
            "covered": covered,
            "window_minutes": _r(self.window_minutes),
            "active_minutes": _r(self.active_minutes),
            "generated_at": _iso(self.generated_at),
            "store": self.store,
            "relative_accuracy": RELATIVE_ACCURACY,
            "dropped_events": self.dropped_events,
            "dropped_by_reason": dict(sorted(self.dropped_by_reason.items())),
            "filters": {
                "name": self.name_filter,
                "kind": self.kind_filter,
                "service": self.service_filter,
                "instance": self.instance_filter,
            },
            "operations": [_operation_dict(op) for op in self.operations],
            "all_flows": None if self.all_flows is None else _operation_dict(self.all_flows),
            "instances": [
                {
                    "service": i.service,
                    "instance": i.instance,
                    "count": i.count,
                    "errors": i.errors,
                    "cancelled": i.cancelled,
                    "first_seen": _iso(i.first_seen),
                    "last_seen": _iso(i.last_seen),
                    "active_minutes": _r(i.active_minutes),
                    "quiet_minutes": i.quiet_minutes,
                }
                for i in self.instances
            ],
            "findings_summary": self.findings_line,
            "steps": [step.to_dict() for step in self.steps],
            "split_by": self.split_by,
            "splits": [split.to_dict() for split in self.splits],
            "slowest_flows": [_flow_dict(f) for f in self.slowest_flows],
            "failed_flows": [_flow_dict(f) for f in self.failed_flows],
            **runtime_to_dict(self.runtime),
        }


def _r(value: float) -> float:
    return round(value, 3)


def _operation_dict(op: OperationStats) -> dict[str, Any]:
    return {
        "service": op.service,
        "name": op.name,
        "kind": op.kind,
        "count": op.count,
        "errors": op.errors,
        "cancelled": op.cancelled,
        "error_rate": round(op.error_rate, 6),
        "throughput_per_min": _r(op.throughput_per_min),
        "active_minutes": _r(op.active_minutes),
        "mean_ms": _r(op.mean_ms),
        "p50_ms": _r(op.p50_ms),
        "p95_ms": _r(op.p95_ms),
        "p99_ms": _r(op.p99_ms),
        "max_ms": _r(op.max_ms),
        "min_ms": _r(op.min_ms),
    }


def _flow_dict(f: FlowTrace) -> dict[str, Any]:
    return {
        "service": f.service,
        "name": f.name,
        "started_at": f.started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "duration_ms": _r(f.duration_ms),
        "status": f.status,
        "error": f.error,
        "sampled_because": f.reason.split(","),
        "checkpoints": [
            {"name": name, "at_ms": _r(at), "since_previous_ms": _r(since)}
            for name, at, since, _previous in f.checkpoint_marks
        ],
        "children": [
            {
                "name": c["name"],
                "kind": c["kind"],
                "start_ms": _r(c["start_ms"]),
                "duration_ms": _r(c["duration_ms"]),
                "status": c["status"],
                "error": c["error"],
                "depth": c["depth"],
            }
            for c in f.children
        ],
        "truncated_children": f.truncated,
    }


def _operation_stats(
    service: str, name: str, kind: str, by_status: dict[str, Rollup], active_minutes: float
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
    p50, p95, p99 = _percentiles(sketch, count, min_ns, max_ns)
    return OperationStats(
        service=service,
        name=name,
        kind=kind,
        count=count,
        errors=errors,
        cancelled=cancelled,
        error_rate=errors / count if count else 0.0,
        throughput_per_min=count / active_minutes if active_minutes > 0 else float(count),
        mean_ms=total_ns / count / _MS if count else 0.0,
        p50_ms=p50 / _MS,
        p95_ms=p95 / _MS,
        p99_ms=p99 / _MS,
        max_ms=max_ns / _MS,
        min_ms=min_ns / _MS,
        active_minutes=active_minutes,
    )


def _percentiles(sketch: Sketch, count: int, min_ns: int, max_ns: int) -> list[float]:
    """Nearest-rank p50/p95/p99; ranks 1 and n are the exact min and max."""
    out = []
    for q, estimate in zip(_QUANTILES, sketch.quantiles(_QUANTILES), strict=True):
        rank = nearest_rank(q, count) if count else 0
        if rank == count:
            out.append(float(max_ns))
        elif rank == 1:
            out.append(float(min_ns))
        else:
            out.append(min(max(estimate or 0.0, float(min_ns)), float(max_ns)))
    return out


def _minutes(spans: Iterable[tuple[int, int]], since_s: float, end_s: float) -> float:
    """Minutes of ``spans`` inside ``[since_s, end_s)``: a partial minute at the window's
    edges (a run of a few seconds) counts for the part inside the window."""
    seconds = sum(max(min(hi, end_s) - max(lo, since_s), 0.0) for lo, hi in spans)
    return seconds / 60


def _instances(activity: list[Activity], since_s: float, end_s: float) -> list[InstanceSummary]:
    newest: dict[str, int] = {}  # per service: a worker is quiet next to its siblings
    for a in activity:
        newest[a.service] = max(newest.get(a.service, 0), a.last_s)
    return [
        InstanceSummary(
            service=a.service,
            instance=a.instance,
            count=a.count,
            errors=a.errors,
            cancelled=a.cancelled,
            first_seen=datetime.fromtimestamp(a.first_s, tz=timezone.utc),
            last_seen=datetime.fromtimestamp(a.last_s, tz=timezone.utc),
            active_minutes=_minutes(a.spans, since_s, end_s),
            quiet_minutes=(newest[a.service] - a.last_s) // 60,
        )
        for a in activity
        if a.spans
    ]


def _all_flows(
    grouped: dict[tuple[str, str, str], dict[str, Rollup]], minutes: float
) -> OperationStats | None:
    """Every flow of the report folded into one line (across names and services)."""
    merged: dict[str, Rollup] = {}
    for (_service, _name, kind), by_status in grouped.items():
        if kind != "flow":
            continue
        for status, rollup in by_status.items():
            have = merged.get(status)
            if have is None:
                merged[status] = rollup.copy()
            else:
                have.merge(rollup)
    if not merged:
        return None
    services = {service for service, _name, kind in grouped if kind == "flow"}
    service = services.pop() if len(services) == 1 else "*"
    return _operation_stats(service, ALL_FLOWS, "flow", merged, minutes)


def build_report(
    store: Store,
    since: datetime,
    until: datetime,
    *,
    name: str | None = None,
    kind: str | None = None,
    service: str | None = None,
    instance: str | None = None,
    top: int = 5,
    now: datetime | None = None,
    by: str | None = None,
) -> Report:
    """Read the window ``[since, until)`` from ``store`` and compute the report.

    ``name`` is a glob over operation names, ``kind`` an exact kind, ``service`` and
    ``instance`` exact process names; ``top`` is how many of the slowest flows, and
    separately of the most recent failed flows, to include. Operations are listed
    flows first, then by p95, slowest first. Rates are per minute over the minutes in
    which the operation's service recorded anything (its active minutes). ``steps``
    says where each flow's time goes (the operations measured inside it); ``by`` (a
    tag key, or ``service``/``instance``) adds ``splits``: percentiles per value.

    Example::

        report = build_report(store, since=now - timedelta(hours=1), until=now)
        print(report.to_dict()["operations"][0]["p95_ms"])
    """
    now = now or datetime.now(timezone.utc)
    selector = SeriesFilter(name=name, kind=kind, service=service, instance=instance)
    # One read of the window, per series, serves every section: the operations, the
    # steps (flows with the operations inside them), the tag splits and the gauges.
    per_series, activity, covered_spans = store.summarize_activity(
        since,
        until,
        selector,
        now=now,
        group=series_group,
        read=SeriesFilter(service=service, instance=instance),
    )
    summary = per_series.regroup(default_group, selector)
    since_s, until_s = to_epoch_seconds(since), to_epoch_seconds(until)
    window_end = min(until_s, max(to_epoch_seconds(now), since_s))

    def minutes(spans: Iterable[tuple[int, int]]) -> float:
        spans = list(spans)
        # Data only in the part of an edge minute outside the window: count whole minutes.
        return _minutes(spans, since_s, window_end) or _minutes(spans, 0, float("inf"))

    service_spans: dict[str, list[tuple[int, int]]] = {}
    for a in activity:
        service_spans[a.service] = merge_spans(service_spans.get(a.service, []) + a.spans)
    active = {svc: minutes(spans) for svc, spans in service_spans.items()}
    grouped: dict[tuple[str, str, str], dict[str, Rollup]] = {}
    for (op_service, op_name, op_kind, status), rollup in summary.rollups.items():
        grouped.setdefault((op_service, op_name, op_kind), {})[status] = rollup
    grouped = {k: v for k, v in grouped.items() if any(s in v for s in STATUSES)}
    operations = [
        _operation_stats(op_service, op_name, op_kind, by_status, active.get(op_service, 0))
        for (op_service, op_name, op_kind), by_status in grouped.items()
        if op_kind != "gauge" or kind == "gauge"
    ]
    operations.sort(key=lambda op: (op.kind != "flow", -op.p95_ms, op.name))
    flow_services = {svc for svc, _n, k in grouped if k == "flow"}
    flow_minutes = minutes(
        merge_spans(span for svc in flow_services for span in service_spans.get(svc, []))
    )
    slowest: list[FlowTrace] = []
    failed: list[FlowTrace] = []
    if top > 0 and kind in (None, "flow"):
        traces = SeriesFilter(name=name, service=service, instance=instance)
        samples = store.read_traces(since_s, until_s, traces, limit=top)
        slowest = [FlowTrace.from_sample(s) for s in samples]
        failures = SeriesFilter(name=name, service=service, instance=instance, status="error")
        samples = store.read_traces(since_s, until_s, failures, limit=top, order="recent")
        failed = [FlowTrace.from_sample(s) for s in samples]
    steps: list[StepStats] = []
    if kind in (None, "flow"):
        steps = [
            s
            for s in flow_steps(
                store,
                since,
                until,
                now=now,
                service=service,
                instance=instance,
                per_series=per_series,
            )
            if name is None or fnmatch.fnmatchcase(s.flow, name)
        ]
    splits: list[SplitStats] = []
    if by:
        splits = tag_splits(
            store, since, until, by, now=now, name=name, kind=kind, service=service,
            instance=instance, per_series=per_series,
        )  # fmt: skip
    covered_since_s = covered_spans[0][0] if covered_spans else since_s
    covered_until_s = covered_spans[-1][1] if covered_spans else since_s
    drops = store.read_drops(since_s, until_s)
    return Report(
        since=since,
        until=until,
        covered_since=datetime.fromtimestamp(covered_since_s, tz=timezone.utc),
        covered_until=datetime.fromtimestamp(covered_until_s, tz=timezone.utc),
        store=store.describe(),
        generated_at=now,
        operations=operations,
        slowest_flows=slowest,
        dropped_events=sum(drops.values()),
        dropped_by_reason=drops,
        name_filter=name,
        kind_filter=kind,
        service_filter=service,
        instance_filter=instance,
        failed_flows=failed,
        all_flows=_all_flows(grouped, flow_minutes),
        instances=_instances(activity, since_s, window_end),
        window_minutes=(window_end - since_s) / 60,
        active_minutes=minutes(merge_spans(span for a in activity for span in a.spans)),
        has_data=bool(covered_spans),
        steps=steps,
        split_by=by,
        splits=splits,
        findings_line=findings_summary(store, since, until),
        runtime=build_runtime(store, since, until, now=now, per_series=per_series)
        if name is None and kind is None
        else None,
    )
