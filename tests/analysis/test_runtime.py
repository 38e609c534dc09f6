"""The report's runtime sections: gauges, caches, pools, findings with advice, in every format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console

import botpulse
from botpulse import _capture
from botpulse._findings import report_finding
from botpulse._model import Finding
from botpulse.analysis.report import build_report
from botpulse.analysis.runtime import advise, build_runtime
from botpulse.cli.render_html import render_html
from botpulse.cli.render_markdown import render_markdown
from botpulse.cli.render_table import render_table
from botpulse.runtime import caches, pools
from botpulse.store import MemoryStore


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    caches._registry.clear()
    pools._registry.clear()
    yield
    caches._registry.clear()
    pools._registry.clear()


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    botpulse.init(store=store, service="bot", instance="i", resources_interval=None,
                  loop_monitor=False)  # fmt: skip
    for value in (1.0, 2.0, 9.0):
        _capture.gauge("loop.lag_ms", value)
    for value in (100.0, 120.0):
        _capture.gauge("process.rss_mb", value)
    cache = botpulse.instrument_cache(name="images", min_lookups=1)
    for hit in (True, True, True, False):
        cache.hit() if hit else cache.miss("image:1")
    # A pool of 4 seen with 1 then 3 in use, 2 waiting, and 5 acquisitions.
    for in_use, waiting in ((1, 0), (3, 2)):
        _capture.gauge("pool.db.size", 4)
        _capture.gauge("pool.db.in_use", in_use)
        _capture.gauge("pool.db.waiting", waiting)
    start = _capture.now_ns()
    for _ in range(5):
        _capture.record_operation("pool.db.acquire", "pool", start, start + 2_000_000)
    report_finding("blocking_call", "bot/handlers.py:42", flow="stats", total_ns=300_000_000,
                   max_ns=300_000_000, source="bot/handlers.py:42 in stats",
                   details={"blocked_ms": 300.0, "calls": "requests/api.py:73 in get"})  # fmt: skip
    botpulse.shutdown()
    return store


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(timezone.utc)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


def test_runtime_section_sums_gauges_caches_and_pools(store: MemoryStore) -> None:
    since, until = _window()
    section = build_runtime(store, since, until)
    lag = next(g for g in section.gauges if g.name == "loop.lag_ms")
    assert (lag.samples, lag.min, lag.max) == (3, 1.0, 9.0)
    assert lag.avg == pytest.approx(4.0)
    assert lag.worst_minute is not None
    assert lag.worst_minute_max == 9.0
    assert [g.name for g in section.gauges] == ["loop.lag_ms", "process.rss_mb"]
    (images,) = section.caches
    assert (images.name, images.hits, images.misses, images.hit_ratio) == ("images", 3, 1, 0.75)
    (db,) = section.pools
    assert (db.name, db.size, db.peak_in_use, db.peak_waiting, db.acquisitions) == (
        "db",
        4,
        3,
        2,
        5,
    )
    assert db.peak_utilisation == 0.75
    assert db.acquire_p95_ms == pytest.approx(2.0, rel=0.02)
    assert [f.type for f in section.findings] == ["blocking_call"]


def test_json_gains_gauges_caches_pools_arrays(store: MemoryStore) -> None:
    since, until = _window()
    doc = json.loads(json.dumps(build_report(store, since, until).to_dict()))
    assert {g["name"] for g in doc["gauges"]} == {"loop.lag_ms", "process.rss_mb"}
    assert doc["caches"] == [
        {"service": "bot", "name": "images", "hits": 3, "misses": 1, "hit_ratio": 0.75,
         "max_size": None},
    ]  # fmt: skip
    assert doc["pools"][0]["peak_utilisation"] == 0.75
    (finding,) = doc["runtime_findings"]
    assert finding["type"] == "blocking_call"
    assert "httpx.AsyncClient" in finding["advice"]
    # Gauges are not latencies: they leave the operations table for their own section.
    assert all(op["kind"] != "gauge" for op in doc["operations"])


def test_every_renderer_shows_the_runtime_sections(store: MemoryStore) -> None:
    since, until = _window()
    report = build_report(store, since, until)
    console = Console(record=True, width=200)
    render_table(report, console)
    text = console.export_text()
    markdown = render_markdown(report)
    page = render_html(report)
    for output in (text, markdown, page):
        for needle in ("Gauges", "loop.lag_ms", "Caches", "75.0%", "Pools", "Runtime findings"):
            assert needle in output, (needle, output[:300])


def test_a_filtered_report_has_no_runtime_section(store: MemoryStore) -> None:
    since, until = _window()
    doc = build_report(store, since, until, name="pool.*").to_dict()
    assert doc["gauges"] == doc["caches"] == doc["pools"] == []


def test_advice_for_each_runtime_finding() -> None:
    sync = Finding("sync_on_loop", "photo", flow="photo",
                   details={"on_loop_ms_per_run": 14.0, "share_of_duration": 0.8})  # fmt: skip
    assert "14.0 ms" in advise(sync)
    assert "to_thread" in advise(sync)
    low = Finding("cache_low_hit_ratio", "images",
                  details={"hit_ratio": 0.2, "most_missed_shapes": [{"shape": "image:{n}"}]})  # fmt: skip
    assert "20%" in advise(low)
    assert "image:{n}" in advise(low)
    sat = Finding("pool_saturation", "db", details={"advice": "size 2 → 25"})
    assert advise(sat) == "size 2 → 25"
