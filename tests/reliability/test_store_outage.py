"""Store outages (SQLite locked by another process, database directory deleted) never harm
the bot, are logged once, and lose nothing that was still in memory."""

from __future__ import annotations

import logging
import math
import shutil
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import botpulse
from botpulse.analysis import build_report
from botpulse.store import open_store

from .helpers import NO_RUNTIME, integrity, percentile, stored_counts, warnings_of

pytestmark = pytest.mark.slow

LOCK_SECONDS = 5.0
#: Waits on conditions give up only after this long: generous on a loaded 2-core machine,
#: where a condition that holds is met in well under a second.
PATIENCE = 60.0
#: Turns the bot makes before and during the lock, so the latency comparison has samples
#: however slowly the machine runs the bot.
TURNS_BEFORE = 300
TURNS_DURING = 1000


class Bot:
    """A handler loop in its own thread: one flow with a db child and a checkpoint per turn.

    Keeps how long each turn took (the bot's own latency, botpulse included), how many
    turns it made, and anything that escaped into it.
    """

    def __init__(self, pause: float = 0.001) -> None:
        self.pause = pause
        self.turns = 0
        self.samples: list[tuple[float, float]] = []  # (monotonic end, turn seconds)
        self.escaped: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bot", daemon=True)

    def _run(self) -> None:
        clock = time.perf_counter
        try:
            while not self._stop.is_set():
                t0 = clock()
                with botpulse.flow("cmd.ping", chat="c1") as f:
                    with botpulse.measure("db.query", kind="db"):
                        pass
                    f.checkpoint("replied")
                t1 = clock()
                self.turns += 1
                self.samples.append((time.monotonic(), t1 - t0))
                time.sleep(self.pause)
        except BaseException as exc:  # the test asserts nothing escaped
            self.escaped.append(exc)

    def start(self) -> Bot:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()

    def turn_times(self, since: float, until: float) -> list[float]:
        return [dt for at, dt in list(self.samples) if since <= at < until]


def _wait_for(predicate: object, timeout: float, what: str) -> float:
    """Poll ``predicate`` until true; return when it became true (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _written() -> int:
    stats = botpulse.stats()
    assert stats is not None
    return stats.written


def test_store_locked_by_another_connection_for_5s(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holds BEGIN EXCLUSIVE for 5 s while the bot records steadily.

    The handler's latency does not move, one warning says the store is failing and one
    says it is writable again, retries back off (1 s, 2 s, 4 s: a handful, not one per
    drain), and after the lock every event recorded is in the store, exactly.
    """
    path = tmp_path / "bp.db"
    url = f"sqlite:///{path}"
    caplog.set_level(logging.WARNING, logger="botpulse")
    botpulse.init(store=url, service="locked", instance="bot-1", flush_interval=0.2,
                  **NO_RUNTIME)  # fmt: skip
    bot = Bot().start()
    try:
        _wait_for(lambda: _written() > 0, PATIENCE, "a first write")
        first_write_at = time.monotonic()
        turns = bot.turns
        _wait_for(lambda: bot.turns >= turns + TURNS_BEFORE, PATIENCE, "turns before the lock")
        assert warnings_of(caplog) == []

        locker = sqlite3.connect(path, isolation_level=None, timeout=10)
        locker.execute("BEGIN EXCLUSIVE")
        lock_start = time.monotonic()
        turns = bot.turns
        _wait_for(
            lambda: warnings_of(caplog, containing="cannot write"), PATIENCE, "the outage warning"
        )
        written_before_lock = _written()
        # Hold the lock at least LOCK_SECONDS and until the bot made enough turns under it.
        _wait_for(
            lambda: (
                time.monotonic() - lock_start >= LOCK_SECONDS and bot.turns >= turns + TURNS_DURING
            ),
            PATIENCE,
            "turns during the lock",
        )
        during = botpulse.stats()
        lock_end = time.monotonic()
        assert during is not None
        # Held in memory meanwhile, and every event accounted for.
        assert during.written == written_before_lock
        assert during.pending > 0
        assert during.recorded == during.written + during.pending + during.buffered
        assert warnings_of(caplog, containing="cannot write") == warnings_of(caplog)
        locker.execute("ROLLBACK")
        locker.close()
        # Backoff after ~0.45 s, ~1.7 s, ~4 s of outage: the next retry lands by ~9.4 s.
        recovered = _wait_for(
            lambda: warnings_of(caplog, containing="writable again"), PATIENCE, "recovery"
        )
        time.sleep(0.5)
    finally:
        bot.stop()
    final = botpulse.shutdown(timeout=10)

    assert bot.escaped == []
    assert final is not None
    recorded = 2 * bot.turns
    # Exactly one line when the outage starts and one when it ends, whatever the retries.
    logged = warnings_of(caplog)
    assert len(logged) == 2, logged
    assert "cannot write to store" in logged[0]
    assert "locked" in logged[0]
    assert "writable again" in logged[1]
    # Backoff (1 s, 2 s, 4 s, ... ±20%): a handful of retries for the lock's length, not
    # one per 50 ms drain (which would be ~100 in 5 s).
    locked_for = lock_end - lock_start
    assert 2 <= final.store_failures <= 3 + math.log2(locked_for), (final, locked_for)
    # Recovery came with the first retry after the lock ended: within one backoff delay.
    assert recovered - lock_end < 1.2 * 2 ** (final.store_failures - 1) + 2.0

    # The bot did not feel it: per-turn p99 during the lock is close to before it.
    before = bot.turn_times(first_write_at, lock_start)
    during = bot.turn_times(lock_start, lock_end)
    assert len(before) >= TURNS_BEFORE
    assert len(during) >= TURNS_DURING
    p99_before, p99_during = percentile(before, 0.99), percentile(during, 0.99)
    # A writer blocked on the lock would stall turns for its 250 ms busy wait or longer.
    assert p99_during < 0.02, f"p99 during lock {p99_during * 1e3:.2f} ms"
    assert p99_during < 5 * p99_before + 0.002, (p99_before, p99_during)

    # Nothing lost: counters and the store agree with what the bot recorded, exactly.
    assert final.recorded == recorded
    assert (final.written, final.pending, final.buffered, final.dropped) == (recorded, 0, 0, {})
    counts = stored_counts(url, service="locked")
    assert counts == {
        ("cmd.ping", "flow", "ok"): bot.turns,
        ("db.query", "db", "ok"): bot.turns,
    }
    assert integrity(path) == "ok"


def test_database_directory_removed_while_recording(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``rm -rf`` of the directory holding the database while the bot records.

    What was written before the removal is gone with the file (the user deleted it).
    Everything else (buffered, aggregated but unwritten, and recorded afterwards) lands in
    the database botpulse recreates on its next retry, exactly once.
    """
    data_dir = tmp_path / "data" / "nested"
    path = data_dir / "bp.db"
    url = f"sqlite:///{path}"
    caplog.set_level(logging.WARNING, logger="botpulse")
    botpulse.init(store=url, service="removed", instance="bot-1", flush_interval=0.2)
    bot = Bot().start()
    try:
        _wait_for(lambda: _written() > 0, PATIENCE, "a first write")
        # Remove right after a flush landed, so the removal falls between two writes.
        seen = _written()
        _wait_for(lambda: _written() > seen, PATIENCE, "the next flush")
        turns_at_removal = bot.turns
        shutil.rmtree(tmp_path / "data")
        # Waits for any write still in flight: it went to the removed file.
        at_removal = botpulse.stats()
        assert at_removal is not None
        assert at_removal.recorded == (
            at_removal.written + at_removal.pending + at_removal.buffered + at_removal.dropped_total
        )
        assert not path.exists()
        _wait_for(lambda: warnings_of(caplog, containing="writable again"), PATIENCE, "recovery")
        assert path.exists()
        time.sleep(0.5)
    finally:
        bot.stop()
    final = botpulse.shutdown(timeout=10)

    assert bot.escaped == []
    assert final is not None
    recorded = 2 * bot.turns
    assert final.recorded == recorded
    assert final.recorded == final.written + final.pending + final.buffered + final.dropped_total
    assert (final.pending, final.buffered, final.dropped) == (0, 0, {})

    logged = warnings_of(caplog)
    assert len(logged) == 2, logged
    assert "disappeared" in logged[0]
    assert "writable again" in logged[1]

    # The new file holds everything not written to the removed one, exactly once...
    in_new_file = stored_counts(url, service="removed")
    gone_with_old_file = at_removal.written
    assert sum(in_new_file.values()) == recorded - gone_with_old_file
    assert in_new_file[("cmd.ping", "flow", "ok")] == in_new_file[("db.query", "db", "ok")]
    # ...which includes every event recorded after the removal.
    assert sum(in_new_file.values()) >= 2 * (bot.turns - turns_at_removal)
    assert integrity(path) == "ok"


def test_shutdown_waits_out_a_brief_lock_within_its_timeout(tmp_path: Path) -> None:
    """The store is locked by another connection for 1 s exactly when the bot shuts down
    with ``timeout=5``: shutdown retries within its budget and writes everything, instead
    of giving up after one 250 ms busy wait and losing what was pending."""
    path = tmp_path / "bp.db"
    url = f"sqlite:///{path}"
    # A long flush interval: everything is still pending when shutdown() runs.
    botpulse.init(store=url, service="brief", instance="bot-1", flush_interval=60)
    for _ in range(1000):
        with botpulse.measure("cmd"):
            pass
    locker = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    unlock = threading.Timer(1.0, lambda: (locker.execute("ROLLBACK"), locker.close()))
    unlock.start()
    try:
        started = time.monotonic()
        final = botpulse.shutdown(timeout=5)
        elapsed = time.monotonic() - started
    finally:
        unlock.join()

    assert final is not None
    assert elapsed < 5 + 1.5  # its timeout, plus scheduling slack on a loaded machine
    assert (final.recorded, final.written, final.pending) == (1000, 1000, 0), final
    assert stored_counts(url, service="brief") == {("cmd", "op", "ok"): 1000}


def test_wal_stays_bounded_under_concurrent_readers(tmp_path: Path) -> None:
    """The bot writes every 20 ms while three readers build reports back to back for 6 s.
    The WAL file stays within SQLite's 1000-page auto-checkpoint (4 MiB) plus 2 MiB of
    slack; with a reader pinning an old snapshot the same load grows it ~1.3 MB/s."""
    path = tmp_path / "wal.db"
    url = f"sqlite:///{path}"
    botpulse.init(store=url, service="wal", instance="i", flush_interval=0.02, max_names=5000)
    stop = threading.Event()
    reads = [0, 0, 0]
    failures: list[BaseException] = []

    def bot() -> None:
        i = 0
        while not stop.is_set():
            for _ in range(200):
                with botpulse.measure(f"op{i % 2000}"):
                    pass
                i += 1
            time.sleep(0.001)

    def reader(slot: int) -> None:
        try:
            with open_store(url, create=False) as store:
                while not stop.is_set():
                    now = datetime.now(timezone.utc)
                    build_report(store, now - timedelta(hours=1), now + timedelta(minutes=1))
                    reads[slot] += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=bot)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    wal = Path(f"{path}-wal")
    largest = 0
    try:
        # At least 6 s, and until every reader ran 10 reports alongside the writer.
        started = time.monotonic()
        while time.monotonic() - started < 6 or (
            min(reads) <= 10 and time.monotonic() - started < PATIENCE
        ):
            if wal.exists():
                largest = max(largest, wal.stat().st_size)
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    final = botpulse.shutdown(timeout=10)

    assert failures == []
    assert min(reads) > 10  # the readers really ran alongside
    assert final is not None
    assert final.written > 10_000
    assert final.store_failures == 0  # readers never blocked the writer
    assert largest <= 6 * 2**20, f"WAL reached {largest / 2**20:.1f} MiB"
    assert integrity(path) == "ok"
