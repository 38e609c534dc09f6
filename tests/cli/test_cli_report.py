"""``botpulse report``: real numbers from a real SQLite store, in every output format."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from botpulse import __version__

from .known_data import IMG_NAME, SCRIPT_NAME, KnownStore, true_quantile

Invoke = Callable[..., Result]


def report_json(invoke: Invoke, known: KnownStore, *extra: str) -> dict[str, Any]:
    result = invoke("report", *known.window(), "--format", "json", *extra)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def operation(document: dict[str, Any], name: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [op for op in document["operations"] if op["name"] == name]
    assert len(matches) == 1, [op["name"] for op in document["operations"]]
    return matches[0]


# -- json ------------------------------------------------------------------------


def test_json_counts_and_error_rates(invoke: Invoke, known_store: KnownStore) -> None:
    document = report_json(invoke, known_store)
    assert document["schema"] == "botpulse.report/1"
    queue = operation(document, "queue")
    assert queue["kind"] == "flow"
    assert queue["count"] == len(known_store.queue_ms) == 401
    assert queue["errors"] == known_store.queue_errors == 21
    assert queue["error_rate"] == pytest.approx(21 / 401, abs=1e-6)
    assert queue["max_ms"] == pytest.approx(5000.0)
    db = operation(document, "db.get_player")
    assert (db["count"], db["errors"], db["kind"]) == (300, 0, "db")
    assert db["mean_ms"] == pytest.approx(sum(known_store.db_ms) / 300, rel=1e-6)
    # flows first, as the report sorts them
    kinds = [op["kind"] for op in document["operations"]]
    assert kinds == sorted(kinds, key=lambda kind: kind != "flow")


def test_json_percentiles_within_one_percent(invoke: Invoke, known_store: KnownStore) -> None:
    document = report_json(invoke, known_store)
    for name, values in (("queue", known_store.queue_ms), ("db.get_player", known_store.db_ms)):
        op = operation(document, name)
        for q, key in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            expected = true_quantile(values, q)
            assert op[key] == pytest.approx(expected, rel=0.01), (name, key)
    assert operation(document, "queue")["p95_ms"] == pytest.approx(190.5, rel=0.01)


def test_json_slowest_flow_and_its_children(invoke: Invoke, known_store: KnownStore) -> None:
    flows = report_json(invoke, known_store)["slowest_flows"]
    assert len(flows) == 5
    slowest = flows[0]
    assert (slowest["name"], slowest["duration_ms"], slowest["status"]) == ("queue", 5000, "error")
    assert slowest["error"] == "TimeoutError: matchmaker did not answer"
    assert [c["name"] for c in slowest["checkpoints"]] == ["guard_checks", "matchmaking"]
    children = {c["name"]: c for c in slowest["children"]}
    assert list(children) == ["db.get_player", "http.matchmaker", "db.lock", "redis.set"]
    assert children["http.matchmaker"]["duration_ms"] == 4700
    assert (children["db.lock"]["depth"], children["db.lock"]["status"]) == (2, "error")
    assert flows[1]["name"] == SCRIPT_NAME
    durations = [f["duration_ms"] for f in flows]
    assert durations == sorted(durations, reverse=True)


def test_json_counts_dropped_events(invoke: Invoke, known_store: KnownStore) -> None:
    document = report_json(invoke, known_store)
    assert document["dropped_events"] == 10
    assert document["dropped_by_reason"] == known_store.drops


def test_name_and_kind_filters(invoke: Invoke, known_store: KnownStore) -> None:
    by_name = report_json(invoke, known_store, "--name", "db.*")
    assert [op["name"] for op in by_name["operations"]] == ["db.get_player"]
    assert by_name["filters"] == {"name": "db.*", "kind": None, "service": None, "instance": None}
    by_kind = report_json(invoke, known_store, "--kind", "flow")
    assert {op["name"] for op in by_kind["operations"]} == {"queue", SCRIPT_NAME}


@pytest.mark.parametrize(("top", "expected"), [("0", 0), ("1", 1), ("3", 3)])
def test_top_sets_how_many_flows(
    invoke: Invoke, known_store: KnownStore, top: str, expected: int
) -> None:
    assert len(report_json(invoke, known_store, "--top", top)["slowest_flows"]) == expected


def test_default_store_comes_from_the_environment(
    invoke: Invoke, known_store: KnownStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTPULSE_STORE", known_store.url)
    result = invoke("report", "--since", known_store.since, "--until", known_store.until)
    assert result.exit_code == 0, result.stderr
    assert "queue" in result.stdout
    assert str(known_store.path) in result.stdout


def test_default_window_is_the_last_hour(invoke: Invoke, known_store: KnownStore) -> None:
    result = invoke("report", "--store", known_store.url, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["operations"] == []  # the data is three hours old


# -- table -----------------------------------------------------------------------


def blocks(line: str) -> int:
    return line.count("█")


def test_table_shows_header_operations_and_waterfall(
    invoke: Invoke, known_store: KnownStore
) -> None:
    result = invoke("report", *known_store.window(), "--top", "2")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert str(known_store.path) in out
    assert "10 events dropped (buffer_full: 7, store_unavailable: 3)" in out
    queue_row = next(line for line in out.splitlines() if line.strip().startswith("queue "))
    assert re.search(r"\b401\b.*\b21\b.*5\.2%", queue_row), queue_row
    assert "db.get_player" in out
    assert SCRIPT_NAME in out  # shown literally, not interpreted
    assert "TimeoutError: matchmaker did not answer" in out
    lines = out.splitlines()
    matchmaker = next(line for line in lines if "http.matchmaker" in line)
    get_player = next(line for line in lines if "db.get_player" in line and "ms" not in line)
    step = next(line for line in lines if "◆ matchmaking" in line)
    assert blocks(matchmaker) > 20 * max(blocks(get_player), 1)
    # a checkpoint is a marker at its offset, the time since the previous one a note
    assert re.match(r"^\s+4,800\s+◆ matchmaking  \+4,795 ms since guard_checks", step), step
    assert step.rstrip().endswith("◆")
    assert step.count("┈") > 20
    assert "OperationalError: locked" in out


def test_table_treats_rich_markup_in_names_as_text(invoke: Invoke, tmp_path: Path) -> None:
    from botpulse.store import Operation, open_store

    url = f"sqlite:///{tmp_path / 'markup.db'}"
    with open_store(url) as store:
        store.write_operations([Operation("[bold]x[/] [/oops", 1_700_000_000 * 10**9, 10**6)])
    result = invoke(
        "report", "--store", url, "--since", "2023-11-14T22:00", "--until", "2023-11-15"
    )
    assert result.exit_code == 0, result.stderr
    assert "[bold]x[/] [/oops" in result.stdout


def test_empty_window_says_so_in_one_line(invoke: Invoke, known_store: KnownStore) -> None:
    result = invoke("report", "--store", known_store.url, "--since", "15m")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("No operations recorded in ")
    assert str(known_store.path) in lines[0]
    assert "(15m)" in lines[0]
    assert "--since 1h" in lines[0]


# -- markdown --------------------------------------------------------------------


def test_markdown_has_the_same_content(invoke: Invoke, known_store: KnownStore) -> None:
    result = invoke("report", *known_store.window(), "--format", "markdown", "--top", "2")
    assert result.exit_code == 0, result.stderr
    md = result.stdout
    assert md.startswith("# botpulse report\n")
    assert "> ⚠️ **10 events dropped (buffer\\_full: 7, store\\_unavailable: 3)" in md
    assert "| name | kind | count | errors | error % | /min | mean | p50 | p95 | p99 | max |" in md
    assert "| **queue** | flow | 401 | **21** | **5.2%** |" in md
    assert "| db.get\\_player | db | 300 | 0 | 0% |" in md
    assert "\\<script\\>alert(1)\\</script\\>" in md
    assert SCRIPT_NAME not in md
    assert "### 1. queue — 5,000 ms (**error**)" in md
    waterfall_row = next(line for line in md.splitlines() if "http.matchmaker" in line)
    assert waterfall_row.startswith("| 10.0 | 4,700 | http.matchmaker | http | `")
    assert "db.lock — **error**: OperationalError: locked" in md
    # every table row has the same number of cells as its header
    for line in md.splitlines():
        if line.startswith("| offset ms"):
            assert line.count(" | ") == 4


# -- html ------------------------------------------------------------------------


class Tags(HTMLParser):
    """Collects the element and attribute names of a page, as a browser would parse it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attributes.update(name for name, _value in attrs)


def test_html_is_self_contained_and_escaped(invoke: Invoke, known_store: KnownStore) -> None:
    result = invoke("report", *known_store.window(), "--format", "html")
    assert result.exit_code == 0, result.stderr
    page = result.stdout
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert "<script" not in page.lower()
    assert SCRIPT_NAME not in page
    assert IMG_NAME not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert not re.search(r"https?://", page)
    assert "@import" not in page
    assert "url(" not in page
    tags = Tags()
    tags.feed(page)
    assert "script" not in tags.names
    assert "img" not in tags.names
    assert {"style", "table", "main"} <= tags.names
    assert not [attr for attr in tags.attributes if attr in {"src", "href", "action"}]
    assert not [attr for attr in tags.attributes if attr.startswith("on")]


def test_html_draws_waterfall_bars_to_scale(invoke: Invoke, known_store: KnownStore) -> None:
    result = invoke("report", *known_store.window(), "--format", "html", "--top", "1")
    page = result.stdout
    row = next(line for line in page.splitlines() if "http.matchmaker (http)" in line)
    assert 'style="left:0.200%;width:94.000%"' in row  # 10 ms in, 4,700 of 5,000 ms
    failed = next(line for line in page.splitlines() if "db.lock (db)" in line)
    assert 'class="kind-db failed"' in failed
    assert "10 events dropped" in page
    assert '<td class="num bad">21</td>' in page


# -- output file -----------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["table", "markdown", "json", "html"])
def test_output_writes_the_file_not_stdout(
    invoke: Invoke, known_store: KnownStore, tmp_path: Path, output_format: str
) -> None:
    target = tmp_path / f"report.{output_format}"
    result = invoke(
        "report", *known_store.window(), "--format", output_format, "--output", str(target)
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    text = target.read_text(encoding="utf-8")
    assert "queue" in text
    assert "\x1b[" not in text  # no terminal colours in files
    assert str(target) in result.stderr


# -- the group -------------------------------------------------------------------


def test_version_and_help(invoke: Invoke) -> None:
    version = invoke("--version")
    assert version.exit_code == 0
    assert version.stdout.strip() == f"botpulse, version {__version__}"
    bare = invoke()
    assert bare.exit_code == 0
    assert "report" in bare.stdout
    assert "demo" in bare.stdout
    report_help = invoke("report", "--help")
    assert report_help.exit_code == 0
    for option in ("--store", "--since", "--until", "--name", "--kind", "--format", "--output"):
        assert option in report_help.stdout
    assert "--top" in report_help.stdout
