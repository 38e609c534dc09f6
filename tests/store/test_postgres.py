"""The PostgreSQL store against a real server: many processes, restarts, the CLI, secrets.

The store contract suite (test_contract.py) runs against PostgreSQL too; these tests
cover what only a server shows: several processes writing the same buckets at once,
the server restarting under a running bot, migrations racing, fork() and the driver
instrumentation leaving botpulse's own traffic alone.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from tests.servers import server_url
from tests.store.pg import fresh_schema

import botpulse
from botpulse._model import MINUTE, Batch, Finding, Operation
from botpulse.cli import main
from botpulse.errors import ConfigurationError, StoreError, StoreUnavailable
from botpulse.store import DropCount, SeriesFilter, Store, open_store
from botpulse.store._pg_schema import SCHEMA_VERSION
from botpulse.store.postgres import PostgresStore
from botpulse.testing import capture

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "tests" / "reliability" / "_recorder.py"
SERVICE = ROOT / "scripts" / "services" / "postgres.sh"
DAY0 = 1_700_006_400
NS, MS = 10**9, 10**6


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_schema() as schema_url:
        yield schema_url


def total(store_url: str, **filt: str) -> dict[tuple[str, str, str, str], int]:
    """``(instance, name, kind, status) -> count`` over the last and next hours."""
    with open_store(store_url, create=False) as store:
        now = int(time.time())
        out: dict[tuple[str, str, str, str], int] = {}
        for r in store.read_rollups(MINUTE, now - 3600, now + 3600, SeriesFilter(**filt)):
            k = (r.key.instance, r.key.name, r.key.kind, r.key.status)
            out[k] = out.get(k, 0) + r.count
        return out


def test_processes_write_concurrently_and_the_report_merges_them(url: str) -> None:
    per_process, processes = 6_000, 4
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, str(RECORDER), "count", url, f"proc-{i}", str(per_process)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(processes)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert (result["recorded"], result["written"], result["dropped"]) == (
            per_process,
            per_process,
            {},
        ), result
    by_instance = total(url)
    for i in range(processes):
        mine = {k[1:]: n for k, n in by_instance.items() if k[0] == f"proc-{i}"}
        assert mine == {
            ("cmd", "flow", "ok"): per_process // 2,
            ("db.query", "db", "ok"): per_process // 2,
        }
    # Every process wrote the same hour and day buckets of the same series names:
    # merged (not overwritten) rows, sketches included.
    with open_store(url, create=False) as store:
        now = time.time()
        summary = store.summarize(now - 3600, now + 60, now=now)
        cmd = summary.rollups[("multi", "cmd", "flow", "ok")]
        assert cmd.count == cmd.sketch.count == processes * per_process // 2

    result = CliRunner().invoke(
        main, ["report", "--store", url, "--format", "json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    flows = {(o["name"], o["kind"]): o["count"] for o in report["operations"]}
    assert flows == {
        ("cmd", "flow"): processes * per_process // 2,
        ("db.query", "db"): processes * per_process // 2,
    }
    assert sorted((i["instance"], i["count"]) for i in report["instances"]) == [
        (f"proc-{i}", per_process) for i in range(processes)
    ]
    assert report["dropped_events"] == 0
    assert report["slowest_flows"], "trace samples are read back"


def test_the_cli_reads_a_postgres_store_and_masks_its_password(url: str) -> None:
    with open_store(url) as store:
        store.write_operations(
            [Operation("leaderboard", int(time.time() * NS) - 5 * NS, 42 * MS, kind="flow")],
            service="bot",
            instance="a",
        )
    secret_url = url.replace("postgres@", "postgres:hunter2-canary@", 1)
    result = CliRunner().invoke(main, ["report", "--store", secret_url], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "leaderboard" in result.stdout
    assert "hunter2-canary" not in result.stdout + result.stderr
    assert "postgres:***@" in result.stdout

    # botpulse audit reads the findings the detectors stored there.
    now_ns = time.time_ns()
    finding = Finding(
        type="n_plus_one",
        subject="SELECT score FROM matches WHERE id = ?",
        flow="stats",
        service="bot",
        instance="a",
        count=3,
        total_ns=90 * MS,
        max_ns=40 * MS,
        first_seen_ns=now_ns - 10 * NS,
        last_seen_ns=now_ns - 5 * NS,
        source="bot.py:12",
        details={"per_flow": 12},
    )
    with open_store(url) as store:
        store.write(Batch(findings=[finding]))
    audit = CliRunner().invoke(
        main, ["audit", "--store", secret_url, "--format", "json"], catch_exceptions=False
    )
    assert audit.exit_code == 0, audit.output
    (found,) = json.loads(audit.stdout)["findings"]
    assert (found["type"], found["flow"], found["count"], found["source"]) == (
        "n_plus_one",
        "stats",
        3,
        "bot.py:12",
    )
    assert "hunter2-canary" not in audit.stdout + audit.stderr


def test_missing_tables_unreachable_server_and_secrets_fail_cleanly(url: str) -> None:
    with pytest.raises(StoreError, match="no botpulse tables"):
        open_store(url, create=False)
    port = _free_port()
    bad = f"postgresql://bot:hunter2-canary@127.0.0.1:{port}/x"
    with pytest.raises(StoreUnavailable) as info:
        open_store(bad)
    assert "hunter2" not in str(info.value)
    assert "bot:***@127.0.0.1" in str(info.value)
    assert "\n" not in str(info.value)
    # init() with check_store refuses it; without, it starts and keeps retrying.
    with pytest.raises(ConfigurationError, match="not usable"):
        botpulse.init(store=bad, check_store=True)
    store = open_store(bad, connect=False)
    assert store.describe() == f"postgresql://bot:***@127.0.0.1:{port}/x"
    assert "hunter2" not in repr(store)
    with pytest.raises(StoreUnavailable):
        store.write(_batch())
    store.close()


def test_a_missing_database_is_an_error_not_an_outage() -> None:
    base = server_url("BOTPULSE_TEST_POSTGRES_URL", "PostgreSQL")
    missing = base.rsplit("/", 1)[0] + "/botpulse_no_such_db"
    with pytest.raises(StoreError) as info:
        open_store(missing)
    assert not isinstance(info.value, StoreUnavailable)
    assert "does not exist" in str(info.value)


def test_processes_starting_together_migrate_once(url: str) -> None:
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            PostgresStore(url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM botpulse_schema").fetchall() == [(SCHEMA_VERSION,)]


def test_concurrent_writers_of_the_same_rows_lose_nothing_and_never_deadlock(url: str) -> None:
    # Threads, each with its own store (its own connection), write the same series and
    # buckets, in different orders: row locks serialise the sketch merges, no update is
    # lost, and no deadlock happens (a retried one would hide in the counts).
    writers, batches, names = 6, 15, 4
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def deadlocks() -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
            return int(row[0]) if row else 0

    def write(n: int) -> None:
        store = PostgresStore(url)
        barrier.wait()
        try:
            for i in range(batches):
                ops = [
                    Operation(f"cmd{(j + n) % names}", (DAY0 + i * 61) * NS, (i + 1) * MS)
                    for j in range(names)
                ]
                store.write_operations(ops, service="bot", instance="same")
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    before = deadlocks()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with open_store(url, create=False) as store:
        day = store.summarize(DAY0, DAY0 + 86_400, now=DAY0 + 86_400)
        for j in range(names):
            rollup = day.rollups[("bot", f"cmd{j}", "op", "ok")]
            assert rollup.count == rollup.sketch.count == writers * batches
            assert rollup.sum_ns == writers * sum(range(1, batches + 1)) * MS
    time.sleep(0.5)  # closed backends have reported their statistics
    assert deadlocks() == before


def test_botpulse_does_not_record_its_own_store_traffic(url: str) -> None:
    botpulse.instrument("psycopg")
    try:
        with capture() as cap:
            store = PostgresStore(url)
            store.write(_batch())
            assert store.series()
            store.close()
            # The bot's own connection is recorded: instrumentation is really on.
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT 1")
            names = [k.name for k in cap.names() if k.kind == "db"]
            assert len(names) == 1, names
            assert cap.count("*", kind="db") == 1
    finally:
        botpulse.uninstrument()  # everything: detectors and SQL normalizer too


@pytest.mark.forks
def test_a_forked_child_gets_its_own_connection(url: str) -> None:
    store = PostgresStore(url)
    store.write(_batch(instance="parent"))
    store.before_fork()  # what botpulse's os.register_at_fork hooks call
    pid = os.fork()
    if pid == 0:  # the child: write through a fresh connection, never the parent's
        code = 1
        try:
            store.after_fork()
            store.write(_batch(instance="child"))
            code = 0
        finally:
            os._exit(code)
    store.after_fork_in_parent()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.write(_batch(instance="parent"))  # the parent's connection still works
    counts = {k.instance for k in store.series()}
    assert counts == {"parent", "child"}
    summary = store.summarize(DAY0, DAY0 + 60, now=DAY0 + 60)
    assert summary.rollups[("bot", "cmd", "flow", "ok")].count == 3
    store.close()


def _batch(instance: str = "a") -> Batch:
    from botpulse._aggregate import Aggregator

    agg = Aggregator("bot", instance)
    agg.add_operations([Operation("cmd", DAY0 * NS, 5 * MS, kind="flow")])
    return agg.batch(None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a server of our own, stopped and restarted under a running bot ---------------------


@pytest.fixture
def own_server() -> Iterator[tuple[str, str]]:
    """A private PostgreSQL (the service script, another port): (url, data dir)."""
    server_url("BOTPULSE_TEST_POSTGRES_URL", "PostgreSQL")  # installed and startable here
    directory = tempfile.mkdtemp(prefix="botpulse-pg-restart-")
    os.chmod(directory, 0o755)
    env = {**os.environ, "BOTPULSE_TEST_POSTGRES_PORT": str(_free_port())}
    try:
        out = _service("start", directory, env)
        (line,) = [x for x in out.splitlines() if x.startswith("BOTPULSE_TEST_POSTGRES_URL=")]
        yield line.split("=", 1)[1], directory
    finally:
        _service("stop", directory, env)
        subprocess.run(["rm", "-rf", directory], check=False)


def _service(action: str, directory: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["bash", str(SERVICE), action, directory],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or {**os.environ},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _record(n: int) -> None:
    for _ in range(n):
        with botpulse.flow("cmd"), botpulse.measure("db.query", kind="db"):
            pass


def _wait_written(expected: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = botpulse.stats()
        if stats is not None and stats.written >= expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"not written in time: {botpulse.stats()}")


def test_nothing_buffered_is_lost_across_a_restart(own_server: tuple[str, str]) -> None:
    url, directory = own_server
    env = {**os.environ, "BOTPULSE_TEST_POSTGRES_PORT": url.rsplit(":", 1)[1].split("/")[0]}
    botpulse.init(store=url, service="r", instance="r1", flush_interval=0.1, check_store=True)
    try:
        _record(500)
        _wait_written(1000)
        # A restart while idle: the writer's connection is dead; the next batch fails on
        # it and is retried once on a fresh connection, so the pipeline never notices.
        _service("restart", directory, env)
        _record(500)
        _wait_written(2000)
        stats = botpulse.stats()
        assert stats is not None
        assert stats.store_failures == 0, stats
        # Down for a while: batches fail, events stay buffered, all of them are written
        # once the server is back.
        _service("stop", directory, env)
        _record(1000)
        deadline = time.monotonic() + 10
        while (stats := botpulse.stats()) is not None and stats.store_failures == 0:
            assert time.monotonic() < deadline, "no write was attempted while down"
            time.sleep(0.05)
        _record(500)
        _service("start", directory, env)
        final = botpulse.shutdown(timeout=30)
    finally:
        botpulse.shutdown(timeout=5)
    assert final is not None
    assert final.dropped == {}, final
    assert final.recorded == final.written == 5000, final
    assert total(url) == {
        ("r1", "cmd", "flow", "ok"): 2500,
        ("r1", "db.query", "db", "ok"): 2500,
    }


def test_a_statement_stuck_on_a_lock_times_out_as_an_outage(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botpulse.store.postgres as pg

    monkeypatch.setattr(pg, "STATEMENT_TIMEOUT_MS", 300)
    store = PostgresStore(url)
    store.write(_batch())
    with psycopg.connect(url) as blocker:  # not autocommit: holds the lock until rollback
        blocker.execute("LOCK TABLE botpulse_rollups IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="cannot write"):
            store.write(_batch())
        # Two attempts (the batch is retried once on a fresh connection), each cut short.
        assert time.monotonic() - started < 5
        blocker.rollback()
    store.write(_batch())
    summary = store.summarize(DAY0, DAY0 + 60, now=DAY0 + 60)
    assert summary.rollups[("bot", "cmd", "flow", "ok")].count == 2
    store.close()


def test_without_psycopg_the_import_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "botpulse.store.postgres")
    with pytest.raises(ImportError, match=r"pip install 'botpulse\[postgres\]'"):
        open_store("postgresql://u:pw@127.0.0.1:1/x")


def test_init_with_the_server_down_starts_and_writes_once_it_is_up(
    own_server: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, directory = own_server
    env = {**os.environ, "BOTPULSE_TEST_POSTGRES_PORT": url.rsplit(":", 1)[1].split("/")[0]}
    _service("stop", directory, env)
    botpulse.init(store=url, service="late", instance="l1", flush_interval=0.1)
    try:
        assert any("not available yet" in r.getMessage() for r in caplog.records)
        _record(100)
        _service("start", directory, env)
        final = botpulse.shutdown(timeout=30)
    finally:
        botpulse.shutdown(timeout=5)
    assert final is not None
    assert final.written == final.recorded == 200, final
    assert total(url) == {("l1", "cmd", "flow", "ok"): 100, ("l1", "db.query", "db", "ok"): 100}


def test_a_newer_schema_is_refused_and_an_up_to_date_one_needs_no_ddl(url: str) -> None:
    PostgresStore(url).close()
    reader_url = url
    with psycopg.connect(url, autocommit=True) as conn:
        role = f"bp_reader_{os.getpid()}"
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        schema = conn.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
        reader_url = url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
        try:
            with open_store(reader_url, create=False) as store:  # SELECT only: no CREATE
                assert store.series() == []
        finally:
            conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}")
            conn.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {role}")
            conn.execute(f"DROP ROLE {role}")
        conn.execute("UPDATE botpulse_schema SET version = version + 1")
    with pytest.raises(StoreError, match="newer than this botpulse"):
        open_store(url)


@pytest.mark.forks
def test_a_bot_that_forks_writes_each_event_once_through_its_own_connection(url: str) -> None:
    botpulse.init(store=url, service="f", instance="parent", flush_interval=0.05)
    try:
        _record(100)
        _wait_written(200)
        time.sleep(0.2)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                _record(50)
                final = botpulse.shutdown(timeout=20)
                code = 0 if final and final.written == final.recorded == 100 else 2
            finally:
                os._exit(code)
        _record(100)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        final = botpulse.shutdown(timeout=20)
    finally:
        botpulse.shutdown(timeout=5)
    assert final is not None
    assert final.written == final.recorded == 400
    assert total(url) == {
        ("parent", "cmd", "flow", "ok"): 200,
        ("parent", "db.query", "db", "ok"): 200,
        (f"parent:{pid}", "cmd", "flow", "ok"): 50,
        (f"parent:{pid}", "db.query", "db", "ok"): 50,
    }


def test_open_ended_and_fractional_windows_read_like_the_memory_store(url: str) -> None:
    from botpulse.store import MemoryStore

    stores = [PostgresStore(url), MemoryStore()]
    ops = [Operation("cmd", int((DAY0 + t) * NS), 5 * MS, kind="flow") for t in (0, 59.5, 61, 3700)]
    for store in stores:
        store.write_operations(ops, service="bot", instance="a")
        store.write(Batch(drops=[DropCount("bot", "a", DAY0 + 60, "buffer_full", 3)]))

    def reads(store: Store, since: float, until: float) -> tuple[object, ...]:
        traces = store.read_traces(since, until, limit=100, order="recent")
        return (
            [t.started_ns for t in traces],
            store.read_drops(since, until),
            [f.type for f in store.read_findings(since, until)],
            sum(r.count for r in store.read_rollups(MINUTE, DAY0, DAY0 + 120, SeriesFilter())),
        )

    inf = float("inf")
    for since, until in ((-inf, inf), (DAY0 + 0.5, DAY0 + 60.5), (DAY0 + 59.5, DAY0 + 61.0)):
        assert reads(stores[0], since, until) == reads(stores[1], since, until), (since, until)
    for store in stores:
        store.close()


def test_activity_reads_equal_the_generic_ones(url: str) -> None:
    from botpulse.store import MemoryStore

    stores = [PostgresStore(url), MemoryStore()]
    ops = [
        Operation("cmd", int((DAY0 + m * 60 + 1) * NS), 5 * MS, kind="flow", status=status)
        for m in (0, 1, 5, 70, 200)
        for status in ("ok", "error")
    ]
    for store in stores:
        store.write_operations(ops, service="bot", instance="a")
        store.write_operations(ops[:3], service="bot", instance="b")
    now = DAY0 + 86_400
    pg, memory = (s.read_activity(DAY0 - 3600, now, now=now) for s in stores)
    assert [(a.instance, a.count, a.errors, a.spans) for a in pg] == [
        (a.instance, a.count, a.errors, a.spans) for a in memory
    ]
    for store in stores:
        store.close()
