"""``kill -9`` of a recording bot mid-write: the SQLite file stays sound and at most one
flush interval (plus a stated scheduling margin) of events is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from botpulse.analysis import build_report
from botpulse.store import SeriesFilter, open_store

from .helpers import integrity, stored_counts

pytestmark = pytest.mark.slow

RECORDER = Path(__file__).with_name("_recorder.py")
FLUSH_INTERVAL = 0.2
#: Scheduling slack on a loaded 2-core machine shared with other test runs: the drain
#: tick, the write itself and the recorder hogging the interpreter lock. Events older
#: than FLUSH_INTERVAL + MARGIN at the kill must be in the store.
MARGIN = 1.0
#: Kill moments after the recorder is ready (each well past FLUSH_INTERVAL + MARGIN), at
#: different phases of the 0.2 s write cycle.
KILL_AFTER = (2.25, 3.07, 3.93)


def _run_and_kill(
    url: str, service: str, after: float, sig: int = signal.SIGKILL
) -> tuple[float, list[tuple[float, int]]]:
    """Start a recorder, SIGKILL it ``after`` seconds after its first report; return the kill
    time (monotonic, comparable across processes on Linux) and its ``(time, recorded)`` lines."""
    lines: list[tuple[float, int]] = []
    first = threading.Event()
    with subprocess.Popen(
        [sys.executable, str(RECORDER), "forever", url, service],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                at, recorded = line.split()
                lines.append((float(at), int(recorded)))
                first.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert first.wait(60), "the recorder never started"
            time.sleep(after)
            killed_at = time.monotonic()
            os.kill(proc.pid, sig)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        reader.join(10)
        assert proc.stderr is not None
        errors = proc.stderr.read()
    assert proc.returncode == -sig, errors
    return killed_at, lines


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_killed_bot_loses_at_most_one_flush_interval_of_counts_and_traces(
    tmp_path: Path, sig: int
) -> None:
    # SIGTERM (what systemd and Docker send) with Python's default handler ends the
    # process without running atexit: no final flush, like kill -9. botpulse replaces
    # no signal handler of the bot's; what it wrote at its last flush is what counts.
    path = tmp_path / "crash.db"
    url = f"sqlite:///{path}"
    total_stored = 0
    wall_offset = time.time() - time.monotonic()
    for i, after in enumerate(KILL_AFTER):
        service = f"crash-{i}"
        killed_at, lines = _run_and_kill(url, service, after, sig)
        recorded_by_kill = lines[-1][1]
        must_be_stored = max(
            (n for at, n in lines if at <= killed_at - FLUSH_INTERVAL - MARGIN), default=0
        )
        assert must_be_stored > 0

        assert integrity(path) == "ok"
        counts = stored_counts(url, service=service)
        stored = sum(counts.values())
        # Loss is bounded by one flush interval (+ margin); nothing was stored twice (the
        # recorder may have finished up to 50 turns after its last line: +100 events).
        assert stored >= must_be_stored, (after, stored, must_be_stored, recorded_by_kill)
        assert stored <= recorded_by_kill + 100
        assert counts["cmd", "flow", "ok"] == counts["db.query", "db", "ok"]
        total_stored += stored
        # Trace samples of the minute the bot died in reached the store too: the
        # flows of the last flushed moment are in a minute that has samples.
        flushed_by = wall_offset + killed_at - FLUSH_INTERVAL - MARGIN
        crash_minute = int(flushed_by) // 60 * 60
        with open_store(url, create=False) as store:
            samples = store.read_traces(
                crash_minute, crash_minute + 60, SeriesFilter(service=service), limit=100
            )
        assert samples, f"no trace sample of the crash minute {crash_minute}"
        assert all(s.children and s.children[0].name == "db.query" for s in samples)

    # The store opens and reports after three crashes; every service is there.
    now = datetime.now(timezone.utc)
    with open_store(url, create=False) as store:
        report = build_report(store, now - timedelta(hours=1), now + timedelta(minutes=1))
        assert {s.service for s in store.series()} == {f"crash-{i}" for i in range(3)}
    assert {op.name for op in report.operations} == {"cmd", "db.query"}
    assert sum(op.count for op in report.operations) == total_stored
