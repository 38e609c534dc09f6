"""Findings reported from anywhere in the process, queued for the pipeline to store.

Detectors that run in the pipeline add findings to the batch directly; watchdog
threads, framework integrations and event-loop monitors call :func:`report_finding`,
which only appends to a bounded queue (never blocks, never raises). The pipeline
drains the queue at each flush, fills in service, instance and times, cleans the
text, and writes the findings with the batch. Before ``init()`` and after
``shutdown()`` reporting is a no-op.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from ._buffer import counter_value
from ._model import Finding

__all__ = ["FindingQueue", "activate", "deactivate", "report_finding"]

_MAX_QUEUED = 10_000


class FindingQueue:
    """A bounded FIFO of findings; what does not fit is counted, not kept."""

    def __init__(self, capacity: int = _MAX_QUEUED) -> None:
        self.capacity = capacity
        self._items: deque[Finding] = deque()
        self._dropped: itertools.count[int] = itertools.count()

    def offer(self, finding: Finding) -> None:
        """Queue ``finding`` or count it as dropped."""
        if len(self._items) < self.capacity:
            self._items.append(finding)
        else:
            next(self._dropped)

    def drain(self) -> list[Finding]:
        """Everything queued, oldest first."""
        items = self._items
        popleft = items.popleft
        return [popleft() for _ in range(len(items))]

    @property
    def dropped(self) -> int:
        """Findings refused because the queue was full."""
        return counter_value(self._dropped)

    def __len__(self) -> int:
        return len(self._items)


_queue: FindingQueue | None = None


def activate(queue: FindingQueue) -> None:
    """Send reported findings to ``queue`` (called by ``init()``)."""
    global _queue
    _queue = queue


def deactivate() -> None:
    """Make :func:`report_finding` a no-op again."""
    global _queue
    _queue = None


def report_finding(
    type: str,  # noqa: A002 - the finding's type, as stored
    subject: str,
    *,
    flow: str = "",
    count: int = 1,
    total_ns: int = 0,
    max_ns: int = 0,
    at_ns: int = 0,
    source: str | None = None,
    example: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Queue a finding for the store; thread-safe, never blocks, never raises.

    ``at_ns`` is the wall-clock time it was seen (default: when the pipeline picks it
    up). Example (a watchdog thread)::

        report_finding("blocking_call", "bot/handlers.py:42", flow="stats",
                       total_ns=blocked_ns, max_ns=blocked_ns, source="bot/handlers.py:42 in stats",
                       details={"advice": "run it in asyncio.to_thread()"})
    """
    queue = _queue
    if queue is None:
        return
    queue.offer(
        Finding(
            type=type,
            subject=subject,
            flow=flow or "",
            count=count,
            total_ns=total_ns,
            max_ns=max_ns,
            first_seen_ns=at_ns,
            last_seen_ns=at_ns,
            source=source,
            example=example or {},
            details=details or {},
        )
    )
