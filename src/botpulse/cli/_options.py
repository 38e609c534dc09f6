"""Options shared by commands: --format, --output, --top; --service and --instance filters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .output import FORMATS

__all__ = ["process_filter_options", "report_options"]

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
            help="How many of the slowest flows, and of the most recent failed flows, to "
            "draw as waterfalls (0 to 100).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def process_filter_options(command: F) -> F:
    """Add ``--service NAME`` and ``--instance NAME`` to a command that reads the store.

    The command receives ``service`` and ``instance`` (``None`` when not given); pass
    them on to the store reads (``SeriesFilter(service=..., instance=...)``).
    """
    options = [
        click.option(
            "--service",
            default=None,
            metavar="NAME",
            help="Only what the service NAME recorded (botpulse.init(service=...)).",
        ),
        click.option(
            "--instance",
            default=None,
            metavar="NAME",
            help="Only what the process NAME recorded (botpulse.init(instance=...); "
            "see the Instances table for the names).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
