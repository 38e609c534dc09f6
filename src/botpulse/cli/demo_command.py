"""``botpulse demo``: run the simulated chat bot with a progress bar, then report on its run."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from ..analysis import build_report
from ..store import open_store, parse_store_url, redact_url
from ._errors import CommandFailedError
from ._options import report_options
from ._progress import DemoProgress
from .output import emit_report

__all__ = ["DEMO_STORE_URL", "demo"]

DEMO_STORE_URL = "sqlite:///botpulse-demo.db"


@click.command()
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True, max=86400),
    default=20.0,
    show_default=True,
    help="How long the simulated bot runs.",
)
@click.option(
    "--store",
    "store_url",
    default=DEMO_STORE_URL,
    show_default=True,
    metavar="URL",
    help="Where the demo records (kept apart from your real store).",
)
@click.option(
    "--users",
    type=click.IntRange(1, 1000),
    default=8,
    show_default=True,
    help="Simulated chat users sending commands at the same time.",
)
@click.option("--seed", type=int, default=None, help="Seed for a repeatable run.")
@report_options
def demo(
    seconds: float,
    store_url: str,
    users: int,
    seed: int | None,
    output_format: str,
    output: Path | None,
    top: int,
) -> None:
    """Run a simulated chat bot for a few seconds, then show its report.

    \b
    Examples:
      botpulse demo
      botpulse demo --seconds 60 --users 32 --format html --output demo.html
    """
    parse_store_url(store_url)  # a bad URL fails here, before anything runs
    try:
        # Imported here: the simulated bot is only needed by this command.
        from botpulse.demo import run_demo
    except ImportError as exc:
        raise CommandFailedError(f"the demo is not available in this installation ({exc})") from exc
    status = Console(stderr=True, highlight=False)
    with DemoProgress(f"Simulating {users} users", status) as progress:
        summary = run_demo(store_url, seconds, users=users, seed=seed, on_progress=progress.update)
    status.print(
        Text(
            f"Simulated {users} users for {seconds:g} s: {summary.commands:,} commands, "
            f"{summary.errors:,} errors, recorded in {redact_url(summary.store)}",
            style="dim",
        ),
        soft_wrap=True,
    )
    with open_store(summary.store, create=False) as store:
        the_report = build_report(store, summary.started_at, summary.finished_at, top=top)
    emit_report(the_report, output_format, output)
