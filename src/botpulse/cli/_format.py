"""What every renderer shows the same way: numbers, windows, the empty message, waterfall steps.

The table, markdown and HTML renderers differ only in markup; the words, the number
formatting and the waterfall geometry come from here, so the three formats agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..analysis.breakdown import SplitStats, StepStats
from ..analysis.report import FlowTrace, InstanceSummary, OperationStats, Report
from ..store import redact_url

__all__ = [
    "Step",
    "activity_text",
    "bar_geometry",
    "checkpoint_note",
    "covered_text",
    "flow_summary",
    "drops_are_severe",
    "drops_text",
    "empty_message",
    "error_percent",
    "filters_text",
    "format_count",
    "format_ms",
    "format_per_minute",
    "format_time",
    "instance_cells",
    "instance_columns",
    "is_empty",
    "marker_geometry",
    "operation_cells",
    "operation_columns",
    "operation_rows",
    "shorten_middle",
    "slowest_rank",
    "store_text",
    "text_bar",
    "text_marker",
    "waterfall",
    "window_text",
]

_SUGGESTED_WINDOWS = (("1h", 3600), ("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400))
_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"


def format_ms(value: float) -> str:
    """Milliseconds with as many decimals as are meaningful: ``0.42``, ``42.1``, ``1,234``."""
    if not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    if abs(value) < 0.01:
        return "<0.01"
    if abs(value) < 10:
        return f"{value:.2f}"
    if abs(value) < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def format_count(value: int) -> str:
    """An integer with thousands separators: ``12,345``."""
    return f"{value:,}"


def format_per_minute(value: float) -> str:
    """A rate per minute: two decimals below 10, one below 100, none above."""
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def error_percent(rate: float) -> str:
    """An error rate (0..1) as a percentage; tiny non-zero rates show as ``<0.1%``."""
    if rate <= 0:
        return "0%"
    percent = rate * 100
    if percent < 0.1:
        return "<0.1%"
    return f"{percent:.1f}%"


def format_time(moment: datetime) -> str:
    """A UTC time to the second, without the zone: ``2026-11-23 10:00:00``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _span(seconds: float) -> str:
    """A duration in words a person reads at a glance: ``45s``, ``15m``, ``1h 30m``, ``7d``."""
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else ""]
    parts += [f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    shown = [p for p in parts if p][:2]
    return " ".join(shown) or "0s"


def window_text(report: Report) -> str:
    """The report window: ``2026-11-23 10:00:00 → 2026-11-23 11:00:00 UTC (1h)``."""
    length = (report.until - report.since).total_seconds()
    return f"{format_time(report.since)} → {format_time(report.until)} UTC ({_span(length)})"


def covered_text(report: Report) -> str:
    """The span the data covers (bucket-aligned), e.g. ``04:20:00 → 04:23:00 UTC (3m)``."""
    if not report.has_data:
        return "no data in the window"
    length = (report.covered_until - report.covered_since).total_seconds()
    return (
        f"{format_time(report.covered_since)} → {format_time(report.covered_until)} UTC "
        f"({_span(length)})"
    )


def activity_text(report: Report) -> str:
    """``data in 3m of 1h 1m; /min is per minute with data``."""
    window = max(report.window_minutes, report.active_minutes)
    return (
        f"data in {_span(report.active_minutes * 60)} of {_span(window * 60)}; "
        "/min is per minute with data"
    )


def shorten_middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by replacing its middle with ``…``."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return "…"
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def operation_rows(report: Report) -> list[OperationStats]:
    """The operations in table order, with the all-flows line right after the last flow."""
    rows = list(report.operations)
    if report.all_flows is not None:
        flows = sum(1 for op in rows if op.kind == "flow")
        rows.insert(flows, report.all_flows)
    return rows


def operation_columns(report: Report) -> list[str]:
    """The operations table's columns: ``service`` with several services, ``cancelled``
    when anything was cancelled."""
    columns = ["service"] if len(report.services) > 1 else []
    columns += ["name", "kind", "count", "errors"]
    if any(op.cancelled for op in report.operations):
        columns.append("cancelled")
    return [*columns, "error %", "/min", "mean", "p50", "p95", "p99", "max"]


def operation_cells(op: OperationStats) -> dict[str, str]:
    """Every column of one operations-table row, formatted the same in every format."""
    return {
        "service": op.service,
        "name": op.name,
        "kind": op.kind,
        "count": format_count(op.count),
        "errors": format_count(op.errors),
        "cancelled": format_count(op.cancelled),
        "error %": error_percent(op.error_rate),
        "/min": format_per_minute(op.throughput_per_min),
        "mean": format_ms(op.mean_ms),
        "p50": format_ms(op.p50_ms),
        "p95": format_ms(op.p95_ms),
        "p99": format_ms(op.p99_ms),
        "max": format_ms(op.max_ms),
    }


def instance_columns() -> list[str]:
    """The per-instance summary's columns; the last (no title) flags a quiet instance."""
    return ["service", "instance", "count", "errors", "first", "last", "active", ""]


def _seen(moment: datetime, report: Report) -> str:
    # Minute-aligned: no seconds; no date when the whole window is within one UTC day.
    since, until = report.since.astimezone(timezone.utc), report.until.astimezone(timezone.utc)
    same_day = since.date() == (until - timedelta(microseconds=1)).date()
    return moment.astimezone(timezone.utc).strftime("%H:%M" if same_day else "%m-%d %H:%M")


def instance_cells(instance: InstanceSummary, report: Report) -> dict[str, str]:
    """One row of the per-instance summary (times in UTC, to the minute)."""
    return {
        "service": instance.service,
        "instance": instance.instance,
        "count": format_count(instance.count),
        "errors": format_count(instance.errors),
        "first": _seen(instance.first_seen, report),
        "last": _seen(instance.last_seen, report),
        "active": _span(instance.active_minutes * 60),
        "": f"quiet {_span(instance.quiet_minutes * 60)}" if instance.quiet else "",
    }


def store_text(report: Report) -> str:
    """The store the report was read from, with any password masked."""
    return redact_url(report.store)


def filters_text(report: Report) -> str:
    """The active filters (``name 'db.*', kind 'db'``), or ``""`` when there are none."""
    parts = []
    if report.name_filter is not None:
        parts.append(f"name {report.name_filter!r}")
    if report.kind_filter is not None:
        parts.append(f"kind {report.kind_filter!r}")
    if report.service_filter is not None:
        parts.append(f"service {report.service_filter!r}")
    if report.instance_filter is not None:
        parts.append(f"instance {report.instance_filter!r}")
    return ", ".join(parts)


def drops_text(report: Report) -> str:
    """``1,234 events dropped (buffer_full: 1,200, store_unavailable: 34)``, or ``""``."""
    if report.dropped_events <= 0:
        return ""
    reasons = ", ".join(
        f"{reason}: {format_count(count)}"
        for reason, count in sorted(report.dropped_by_reason.items())
    )
    noun = "event" if report.dropped_events == 1 else "events"
    detail = f" ({reasons})" if reasons else ""
    return (
        f"{format_count(report.dropped_events)} {noun} dropped{detail}; "
        "the numbers below undercount"
    )


def drops_are_severe(report: Report) -> bool:
    """Whether drops are big enough (≥1% of what was counted) to be shown in red."""
    counted = sum(op.count for op in report.operations)
    return report.dropped_events > 0 and report.dropped_events * 100 >= counted


def is_empty(report: Report) -> bool:
    """Whether the window holds no operations and no flows at all."""
    return not report.operations and not report.slowest_flows and not report.failed_flows


def empty_message(report: Report) -> str:
    """One friendly line: nothing here, where we looked, and which ``--since`` to try."""
    length = (report.until - report.since).total_seconds()
    wider = next((text for text, secs in _SUGGESTED_WINDOWS if secs > length), "90d")
    filters = filters_text(report)
    matching = f" matching {filters}" if filters else ""
    other_filters = " or other filters" if filters else ""
    return (
        f"No operations{matching} recorded in {store_text(report)} between "
        f"{format_time(report.since)} and {format_time(report.until)} UTC "
        f"({_span(length)}); try a wider window, e.g. --since {wider}{other_filters}."
    )


@dataclass(frozen=True, slots=True)
class Step:
    """One row of a waterfall: the flow itself, a checkpoint, or an operation inside it.

    A checkpoint is a moment, not a phase: ``start_ms`` is when the flow reached it,
    ``duration_ms`` is 0, and ``since_ms`` is the time since ``since_label`` (the
    previous checkpoint, or ``"start"``).
    """

    label: str
    kind: str  # "flow", "checkpoint", or the child's kind ("db", "http", ...)
    depth: int  # 0 for the flow, 1 for checkpoints and direct children, 2+ nested
    start_ms: float
    duration_ms: float
    status: str
    error: str | None
    since_ms: float = 0.0
    since_label: str = ""

    @property
    def failed(self) -> bool:
        """Whether this step ended in an error."""
        return self.status == "error"

    @property
    def is_checkpoint(self) -> bool:
        """Whether this row is a checkpoint marker rather than a timed step."""
        return self.kind == "checkpoint"


def slowest_rank(report: Report, flow: FlowTrace) -> int | None:
    """The rank of ``flow`` among the slowest flows, if it is drawn there already."""
    for rank, slow in enumerate(report.slowest_flows, 1):
        if (slow.service, slow.name, slow.started_at, slow.duration_ms) == (
            flow.service,
            flow.name,
            flow.started_at,
            flow.duration_ms,
        ):
            return rank
    return None


def flow_summary(flow: FlowTrace) -> str:
    """``queue, 5,000 ms, error at 2026-11-23 10:00:00 UTC``: one line for a flow."""
    return (
        f"{flow.name}, {format_ms(flow.duration_ms)} ms, {flow.status} "
        f"at {format_time(flow.started_at)} UTC"
    )


def checkpoint_note(step: Step) -> str:
    """``+4,795 ms since guard_checks`` (or ``since start``) for a checkpoint row."""
    return f"+{format_ms(step.since_ms)} ms since {step.since_label or 'start'}"


def waterfall(flow: FlowTrace) -> tuple[list[Step], float]:
    """The rows of ``flow``'s waterfall, in time order, and the time scale (ms) of its bars.

    Checkpoints sit at the moment they were reached. The scale is the flow's duration,
    or longer if work it spawned outlived it.
    """
    steps = [Step(flow.name, "flow", 0, 0.0, flow.duration_ms, flow.status, flow.error)]
    timed: list[tuple[float, int, int, Step]] = []
    for index, (name, at_ms, since_ms, previous) in enumerate(flow.checkpoint_marks):
        step = Step(name, "checkpoint", 1, at_ms, 0.0, "ok", None, since_ms, previous or "start")
        timed.append((at_ms, 0, index, step))  # a checkpoint ends what came before it
    for index, child in enumerate(flow.children):
        step = Step(
            label=str(child["name"]),
            kind=str(child["kind"]),
            depth=max(int(child["depth"]), 1),
            start_ms=max(float(child["start_ms"]), 0.0),
            duration_ms=max(float(child["duration_ms"]), 0.0),
            status=str(child["status"]),
            error=None if child["error"] is None else str(child["error"]),
        )
        timed.append((step.start_ms, 1, index, step))
    timed.sort(key=lambda item: item[:3])
    steps.extend(item[3] for item in timed)
    scale = max((s.start_ms + s.duration_ms for s in steps), default=0.0)
    return steps, scale if scale > 0 else 1.0


def marker_geometry(step: Step, scale_ms: float) -> tuple[float, float]:
    """``(since, at)`` of a checkpoint as fractions (0..1): the previous mark and this one."""
    at = min(max(step.start_ms / scale_ms, 0.0), 1.0)
    since = min(max((step.start_ms - step.since_ms) / scale_ms, 0.0), at)
    return since, at


def text_marker(since: float, at: float, cells: int, *, track: str = " ") -> str:
    """A checkpoint drawn as ``◆`` at ``at``, with a dotted lead-in from ``since``."""
    if cells <= 0:
        return ""
    mark = min(int(at * cells), cells - 1)
    lead = min(int(since * cells), mark)
    line = track * lead + "┈" * (mark - lead) + "◆"
    return line if track == " " else line.ljust(cells, track)


def bar_geometry(step: Step, scale_ms: float) -> tuple[float, float]:
    """``(left, width)`` of a step's bar as fractions (0..1) of the flow's time scale."""
    left = min(max(step.start_ms / scale_ms, 0.0), 1.0)
    width = min(max(step.duration_ms / scale_ms, 0.0), 1.0 - left)
    return left, width


def text_bar(left: float, width: float, cells: int, *, track: str = " ") -> str:
    """A bar of block characters, ``cells`` wide, starting at ``left`` and ``width`` long.

    The length is drawn to an eighth of a cell; any non-zero width shows at least a
    sliver, so even a fast step is visible. ``track`` fills the rest of the line.
    """
    lead = min(round(left * cells), cells - 1) if cells > 0 else 0
    eighths = round(width * cells * 8)
    if width > 0:
        eighths = max(eighths, 1)
    eighths = min(eighths, (cells - lead) * 8)
    full, part = divmod(eighths, 8)
    body = _FULL * full + (_EIGHTHS[part] if part else "")
    bar = track * lead + body
    return bar if track == " " else bar.ljust(cells, track)


def step_columns() -> list[str]:
    """The per-flow steps table's columns."""
    return [
        "flow",
        "step",
        "kind",
        "count",
        "per run",
        "errors",
        "mean",
        "p50",
        "p95",
        "p99",
        "max",
        "share",
    ]


def step_cells(step: StepStats) -> dict[str, str]:
    """One per-flow step row, formatted the same in every format."""
    return {
        "flow": step.flow,
        "step": step.name,
        "kind": step.kind,
        "count": format_count(step.count),
        "per run": f"{step.per_run:.2f}",
        "errors": format_count(step.errors),
        "mean": format_ms(step.mean_ms),
        "p50": format_ms(step.p50_ms),
        "p95": format_ms(step.p95_ms),
        "p99": format_ms(step.p99_ms),
        "max": format_ms(step.max_ms),
        "share": f"{step.share * 100:.0f}%",
    }


def split_columns(report: Report) -> list[str]:
    """The split table's columns: the operation, the split key's value, its latency."""
    key = report.split_by or "value"
    return ["name", key, "count", "errors", "error %", "mean", "p50", "p95", "p99", "max"]


def split_cells(split: SplitStats, report: Report) -> dict[str, str]:
    """One split row, formatted the same in every format."""
    key = report.split_by or "value"
    return {
        "name": split.name,
        key: next(iter(split.tags.values()), ""),
        "count": format_count(split.count),
        "errors": format_count(split.errors),
        "error %": error_percent(split.error_rate),
        "mean": format_ms(split.mean_ms),
        "p50": format_ms(split.p50_ms),
        "p95": format_ms(split.p95_ms),
        "p99": format_ms(split.p99_ms),
        "max": format_ms(split.max_ms),
    }
