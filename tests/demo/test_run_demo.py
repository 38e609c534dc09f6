"""``run_demo()`` end to end: a 3-second run read back through the store and the report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from itertools import pairwise
from pathlib import Path

import pytest

import botpulse
from botpulse import _diagnostics
from botpulse.analysis import FlowTrace, OperationStats, Report, build_report
from botpulse.demo import DemoSummary, run_demo
from botpulse.store import SeriesFilter, open_store

COMMANDS = {"/ping", "/profile", "/leaderboard", "/stats", "/trade", "/weather"}
SECONDS = 3.0


@dataclass
class DemoRun:
    """One recorded demo run and what was observed while it ran."""

    url: str
    summary: DemoSummary
    elapsed: float
    database_dir: Path
    progress: list[float] = field(default_factory=list)
    databases_seen: list[list[str]] = field(default_factory=list)
    internal_errors: int = 0

    def report(self, name: str | None = None, top: int = 5) -> Report:
        with open_store(self.url, create=False) as store:
            return build_report(
                store, self.summary.started_at, self.summary.finished_at, name=name, top=top
            )

    def flows(self) -> dict[str, OperationStats]:
        return {op.name: op for op in self.report().operations if op.kind == "flow"}

    def operations(self) -> dict[str, OperationStats]:
        return {op.name: op for op in self.report().operations}

    def slowest(self, name: str) -> FlowTrace:
        traces = self.report(name=name, top=1).slowest_flows
        assert traces, f"no trace sample of {name}"
        return traces[0]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """Run the demo once for the whole module (it takes ``SECONDS``)."""
    root = tmp_path_factory.mktemp("demo")
    database_dir = root / "tmp"
    database_dir.mkdir()
    url = f"sqlite:///{root / 'botpulse.db'}"
    progress: list[float] = []
    seen: list[list[str]] = []

    def on_progress(fraction: float) -> None:
        progress.append(fraction)
        seen.append(sorted(str(p.relative_to(database_dir)) for p in database_dir.rglob("*.db")))

    errors_before = _diagnostics.internal_error_count()
    started = time.monotonic()
    summary = run_demo(
        url, seconds=SECONDS, seed=1, on_progress=on_progress, database_dir=database_dir
    )
    elapsed = time.monotonic() - started
    run = DemoRun(url, summary, elapsed, database_dir, progress, seen)
    run.internal_errors = _diagnostics.internal_error_count() - errors_before
    return run


def test_the_run_takes_the_time_asked_for_and_leaves_botpulse_stopped(demo_run: DemoRun) -> None:
    summary = demo_run.summary
    # Upper bounds leave slack for a loaded machine (setup, the final flush, cleanup);
    # a run that ignored its length would take twice as long or more.
    assert SECONDS <= demo_run.elapsed < 2 * SECONDS + 2.0
    assert summary.started_at.tzinfo is timezone.utc
    assert summary.finished_at.tzinfo is timezone.utc
    window = summary.finished_at - summary.started_at
    assert timedelta(seconds=SECONDS) <= window < timedelta(seconds=2 * SECONDS)
    assert summary.store == demo_run.url
    assert botpulse.stats() is None, "run_demo() must shut botpulse down"
    assert demo_run.internal_errors == 0


def test_every_command_appears_as_a_flow(demo_run: DemoRun) -> None:
    flows = demo_run.flows()
    assert set(flows) == COMMANDS
    assert all(op.count > 0 for op in flows.values())


def test_flow_counts_equal_the_summary(demo_run: DemoRun) -> None:
    flows = demo_run.flows()
    assert sum(op.count for op in flows.values()) == demo_run.summary.commands
    assert sum(op.errors for op in flows.values()) == demo_run.summary.errors
    assert sum(op.cancelled for op in flows.values()) == 0
    # Several users in 3 s: far more commands than one user could send one by one.
    assert demo_run.summary.commands > 50


def test_leaderboard_is_the_slowest_command(demo_run: DemoRun) -> None:
    flows = demo_run.flows()
    leaderboard = flows.pop("/leaderboard")
    assert leaderboard.p95_ms > max(op.p95_ms for op in flows.values())


def test_the_leaderboard_query_dominates_the_slowest_leaderboard(demo_run: DemoRun) -> None:
    trace = demo_run.slowest("/leaderboard")
    assert trace.status == "ok"
    longest = max(trace.children, key=lambda c: c["duration_ms"])
    assert longest["name"] == "db.leaderboard_scores"
    assert longest["kind"] == "db"
    assert longest["duration_ms"] > 0.5 * trace.duration_ms
    checkpoints = dict(trace.checkpoints)
    phases = [name for name, _at in trace.checkpoints]
    assert phases == ["guard_checks", "scores_loaded", "rendered"]
    # The query runs between the guard checks and the scores_loaded checkpoint.
    assert checkpoints["guard_checks"] <= longest["start_ms"]
    assert longest["start_ms"] + longest["duration_ms"] <= checkpoints["scores_loaded"] + 1e-3


def test_the_leaderboard_step_is_the_slowest_operation_inside_any_flow(demo_run: DemoRun) -> None:
    steps = {name: op for name, op in demo_run.operations().items() if op.kind != "flow"}
    slowest_step = max(steps.values(), key=lambda op: op.p95_ms)
    assert slowest_step.name == "db.leaderboard_scores"
    assert steps["db.leaderboard_scores"].count == demo_run.flows()["/leaderboard"].count


def test_only_trade_fails_and_with_the_bots_own_exception(demo_run: DemoRun) -> None:
    flows = demo_run.flows()
    assert flows["/trade"].errors > 0
    assert flows["/trade"].errors < flows["/trade"].count
    assert {name for name, op in flows.items() if op.errors} == {"/trade"}
    with open_store(demo_run.url, create=False) as store:
        since = demo_run.summary.started_at.timestamp()
        until = demo_run.summary.finished_at.timestamp()
        traces = store.read_traces(since, until, SeriesFilter(name="/trade"), limit=1000)
    failed = [t for t in traces if t.status == "error"]
    assert failed
    assert {t.error for t in failed} == {"TradeRejected"}
    # The step that raised is marked too; the write after it never ran.
    names = {c.name: c for c in failed[0].children}
    assert names["trade.check_offer"].status == "error"
    assert "db.trade_write" not in names


def test_stats_shows_one_query_per_match(demo_run: DemoRun) -> None:
    trace = demo_run.slowest("/stats")
    names = [c["name"] for c in trace.children]
    assert names[0] == "db.recent_matches"
    assert names[1:] == ["db.match_score"] * (len(names) - 1)
    assert len(names) - 1 >= 8
    # One after the other: each query starts after the previous one ended.
    for before, after in pairwise(trace.children[1:]):
        assert after["start_ms"] >= before["start_ms"] + before["duration_ms"] - 1e-3


def test_profile_is_served_from_the_cache_or_the_database(demo_run: DemoRun) -> None:
    ops = demo_run.operations()
    profiles = ops["/profile"].count
    assert ops["cache.profile"].count == profiles
    # Both modes happen: some lookups miss and load from the database, most hit.
    assert 0 < ops["db.profile_load"].count < profiles
    assert ops["db.profile_load"].p50_ms > 10 * ops["cache.profile"].p50_ms


def test_progress_increases_to_one(demo_run: DemoRun) -> None:
    progress = demo_run.progress
    assert len(progress) >= 2 * SECONDS  # "a few times a second"
    assert all(a < b for a, b in pairwise(progress))
    assert progress[-1] == 1.0
    assert 0 <= progress[0] < 0.5


def test_the_game_database_exists_during_the_run_and_is_removed_after(demo_run: DemoRun) -> None:
    during = demo_run.databases_seen[len(demo_run.databases_seen) // 2]
    assert len(during) == 1
    assert during[0].startswith("botpulse-demo-")
    assert during[0].endswith("game.db")
    assert list(demo_run.database_dir.iterdir()) == []
