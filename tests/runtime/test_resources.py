"""Process resources: psutil and the /proc fallback agree; GC pauses are timed."""

from __future__ import annotations

import gc
import os
import threading

import pytest

from botpulse.runtime.resources import GcTracker, ResourceSampler, proc_reader, psutil_reader

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc")


def test_psutil_and_proc_readers_agree() -> None:
    with_psutil, from_proc = psutil_reader(), proc_reader()
    assert with_psutil is not None
    assert from_proc is not None
    a, b = with_psutil(), from_proc()
    assert set(a) == set(b) == {"rss_mb", "threads", "open_fds"}
    assert b["rss_mb"] == pytest.approx(a["rss_mb"], rel=0.1)
    assert b["threads"] == a["threads"] >= threading.active_count()
    assert abs(b["open_fds"] - a["open_fds"]) <= 2  # listing /proc/self/fd opens one


def test_sampler_on_linux_reads_proc_without_psutil() -> None:
    sampler = ResourceSampler(use_psutil=False)
    assert sampler.backend == "proc"
    assert ResourceSampler().backend == "proc"  # no psutil import where /proc answers
    sampler.start()
    try:
        sum(range(200_000))  # some CPU between two reads
        values = sampler.sample()
    finally:
        sampler.stop()
    assert {"cpu_percent", "rss_mb", "threads", "open_fds", "gc.collections"} <= set(values)
    assert 0 <= values["cpu_percent"] <= 100 * (os.cpu_count() or 1)
    assert values["rss_mb"] > 5


def test_gc_pauses_are_timed_and_reset_on_read() -> None:
    tracker = GcTracker()
    tracker.install()
    try:
        garbage = [[i] for i in range(50_000)]
        for item in garbage:
            item.append(item)  # cycles for the collector
        del garbage
        gc.collect()
        collections, pause_ns, max_pause_ns = tracker.take()
    finally:
        tracker.uninstall()
    assert collections >= 1
    assert pause_ns >= max_pause_ns > 0
    assert tracker.take() == (0, 0, 0)
    assert tracker._callback not in gc.callbacks
