"""Aggregation: event records → per-minute rollups with sketches, plus sampled flow traces.

The pipeline feeds drained records to :meth:`Aggregator.add_records`; imports and tests
feed :class:`~botpulse._model.Operation` objects with explicit timestamps to
:meth:`Aggregator.add_operations`. :meth:`Aggregator.batch` snapshots what is pending
and :meth:`Aggregator.commit` forgets it once the store has written it, so a failed
write keeps everything aggregated in memory (bounded by ``max_pending_rollups``).

Trace sampling, per minute and flow name: the ``trace_slowest`` slowest flows, the
first ``trace_errors`` failed ones, and ``trace_random`` picked uniformly (reservoir
sampling). A minute's samples are final, and written, once that minute has ended.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import _detect
from ._capture import Flow, Timer, outcome
from ._diagnostics import internal_error
from ._model import (
    MINUTE,
    OVERFLOW_NAME,
    STATUSES,
    Batch,
    Checkpoint,
    Child,
    DropCount,
    Finding,
    Operation,
    Rollup,
    SeriesKey,
    TraceSample,
)
from ._sanitize import MAX_KIND_CHARS, MAX_NAME_CHARS, clean_attrs, clean_json, clean_text
from ._sketch import MULTIPLIER, Sketch

__all__ = ["Aggregator", "SamplingPolicy"]

_NS_PER_MINUTE = 60_000_000_000
_MAX_KINDS = 64
_OTHER_KIND = "other"
_MAX_PENDING_SLOTS = 20_000
_MAX_NAME_CACHE = 20_000  # raw name -> stored name; cleared when full (raw SQL texts vary)


def _status_of(exc: Any) -> tuple[str, str | None]:
    """(status, error) of a record's ``_exc``: an exception type, None, or a given pair."""
    if type(exc) is tuple:
        return exc[0], exc[1]
    return outcome(exc)


class _Imported(Timer):
    """An :class:`Operation` dressed as a finished timer, so one loop aggregates both."""

    __slots__ = ("operation",)

    def __init__(self, op: Operation) -> None:
        self.name = op.name
        self.kind = op.kind
        if op.attrs:
            self._attrs = op.attrs
        self._t0 = op.started_ns
        self._t1 = op.started_ns + op.duration_ns
        self._exc = (op.status, op.error)
        # A record whose _flow is itself is a flow root (see Aggregator.add_records).
        self._flow = self if op.kind == "flow" else None  # type: ignore[assignment]
        self._depth = 0
        self.operation = op


@dataclass(frozen=True, slots=True)
class SamplingPolicy:
    """How many flow traces to keep per minute and flow name."""

    slowest: int = 3
    errors: int = 3
    random: int = 1


@dataclass(slots=True)
class _Slot:
    """Trace candidates of one flow name in one minute."""

    slowest: list[tuple[int, int, Any]] = field(default_factory=list)  # min-heap
    errors: list[Any] = field(default_factory=list)
    randoms: list[Any] = field(default_factory=list)
    seen: int = 0


class Aggregator:
    """Accumulates rollups and trace candidates of one (service, instance)."""

    def __init__(
        self,
        service: str,
        instance: str,
        *,
        max_names: int = 1000,
        sampling: SamplingPolicy | None = None,
        max_pending_rollups: int = 200_000,
        seed: int | None = None,
    ) -> None:
        self.service = service
        self.instance = instance
        self.max_names = max_names
        self.sampling = sampling or SamplingPolicy()
        self.max_pending_rollups = max_pending_rollups
        self._rng = random.Random(seed)
        self._seq = itertools.count()
        # (minute, name, kind, status) -> [count, sum_ns, min_ns, max_ns, bins, zero_count]
        self._rollups: dict[tuple[int, str, str, str], list[Any]] = {}
        self._slots: dict[tuple[int, str], _Slot] = {}
        self._drops: dict[tuple[int, str], int] = {}
        self._findings: dict[tuple[str, str, str, str], Finding] = {}
        self._names: dict[Any, str] = {}
        self._known_names: set[str] = set()
        self._kinds: dict[Any, str] = {}
        self._known_kinds: set[str] = set()
        self._batched_minute: int | None = None
        #: Events aggregated but evicted unwritten during a long store outage.
        self.lost_events = 0

    # -- names -------------------------------------------------------------------

    def _clean_name(self, raw: Any, kind: Any = None) -> str:
        """The stored name for ``raw``: bounded text, or the overflow bucket past the cap.

        Names of a kind with a registered normalizer (e.g. SQL for ``db``) are normalized.
        """
        try:
            cached = self._names.get(raw)
        except TypeError:  # unhashable "name"
            cached = None
        if cached is not None:
            return cached
        text = raw
        if isinstance(raw, str) and isinstance(kind, str):
            normalize = _detect.normalizer(kind)
            if normalize is not None:
                try:
                    text = normalize(raw)
                except Exception as exc:  # noqa: BLE001 - a normalizer bug must not lose data
                    internal_error("normalizer", exc)
        name = clean_text(text, MAX_NAME_CHARS) or "(empty)"
        if name not in self._known_names:
            if len(self._known_names) >= self.max_names:
                return OVERFLOW_NAME
            self._known_names.add(name)
        if isinstance(raw, str) and (len(raw) <= MAX_NAME_CHARS or text is not raw):
            if len(self._names) >= _MAX_NAME_CACHE:
                self._names.clear()
            self._names[raw] = name
        return name

    def _clean_kind(self, raw: Any) -> str:
        try:
            cached = self._kinds.get(raw)
        except TypeError:
            cached = None
        if cached is not None:
            return cached
        kind = clean_text(raw, MAX_KIND_CHARS) or "op"
        if kind not in self._known_kinds:
            if len(self._known_kinds) >= _MAX_KINDS:
                return _OTHER_KIND
            self._known_kinds.add(kind)
        if isinstance(raw, str) and len(raw) <= MAX_KIND_CHARS:
            self._kinds[raw] = kind
        return kind

    # -- input -------------------------------------------------------------------

    def add_records(self, records: Iterable[Any], offset_ns: int) -> int:
        """Aggregate finished timers; ``offset_ns`` maps their monotonic times to wall time.

        A record is a :class:`Timer`, or ``(timer, exc_type)`` for one that failed.

        Returns how many records were added.
        """
        rollups = self._rollups
        names = self._names
        kinds = self._kinds
        log = math.log
        ceil = math.ceil
        mult = MULTIPLIER
        added = 0
        for item in records:
            if type(item) is tuple:  # (timer, exc_type): it ended with an exception
                rec, exc = item
                status = _status_of(exc)[0]
            else:
                rec = item
                status = "ok"
            name = rec.name
            kind = rec.kind
            t0 = rec._t0
            duration = rec._t1 - t0
            duration = max(duration, 0)  # time can go backwards: clamp
            wall = t0 + offset_ns
            minute = wall // _NS_PER_MINUTE
            try:
                clean = names[name]
            except (KeyError, TypeError):
                clean = self._clean_name(name, kind)
            try:
                kind = kinds[kind]
            except (KeyError, TypeError):
                kind = self._clean_kind(kind)
            key = (minute, clean, kind, status)
            acc = rollups.get(key)
            if acc is None:
                acc = rollups[key] = [0, 0, duration, duration, {}, 0]
            acc[0] += 1
            acc[1] += duration
            if duration < acc[2]:
                acc[2] = duration
            elif duration > acc[3]:
                acc[3] = duration
            if duration > 0:
                bins = acc[4]
                bucket = ceil(log(duration) * mult)
                bins[bucket] = bins.get(bucket, 0) + 1
            else:
                acc[5] += 1
            if rec._flow is rec:
                self._offer_trace(minute, clean, wall, duration, status, rec)
                if _detect._detectors:
                    self._observe(clean, wall, duration, status, rec)
            added += 1
        while len(rollups) > self.max_pending_rollups or len(self._slots) > _MAX_PENDING_SLOTS:
            self._evict_oldest()
        return added

    def add_operations(self, operations: Iterable[Operation]) -> int:
        """Aggregate operations with explicit wall-clock starts; flows get sampled too.

        Raises ``ValueError`` naming the first operation with an invalid status,
        negative duration or non-integer time, before anything is added.
        """
        ops = list(operations)
        for op in ops:
            if op.status not in STATUSES:
                raise ValueError(
                    f"operation {op.name!r} has status {op.status!r}; valid: {', '.join(STATUSES)}"
                )
            if not isinstance(op.started_ns, int) or not isinstance(op.duration_ns, int):
                raise TypeError(f"operation {op.name!r}: started_ns and duration_ns must be int")
            if op.duration_ns < 0:
                raise ValueError(f"operation {op.name!r} has negative duration {op.duration_ns}")
        return self.add_records([(_Imported(op), (op.status, op.error)) for op in ops], 0)

    def add_findings(self, findings: Iterable[Finding], now_ns: int) -> int:
        """Clean and merge findings (from detectors or :func:`report_finding`); return how many."""
        added = 0
        for raw in findings:
            seen = raw.last_seen_ns or now_ns
            finding = Finding(
                type=clean_text(raw.type, MAX_KIND_CHARS) or "finding",
                subject=clean_text(raw.subject, MAX_NAME_CHARS * 5),
                flow=clean_text(raw.flow, MAX_NAME_CHARS) if raw.flow else "",
                service=self.service,
                instance=self.instance,
                count=max(0, int(raw.count)),
                total_ns=max(0, int(raw.total_ns)),
                max_ns=max(0, int(raw.max_ns)),
                first_seen_ns=raw.first_seen_ns or seen,
                last_seen_ns=seen,
                source=None if raw.source is None else clean_text(raw.source, MAX_NAME_CHARS * 2),
                example=clean_json(raw.example) if raw.example else {},
                details=clean_json(raw.details) if raw.details else {},
            )
            have = self._findings.get(finding.key)
            if have is None:
                self._findings[finding.key] = finding
            else:
                have.merge(finding)
            added += 1
        return added

    def note_drops(self, reason: str, count: int, wall_ns: int) -> None:
        """Count ``count`` events lost for ``reason`` in the minute containing ``wall_ns``."""
        if count > 0:
            key = (wall_ns // _NS_PER_MINUTE, reason)
            self._drops[key] = self._drops.get(key, 0) + count

    # -- detectors ---------------------------------------------------------------

    def _observe(self, name: str, wall: int, duration: int, status: str, rec: Any) -> None:
        """Show one finished flow to every registered detector."""
        try:
            steps: list[_detect.Step] = []
            truncated = 0
            if isinstance(rec, Flow):
                t0 = rec._t0
                steps = [
                    _detect.Step(
                        self._clean_name(c.name, c.kind),
                        self._clean_kind(c.kind),
                        c._t0 - t0,
                        max(0, c._t1 - c._t0),
                        _status_of(getattr(c, "_exc", None))[0],
                        c._depth,
                        getattr(c, "_attrs", None) or {},
                    )
                    for c in list(rec.children)
                ]
                steps.sort(key=lambda step: step.start_ns)
                truncated = rec.truncated
            record = _detect.FlowRecord(
                self.service, name, status, wall, duration, steps, truncated
            )
        except Exception as exc:  # noqa: BLE001
            internal_error("detector", exc)
            return
        for detector in _detect._detectors:
            try:
                detector.observe(record)
            except Exception as exc:  # noqa: BLE001 - a detector bug is ours, not the bot's
                internal_error("detector", exc)

    def collect_findings(self, now_ns: int) -> None:
        """Take what every registered detector concluded into the pending findings."""
        for detector in _detect._detectors:
            try:
                self.add_findings(list(detector.collect(now_ns)), now_ns)
            except Exception as exc:  # noqa: BLE001
                internal_error("detector", exc)

    # -- traces ------------------------------------------------------------------

    def _offer_trace(
        self, minute: int, name: str, wall: int, duration: int, status: str, source: Any
    ) -> None:
        slot = self._slots.get((minute, name))
        if slot is None:
            slot = self._slots[(minute, name)] = _Slot()
        policy = self.sampling
        entry = (wall, duration, status, source)
        slot.seen += 1
        if policy.slowest:
            item = (duration, next(self._seq), entry)
            if len(slot.slowest) < policy.slowest:
                heapq.heappush(slot.slowest, item)
            elif duration > slot.slowest[0][0]:
                heapq.heapreplace(slot.slowest, item)
        if status == "error" and len(slot.errors) < policy.errors:
            slot.errors.append(entry)
        if policy.random:
            if len(slot.randoms) < policy.random:
                slot.randoms.append(entry)
            else:
                j = self._rng.randrange(slot.seen)
                if j < policy.random:
                    slot.randoms[j] = entry

    def _build_trace(self, name: str, entry: Any, reasons: list[str]) -> TraceSample:
        wall, duration, status, rec = entry
        t0 = rec._t0
        if isinstance(rec, _Imported):
            op = rec.operation
            checkpoints = [
                Checkpoint(clean_text(c.name, MAX_NAME_CHARS), c.at_ns) for c in op.checkpoints
            ]
            children = [
                Child(
                    self._clean_name(c.name, c.kind),
                    self._clean_kind(c.kind),
                    c.start_ns,
                    max(0, c.duration_ns),
                    c.status,
                    c.error,
                    c.depth,
                    clean_attrs(c.attrs),
                )
                for c in op.children
            ]
            truncated = 0
        else:
            flow: Flow = rec
            checkpoints = [
                Checkpoint(clean_text(cp_name, MAX_NAME_CHARS), at - t0)
                for cp_name, at in list(flow.checkpoints)
            ]
            children = []
            for c in list(flow.children):
                c_status, c_error = _status_of(getattr(c, "_exc", None))
                children.append(
                    Child(
                        self._clean_name(c.name, c.kind),
                        self._clean_kind(c.kind),
                        c._t0 - t0,
                        max(0, c._t1 - c._t0),
                        c_status,
                        c_error,
                        c._depth,
                        clean_attrs(getattr(c, "_attrs", None)),
                    )
                )
            truncated = flow.truncated
        error = _status_of(getattr(rec, "_exc", None))[1]
        return TraceSample(
            service=self.service,
            instance=self.instance,
            name=name,
            started_ns=wall,
            duration_ns=duration,
            status=status,
            error=None if error is None else clean_text(error, MAX_NAME_CHARS),
            reason=",".join(reasons),
            checkpoints=checkpoints,
            children=children,
            attrs=clean_attrs(getattr(rec, "_attrs", None)),
            truncated=truncated,
        )

    def _slot_traces(self, name: str, slot: _Slot) -> list[TraceSample]:
        chosen: dict[int, tuple[Any, list[str]]] = {}
        for _d, _seq, entry in sorted(slot.slowest, reverse=True):
            chosen.setdefault(id(entry), (entry, []))[1].append("slowest")
        for entry in slot.errors:
            chosen.setdefault(id(entry), (entry, []))[1].append("error")
        for entry in slot.randoms:
            chosen.setdefault(id(entry), (entry, []))[1].append("random")
        return [self._build_trace(name, entry, reasons) for entry, reasons in chosen.values()]

    # -- output ------------------------------------------------------------------

    @property
    def pending_events(self) -> int:
        """Operations aggregated but not yet committed to the store."""
        return sum(acc[0] for acc in self._rollups.values())

    def batch(self, now_ns: int | None = None) -> Batch:
        """Everything pending, as a batch; traces only of minutes ended before ``now_ns``.

        ``now_ns=None`` closes every minute (final flush, imports).
        """
        service, instance = self.service, self.instance
        rollups = [
            Rollup(
                SeriesKey(service, instance, name, kind, status),
                minute * MINUTE,
                MINUTE,
                acc[0],
                acc[1],
                acc[2],
                acc[3],
                Sketch(acc[4], acc[5]),
            )
            for (minute, name, kind, status), acc in self._rollups.items()
        ]
        open_minute = None if now_ns is None else now_ns // _NS_PER_MINUTE
        traces: list[TraceSample] = []
        for (minute, name), slot in self._slots.items():
            if open_minute is None or minute < open_minute:
                traces.extend(self._slot_traces(name, slot))
        drops = [
            DropCount(service, instance, minute * MINUTE, reason, count)
            for (minute, reason), count in self._drops.items()
        ]
        batch = Batch(rollups, traces, drops, list(self._findings.values()))
        self._batched_minute = open_minute
        return batch

    def commit(self) -> None:
        """Forget what the last :meth:`batch` returned: the store has it now."""
        self._rollups = {}
        self._drops = {}
        self._findings = {}
        open_minute = self._batched_minute
        if open_minute is None:
            self._slots = {}
        else:
            self._slots = {k: v for k, v in self._slots.items() if k[0] >= open_minute}

    def _evict_oldest(self) -> None:
        """Keep memory bounded during a long store outage: drop the oldest minute, counted."""
        oldest = min([k[0] for k in self._rollups] + [k[0] for k in self._slots])
        lost = 0
        for rollup_key in [k for k in self._rollups if k[0] == oldest]:
            lost += self._rollups.pop(rollup_key)[0]
        self.lost_events += lost
        for slot_key in [k for k in self._slots if k[0] == oldest]:
            del self._slots[slot_key]
        self.note_drops("store_unavailable", lost, oldest * _NS_PER_MINUTE)
