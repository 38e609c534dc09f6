"""Canary: secrets a bot puts into names, attributes, checkpoints, tags, errors and findings
never reach a stored byte, a decoded trace sample, a finding or any report format.

Everything goes through the real pipeline into a real SQLite file; then every byte of
the file and its ``-wal`` is searched, every blob also after inflating it (trace
samples are stored deflated), and the report is rendered in every format.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import botpulse
from botpulse import _capture
from botpulse._findings import report_finding
from botpulse.cli import main
from botpulse.store import SeriesFilter, open_store

# The secret parts: none may appear anywhere. Each is distinctive so a hit is certain.
TG_SECRET = "AAFcanaryTelegramTokenXyz0123456789"
TG_TOKEN = f"987654321:{TG_SECRET}"
DSN_PASSWORD = "canaryDsnPassw0rd"
WEBHOOK_SECRET = "canaryWebhookTok_abcdefghijklmnop0123456789"
BEARER_SECRET = "canaryBearerToken0123456789abcdef"
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GcAnAr.canaryDiscordHmac0123456789abcdef"
BASIC_SECRET = "Y2FuYXJ5OmJhc2ljcGFzc3dvcmQ="
QUERY_SECRET = "canaryQueryToken42"
MESSAGE = "canary private message from a user"
SECRETS = (
    TG_SECRET,
    DSN_PASSWORD,
    WEBHOOK_SECRET,
    BEARER_SECRET,
    DISCORD_TOKEN,
    "canaryDiscordHmac",
    BASIC_SECRET,
    QUERY_SECRET,
    MESSAGE,
)

TG_URL = f"https://api.telegram.org/bot{TG_TOKEN}/sendMessage"
DSN = f"postgresql://bot:{DSN_PASSWORD}@db.internal:5432/prod"
WEBHOOK_URL = f"https://discord.com/api/webhooks/1122334455/{WEBHOOK_SECRET}"


def _plant_everything() -> None:
    """A bot that leaks credentials into every text botpulse records."""
    attrs = {
        "url": TG_URL,
        "dsn": DSN,
        "webhook": WEBHOOK_URL,
        "header": f"Authorization: Bearer {BEARER_SECRET}",
        "discord_auth": f"Bot {DISCORD_TOKEN}",
        "basic": f"Basic {BASIC_SECRET}",
        "callback": f"https://bot.example.com/cb?state=1&token={QUERY_SECRET}",
        "raw_token": TG_TOKEN,
        # message-like text under credential keys
        "password": MESSAGE,
        "api_key": MESSAGE,
        "Authorization": MESSAGE,
        "nested": {"db_password": MESSAGE, "url": TG_URL},
    }
    for _ in range(3):
        with botpulse.flow(f"GET {TG_URL}", tags={"dsn": DSN}, **attrs) as flow:
            flow.checkpoint(f"fetched {WEBHOOK_URL}")
            botpulse.checkpoint(f"auth Bot {DISCORD_TOKEN}")
            botpulse.tag(endpoint=TG_URL, auth=f"Bearer {BEARER_SECRET}")
            botpulse.current_flow().set(extra=DSN)  # type: ignore[union-attr]
            with botpulse.measure(f"db.connect {DSN}", kind="db", tags={"u": WEBHOOK_URL}, **attrs):
                pass
            with botpulse.measure(f"http.post {WEBHOOK_URL}", kind="http", header=attrs["header"]):
                pass
            try:
                with botpulse.measure("tg.send", kind="http", url=TG_URL):
                    raise ConnectionError(f"cannot reach {TG_URL}")
            except ConnectionError:
                botpulse.fail(f"send failed: {TG_URL} with Bot {DISCORD_TOKEN} at {DSN}")
    try:
        with botpulse.flow("raises", url=TG_URL):
            raise ValueError(f"Bearer {BEARER_SECRET}")
    except ValueError:
        pass
    report_finding(
        "slow_call",
        f"POST {WEBHOOK_URL}",
        flow=f"GET {TG_URL}",
        count=2,
        total_ns=5_000_000,
        max_ns=3_000_000,
        source=f"connect {DSN}",
        example={"url": TG_URL, "password": MESSAGE, "header": f"Bearer {BEARER_SECRET}"},
        details={"advice": f"rotate Basic {BASIC_SECRET}", "hits": [f"Bot {DISCORD_TOKEN}"]},
    )


def _stored_texts(path: Path) -> Iterator[bytes]:
    """Every stored byte: the raw files, then every blob also inflated."""
    for file in (path, Path(f"{path}-wal")):
        if file.exists():
            yield file.read_bytes()
    conn = sqlite3.connect(path)
    try:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        yield value
                        with contextlib.suppress(zlib.error):
                            yield zlib.decompress(value)
                    elif isinstance(value, str):
                        yield value.encode()
    finally:
        conn.close()


def _leaks(data: bytes | str) -> list[str]:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    path = tmp_path / "canary.db"
    botpulse.init(
        store=f"sqlite:///{path}",
        service="canary",
        instance="i1",
        flush_interval=3600,
        trace_slowest=100,
        trace_errors=100,
        trace_random=0,
    )
    _plant_everything()
    botpulse.shutdown()
    return path


def test_no_secret_in_any_stored_byte(recorded: Path) -> None:
    blobs = list(_stored_texts(recorded))
    assert len(blobs) > 10
    for blob in blobs:
        assert _leaks(blob) == [], blob[:300]


def test_no_secret_in_decoded_traces_or_findings(recorded: Path) -> None:
    store = open_store(f"sqlite:///{recorded}", create=False)
    try:
        now = time.time()
        traces = store.read_traces(now - 3600, now + 3600, SeriesFilter(), limit=1000)
        findings = store.read_findings(now - 3600, now + 3600)
        series = store.series()
    finally:
        store.close()
    # The data is there, masked, not missing: the test would see a leak.
    flows = [t for t in traces if t.name == "GET https://api.telegram.org/bot***/sendMessage"]
    assert len(flows) == 3
    trace = flows[0]
    assert trace.attrs["url"] == "https://api.telegram.org/bot***/sendMessage"
    assert trace.attrs["dsn"] == "postgresql://bot:***@db.internal:5432/prod"
    assert trace.attrs["password"] == "***"
    assert (
        trace.error
        == "send failed: https://api.telegram.org/bot***/sendMessage with Bot *** at postgresql://bot:***@db.internal:5432/prod"
    )
    assert [c.name for c in trace.checkpoints] == [
        "fetched https://discord.com/api/webhooks/1122334455/***",
        "auth Bot ***",
    ]
    assert {c.name for c in trace.children} == {
        "db.connect postgresql://bot:***@db.internal:5432/prod",
        "http.post https://discord.com/api/webhooks/1122334455/***",
        "tg.send",
    }
    assert len(findings) == 1
    assert findings[0].subject == "POST https://discord.com/api/webhooks/1122334455/***"
    for item in [*traces, *findings, *series]:
        assert _leaks(repr(item)) == [], repr(item)[:300]


@pytest.mark.parametrize("output_format", ["table", "json", "markdown", "html"])
def test_no_secret_in_any_report_format(recorded: Path, output_format: str) -> None:
    runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "400"})
    result = runner.invoke(
        main,
        [
            "report",
            "--store",
            f"sqlite:///{recorded}",
            "--since",
            "1h",
            "--format",
            output_format,
            "--top",
            "100",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "db.connect" in result.output  # the planted operations are in the report
    assert _leaks(result.output) == []


def test_no_secret_in_a_steps_error_text(tmp_path: Path) -> None:
    path = tmp_path / "steps.db"
    botpulse.init(store=f"sqlite:///{path}", flush_interval=3600, trace_errors=10)
    with botpulse.flow("send"):
        start = _capture.now_ns()
        _capture.record_operation(
            "tg.send", "http", start, start + 1000, error=f"cannot reach {TG_URL}"
        )
    botpulse.shutdown()
    store = open_store(f"sqlite:///{path}", create=False)
    try:
        now = time.time()
        traces = store.read_traces(now - 3600, now + 3600, SeriesFilter(), limit=10)
    finally:
        store.close()
    assert [c.error for t in traces for c in t.children] == [
        "cannot reach https://api.telegram.org/bot***/sendMessage"
    ]
