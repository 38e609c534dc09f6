"""Bad input: exactly one line ``botpulse: error: ...`` on stderr, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from .known_data import KnownStore

Invoke = Callable[..., Result]
PASSWORD = "hunter2-canary"


def assert_one_line_error(result: Result, *expected: str) -> str:
    """The result failed with exit code 2 and one error line naming ``expected``."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("botpulse: error: "), line
    for text in expected:
        assert text in line, (text, line)
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.output
    return line


def garbage_file(tmp_path: Path) -> str:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database at all\n" * 200)
    return f"sqlite:///{path}"


def truncated_store(tmp_path: Path, known: KnownStore) -> str:
    data = known.path.read_bytes()
    path = tmp_path / "truncated.db"
    path.write_bytes(data[: len(data) // 3])
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--store", "mysql://root:hunter2-canary@db/bot"], ["'mysql'", "sqlite, memory"]),
        (
            ["--store", "postgresql://bob:hunter2-canary@db:5432/bot"],
            ["bob:***@db", "cannot connect"],
        ),
        (["--store", "botpulse.db"], ["has no scheme", "sqlite:///botpulse.db"]),
        (["--since", "5 fortnights"], ["--since '5 fortnights'", "15m"]),
        (["--since", "2026-13-45T10:00"], ["--since '2026-13-45T10:00'", "ISO-8601"]),
        (["--until", "yesterday"], ["--until 'yesterday'", "24h"]),
        (["--since", "1h", "--until", "2h"], ["--since '1h' is not before --until '2h'"]),
        (
            ["--since", "2026-01-02T00:00", "--until", "2026-01-01T00:00"],
            ["'2026-01-02T00:00'", "not before"],
        ),
        (["--top", "-1"], ["'--top'", "-1", "0<=x<=100"]),
        (["--top", "many"], ["'--top'", "'many'"]),
        (["--format", "xml"], ["'--format'", "'xml'", "'table', 'markdown', 'json', 'html'"]),
        (["--colour"], ["--colour"]),
    ],
)
def test_bad_option_values(
    invoke: Invoke, known_store: KnownStore, args: list[str], expected: list[str]
) -> None:
    result = invoke("report", "--store", known_store.url, *args)
    assert_one_line_error(result, *expected)


def test_missing_store_file_is_not_created(invoke: Invoke, tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    result = invoke("report", "--store", f"sqlite:///{missing}")
    assert_one_line_error(result, str(missing), "no such file")
    assert not missing.exists()


def test_missing_default_store_says_how_to_choose_one(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOTPULSE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    result = invoke("report")
    assert_one_line_error(result, "'sqlite:///botpulse.db'", "--store", "BOTPULSE_STORE")
    assert not (tmp_path / "botpulse.db").exists()


def test_password_in_default_store_url_is_masked(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTPULSE_STORE", f"postgresql://bot:{PASSWORD}@db.internal/metrics")
    result = invoke("report")
    assert_one_line_error(result, "bot:***@db.internal")


@pytest.mark.parametrize("make_url", ["garbage", "directory", "truncated"])
def test_unreadable_or_corrupt_store(
    invoke: Invoke, known_store: KnownStore, tmp_path: Path, make_url: str
) -> None:
    if make_url == "garbage":
        url = garbage_file(tmp_path)
    elif make_url == "directory":
        url = f"sqlite:///{tmp_path}"
    else:
        url = truncated_store(tmp_path, known_store)
    result = invoke(
        "report", "--store", url, "--since", known_store.since, "--until", known_store.until
    )
    assert_one_line_error(result, "SQLite store")


def test_unwritable_output(invoke: Invoke, known_store: KnownStore, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "report.html"
    result = invoke("report", *known_store.window(), "--format", "html", "--output", str(target))
    assert_one_line_error(result, "--output", str(target), "No such file or directory")


def test_unknown_command_and_option_of_the_group(invoke: Invoke) -> None:
    assert_one_line_error(invoke("frobnicate"), "'frobnicate'", "botpulse --help")
    assert_one_line_error(invoke("--frobnicate"), "--frobnicate")


# -- as a real process -----------------------------------------------------------


def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"BOTPULSE_STORE", "FORCE_COLOR"}}
    return subprocess.run(
        [sys.executable, "-m", "botpulse", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["report", "--store", "sqlite:///missing.db"], "no such file"),
        (["report", "--store", "redis://u:hunter2-canary@cache:6379/0"], "u:***@cache"),
        (["report", "--since", "ages"], "--since 'ages'"),
        (["report", "--top", "-3"], "'--top'"),
        (["report", "--format", "pdf"], "'pdf'"),
    ],
)
def test_python_dash_m_bad_input(tmp_path: Path, args: list[str], expected: str) -> None:
    proc = run_module(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert PASSWORD not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("botpulse: error: ")
    assert expected in lines[0]
    assert not (tmp_path / "missing.db").exists()


def test_python_dash_m_report(known_store: KnownStore, tmp_path: Path) -> None:
    proc = run_module("report", *known_store.window(), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert '"name": "queue"' in proc.stdout
    assert '"count": 401' in proc.stdout
