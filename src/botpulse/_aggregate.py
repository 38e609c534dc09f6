"""Aggregation: event records → per-minute rollups with sketches, plus sampled flow traces.

The pipeline feeds drained records to :meth:`Aggregator.add_records`; imports and tests
feed :class:`~botpulse._model.Operation` objects with explicit timestamps to
:meth:`Aggregator.add_operations`. :meth:`Aggregator.batch` snapshots what is pending
and :meth:`Aggregator.commit` forgets it once the store has written it, so a failed
write keeps everything aggregated in memory (bounded by ``max_pending_rollups``).

A rollup series is (name, kind, status, flow, tags): ``flow`` is the (final) name of
the flow an operation ran in, so a report can say where each command's time goes;
``tags`` the operation's low-cardinality tags, each key capped at ``max_tag_values``
values (the rest count as ``(other)``). A step whose flow is still running when it is
drained waits (bounded) until the flow ends, so a flow renamed late keeps its steps.

Trace sampling, per minute and flow name: the ``trace_slowest`` slowest flows, the
first ``trace_errors`` failed ones, the first ``trace_errors`` flows in which a step
failed (``step_error``), and ``trace_random`` picked uniformly (reservoir sampling).
The samples of a minute that is still open are written at every flush where they
changed (as one group the store replaces), so a crash loses at most a flush interval.
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
    encode_tags,
)
from ._sanitize import MAX_KIND_CHARS, MAX_NAME_CHARS, clean_attrs, clean_json, clean_text
from ._sketch import MULTIPLIER, Sketch

__all__ = ["Aggregator", "SamplingPolicy"]

_NS_PER_MINUTE = 60_000_000_000
_MAX_KINDS = 64
_OTHER_KIND = "other"
_MAX_PENDING_SLOTS = 20_000
_MAX_NAME_CACHE = 20_000  # raw name -> stored name; cleared when full (raw SQL texts vary)
_MAX_DEFERRED = 20_000  # steps waiting for their flow to end; past this they go in as is
_MAX_WAIT_NS = 60 * 1_000_000_000  # a flow running longer keeps the name it has then
_MAX_TAG_KEYS = 16  # tag keys per operation
_TAG_CHARS = 64
OTHER_TAG = "(other)"


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
        self._tags = op.tags or None
        self._t0 = op.started_ns
        self._t1 = op.started_ns + op.duration_ns
        self._exc = (op.status, op.error)
        # A record whose _flow is itself is a flow root (see Aggregator.add_records).
        flow: Any = self if op.kind == "flow" else (_NamedFlow(op.flow) if op.flow else None)
        self._flow = flow
        self._depth = 0
        self.operation = op


class _NamedFlow:
    """The ended flow an imported step ran in: only its name is known."""

    __slots__ = ("_t1", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._t1 = 1


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
    step_errors: list[Any] = field(default_factory=list)
    randoms: list[Any] = field(default_factory=list)
    seen: int = 0
    dirty: bool = False  # the selection changed since the store last got it
    group: int = 0  # the store's group id of this slot's samples
    built: dict[int, tuple[Any, TraceSample]] = field(default_factory=dict)  # id -> (entry, sample)


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
        max_tag_values: int = 50,
    ) -> None:
        self.service = service
        self.instance = instance
        self.max_names = max_names
        self.max_tag_values = max_tag_values
        self.sampling = sampling or SamplingPolicy()
        self.max_pending_rollups = max_pending_rollups
        self._rng = random.Random(seed)
        self._seq = itertools.count()
        # (minute, name, kind, status, flow, tags) -> [count, sum_ns, min_ns, max_ns, bins, zeros]
        self._rollups: dict[tuple[int, str, str, str, str, str], list[Any]] = {}
        self._deferred: list[Any] = []  # (item) of steps whose flow has not ended yet
        # raw items -> (encoded, cleaned dict, whether a value went to (other))
        self._tag_keys: dict[Any, tuple[str, dict[str, str], bool]] = {}
        self._tag_values: dict[str, set[str]] = {}
        #: Tag values counted under ``(other)`` because their key had too many values.
        self.tag_overflows = 0
        self._emitted: list[_Slot] = []
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
        Steps whose flow is still running wait until it ends (see :meth:`batch`).

        Returns how many records were taken (deferred steps included).
        """
        if self._deferred:
            waiting, self._deferred = self._deferred, []
            for entry in waiting:
                item = entry[0]
                rec = item[0] if type(item) is tuple else item
                if rec._flow._t1:
                    self._aggregate((item,), entry[1])
                else:
                    self._deferred.append(entry)
        return self._aggregate(records, offset_ns)

    def _aggregate(self, records: Iterable[Any], offset_ns: int, force: bool = False) -> int:
        """The aggregation loop; ``force`` takes steps of running flows as they are."""
        rollups = self._rollups
        names = self._names
        kinds = self._kinds
        deferred = self._deferred
        log = math.log
        ceil = math.ceil
        mult = MULTIPLIER
        added = 0
        for item in records:
            if type(item) is tuple:  # (timer, exc_type): it ended with an exception
                rec, exc = item[0], item[1]
                status = _status_of(exc)[0]
            else:
                rec = item
                status = "ok"
            flow = rec._flow
            if flow is None or flow is rec:
                flow_name = ""
            else:
                # The flow may still be renamed: aggregate its steps once it ended.
                if not flow._t1 and not force and len(deferred) < _MAX_DEFERRED:
                    deferred.append((item, offset_ns))
                    added += 1
                    continue
                try:
                    flow_name = names[flow.name]
                except (KeyError, TypeError):
                    flow_name = self._clean_name(flow.name, "flow")
            name = rec.name
            kind = rec.kind
            t0 = rec._t0
            duration = rec._t1 - t0
            if duration < 0:  # noqa: PLR1730 - time can go backwards: clamp (max() is slower)
                duration = 0
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
            tags = rec._tags
            if tags:
                tag_key, _tag_dict, overflowed = self._tag_key(tags)
                if overflowed:
                    self.tag_overflows += 1
            else:
                tag_key = ""
            key = (minute, clean, kind, status, flow_name, tag_key)
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
            if flow is rec:
                self._offer_trace(minute, clean, wall, duration, status, rec)
                if _detect._detectors:
                    self._observe(clean, wall, duration, status, rec)
            added += 1
        while len(rollups) > self.max_pending_rollups or len(self._slots) > _MAX_PENDING_SLOTS:
            self._evict_oldest()
        return added

    def _flush_deferred(self, now_ns: int | None) -> None:
        """Aggregate waiting steps whose flow has run for long, under its current name.

        ``now_ns=None`` takes them all (final flush).
        """
        waiting, self._deferred = self._deferred, []
        for entry in waiting:
            item, offset_ns = entry
            rec = item[0] if type(item) is tuple else item
            flow = rec._flow
            if now_ns is None or flow._t1 or now_ns - (flow._t0 + offset_ns) > _MAX_WAIT_NS:
                self._aggregate((item,), offset_ns, force=True)
            else:
                self._deferred.append(entry)

    def _tag_key(self, tags: Any) -> tuple[str, dict[str, str], bool]:
        """The stored form of a tags dict: ``(encoded, cleaned dict, overflowed)``.

        Each key keeps at most ``max_tag_values`` values; later ones become ``(other)``.
        """
        try:
            raw = tuple(sorted(tags.items()))
            cached = self._tag_keys.get(raw)
        except Exception:  # noqa: BLE001 - unsortable or unhashable tags
            raw, cached = None, None
        if cached is not None:
            return cached
        cleaned: dict[str, str] = {}
        overflowed = False
        try:
            items = list(tags.items())[:_MAX_TAG_KEYS]
        except Exception:  # noqa: BLE001
            items = []
        for k, v in items:
            key = clean_text(k, _TAG_CHARS)
            value = clean_text(v, _TAG_CHARS)
            seen = self._tag_values.setdefault(key, set())
            if value not in seen:
                if len(seen) >= self.max_tag_values:
                    overflowed = True
                    value = OTHER_TAG
                else:
                    seen.add(value)
            cleaned[key] = value
        result = (encode_tags(cleaned), cleaned, overflowed)
        if raw is not None:
            if len(self._tag_keys) >= _MAX_NAME_CACHE:
                self._tag_keys.clear()
            self._tag_keys[raw] = result
        return result

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
                slot.dirty = True
            elif duration > slot.slowest[0][0]:
                heapq.heapreplace(slot.slowest, item)
                slot.dirty = True
        if status == "error":
            if len(slot.errors) < policy.errors:
                slot.errors.append(entry)
                slot.dirty = True
        elif getattr(source, "_step_failed", False) and len(slot.step_errors) < policy.errors:
            slot.step_errors.append(entry)
            slot.dirty = True
        if policy.random:
            if len(slot.randoms) < policy.random:
                slot.randoms.append(entry)
                slot.dirty = True
            else:
                j = self._rng.randrange(slot.seen)
                if j < policy.random:
                    slot.randoms[j] = entry
                    slot.dirty = True

    def _build_trace(self, name: str, entry: Any) -> TraceSample:
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
                    None if c.error is None else clean_text(c.error, MAX_NAME_CHARS),
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
                        None if c_error is None else clean_text(c_error, MAX_NAME_CHARS),
                        c._depth,
                        clean_attrs(getattr(c, "_attrs", None)),
                    )
                )
            truncated = flow.truncated
        error = _status_of(getattr(rec, "_exc", None))[1]
        tags = rec._tags
        return TraceSample(
            service=self.service,
            instance=self.instance,
            name=name,
            started_ns=wall,
            duration_ns=duration,
            status=status,
            error=None if error is None else clean_text(error, MAX_NAME_CHARS),
            reason="",
            checkpoints=checkpoints,
            children=children,
            attrs=clean_attrs(getattr(rec, "_attrs", None)),
            truncated=truncated,
            tags=self._tag_key(tags)[1] if tags else {},
        )

    def _slot_traces(self, name: str, slot: _Slot) -> list[TraceSample]:
        chosen: dict[int, tuple[Any, list[str]]] = {}
        for _d, _seq, entry in sorted(slot.slowest, reverse=True):
            chosen.setdefault(id(entry), (entry, []))[1].append("slowest")
        for entry in slot.errors:
            chosen.setdefault(id(entry), (entry, []))[1].append("error")
        for entry in slot.step_errors:
            chosen.setdefault(id(entry), (entry, []))[1].append("step_error")
        for entry in slot.randoms:
            chosen.setdefault(id(entry), (entry, []))[1].append("random")
        if not slot.group:
            slot.group = self._rng.getrandbits(62) + 1
        built: dict[int, tuple[Any, TraceSample]] = {}
        samples = []
        for key, (entry, reasons) in chosen.items():
            cached = slot.built.get(key)
            # ids are reused once an entry is freed: the cache holds the entry itself.
            if cached is not None and cached[0] is entry:
                sample = cached[1]
            else:
                sample = self._build_trace(name, entry)
            sample.reason = ",".join(reasons)
            sample.group = slot.group
            built[key] = (entry, sample)
            samples.append(sample)
        slot.built = built  # samples no longer chosen are forgotten
        return samples

    # -- output ------------------------------------------------------------------

    def only_gauges_pending(self) -> bool:
        """Whether nothing but gauge samples waits to be written (no operation, no trace)."""
        if self._drops or self._findings or self._deferred:
            return False
        if any(key[2] != "gauge" for key in self._rollups):
            return False
        return not any(slot.dirty for slot in self._slots.values())

    @property
    def pending_events(self) -> int:
        """Operations taken but not yet committed to the store (waiting steps included)."""
        return int(sum(acc[0] for acc in self._rollups.values())) + len(self._deferred)

    def batch(self, now_ns: int | None = None) -> Batch:
        """Everything pending, as a batch: rollups, and the trace samples that changed.

        Samples of minutes still open at ``now_ns`` are included too (the store replaces
        them as they change); ``now_ns=None`` closes every minute (final flush, imports).
        """
        self._flush_deferred(now_ns)
        service, instance = self.service, self.instance
        rollups = [
            Rollup(
                SeriesKey(service, instance, name, kind, status, flow, tags),
                minute * MINUTE,
                MINUTE,
                acc[0],
                acc[1],
                acc[2],
                acc[3],
                Sketch(acc[4], acc[5]),
            )
            for (minute, name, kind, status, flow, tags), acc in self._rollups.items()
        ]
        open_minute = None if now_ns is None else now_ns // _NS_PER_MINUTE
        traces: list[TraceSample] = []
        emitted: list[_Slot] = []
        for (_minute, name), slot in self._slots.items():
            if slot.dirty:
                traces.extend(self._slot_traces(name, slot))
                emitted.append(slot)
        drops = [
            DropCount(service, instance, minute * MINUTE, reason, count)
            for (minute, reason), count in self._drops.items()
        ]
        batch = Batch(rollups, traces, drops, list(self._findings.values()))
        self._batched_minute = open_minute
        self._emitted = emitted
        return batch

    def commit(self) -> None:
        """Forget what the last :meth:`batch` returned: the store has it now."""
        self._rollups = {}
        self._drops = {}
        self._findings = {}
        for slot in self._emitted:
            slot.dirty = False
        self._emitted = []
        open_minute = self._batched_minute
        if open_minute is None:
            self._slots = {}
        else:
            # Keep the previous minute's slots a little: flows that started in it may
            # still end (their samples then replace its group instead of adding one).
            self._slots = {
                k: v for k, v in self._slots.items() if k[0] >= open_minute - 1 or v.dirty
            }

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
