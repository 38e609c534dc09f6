"""The report as GitHub-flavoured markdown: header, operations table, waterfalls as tables.

Every value that came from a bot (operation names, errors, the store path) is
backslash-escaped, so a name such as ``<b>|x`` can neither add HTML nor break a table.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..analysis.report import FlowTrace, Report
from ._format import (
    activity_text,
    bar_geometry,
    checkpoint_note,
    covered_text,
    drops_text,
    empty_message,
    filters_text,
    flow_summary,
    format_count,
    format_ms,
    format_time,
    instance_cells,
    instance_columns,
    is_empty,
    marker_geometry,
    operation_cells,
    operation_columns,
    operation_rows,
    slowest_rank,
    split_cells,
    split_columns,
    step_cells,
    step_columns,
    store_text,
    text_bar,
    text_marker,
    waterfall,
    window_text,
)
from .render_runtime import runtime_markdown

__all__ = ["escape_markdown", "render_markdown"]

_BAR_CELLS = 30
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&$])")
_NBSP = "\u00a0"
_TEXT_COLUMNS = frozenset(
    {"service", "name", "kind", "instance", "flow", "step", "first", "last", ""}
)

Section = Callable[[Report], list[str]]


def escape_markdown(text: str) -> str:
    """``text`` safe inside markdown and a table cell: one line, punctuation escaped."""
    one_line = " ".join(str(text).split())
    return _SPECIAL.sub(r"\\\1", one_line)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _head(columns: list[str]) -> list[str]:
    aligns = [":---" if c in _TEXT_COLUMNS else "---:" for c in columns]
    return [_row([escape_markdown(c) for c in columns]), _row(aligns)]


def render_markdown(report: Report) -> str:
    """``report`` as a markdown document (ends with a newline), one section after another.

    Example::

        Path("report.md").write_text(render_markdown(report))
    """
    lines = ["# botpulse report", ""]
    if report.dropped_events:
        lines += [f"> ⚠️ **{escape_markdown(drops_text(report))}**", ""]
    lines += _header(report)
    if is_empty(report):
        lines += [escape_markdown(empty_message(report)), ""]
        return "\n".join(lines)
    for section in SECTIONS:
        lines += section(report)
    return "\n".join(lines)


def _header(report: Report) -> list[str]:
    lines = [
        f"- **Window:** {escape_markdown(window_text(report))}",
        f"- **Covered:** {escape_markdown(covered_text(report))}",
        f"- **Activity:** {escape_markdown(activity_text(report))}",
        f"- **Store:** {escape_markdown(store_text(report))}",
    ]
    if filters_text(report):
        lines.append(f"- **Filters:** {escape_markdown(filters_text(report))}")
    return [
        *lines,
        f"- **Dropped events:** {format_count(report.dropped_events)}",
        f"- **Generated:** {format_time(report.generated_at)} UTC",
        "",
    ]


def _operations(report: Report) -> list[str]:
    if not report.operations:
        return []
    columns = operation_columns(report)
    lines = [
        "## Operations",
        "",
        "_Latencies in ms; percentiles within ±1% (sketch accuracy)._",
        "",
        *_head(columns),
    ]
    for op in operation_rows(report):
        cells = {c: escape_markdown(v) for c, v in operation_cells(op).items()}
        if op is report.all_flows:
            cells["name"] = f"_{cells['name']}_"
        elif op.kind == "flow":
            cells["name"] = f"**{cells['name']}**"
        if op.errors:
            cells["errors"] = f"**{cells['errors']}**"
            cells["error %"] = f"**{cells['error %']}**"
        lines.append(_row([cells[c] for c in columns]))
    lines.append("")
    return lines


def _steps(report: Report) -> list[str]:
    if not report.steps:
        return []
    columns = step_columns()
    lines = ["## Where each flow's time goes", "", *_head(columns)]
    for step in report.steps:
        cells = {c: escape_markdown(v) for c, v in step_cells(step).items()}
        lines.append(_row([cells[c] for c in columns]))
    lines.append("")
    return lines


def _splits(report: Report) -> list[str]:
    if not report.split_by:
        return []
    columns = split_columns(report)
    lines = [f"## By {escape_markdown(report.split_by)}", ""]
    if not report.splits:
        return [*lines, f"_No operation has the tag {escape_markdown(report.split_by)}._", ""]
    lines += _head(columns)
    for split in report.splits:
        cells = {c: escape_markdown(v) for c, v in split_cells(split, report).items()}
        lines.append(_row([cells[c] for c in columns]))
    lines.append("")
    return lines


def _runtime(report: Report) -> list[str]:
    return runtime_markdown(report)


def _findings(report: Report) -> list[str]:
    if not report.findings_line:
        return []
    return [f"**{escape_markdown(report.findings_line)}**", ""]


def _instances(report: Report) -> list[str]:
    if not report.instances:
        return []
    columns = instance_columns()
    lines = ["## Instances", "", *_head(columns)]
    for instance in report.instances:
        cells = {c: escape_markdown(v) for c, v in instance_cells(instance, report).items()}
        if cells[""]:
            cells[""] = f"**{cells['']}**"
        lines.append(_row([cells[c] for c in columns]))
    lines.append("")
    return lines


def _slowest(report: Report) -> list[str]:
    if not report.slowest_flows:
        return []
    lines = ["## Slowest flows", ""]
    for rank, flow in enumerate(report.slowest_flows, 1):
        lines += _waterfall(flow, rank)
    return lines


def _failed(report: Report) -> list[str]:
    if not report.failed_flows:
        return []
    lines = ["## Recent failed flows", ""]
    for rank, flow in enumerate(report.failed_flows, 1):
        above = slowest_rank(report, flow)
        if above is None:
            lines += _waterfall(flow, rank)
        else:
            lines += [
                f"{rank}\\. {escape_markdown(flow_summary(flow))}: slowest #{above} above.",
                "",
            ]
    return lines


#: The report's sections after the header, in order.
SECTIONS: tuple[Section, ...] = (
    _operations,
    _steps,
    _splits,
    _instances,
    _slowest,
    _failed,
    _runtime,
    _findings,
)


def _waterfall(flow: FlowTrace, rank: int) -> list[str]:
    steps, scale = waterfall(flow)
    status = "**error**" if flow.status == "error" else escape_markdown(flow.status)
    lines = [
        f"### {rank}. {escape_markdown(flow.name)} — {format_ms(flow.duration_ms)} ms ({status})",
        "",
        f"Started {format_time(flow.started_at)} UTC"
        f"{' in service ' + escape_markdown(flow.service) if flow.service else ''}; "
        f"sampled because: {escape_markdown(flow.reason.replace(',', ', '))}.",
        "",
    ]
    if flow.error:
        lines += [f"**Error:** {escape_markdown(flow.error)}", ""]
    lines += [
        _row(["offset ms", "duration ms", "step", "kind", f"0 → {format_ms(scale)} ms"]),
        _row(["---:", "---:", ":---", ":---", ":---"]),
    ]
    for step in steps:
        indent = _NBSP * 2 * max(step.depth - 1, 0) + ("└ " if step.depth > 1 else "")
        label = ("◆ " if step.is_checkpoint else "") + escape_markdown(step.label)
        if step.depth == 0:
            label = f"**{label}**"
        if step.failed and step.depth > 0:
            label += " — **error**" + (f": {escape_markdown(step.error)}" if step.error else "")
        if step.is_checkpoint:
            label += f" _{escape_markdown(checkpoint_note(step))}_"
            bar = text_marker(*marker_geometry(step, scale), _BAR_CELLS, track="░")
        else:
            bar = text_bar(*bar_geometry(step, scale), _BAR_CELLS, track="░")
        lines.append(
            _row(
                [
                    "" if step.depth == 0 else format_ms(step.start_ms),
                    "" if step.is_checkpoint else format_ms(step.duration_ms),
                    indent + label,
                    escape_markdown(step.kind),
                    f"`{bar}`",
                ]
            )
        )
    if flow.truncated:
        lines += ["", f"_{format_count(flow.truncated)} more steps were not kept._"]
    lines.append("")
    return lines
