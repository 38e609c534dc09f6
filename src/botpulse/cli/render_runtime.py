"""The report's runtime sections (gauges, caches, pools, runtime findings) for each renderer.

The analysis gives plain ``(title, header, rows)`` tables
(:func:`botpulse.analysis.runtime.runtime_tables`); each function here prints them in
one output format, so the table, markdown and HTML renderers each need one call.
"""

from __future__ import annotations

import html

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..analysis.report import Report
from ..analysis.runtime import runtime_tables

__all__ = ["print_runtime", "runtime_html", "runtime_markdown", "runtime_rich"]


def print_runtime(report: Report, console: Console) -> None:
    """Print the runtime tables of ``report`` to ``console`` (nothing if there are none)."""
    for table in runtime_rich(report):
        console.print(table)


def runtime_rich(report: Report) -> list[Table]:
    """The runtime tables of ``report`` as rich tables."""
    out = []
    for title, header, rows in runtime_tables(report.runtime):
        table = Table(title=Text(title, style="bold"), box=box.SIMPLE_HEAD, title_justify="left")
        for index, column in enumerate(header):
            numeric = (
                index > 0 and title != "Runtime findings" and column not in {"worst minute (max)"}
            )
            table.add_column(Text(column), justify="right" if numeric else "left",
                             overflow="fold")  # fmt: skip
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        out.append(table)
    return out


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def runtime_markdown(report: Report) -> list[str]:
    """The runtime tables of ``report`` as markdown lines."""
    lines: list[str] = []
    for title, header, rows in runtime_tables(report.runtime):
        lines += [f"## {title}", "", "| " + " | ".join(_md(h) for h in header) + " |"]
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
        lines.append("")
    return lines


def runtime_html(report: Report) -> str:
    """The runtime tables of ``report`` as HTML sections (escaped), or ``""``."""
    parts: list[str] = []
    for title, header, rows in runtime_tables(report.runtime):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "\n".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in rows
        )
        parts.append(
            f'<section>\n<h2>{html.escape(title)}</h2>\n<div class="card scroll">\n'
            f'<table class="ops">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n'
            "</tbody>\n</table>\n</div>\n</section>"
        )
    return "\n".join(parts)
