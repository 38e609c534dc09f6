"""report_finding(): queued from any thread, cleaned and stored by the pipeline."""

from __future__ import annotations

import threading

import botpulse
from botpulse import _findings
from botpulse.store import MemoryStore


def test_reported_findings_are_stored_cleaned_and_merged(memory_store: MemoryStore) -> None:
    botpulse.init(store=memory_store, service="bot", instance="i")
    threads = [
        threading.Thread(
            target=_findings.report_finding,
            args=("blocking_call", "bot/handlers.py:42"),
            kwargs={
                "flow": "stats",
                "total_ns": 200_000_000,
                "max_ns": 200_000_000,
                "details": {"advice": "use asyncio.to_thread", "api_key": "s3cret"},
            },
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    botpulse.shutdown()
    (finding,) = memory_store.read_findings(0, 2**40)
    assert (finding.type, finding.subject, finding.flow) == (
        "blocking_call",
        "bot/handlers.py:42",
        "stats",
    )
    assert (finding.count, finding.total_ns, finding.service) == (4, 800_000_000, "bot")
    assert finding.details == {"advice": "use asyncio.to_thread", "api_key": "***"}
    assert finding.first_seen_ns > 0


def test_report_finding_is_a_noop_when_not_running() -> None:
    _findings.report_finding("x", "y")  # nothing to assert but that it neither raises nor queues
    assert _findings._queue is None


def test_queue_is_bounded_and_counts_drops() -> None:
    queue = _findings.FindingQueue(capacity=2)
    _findings.activate(queue)
    try:
        for _ in range(5):
            _findings.report_finding("x", "y")
    finally:
        _findings.deactivate()
    assert (len(queue), queue.dropped) == (2, 3)
