"""The terminal report: rich tables for the header, the operations and each slow flow's waterfall.

Every value is put into a :class:`rich.text.Text`, never into a markup string, so an
operation named ``[bold]x[/]`` prints as written instead of being interpreted.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..analysis.report import FlowTrace, Report
from ._format import (
    bar_geometry,
    drops_are_severe,
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
from .render_runtime import print_runtime

__all__ = ["KIND_STYLES", "render_table"]

#: Bar colours per operation kind; errors are always red.
KIND_STYLES = {
    "flow": "cyan",
    "checkpoint": "yellow",
    "op": "bright_cyan",
    "db": "blue",
    "http": "magenta",
    "redis": "bright_magenta",
    "cache": "green",
    "event": "bright_yellow",
}
_ERROR_STYLE = "bold red"
_NUMERIC_COLUMNS = ("count", "errors", "error %", "/min", "mean", "p50", "p95", "p99", "max")
# On a narrow terminal these go first, in this order: name, count, error % and p95 stay.
_DROP_FIRST = ("/min", "service", "mean", "errors", "kind", "p99", "max", "p50")


def render_table(report: Report, console: Console) -> None:
    """Print ``report`` to ``console``: header, operations table, one waterfall per slow flow.

    Example::

        render_table(build_report(store, since, until), Console())
    """
    if is_empty(report):
        if report.dropped_events:
            console.print(_drops_panel(report))
        console.print(Text(empty_message(report)), soft_wrap=True)
        return
    console.print(_header(report))
    if report.dropped_events:
        console.print(_drops_panel(report))
    if report.operations:
        console.print(_operations(report, console.width))
    for rank, flow in enumerate(report.slowest_flows, 1):
        console.print(_waterfall(flow, rank))
    print_runtime(report, console)


def _header(report: Report) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row(Text("window"), Text(window_text(report)))
    grid.add_row(Text("store"), Text(store_text(report)))
    if filters_text(report):
        grid.add_row(Text("filters"), Text(filters_text(report)))
    dropped = Text(format_count(report.dropped_events))
    if report.dropped_events:
        dropped.stylize(_ERROR_STYLE if drops_are_severe(report) else "bold yellow")
    else:
        dropped.stylize("green")
    grid.add_row(Text("dropped"), dropped)
    grid.add_row(Text("generated"), Text(f"{format_time(report.generated_at)} UTC"))
    title = Text("botpulse report", style="bold")
    return Panel(grid, title=title, title_align="left", expand=False)


def _drops_panel(report: Report) -> Panel:
    style = _ERROR_STYLE if drops_are_severe(report) else "bold yellow"
    return Panel(Text("⚠ " + drops_text(report), style=style), border_style=style, expand=False)


def _operations(report: Report, width: int) -> Table:
    columns = ["service"] if len(report.services) > 1 else []
    columns += ["name", "kind", *_NUMERIC_COLUMNS]
    rows: list[dict[str, Text]] = []
    for op in report.operations:
        failing = op.errors > 0
        row = {
            "service": Text(op.service),
            "name": Text(op.name, style="bold" if op.kind == "flow" else ""),
            "kind": Text(op.kind, style=KIND_STYLES.get(op.kind, "")),
            "count": Text(format_count(op.count)),
            "errors": Text(format_count(op.errors), style=_ERROR_STYLE if failing else "dim"),
            "error %": Text(error_percent(op.error_rate), style=_ERROR_STYLE if failing else "dim"),
            "/min": Text(format_per_minute(op.throughput_per_min)),
            "mean": Text(format_ms(op.mean_ms)),
            "p50": Text(format_ms(op.p50_ms)),
            "p95": Text(format_ms(op.p95_ms), style="bold"),
            "p99": Text(format_ms(op.p99_ms)),
            "max": Text(format_ms(op.max_ms)),
        }
        rows.append(row)
    columns = _fit_columns(columns, rows, width)
    table = Table(
        title=Text("Operations", style="bold"),
        title_justify="left",
        caption=Text("latencies in ms; percentiles within ±1% (sketch accuracy)", style="dim"),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in columns:
        numeric = column in _NUMERIC_COLUMNS
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
            min_width=min(12, max(len(row[column]) for row in rows)) if column == "name" else None,
        )
    for row in rows:
        table.add_row(*(row[column] for column in columns))
    return table


def _fit_columns(columns: list[str], rows: list[dict[str, Text]], width: int) -> list[str]:
    """``columns`` without the least telling ones, until the table fits ``width`` cells."""
    wanted = {
        column: max([len(column), *(len(row[column]) for row in rows)]) + 3 for column in columns
    }
    wanted["name"] = min(wanted["name"], 40)
    kept = list(columns)
    for column in _DROP_FIRST:
        if sum(wanted[c] for c in kept) + 2 <= width:
            break
        if column in kept:
            kept.remove(column)
    return kept


class _Bar:
    """A waterfall bar that fills whatever width the table gives its column."""

    min_cells = 16
    max_cells = 60

    def __init__(self, left: float, width: float, style: str) -> None:
        self.left = left
        self.width = width
        self.style = style

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(
            self.min_cells, max(self.min_cells, min(self.max_cells, options.max_width))
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        cells = max(1, options.max_width)
        yield Text(text_bar(self.left, self.width, cells), style=self.style, no_wrap=True)


def _waterfall(flow: FlowTrace, rank: int) -> Group:
    steps, scale = waterfall(flow)
    failed = flow.status == "error"
    title = Text.assemble(
        (f"#{rank} ", "bold"),
        (flow.name, _ERROR_STYLE if failed else "bold cyan"),
        f"  {format_ms(flow.duration_ms)} ms",
        (f"  {flow.status}", _ERROR_STYLE if failed else "green"),
        f"  at {format_time(flow.started_at)} UTC",
    )
    if flow.service:
        title.append(f"  service {flow.service}", style="dim")
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    table.add_column("offset ms", justify="right", no_wrap=True)
    table.add_column("duration ms", justify="right", no_wrap=True)
    table.add_column("step", no_wrap=True, overflow="ellipsis", max_width=60)
    table.add_column("kind", no_wrap=True)
    table.add_column(f"0 → {format_ms(scale)} ms")
    for step in steps:
        left, width = bar_geometry(step, scale)
        style = _ERROR_STYLE if step.failed else KIND_STYLES.get(step.kind, "white")
        marker = "◆ " if step.kind == "checkpoint" else ""
        label = Text("  " * step.depth + marker + step.label)
        if step.depth == 0:
            label.stylize("bold")
        if step.failed:
            label.stylize(_ERROR_STYLE)
            if step.error and step.depth > 0:
                label.append(f"  {step.error}", style="red")
        offset = "" if step.depth == 0 else format_ms(step.start_ms)
        table.add_row(
            Text(offset),
            Text(format_ms(step.duration_ms)),
            label,
            Text(step.kind, style="dim"),
            _Bar(left, width, style),
        )
    parts: list[RenderableType] = [Text(""), title]
    notes = [f"sampled because: {flow.reason.replace(',', ', ')}"]
    if flow.error:
        parts.append(Text(f"error: {flow.error}", style="red"))
    if flow.truncated:
        notes.append(f"{format_count(flow.truncated)} more steps were not kept")
    parts.append(table)
    parts.append(Text("; ".join(notes), style="dim"))
    return Group(*parts)
