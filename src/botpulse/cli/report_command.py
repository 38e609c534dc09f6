"""``botpulse report``: read a window from the store and print the performance report."""

from __future__ import annotations

from pathlib import Path

import click

from .._config import default_store_url
from ..analysis import build_report, parse_window
from ..errors import StoreError
from ..store import Store, open_store, redact_url
from ._errors import CommandLineError
from ._options import process_filter_options, report_options
from .output import emit_report

__all__ = ["report"]

_WINDOW_FORMS = "a duration before now (30s, 15m, 24h, 7d) or an ISO-8601 time"


@click.command()
@click.option(
    "--store",
    "store_url",
    default=default_store_url,
    show_default="$BOTPULSE_STORE, else sqlite:///botpulse.db",
    metavar="URL",
    help="The store to read, e.g. sqlite:///botpulse.db or sqlite:////abs/path.db.",
)
@click.option(
    "--since",
    default="1h",
    show_default=True,
    metavar="WHEN",
    help=f"Start of the window: {_WINDOW_FORMS}.",
)
@click.option(
    "--until",
    default=None,
    metavar="WHEN",
    help=f"End of the window: {_WINDOW_FORMS}.  [default: now]",
)
@click.option(
    "--name",
    "name_glob",
    default=None,
    metavar="GLOB",
    help="Only operations whose name matches GLOB, e.g. 'db.*'.",
)
@click.option(
    "--kind",
    default=None,
    metavar="KIND",
    help="Only operations of KIND (flow, op, db, http, redis, cache, event).",
)
@click.option(
    "--by",
    "split_by",
    default=None,
    metavar="KEY",
    help="Also split percentiles by the values of tag KEY (or of service, instance).",
)
@process_filter_options
@report_options
def report(
    store_url: str,
    since: str,
    until: str | None,
    name_glob: str | None,
    kind: str | None,
    split_by: str | None,
    service: str | None,
    instance: str | None,
    output_format: str,
    output: Path | None,
    top: int,
) -> None:
    """Latency percentiles per operation, the processes seen, and the slowest and the
    most recent failed flows as waterfalls.

    \b
    Examples:
      botpulse report --since 24h
      botpulse report --since 2026-11-23T10:00 --until 2026-11-23T12:00 --name 'db.*'
      botpulse report --service api --instance worker-2
      botpulse report --by cache
      botpulse report --format html --output report.html
    """
    window_since, window_until = parse_window(since, until)
    with _open_for_reading(store_url) as store:
        the_report = build_report(
            store,
            window_since,
            window_until,
            name=name_glob,
            kind=kind,
            service=service,
            instance=instance,
            top=top,
            by=split_by,
        )
    emit_report(the_report, output_format, output)


def _open_for_reading(store_url: str) -> Store:
    """The store at ``store_url``, never created; a failure names the --store value."""
    try:
        return open_store(store_url, create=False)
    except StoreError as exc:
        source = click.get_current_context().get_parameter_source("store_url")
        default = " (the default; pass --store or set BOTPULSE_STORE)"
        given = default if source is click.core.ParameterSource.DEFAULT else ""
        raise CommandLineError(
            f"cannot open --store {redact_url(store_url)!r}{given}: {exc}"
        ) from exc
