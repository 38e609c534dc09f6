"""Send a report where the user asked: a format (table, markdown, json, html), stdout or a file."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import click
from rich.console import Console

from ..analysis.report import Report
from ..store import redact_url
from ._errors import CommandLineError
from .render_html import render_html
from .render_markdown import render_markdown
from .render_table import complete_width, render_table

__all__ = ["FORMATS", "emit_report", "render_json", "render_text"]

#: The values of ``--format``, the terminal table first (the default).
FORMATS = ("table", "markdown", "json", "html")
# Wide enough for any table (names are at most 200 characters): to a file or a pipe the
# table is complete; set COLUMNS to wrap long names instead.
_FILE_WIDTH = 1000


def _file_width() -> int:
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else _FILE_WIDTH


def render_json(report: Report) -> str:
    """The versioned JSON document (``botpulse.report/1``), indented, store URL masked."""
    document = report.to_dict()
    document["store"] = redact_url(str(document["store"]))
    return json.dumps(document, indent=2)


def render_text(report: Report, output_format: str) -> str:
    """``report`` rendered as text in ``output_format`` (the table without colours)."""
    if output_format == "json":
        return render_json(report)
    if output_format == "markdown":
        return render_markdown(report)
    if output_format == "html":
        return render_html(report)
    buffer = io.StringIO()
    width = max(_file_width(), complete_width(report))  # complete, even past COLUMNS
    console = Console(file=buffer, width=width, no_color=True, highlight=False)
    render_table(report, console, fit=False)
    return "\n".join(line.rstrip() for line in buffer.getvalue().split("\n"))


def emit_report(report: Report, output_format: str, output: Path | None) -> None:
    """Print ``report`` to stdout (colours on a terminal) or write it to ``output``.

    Raises :class:`CommandLineError` (one line, exit code 2) if ``output`` cannot be
    written.
    """
    output_format = output_format.lower()
    if output is not None:
        text = render_text(report, output_format)
        try:
            output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CommandLineError(f"cannot write --output {str(output)!r}: {reason}") from exc
        click.echo(f"botpulse: wrote the {output_format} report to {output}", err=True)
        return
    if output_format == "table":
        console = Console(highlight=False)
        if console.is_terminal:  # its width: the terminal's, or COLUMNS
            render_table(report, console)
        else:
            text = render_text(report, output_format)
            click.echo(text, nl=not text.endswith("\n"))
        return
    text = render_text(report, output_format)
    click.echo(text, nl=not text.endswith("\n"))
