"""The report as GitHub-flavoured markdown: header, operations table, waterfalls as tables.

Every value that came from a bot (operation names, errors, the store path) is
backslash-escaped, so a name such as ``<b>|x`` can neither add HTML nor break a table.
"""

from __future__ import annotations

import re

from ..analysis.report import FlowTrace, Report
from ._format import (
    bar_geometry,
    drops_text,
    empty_message,
    error_percent,
    filters_text,
    format_count,
    format_ms,
    format_per_minute,
    format_time,
    is_empty,
    store_text,
    text_bar,
    waterfall,
    window_text,
)
from .render_runtime import runtime_markdown

__all__ = ["escape_markdown", "render_markdown"]

_BAR_CELLS = 30
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&$])")
_NBSP = "\u00a0"
_OPERATION_COLUMNS = (
    ("name", ":---"),
    ("kind", ":---"),
    ("count", "---:"),
    ("errors", "---:"),
    ("error %", "---:"),
    ("/min", "---:"),
    ("mean", "---:"),
    ("p50", "---:"),
    ("p95", "---:"),
    ("p99", "---:"),
    ("max", "---:"),
)


def escape_markdown(text: str) -> str:
    """``text`` safe inside markdown and a table cell: one line, punctuation escaped."""
    one_line = " ".join(str(text).split())
    return _SPECIAL.sub(r"\\\1", one_line)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_markdown(report: Report) -> str:
    """``report`` as a markdown document (ends with a newline).

    Example::

        Path("report.md").write_text(render_markdown(report))
    """
    lines = ["# botpulse report", ""]
    if report.dropped_events:
        lines += [f"> ⚠️ **{escape_markdown(drops_text(report))}**", ""]
    lines += [
        f"- **Window:** {escape_markdown(window_text(report))}",
        f"- **Store:** {escape_markdown(store_text(report))}",
    ]
    if filters_text(report):
        lines.append(f"- **Filters:** {escape_markdown(filters_text(report))}")
    lines += [
        f"- **Dropped events:** {format_count(report.dropped_events)}",
        f"- **Generated:** {format_time(report.generated_at)} UTC",
        "",
    ]
    if is_empty(report):
        lines += [escape_markdown(empty_message(report)), ""]
        return "\n".join(lines)
    if report.operations:
        lines += _operations(report)
    if report.slowest_flows:
        lines += ["## Slowest flows", ""]
        for rank, flow in enumerate(report.slowest_flows, 1):
            lines += _waterfall(flow, rank)
    lines += runtime_markdown(report)
    return "\n".join(lines)


def _operations(report: Report) -> list[str]:
    show_service = len(report.services) > 1
    columns = ([("service", ":---")] if show_service else []) + list(_OPERATION_COLUMNS)
    lines = [
        "## Operations",
        "",
        "_Latencies in ms; percentiles within ±1% (sketch accuracy)._",
        "",
        _row([name for name, _align in columns]),
        _row([align for _name, align in columns]),
    ]
    for op in report.operations:
        name = escape_markdown(op.name)
        cells = [escape_markdown(op.service)] if show_service else []
        cells += [
            f"**{name}**" if op.kind == "flow" else name,
            escape_markdown(op.kind),
            format_count(op.count),
            f"**{format_count(op.errors)}**" if op.errors else "0",
            f"**{error_percent(op.error_rate)}**" if op.errors else "0%",
            format_per_minute(op.throughput_per_min),
            format_ms(op.mean_ms),
            format_ms(op.p50_ms),
            format_ms(op.p95_ms),
            format_ms(op.p99_ms),
            format_ms(op.max_ms),
        ]
        lines.append(_row(cells))
    lines.append("")
    return lines


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
        left, width = bar_geometry(step, scale)
        indent = _NBSP * 2 * max(step.depth - 1, 0) + ("└ " if step.depth > 1 else "")
        label = ("◆ " if step.kind == "checkpoint" else "") + escape_markdown(step.label)
        if step.depth == 0:
            label = f"**{label}**"
        if step.failed and step.depth > 0:
            label += " — **error**" + (f": {escape_markdown(step.error)}" if step.error else "")
        bar = text_bar(left, width, _BAR_CELLS, track="░")
        lines.append(
            _row(
                [
                    "" if step.depth == 0 else format_ms(step.start_ms),
                    format_ms(step.duration_ms),
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
