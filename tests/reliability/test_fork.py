"""Fork safety: a forked child gets its own buffer, thread and store connection; the
parent's pending events are written once (by the parent), the child's under its own
instance name, and the child can write whatever the parent was doing at fork time."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import botpulse

from .helpers import integrity, stored_by_instance

#: Long enough for the pipeline's first housekeeping write (retention, on its first
#: 50 ms tick) to finish, so these tests fork an idle pipeline; forking in the middle of
#: a write is what ``test_forks_while_the_parent_is_writing...`` is about.
_IDLE = 0.3


# fork() with other threads running can leave a lock held in the child; coverage.py's
# tracer takes its own lock on every traced call, so these tests run in a separate
# pytest pass without coverage (scripts/test).
pytestmark = pytest.mark.forks


def _fork(child: Callable[[], None]) -> int:
    """Fork; the child runs ``child()`` and leaves with ``os._exit`` (never back into pytest).

    The child exits 0 when ``child()`` returned, 1 when it raised (traceback on stderr).
    """
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; that is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            child()
            code = 0
        except BaseException:
            traceback.print_exc()  # shows in the test's captured stderr
        finally:
            os._exit(code)
    return pid


def _wait(pid: int, timeout: float) -> int:
    """The child's exit code; kill it and fail if it hangs (a deadlock after fork)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"forked child {pid} hung for {timeout}s (deadlock after fork?)")


def _record(name: str, turns: int) -> None:
    for _ in range(turns):
        with botpulse.flow(name), botpulse.measure(f"{name}.db", kind="db"):
            pass


def _written() -> int:
    stats = botpulse.stats()
    assert stats is not None
    return stats.written


def _wait_written(n: int, timeout: float) -> None:
    """In a child: wait (through the store's retries) until ``n`` events are written."""
    deadline = time.monotonic() + timeout
    while _written() < n and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = botpulse.stats()
    assert stats is not None
    assert stats.written == n, stats


def test_fork_child_records_its_own_events_nothing_written_twice(tmp_path: Path) -> None:
    path = tmp_path / "fork.db"
    url = f"sqlite:///{path}"
    report = tmp_path / "child.json"
    # A long flush interval: at fork time all the parent's events are still pending in
    # memory, which a child that inherited them would write a second time.
    botpulse.init(store=url, service="forky", flush_interval=30)
    _record("before_fork", 1000)
    time.sleep(_IDLE)

    def child() -> None:
        _record("in_child", 300)
        final = botpulse.shutdown(timeout=10)
        assert final is not None
        report.write_text(
            json.dumps({"pid": os.getpid(), "recorded": final.recorded, "written": final.written})
        )

    pid = _fork(child)
    _record("after_fork", 500)
    assert _wait(pid, 30) == 0
    final = botpulse.shutdown(timeout=10)

    assert final is not None
    assert (final.recorded, final.written) == (3000, 3000)
    child_stats = json.loads(report.read_text())
    assert child_stats == {"pid": pid, "recorded": 600, "written": 600}

    counts = stored_by_instance(url)
    instances = {inst for inst, *_ in counts}
    assert len(instances) == 2
    (parent,) = {i for i in instances if i.endswith(f":{os.getpid()}")}
    (child_instance,) = {i for i in instances if i.endswith(f":{pid}")}  # default host:pid
    assert counts == {
        (parent, "before_fork", "flow", "ok"): 1000,
        (parent, "before_fork.db", "db", "ok"): 1000,
        (parent, "after_fork", "flow", "ok"): 500,
        (parent, "after_fork.db", "db", "ok"): 500,
        (child_instance, "in_child", "flow", "ok"): 300,
        (child_instance, "in_child.db", "db", "ok"): 300,
    }


def test_fork_child_of_an_explicitly_named_instance_gets_its_own_name(tmp_path: Path) -> None:
    """``init(instance="bot-1")`` then fork: parent and child are two processes and must
    not share one instance name (the child's contains its pid)."""
    url = f"sqlite:///{tmp_path / 'named.db'}"
    botpulse.init(store=url, service="forky", instance="bot-1", flush_interval=30)
    _record("parent.cmd", 10)
    time.sleep(_IDLE)

    def child() -> None:
        _record("child.cmd", 20)
        botpulse.shutdown(timeout=10)

    pid = _fork(child)
    assert _wait(pid, 30) == 0
    botpulse.shutdown(timeout=10)

    counts = stored_by_instance(url)
    child_instances = {inst for inst, name, *_ in counts if name.startswith("child")}
    assert len(child_instances) == 1
    (child_instance,) = child_instances
    assert child_instance != "bot-1"
    assert str(pid) in child_instance
    assert counts["bot-1", "parent.cmd", "flow", "ok"] == 10
    assert counts[child_instance, "child.cmd", "flow", "ok"] == 20


@pytest.mark.slow
def test_forks_while_the_parent_is_writing_leave_children_able_to_write(tmp_path: Path) -> None:
    """Fork 8 times while the parent's pipeline writes large batches back to back (so the
    fork usually lands inside a write transaction). Every child must be able to write its
    own events within a few retries once the parent has calmed down, and none may hang."""
    path = tmp_path / "forks.db"
    url = f"sqlite:///{path}"
    botpulse.init(
        store=url, service="forky", instance="parent", flush_interval=0.01, max_names=20_000
    )
    stop = threading.Event()

    def busy_parent() -> None:
        i = 0
        while not stop.is_set():
            for _ in range(500):
                with botpulse.measure(f"parent.op{i % 5000}"):
                    pass
                i += 1
            time.sleep(0.002)

    worker = threading.Thread(target=busy_parent)
    worker.start()
    children = []
    try:
        time.sleep(0.5)

        def child() -> None:
            _record("child.cmd", 50)
            # The parent calms down after the last fork; retries come at ~1, ~3, ~7, ~15 s
            # (under coverage the parent's last big batches take seconds to write).
            _wait_written(100, 25.0)
            final = botpulse.shutdown(timeout=10)
            assert final is not None
            assert final.written == 100

        for _ in range(8):
            children.append(_fork(child))
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(10)
    codes = [_wait(pid, 45) for pid in children]
    final = botpulse.shutdown(timeout=10)
    assert codes == [0] * 8, "children that could not write their events (exit code 1)"

    assert final is not None
    counts = stored_by_instance(url)
    parent = sum(n for (inst, *_), n in counts.items() if inst == "parent")
    assert parent == final.written  # the parent's events once, none of them by a child
    per_child: dict[str, int] = {}
    for (instance, name, _kind, _status), n in counts.items():
        if instance != "parent":
            assert name.startswith("child.cmd")
            per_child[instance] = per_child.get(instance, 0) + n
    assert sorted(inst.rsplit(":", 1)[1] for inst in per_child) == sorted(map(str, children))
    assert all(n == 100 for n in per_child.values()), per_child
    assert integrity(path) == "ok"


@pytest.mark.slow
def test_child_keeps_writing_after_the_parent_exits(tmp_path: Path) -> None:
    """Daemonising after ``init()``: fork, the parent shuts down and leaves at once, the
    child records afterwards. The child's events must reach the store."""
    path = tmp_path / "daemon.db"
    url = f"sqlite:///{path}"
    botpulse.init(store=url, service="daemon", flush_interval=0.05)
    _record("launcher", 100)
    _wait_written(200, 5.0)
    time.sleep(_IDLE)  # nothing pending: the launcher's pipeline is idle at fork time

    def child() -> None:
        time.sleep(0.5)  # the launcher is gone by now
        _record("daemon.cmd", 100)
        _wait_written(200, 6.0)
        botpulse.shutdown(timeout=10)

    pid = _fork(child)
    launcher = botpulse.shutdown(timeout=10)  # the launcher exits right after forking
    assert launcher is not None
    assert launcher.written == 200
    assert _wait(pid, 30) == 0, "the daemon could not write its events"

    counts = stored_by_instance(url)
    (daemon,) = {inst for inst, *_ in counts if inst.endswith(f":{pid}")}
    assert {k[1:]: n for k, n in counts.items() if k[0] == daemon} == {
        ("daemon.cmd", "flow", "ok"): 100,
        ("daemon.cmd.db", "db", "ok"): 100,
    }
    assert integrity(path) == "ok"
