"""``botpulse audit``: what to fix first — N+1s, slow queries, missing indexes, caching."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .._config import default_store_url
from ..analysis import parse_window
from ..analysis.audit import Audit, build_audit
from ..store import redact_url
from ._errors import CommandLineError
from .report_command import _open_for_reading

__all__ = ["audit", "render_audit"]

_WINDOW_FORMS = "a duration before now (30s, 15m, 24h, 7d) or an ISO-8601 time"
_LABELS = {
    "n_plus_one": "N+1",
    "slow_query": "slow query",
    "missing_index": "missing index",
    "cache_candidate": "cache it",
}


@click.command()
@click.option(
    "--store",
    "store_url",
    default=default_store_url,
    show_default="$BOTPULSE_STORE, else sqlite:///botpulse.db",
    metavar="URL",
    help="The store to read, e.g. sqlite:///botpulse.db.",
)
@click.option(
    "--since", default="24h", show_default=True, metavar="WHEN", help=f"Start: {_WINDOW_FORMS}."
)
@click.option(
    "--db",
    "db_url",
    default=None,
    metavar="URL",
    help="Your bot's own database, for index advice by plain EXPLAIN (read-only, never a "
    "write): sqlite:///bot.db or postgresql://user@host/db.",
)
@click.option("--service", default=None, metavar="NAME", help="Only findings of this service.")
@click.option(
    "--slow-ms",
    type=click.FloatRange(0),
    default=100.0,
    show_default=True,
    help="A statement whose p95 is above this is slow.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(("table", "markdown", "json"), case_sensitive=False),
    default="table",
    show_default=True,
    help="table for a terminal, markdown for issues and chats, json for machines.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the audit to FILE instead of standard output.",
)
def audit(
    store_url: str,
    since: str,
    db_url: str | None,
    service: str | None,
    slow_ms: float,
    output_format: str,
    output: Path | None,
) -> None:
    """N+1 queries, slow queries, missing indexes and caching candidates, ranked by the
    time fixing them would save.

    \b
    Examples:
      botpulse audit --since 24h
      botpulse audit --db sqlite:///bot.db
      botpulse audit --db postgresql://bot@localhost/bot --format markdown
    """
    window_since, window_until = parse_window(since, None)
    with _open_for_reading(store_url) as store:
        result = build_audit(
            store, window_since, window_until, service=service, db_url=db_url, slow_ms=slow_ms
        )
    text = render_audit(result, output_format.lower())
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandLineError(
            f"cannot write --output {str(output)!r}: {exc.strerror or exc}"
        ) from exc
    click.echo(f"botpulse: wrote the audit to {output}", err=True)


def render_audit(result: Audit, output_format: str) -> str:
    """``result`` as ``table``, ``markdown`` or ``json`` text."""
    if output_format == "json":
        return json.dumps(result.to_json(), indent=2)
    if output_format == "markdown":
        return _markdown(result)
    return _table(result)


def _ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


def _table(result: Audit) -> str:
    lines: list[str] = []
    if not result.items:
        lines.append("No findings in this window: no N+1, slow query or caching candidate.")
    for rank, item in enumerate(result.items, 1):
        where = f" in '{item.flow}'" if item.flow else ""
        lines.append(
            f"{rank}. {_LABELS.get(item.type, item.type)}{where}: saves ~{_ms(item.saved_ms)} "
            f"({item.count}×, {_ms(item.total_ms)} in total)"
        )
        lines.append(f"   {item.fingerprint}")
        if item.source:
            lines.append(f"   at {item.source}")
        lines.append(f"   → {item.advice}")
        if item.statement:
            lines.append(f"     {item.statement}")
        lines.append("")
    lines.extend(f"note: {redact_url(note)}" for note in result.notes)
    return "\n".join(lines).rstrip() + "\n"


def _markdown(result: Audit) -> str:
    lines = ["# botpulse audit", ""]
    if not result.items:
        lines.append("No findings in this window.")
    for rank, item in enumerate(result.items, 1):
        where = f" in `{item.flow}`" if item.flow else ""
        lines.append(
            f"{rank}. **{_LABELS.get(item.type, item.type)}**{where} — saves "
            f"~{_ms(item.saved_ms)} ({item.count}×, {_ms(item.total_ms)} in total)"
        )
        lines.append(f"   - `{item.fingerprint}`")
        if item.source:
            lines.append(f"   - at `{item.source}`")
        lines.append(f"   - {item.advice}")
        if item.statement:
            lines.append(f"   - `{item.statement}`")
    if result.notes:
        lines.append("")
        lines.extend(f"> {redact_url(note)}" for note in result.notes)
    return "\n".join(lines) + "\n"
