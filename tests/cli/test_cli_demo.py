"""``botpulse demo``: progress, then the report of exactly the demo's window."""

from __future__ import annotations

import io
import json
import math
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from rich.console import Console

from botpulse.cli._progress import DemoProgress
from botpulse.store import Operation, open_store, parse_store_url

Invoke = Callable[..., Result]


@dataclass(frozen=True)
class FakeSummary:
    """The fields of ``botpulse.demo.DemoSummary`` the command relies on."""

    started_at: datetime
    finished_at: datetime
    commands: int
    errors: int
    store: str


@dataclass
class FakeDemo:
    """A stand-in for ``botpulse.demo.run_demo`` that records real operations."""

    calls: list[dict[str, Any]]

    def run_demo(
        self,
        store: str,
        seconds: float = 20.0,
        *,
        users: int = 8,
        seed: int | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> FakeSummary:
        parse_store_url(store)
        self.calls.append({"store": store, "seconds": seconds, "users": users, "seed": seed})
        assert on_progress is not None
        for fraction in (0.0, 0.25, 0.5, 0.99, 1.0):
            on_progress(fraction)
        finished = datetime.now(timezone.utc) - timedelta(minutes=5)
        started = finished - timedelta(seconds=seconds)
        at = int(started.timestamp() * 1e9)
        before = at - 10 * 60 * 10**9  # an earlier run in the same store: not in this report
        ops = [Operation("/ping", at + i * 10**7, (i + 1) * 10**6, kind="flow") for i in range(20)]
        ops.append(Operation("/trade", at, 5 * 10**6, kind="flow", status="error", error="E"))
        ops.append(Operation("/old", before, 10**6, kind="flow"))
        with open_store(store) as writer:
            writer.write_operations(ops, service="demo-bot")
        return FakeSummary(started, finished, commands=21, errors=1, store=store)


@pytest.fixture
def fake_demo(monkeypatch: pytest.MonkeyPatch) -> FakeDemo:
    """``botpulse.demo`` replaced by :class:`FakeDemo` for the command's lazy import."""
    fake = FakeDemo(calls=[])
    module = types.ModuleType("botpulse.demo")
    module.run_demo = fake.run_demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "botpulse.demo", module)
    return fake


def test_demo_reports_exactly_its_own_window(
    invoke: Invoke, fake_demo: FakeDemo, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = invoke(
        "demo", "--seconds", "3", "--store", url, "--users", "4", "--seed", "7", "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    assert fake_demo.calls == [{"store": url, "seconds": 3.0, "users": 4, "seed": 7}]
    document = json.loads(result.stdout)
    counts = {op["name"]: (op["count"], op["errors"]) for op in document["operations"]}
    assert counts == {"/ping": (20, 0), "/trade": (1, 1)}
    assert document["slowest_flows"][0]["name"] == "/ping"
    assert document["slowest_flows"][0]["duration_ms"] == 20
    assert result.stderr.splitlines() == [
        f"Simulated 4 users for 3 s: 21 commands, 1 errors, recorded in {url}"
    ]  # and no progress bar: stderr is not a terminal


def test_demo_defaults_and_table(
    invoke: Invoke, fake_demo: FakeDemo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("demo")
    assert result.exit_code == 0, result.stderr
    assert fake_demo.calls == [
        {"store": "sqlite:///botpulse-demo.db", "seconds": 20.0, "users": 8, "seed": None}
    ]
    assert (tmp_path / "botpulse-demo.db").exists()
    assert "/ping" in result.stdout
    assert "/old" not in result.stdout
    assert "█" in result.stdout  # the waterfall of the slowest flow


def test_demo_writes_html_output(invoke: Invoke, fake_demo: FakeDemo, tmp_path: Path) -> None:
    target = tmp_path / "demo.html"
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = invoke("demo", "--store", url, "--format", "html", "--output", str(target))
    assert result.exit_code == 0, result.stderr
    assert "/trade" in target.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--store", "mysql://u:secret-canary@h/db"], "'mysql'"),
        (["--seconds", "0"], "'--seconds'"),
        (["--seconds", "soon"], "'--seconds'"),
        (["--users", "0"], "'--users'"),
        (["--users", "5000"], "'--users'"),
        (["--format", "yaml"], "'yaml'"),
    ],
)
def test_demo_bad_input_runs_nothing(
    invoke: Invoke, fake_demo: FakeDemo, args: list[str], expected: str
) -> None:
    result = invoke("demo", *args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("botpulse: error: ")
    assert expected in lines[0]
    assert "secret-canary" not in result.output
    assert fake_demo.calls == []


def test_progress_bar_draws_fractions_and_ignores_odd_values() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    with DemoProgress("Simulating 3 users", console) as progress:
        progress.update(0.5)
        assert progress.fraction == 0.5
        for odd in (math.nan, math.inf, "half", None, True):
            progress.update(odd)  # type: ignore[arg-type]
        assert progress.fraction == 0.5
        progress.update(7.0)
        assert progress.fraction == 1.0
        progress.update(-1)
        assert progress.fraction == 0.0
        progress.update(0.42)
    drawn = buffer.getvalue()
    assert "42%" in drawn
    assert "Simulating 3 users" in drawn
    assert "elapsed" in drawn
    assert "remaining" in drawn


def test_real_demo_runs_and_reports(invoke: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'real-demo.db'}"
    result = invoke("demo", "--seconds", "2", "--seed", "1", "--store", url, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    flows = [op for op in document["operations"] if op["kind"] == "flow"]
    assert flows
    assert sum(op["count"] for op in flows) > 0
    assert document["slowest_flows"]
    assert "Simulated 8 users for 2 s" in result.stderr
