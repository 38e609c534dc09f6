"""The terminal report: rich tables for the header, operations, instances and flow waterfalls.

Every value is put into a :class:`rich.text.Text`, never into a markup string, so an
operation named ``[bold]x[/]`` prints as written instead of being interpreted.
"""

from __future__ import annotations

from collections.abc import Callable

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..analysis.report import FlowTrace, OperationStats, Report
from ._format import (
    activity_text,
    bar_geometry,
    checkpoint_note,
    covered_text,
    drops_are_severe,
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
    shorten_middle,
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
from .render_runtime import runtime_rich

__all__ = ["KIND_STYLES", "complete_width", "render_table"]

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
_TEXT_COLUMNS = frozenset({"service", "name", "kind", "instance", "flow", "step", ""})
# On a terminal too narrow even with names shortened, these go first, in this order
# (and the table says which): name, count, error % and p95 always stay; the rate and
# the service go last.
_DROP_FIRST = ("mean", "p50", "errors", "cancelled", "max", "kind", "p99", "/min", "service")
_MIN_NAME = 16
_STEP_WIDTH = 60

Section = Callable[[Report, int, bool], list[RenderableType]]


def render_table(report: Report, console: Console, *, fit: bool = True) -> None:
    """Print ``report`` to ``console``: one section after the other (see ``SECTIONS``).

    ``fit=True`` (a terminal) fits the tables to ``console.width``: long names are
    shortened in the middle, numbers never, and only if that is not enough do the
    least telling columns go, with a note saying which. ``fit=False`` (a file or a
    pipe) keeps every column and every name whole; names wrap if ``console.width``
    is too small for them.

    Example::

        render_table(build_report(store, since, until), Console())
    """
    if is_empty(report):
        if report.dropped_events:
            console.print(_drops_panel(report))
        console.print(Text(empty_message(report)), soft_wrap=True)
        return
    for section in SECTIONS:
        for renderable in section(report, console.width, fit):
            console.print(renderable)


def _header(report: Report, width: int, fit: bool) -> list[RenderableType]:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row(Text("window"), Text(window_text(report)))
    grid.add_row(Text("covered"), Text(covered_text(report)))
    grid.add_row(Text("activity"), Text(activity_text(report)))
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
    return [Panel(grid, title=title, title_align="left", expand=False)]


def _drops(report: Report, width: int, fit: bool) -> list[RenderableType]:
    return [_drops_panel(report)] if report.dropped_events else []


def _drops_panel(report: Report) -> Panel:
    style = _ERROR_STYLE if drops_are_severe(report) else "bold yellow"
    return Panel(Text("⚠ " + drops_text(report), style=style), border_style=style, expand=False)


def _table_width(widths: dict[str, int], columns: list[str]) -> int:
    # No edges; between columns one cell of padding each side and a one-cell rule gap.
    return sum(widths[c] for c in columns) + 3 * (len(columns) - 1)


def _operation_widths(report: Report) -> tuple[list[str], dict[str, int]]:
    columns = operation_columns(report)
    rows = [operation_cells(op) for op in operation_rows(report)]
    return columns, {c: max([len(c), *(len(cells[c]) for cells in rows)]) for c in columns}


def _instance_widths(report: Report) -> dict[str, int]:
    rows = [instance_cells(instance, report) for instance in report.instances]
    return {c: max([len(c), *(len(cells[c]) for cells in rows)]) for c in instance_columns()}


def complete_width(report: Report) -> int:
    """The narrowest width at which the complete tables fit (operation names wrapped)."""
    width = 0
    if report.operations:
        columns, widths = _operation_widths(report)
        widths["name"] = min(widths["name"], _MIN_NAME)
        width = _table_width(widths, columns)
    if report.instances:
        width = max(width, _table_width(_instance_widths(report), instance_columns()))
    return width


def _fit(
    columns: list[str], widths: dict[str, int], width: int, shrink: str
) -> tuple[list[str], int, list[str]]:
    """``(kept columns, width of the shrink column, hidden columns)`` to fit ``width``."""
    kept = list(columns)
    hidden: list[str] = []
    room = width - (_table_width(widths, kept) - widths[shrink])
    for column in _DROP_FIRST:
        if room >= min(widths[shrink], _MIN_NAME):
            break
        if column in kept:
            kept.remove(column)
            hidden.append(column)
            room = width - (_table_width(widths, kept) - widths[shrink])
    return kept, max(min(widths[shrink], room), min(widths[shrink], _MIN_NAME)), hidden


def _operations(report: Report, width: int, fit: bool) -> list[RenderableType]:
    if not report.operations:
        return []
    columns, widths = _operation_widths(report)
    rows = [(op, operation_cells(op)) for op in operation_rows(report)]
    hidden: list[str] = []
    if fit:
        columns, name_width, hidden = _fit(columns, widths, width, "name")
    else:  # complete: every column; names wrap if the width is too small for them
        room = width - (_table_width(widths, columns) - widths["name"])
        name_width = max(min(widths["name"], room), min(widths["name"], _MIN_NAME))
    table = Table(
        title=Text("Operations", style="bold"),
        title_justify="left",
        caption=Text("latencies in ms; percentiles within ±1% (sketch accuracy)", style="dim"),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for column in columns:
        text = column in _TEXT_COLUMNS
        table.add_column(
            column,
            justify="left" if text else "right",
            no_wrap=not (column == "name" and not fit),
            overflow="fold" if column == "name" else "crop",
            min_width=None if column == "name" else widths[column],
            max_width=name_width if column == "name" else None,
        )
    for op, cells in rows:
        shorten = name_width if fit else len(cells["name"])
        table.add_row(*(_operation_cell(report, op, cells, c, shorten) for c in columns))
    out: list[RenderableType] = [table]
    if hidden:
        out.append(
            Text(
                f"hidden to fit {width} columns: {', '.join(hidden)} "
                "(widen the terminal, set COLUMNS, or use --format json)",
                style="dim",
            )
        )
    return out


def _operation_cell(
    report: Report, op: OperationStats, cells: dict[str, str], column: str, name_width: int
) -> Text:
    failing = op.errors > 0
    value = cells[column]
    if column == "name":
        if op is report.all_flows:
            return Text(value, style="bold italic")
        return Text(shorten_middle(value, name_width), style="bold" if op.kind == "flow" else "")
    if column == "kind":
        return Text(value, style=KIND_STYLES.get(op.kind, ""))
    if column in ("errors", "error %"):
        return Text(value, style=_ERROR_STYLE if failing else "dim")
    if column == "cancelled":
        return Text(value, style="yellow" if op.cancelled else "dim")
    if column == "p95":
        return Text(value, style="bold")
    return Text(value)


def _simple_table(title: str, columns: list[str], rows: list[dict[str, str]]) -> Table:
    table = Table(
        title=Text(title, style="bold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for column in columns:
        text = column in _TEXT_COLUMNS
        table.add_column(
            column,
            justify="left" if text else "right",
            no_wrap=not text,
            overflow="fold" if text else "crop",
        )
    for row in rows:
        table.add_row(*(Text(row[c]) for c in columns))
    return table


def _steps(report: Report, width: int, fit: bool) -> list[RenderableType]:
    if not report.steps:
        return []
    rows = [step_cells(step) for step in report.steps]
    return [Text(""), _simple_table("Where each flow's time goes", step_columns(), rows)]


def _splits(report: Report, width: int, fit: bool) -> list[RenderableType]:
    if not report.split_by:
        return []
    if not report.splits:
        return [Text(""), Text(f"No operation has the tag {report.split_by}.")]
    rows = [split_cells(split, report) for split in report.splits]
    return [Text(""), _simple_table(f"By {report.split_by}", split_columns(report), rows)]


def _runtime(report: Report, width: int, fit: bool) -> list[RenderableType]:
    return list(runtime_rich(report))


def _findings(report: Report, width: int, fit: bool) -> list[RenderableType]:
    if not report.findings_line:
        return []
    return [Text(""), Text(report.findings_line, style="bold yellow")]


def _instances(report: Report, width: int, fit: bool) -> list[RenderableType]:
    if not report.instances:
        return []
    table = Table(
        title=Text("Instances", style="bold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    widths = _instance_widths(report)
    for column in instance_columns():
        text = column in _TEXT_COLUMNS or column in ("first", "last")
        table.add_column(
            column,
            justify="left" if text else "right",
            no_wrap=True,
            min_width=widths[column],
            overflow="crop",
        )
    for instance in report.instances:
        cells = instance_cells(instance, report)
        row = [Text(cells[c]) for c in instance_columns()]
        row[-1].stylize("bold yellow")
        table.add_row(*row)
    return [table]


def _slowest(report: Report, width: int, fit: bool) -> list[RenderableType]:
    if not report.slowest_flows:
        return []
    out: list[RenderableType] = [Text(""), Text("Slowest flows", style="bold")]
    out += [_waterfall(flow, rank, fit) for rank, flow in enumerate(report.slowest_flows, 1)]
    return out


def _failed(report: Report, width: int, fit: bool) -> list[RenderableType]:
    if not report.failed_flows:
        return []
    out: list[RenderableType] = [Text(""), Text("Recent failed flows", style="bold red")]
    for rank, flow in enumerate(report.failed_flows, 1):
        above = slowest_rank(report, flow)
        if above is None:
            out.append(_waterfall(flow, rank, fit))
        else:
            out += [Text(""), Text(f"#{rank} {flow_summary(flow)}: slowest #{above} above")]
    return out


#: The report's sections in order; each returns what to print (nothing to skip itself).
SECTIONS: tuple[Section, ...] = (
    _header,
    _drops,
    _operations,
    _steps,
    _splits,
    _instances,
    _slowest,
    _failed,
    _runtime,
    _findings,
)


class _Bar:
    """A waterfall bar (or a checkpoint marker) that fills the width its column gets."""

    min_cells = 16
    max_cells = 60

    def __init__(self, left: float, width: float, style: str, *, marker: bool = False) -> None:
        self.left = left
        self.width = width
        self.style = style
        self.marker = marker

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(
            self.min_cells, max(self.min_cells, min(self.max_cells, options.max_width))
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        cells = max(1, options.max_width)
        if self.marker:
            line = text_marker(self.left, self.width, cells)
        else:
            line = text_bar(self.left, self.width, cells)
        yield Text(line, style=self.style, no_wrap=True)


def _waterfall(flow: FlowTrace, rank: int, fit: bool) -> Group:
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
    table.add_column(
        "step",
        no_wrap=fit,
        overflow="ellipsis" if fit else "fold",
        max_width=_STEP_WIDTH if fit else None,
    )
    table.add_column("kind", no_wrap=True)
    table.add_column(f"0 → {format_ms(scale)} ms")
    for step in steps:
        style = _ERROR_STYLE if step.failed else KIND_STYLES.get(step.kind, "white")
        name = shorten_middle(step.label, _STEP_WIDTH - 2 * step.depth) if fit else step.label
        marker = "◆ " if step.is_checkpoint else ""
        label = Text("  " * step.depth + marker + name)
        if step.depth == 0:
            label.stylize("bold")
        if step.failed:
            label.stylize(_ERROR_STYLE)
            if step.error and step.depth > 0:
                label.append(f"  {step.error}", style="red")
        if step.is_checkpoint:
            label.append(f"  {checkpoint_note(step)}", style="dim")
            bar = _Bar(*marker_geometry(step, scale), style, marker=True)
        else:
            bar = _Bar(*bar_geometry(step, scale), style)
        offset = "" if step.depth == 0 else format_ms(step.start_ms)
        duration = "" if step.is_checkpoint else format_ms(step.duration_ms)
        table.add_row(Text(offset), Text(duration), label, Text(step.kind, style="dim"), bar)
    parts: list[RenderableType] = [Text(""), title]
    notes = [f"sampled because: {flow.reason.replace(',', ', ')}"]
    if flow.error:
        parts.append(Text(f"error: {flow.error}", style="red"))
    if flow.truncated:
        notes.append(f"{format_count(flow.truncated)} more steps were not kept")
    parts.append(table)
    parts.append(Text("; ".join(notes), style="dim"))
    return Group(*parts)
