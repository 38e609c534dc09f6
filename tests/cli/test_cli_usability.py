"""Issue 7 in the CLI: tables that fit, failures shown, an all-flows line, checkpoint
markers, instances and --service/--instance, every format agreeing with the JSON."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from botpulse.analysis import build_report
from botpulse.cli._format import format_count, format_ms, format_per_minute
from botpulse.cli.output import emit_report
from botpulse.store import Operation, open_store

from .known_data import KnownStore

Invoke = Callable[..., Result]
SQL = (
    "SELECT u.id, u.name, p.points, p.rank FROM users AS u JOIN points AS p ON p.user_id = u.id "
    "WHERE u.guild_id = ? AND p.season = ? ORDER BY p.points DESC LIMIT ?"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# 20 minutes past a whole hour three hours ago: minute rows are kept (2 days).
BASE = datetime.fromtimestamp((int(time.time()) // 3600 - 3) * 3600 + 20 * 60, tz=timezone.utc)
SINCE, UNTIL = BASE - timedelta(minutes=8), BASE + timedelta(minutes=53)  # 61 minutes


def moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def at(seconds: float) -> int:
    return int((BASE.timestamp() + seconds) * 1e9)


@pytest.fixture
def two_services(tmp_path: Path) -> str:
    """An API and a worker; the worker runs a query with a long SQL name; some cancels."""
    url = f"sqlite:///{tmp_path / 'two.db'}"
    with open_store(url) as store:
        store.write_operations(
            [Operation("message", at(i * 1.5), 20_000_000 + i, kind="flow") for i in range(114)]
            + [
                Operation("upload", at(i), 5_000_000, kind="flow", status="cancelled")
                for i in range(3)
            ],
            service="api",
            instance="api-1",
        )
        store.write_operations(
            [Operation(SQL, at(i * 10), 3_000_000, kind="db") for i in range(12)],
            service="worker",
            instance="worker-1",
        )
    return url


def window(url: str) -> list[str]:
    return ["--store", url, "--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]


def report_json(invoke: Invoke, *args: str) -> dict[str, Any]:
    result = invoke("report", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


# -- tables that fit -----------------------------------------------------------------


def test_piped_table_is_complete(invoke: Invoke, two_services: str) -> None:
    """To a pipe with two services and an SQL name: every column, every name whole."""
    out = invoke("report", *window(two_services)).stdout
    header = next(line for line in out.splitlines() if " name " in line and " p95 " in line)
    for column in ("service", "kind", "count", "errors", "cancelled", "error %", "/min",
                   "mean", "p50", "p95", "p99", "max"):  # fmt: skip
        assert re.search(rf"(^|\s){re.escape(column)}(\s|$)", header), column
    row = next(line for line in out.splitlines() if SQL in line)  # the name, whole
    # 12 queries over the 2 minutes in which the worker recorded anything: 6.00/min
    assert re.search(r"\bworker\b.*\bdb\b\s+12\s+0\s+0\s+0%\s+6\.00\s+3\.00", row), row
    assert "…" not in out


def test_piped_table_wraps_names_to_columns(
    invoke: Invoke, two_services: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    out = invoke("report", *window(two_services)).stdout
    header = next(line for line in out.splitlines() if " name " in line and " p95 " in line)
    for column in ("service", "cancelled", "/min", "mean", "p50", "max"):
        assert column in header  # nothing dropped, though 13 columns need 114 cells here:
    assert max(len(line) for line in out.splitlines()) == 114  # 78 of values, 36 of gaps
    assert "…" not in out
    assert SQL not in out  # the name is wrapped over several lines, every word kept
    lines = out.splitlines()
    at_name = header.index("name")
    first = next(i for i, line in enumerate(lines) if line.startswith("worker"))
    pieces = [lines[first][at_name : at_name + 16]]
    for line in lines[first + 1 :]:
        if not line.startswith(" " * at_name) or not line.strip():
            break
        pieces.append(line[at_name:])
    assert " ".join(piece.strip() for piece in pieces) == SQL


@pytest.mark.parametrize("columns", [80, 120])
def test_terminal_table_fits_columns_and_shortens_names_in_the_middle(
    two_services: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    columns: int,
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal, as rich sees it
    monkeypatch.setenv("COLUMNS", str(columns))
    with open_store(two_services, create=False) as store:
        report = build_report(store, SINCE, UNTIL)
    emit_report(report, "table", None)
    out = ANSI.sub("", capsys.readouterr().out)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns
    row = next(line for line in lines if line.lstrip().startswith("worker"))
    name = re.search(r"(SELECT\S* .*?….*?LIMIT \?)", row)
    assert name is not None, row  # both ends of the name kept, the middle cut
    assert re.search(r"\s12\s", row), row  # numbers whole
    assert re.search(r"\s3\.00(\s|$)", row), row
    message = next(line for line in lines if " message " in line)
    assert re.search(r"\b114\b", message)
    assert format_ms(report.operations[0].p95_ms) in message


def test_terminal_hides_columns_only_when_names_cannot_shrink_more(
    two_services: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "70")
    with open_store(two_services, create=False) as store:
        report = build_report(store, SINCE, UNTIL)
    emit_report(report, "table", None)
    out = ANSI.sub("", capsys.readouterr().out)
    assert max(len(line) for line in out.splitlines()) <= 70
    note = " ".join(out.split("hidden to fit 70 columns: ")[1].split()[:6])
    assert note == "mean, p50, errors, cancelled, max, kind"  # the least telling first
    header = next(line for line in out.splitlines() if " name " in line and " p95 " in line)
    assert header.split() == ["service", "name", "count", "error", "%", "/min", "p95", "p99"]


# -- JSON fields and the other formats agreeing ----------------------------------------


def test_rates_and_covered_in_every_format(invoke: Invoke, two_services: str) -> None:
    doc = report_json(invoke, *window(two_services))
    iso = {"since": BASE, "until": BASE + timedelta(minutes=3)}
    assert doc["covered"] == {k: v.isoformat().replace("+00:00", "Z") for k, v in iso.items()}
    assert (doc["window_minutes"], doc["active_minutes"]) == (61.0, 3)
    message = next(op for op in doc["operations"] if op["name"] == "message")
    assert message["throughput_per_min"] == 38.0  # 114 over the 3 minutes with data
    for output_format in ("table", "markdown", "html"):
        text = invoke("report", *window(two_services), "--format", output_format).stdout
        covered = f"{moment(BASE)} → {moment(BASE + timedelta(minutes=3))} UTC (3m)"
        assert covered in text, output_format
        assert "data in 3m of 1h 1m" in text, output_format


def test_every_format_shows_what_the_json_says(invoke: Invoke, known_store: KnownStore) -> None:
    doc = report_json(invoke, *known_store.window())
    rows = [*doc["operations"], doc["all_flows"]]
    texts = {
        f: invoke("report", *known_store.window(), "--format", f).stdout
        for f in ("table", "markdown", "html")
    }
    for output_format, text in texts.items():
        for op in rows:
            values = [format_count(op["count"]), format_per_minute(op["throughput_per_min"])]
            values += [format_ms(op[k]) for k in ("mean_ms", "p50_ms", "p95_ms", "p99_ms")]
            line = next(
                (line for line in text.splitlines() if all(v in line for v in values)), None
            )
            assert line is not None, (output_format, op["name"], values)
        for instance in doc["instances"]:
            assert instance["instance"] in text
        assert "Recent failed flows" in text, output_format
        assert "(all flows)" in text, output_format


def test_all_flows_line(invoke: Invoke, known_store: KnownStore) -> None:
    doc = report_json(invoke, *known_store.window())
    every = doc["all_flows"]
    assert (every["name"], every["kind"], every["count"], every["errors"]) == (
        "(all flows)",
        "flow",
        402,
        21,
    )
    assert every["max_ms"] == 5000.0
    md = invoke("report", *known_store.window(), "--format", "markdown").stdout
    assert "| _(all flows)_ | flow | 402 | **21** | **5.2%** |" in md
    page = invoke("report", *known_store.window(), "--format", "html").stdout
    assert re.search(r'<tr class="all-flows"><td class="name">\(all flows\)</td>', page)


def test_failed_flows_are_shown_by_default(invoke: Invoke, known_store: KnownStore) -> None:
    doc = report_json(invoke, *known_store.window(), "--top", "3")
    failed = doc["failed_flows"]
    assert len(failed) == 3
    assert all(f["status"] == "error" for f in failed)
    starts = [f["started_at"] for f in failed]
    assert starts == sorted(starts, reverse=True)  # most recent first
    assert failed[0]["error"] == "TimeoutError: matchmaker did not answer"  # at +1700 s
    md = invoke("report", *known_store.window(), "--format", "markdown", "--top", "3").stdout
    failures = md.split("## Recent failed flows")[1]
    assert "queue, 5,000 ms, error at" in failures  # drawn above as the slowest
    assert "slowest \\#1 above" in failures or "slowest #1 above" in failures
    assert failures.count("### ") == 2  # the other two drawn here
    assert "ValueError: bad input" in failures


def test_checkpoints_are_markers_in_every_format(invoke: Invoke, known_store: KnownStore) -> None:
    args = (*known_store.window(), "--top", "1")
    doc = report_json(invoke, *args)
    assert doc["slowest_flows"][0]["checkpoints"] == [
        {"name": "guard_checks", "at_ms": 5.0, "since_previous_ms": 5.0},
        {"name": "matchmaking", "at_ms": 4800.0, "since_previous_ms": 4795.0},
    ]
    md = invoke("report", *args, "--format", "markdown").stdout
    row = next(line for line in md.splitlines() if "◆ matchmaking" in line)
    assert row.startswith("| 4,800 |  | ◆ matchmaking _+4,795 ms since guard\\_checks_ |"), row
    assert row.endswith("◆░` |")
    page = invoke("report", *args, "--format", "html").stdout
    row = next(line for line in page.splitlines() if "matchmaking (checkpoint)" in line)
    assert '<div class="mark" style="left:96.000%"' in row
    assert '<div class="lead" style="left:0.100%;width:95.900%">' in row
    assert "+4,795 ms since guard_checks" in row


# -- instances and filters --------------------------------------------------------------


def test_service_and_instance_filters(invoke: Invoke, two_services: str) -> None:
    worker = report_json(invoke, *window(two_services), "--instance", "worker-1")
    assert [op["name"] for op in worker["operations"]] == [SQL]
    assert [i["instance"] for i in worker["instances"]] == ["worker-1"]
    assert worker["filters"] == {"name": None, "kind": None, "service": None,
                                 "instance": "worker-1"}  # fmt: skip
    api = report_json(invoke, *window(two_services), "--service", "api")
    assert {op["name"] for op in api["operations"]} == {"message", "upload"}
    assert api["operations"][0]["cancelled"] == 0
    nobody = invoke("report", *window(two_services), "--instance", "nobody")
    assert "No operations matching instance 'nobody' recorded" in nobody.stdout


def test_instances_table_flags_a_quiet_worker(invoke: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'workers.db'}"
    with open_store(url) as store:
        for instance, minutes in (("worker-1", 30), ("worker-2", 4)):
            store.write_operations(
                [Operation("job", at(m * 60), 1_000_000, kind="flow") for m in range(minutes)],
                service="worker",
                instance=instance,
            )
    out = invoke("report", *window(url)).stdout
    rows = {line.split()[1]: line for line in out.splitlines() if "worker-" in line}
    assert rows["worker-2"].rstrip().endswith("quiet 26m")
    assert "quiet" not in rows["worker-1"]
    shown = "%H:%M" if SINCE.date() == UNTIL.date() else "%m-%d %H:%M"  # no date in one day
    first, last = BASE.strftime(shown), (BASE + timedelta(minutes=4)).strftime(shown)
    assert re.search(rf"worker-2\s+4\s+0\s+{first}\s+{last}\s+4m\s", out), out
    for output_format in ("markdown", "html"):
        text = invoke("report", *window(url), "--format", output_format).stdout
        assert "quiet 26m" in text
    doc = report_json(invoke, *window(url))
    assert [(i["instance"], i["quiet_minutes"]) for i in doc["instances"]] == [
        ("worker-1", 0),
        ("worker-2", 26),
    ]
