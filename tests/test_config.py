"""init()/shutdown(): validation at the boundary, environment defaults, restarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import botpulse
from botpulse import ConfigurationError
from botpulse.store import MemoryStore, SeriesFilter, open_store


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"store": "mysql://x"}, "unknown store scheme 'mysql'"),
        ({"store": 42}, "store=42 must be a URL"),
        ({"service": ""}, "service='' must be a non-empty string"),
        ({"instance": 5}, "instance=5"),
        ({"flush_interval": 0}, "flush_interval=0 must be a number between 0.01 and 3600"),
        ({"flush_interval": float("nan")}, "flush_interval=nan"),
        ({"flush_interval": "1"}, "flush_interval='1'"),
        ({"buffer_size": 10}, "buffer_size=10 must be an integer"),
        ({"buffer_size": True}, "buffer_size=True"),
        ({"max_names": 2.5}, "max_names=2.5"),
        ({"trace_slowest": -1}, "trace_slowest=-1"),
        ({"retention": {"days": 3}}, "retention="),
        ({"clock": object()}, "clock="),
    ],
)
def test_bad_settings_fail_fast_with_one_line(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    kwargs.setdefault("store", "memory://")
    with pytest.raises(ConfigurationError) as info:
        botpulse.init(**kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert botpulse.stats() is None  # nothing was started


def test_check_store_fails_fast_on_an_unusable_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    url = f"sqlite:///{blocker}/sub/bp.db"  # a directory cannot be created under a file
    with pytest.raises(ConfigurationError, match="not usable"):
        botpulse.init(store=url, check_store=True)
    # Without check_store the bot starts anyway and the pipeline keeps retrying.
    botpulse.init(store=url, flush_interval=0.05)
    with botpulse.measure("kept"):
        pass
    stats = botpulse.shutdown(timeout=1)
    assert stats is not None
    assert stats.recorded == 1
    assert stats.written == 0
    # A shutdown that cannot write says so, in one line, and counts the event as lost.
    assert stats.pending == 0
    assert stats.dropped == {"shutdown": 1}
    lost = [r.getMessage() for r in caplog.records if "shutdown could not write" in r.getMessage()]
    assert len(lost) == 1
    assert "could not write 1 events" in lost[0]


def test_store_url_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("BOTPULSE_STORE", url)
    monkeypatch.setenv("BOTPULSE_SERVICE", "envbot")
    botpulse.init(flush_interval=0.05)
    with botpulse.measure("x"):
        pass
    botpulse.shutdown()
    store = open_store(url, create=False)
    assert [k.service for k in store.series()] == ["envbot"]


def test_disabled_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTPULSE_DISABLED", "1")
    store = MemoryStore()
    botpulse.init(store=store)
    assert botpulse.stats() is None
    with botpulse.measure("x"):
        pass
    assert store.series() == []


def test_init_twice_restarts_with_new_settings() -> None:
    first, second = MemoryStore(), MemoryStore()
    botpulse.init(store=first, service="one")
    with botpulse.measure("a"):
        pass
    botpulse.init(store=second, service="two")
    with botpulse.measure("b"):
        pass
    botpulse.shutdown()
    assert [(k.service, k.name) for k in first.series()] == [("one", "a")]
    assert [(k.service, k.name) for k in second.series()] == [("two", "b")]


def test_default_instance_is_host_and_pid() -> None:
    import os
    import socket

    store = MemoryStore()
    botpulse.init(store=store, service="s")
    with botpulse.measure("a"):
        pass
    botpulse.shutdown()
    assert store.series()[0].instance == f"{socket.gethostname()}:{os.getpid()}"


def test_shutdown_runs_at_exit_and_flushes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'exit.db'}"
    code = (
        "import botpulse\n"
        f"botpulse.init(store={url!r}, service='s', flush_interval=60)\n"
        "for _ in range(7):\n"
        "    with botpulse.measure('at_exit'): pass\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    store = open_store(url, create=False)
    summary = store.summarize(0, 4_000_000_000, SeriesFilter(name="at_exit"))
    assert [r.count for r in summary.rollups.values()] == [7]


def test_shutdown_timeout_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        botpulse.shutdown(timeout=-1)
