"""Options shared by the commands that print a report: --format, --output, --top."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .output import FORMATS

__all__ = ["report_options"]

F = TypeVar("F", bound=Callable[..., Any])


def report_options(command: F) -> F:
    """Add ``--format``, ``--output`` and ``--top`` to a command that ends in a report."""
    options = [
        click.option(
            "--format",
            "output_format",
            type=click.Choice(FORMATS, case_sensitive=False),
            default="table",
            show_default=True,
            help="table for a terminal, markdown for issues and chats, json for machines, "
            "html for a self-contained page.",
        ),
        click.option(
            "--output",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            metavar="FILE",
            help="Write the report to FILE instead of standard output.",
        ),
        click.option(
            "--top",
            type=click.IntRange(0, 100),
            default=5,
            show_default=True,
            metavar="N",
            help="How many of the slowest flows to draw as waterfalls (0 to 100).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
