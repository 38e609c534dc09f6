"""Detectors: pipeline-side observers of finished flows that turn patterns into findings.

A detector (N+1 queries, slow queries, repeated reads, ...) subclasses :class:`Detector`
and is registered with :func:`register`. The pipeline thread calls
:meth:`Detector.observe` with a :class:`FlowRecord` for every finished flow (only
while at least one detector is registered, so an unused feature costs nothing), and
:meth:`Detector.collect` at every flush to take the findings concluded so far. Both
run off the hot path; an exception in a detector is an internal error, never the bot's.

Name normalizers (:func:`register_normalizer`) turn the raw names of one kind into
stored names, e.g. SQL text into a fingerprint for kind ``db``; they run once per
distinct raw name (cached) in the pipeline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ._model import Finding

__all__ = [
    "Detector",
    "FlowRecord",
    "Step",
    "normalizer",
    "register",
    "register_normalizer",
    "registered",
    "unregister",
    "unregister_normalizer",
]


@dataclass(frozen=True, slots=True)
class Step:
    """One operation inside a finished flow, as a detector sees it.

    ``name`` is the stored name (normalized, e.g. a SQL fingerprint); ``attrs`` the raw
    attributes the operation was recorded with (not yet cleaned: read, never store).
    ``start_ns`` is the offset from the flow's start.
    """

    name: str
    kind: str
    start_ns: int
    duration_ns: int
    status: str
    depth: int
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A finished flow: its stored name, outcome, wall-clock start and its steps by start."""

    service: str
    name: str
    status: str
    started_ns: int
    duration_ns: int
    steps: list[Step]
    truncated: int = 0


class Detector:
    """Base class of pipeline detectors; override :meth:`observe` and :meth:`collect`."""

    def observe(self, flow: FlowRecord) -> None:
        """Look at one finished flow (called on the pipeline thread)."""

    def collect(self, now_ns: int) -> Iterable[Finding]:
        """Findings concluded since the last call (called at every flush)."""
        return ()


_lock = threading.Lock()
_detectors: tuple[Detector, ...] = ()
_normalizers: dict[str, Callable[[str], str]] = {}


def register(detector: Detector) -> None:
    """Start calling ``detector`` for every finished flow (idempotent)."""
    global _detectors
    with _lock:
        if detector not in _detectors:
            _detectors = (*_detectors, detector)


def unregister(detector: Detector) -> None:
    """Stop calling ``detector``."""
    global _detectors
    with _lock:
        _detectors = tuple(d for d in _detectors if d is not detector)


def registered() -> tuple[Detector, ...]:
    """The registered detectors (an immutable snapshot)."""
    return _detectors


def register_normalizer(kind: str, function: Callable[[str], str]) -> None:
    """Store names of operations of ``kind`` as ``function(raw_name)`` (e.g. a SQL fingerprint).

    ``function`` must be pure and never raise; its result is cached per raw name.
    """
    _normalizers[kind] = function


def unregister_normalizer(kind: str) -> None:
    """Store names of ``kind`` as given again."""
    _normalizers.pop(kind, None)


def normalizer(kind: str) -> Callable[[str], str] | None:
    """The normalizer of ``kind``, if any."""
    return _normalizers.get(kind)
