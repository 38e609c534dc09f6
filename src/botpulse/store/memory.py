"""An in-memory store: same interface and semantics as SQLite, nothing on disk.

For tests (the contract suite runs against it), for ``store="memory://"``, and as the
reference a new backend is checked against.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator

from .._model import DAY, HOUR, Batch, Finding, Rollup, SeriesKey, TraceSample
from .base import Retention, SeriesFilter, Store, expand_resolutions, merge_findings

__all__ = ["MemoryStore"]


def _group_of(t: TraceSample) -> tuple[str, str, str, str, int, int]:
    return (t.service, t.instance, t.name, t.status, t.started_ns // 60_000_000_000, t.group)


class MemoryStore(Store):
    """Keeps everything in dictionaries, guarded by one lock.

    Example::

        store = MemoryStore()
        botpulse.init(store=store)
    """

    def __init__(self, retention: Retention | None = None) -> None:
        super().__init__(retention)
        self._lock = threading.Lock()
        self._rollups: dict[tuple[int, int, SeriesKey], Rollup] = {}
        self._traces: list[TraceSample] = []
        self._drops: dict[tuple[int, str, str, str], int] = {}
        # (hour start, service, instance, type, flow, subject) -> finding
        self._findings: dict[tuple[int, str, str, str, str, str], Finding] = {}
        self.closed = False

    def describe(self) -> str:
        return "memory://"

    def write(self, batch: Batch) -> None:
        expanded = expand_resolutions(batch.rollups)
        traces = [copy.deepcopy(t) for t in batch.traces]
        with self._lock:
            for key, rollup in expanded.items():
                have = self._rollups.get(key)
                if have is None:
                    self._rollups[key] = rollup
                else:
                    have.merge(rollup)
            # A group written again (the open minute's samples) replaces what it wrote before.
            groups = {_group_of(t) for t in traces if t.group}
            if groups:
                self._traces = [t for t in self._traces if _group_of(t) not in groups]
            self._traces.extend(traces)
            for d in batch.drops:
                dkey = (d.start, d.service, d.instance, d.reason)
                self._drops[dkey] = self._drops.get(dkey, 0) + d.count
            for f in batch.findings:
                hour = f.last_seen_ns // 1_000_000_000 // HOUR * HOUR
                fkey = (hour, f.service, f.instance, f.type, f.flow, f.subject)
                found = self._findings.get(fkey)
                if found is None:
                    self._findings[fkey] = copy.deepcopy(f)
                else:
                    found.merge(copy.deepcopy(f))

    def apply_retention(self, now_s: float | None = None) -> int:
        now = time.time() if now_s is None else now_s
        retention = self.retention
        with self._lock:
            before = len(self._rollups) + len(self._traces) + len(self._drops)
            self._rollups = {
                k: v for k, v in self._rollups.items() if k[1] >= retention.horizon(k[0], now)
            }
            trace_horizon_ns = (now - retention.traces_days * DAY) * 1e9
            self._traces = [t for t in self._traces if t.started_ns >= trace_horizon_ns]
            drop_horizon = now - retention.rollups_days * DAY
            self._drops = {k: v for k, v in self._drops.items() if k[0] >= drop_horizon}
            findings_before = len(self._findings)
            self._findings = {k: v for k, v in self._findings.items() if k[0] >= drop_horizon}
            return (
                before
                - (len(self._rollups) + len(self._traces) + len(self._drops))
                + findings_before
                - len(self._findings)
            )

    def read_rollups(
        self, resolution: int, start_s: int, end_s: int, selector: SeriesFilter
    ) -> Iterator[Rollup]:
        with self._lock:
            rows = [
                r.copy()
                for (res, start, key), r in self._rollups.items()
                if res == resolution and start_s <= start < end_s and selector.matches(key)
            ]
        yield from sorted(rows, key=lambda r: r.start)

    def read_traces(
        self,
        since_s: float,
        until_s: float,
        selector: SeriesFilter | None = None,
        *,
        limit: int = 10,
        order: str = "slowest",
    ) -> list[TraceSample]:
        selector = selector or SeriesFilter()
        lo, hi = since_s * 1e9, until_s * 1e9
        with self._lock:
            found = [
                t
                for t in self._traces
                if lo <= t.started_ns < hi
                and selector.matches(SeriesKey(t.service, t.instance, t.name, "flow", t.status))
            ]
        if order == "recent":
            found.sort(key=lambda t: t.started_ns, reverse=True)
        else:
            found.sort(key=lambda t: (-t.duration_ns, t.started_ns))
        return [copy.deepcopy(t) for t in found[:limit]]

    def read_drops(self, since_s: float, until_s: float) -> dict[str, int]:
        out: dict[str, int] = {}
        with self._lock:
            for (start, _service, _instance, reason), count in self._drops.items():
                if since_s - 60 < start < until_s:
                    out[reason] = out.get(reason, 0) + count
        return out

    def read_findings(
        self,
        since_s: float,
        until_s: float,
        *,
        type: str | None = None,  # noqa: A002
        service: str | None = None,
        instance: str | None = None,
    ) -> list[Finding]:
        lo = since_s // HOUR * HOUR
        with self._lock:
            rows = [
                copy.deepcopy(f)
                for (hour, f_service, f_instance, f_type, *_rest), f in self._findings.items()
                if lo <= hour < until_s
                and (type is None or f_type == type)
                and (service is None or f_service == service)
                and (instance is None or f_instance == instance)
            ]
        return merge_findings(rows)

    def series(self) -> list[SeriesKey]:
        with self._lock:
            keys = {key for (_res, _start, key) in self._rollups}
        return sorted(keys, key=lambda k: (k.service, k.name, k.kind, k.status, k.instance))

    def close(self) -> None:
        self.closed = True
