"""The records that flow from the pipeline to the stores and back out to analysis.

Times are integers: wall-clock instants in epoch nanoseconds (``*_ns``) or epoch
seconds for rollup bucket starts, durations in nanoseconds. Rollups at minute
resolution come out of the pipeline; stores roll them up into hours and days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._sketch import Sketch

__all__ = [
    "DAY",
    "HOUR",
    "MINUTE",
    "OVERFLOW_NAME",
    "RESOLUTIONS",
    "STATUSES",
    "Batch",
    "Checkpoint",
    "Child",
    "DropCount",
    "Finding",
    "Operation",
    "Rollup",
    "SeriesKey",
    "TraceSample",
    "decode_tags",
    "encode_tags",
]

MINUTE, HOUR, DAY = 60, 3600, 86400
#: Every rollup exists at these resolutions (seconds), finest first.
RESOLUTIONS = (MINUTE, HOUR, DAY)
STATUSES = ("ok", "error", "cancelled")
#: Operations whose names exceed the name cardinality cap are counted under this name.
OVERFLOW_NAME = "(other)"


class SeriesKey(NamedTuple):
    """What a rollup is about: one operation of one process, with one outcome.

    ``flow`` is the name of the flow the operation ran in (``""`` for flows themselves
    and for operations outside any flow), so a report can say where a command's time
    goes; ``tags`` the operation's tags, encoded by :func:`encode_tags` (``""`` if none).
    """

    service: str
    instance: str
    name: str
    kind: str
    status: str
    flow: str = ""
    tags: str = ""

    @property
    def tag_dict(self) -> dict[str, str]:
        """The tags as a dict."""
        return decode_tags(self.tags)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace("=", "\\=")


def encode_tags(tags: dict[str, str]) -> str:
    """``{"cache": "hit", "shard": "1"}`` → ``"cache=hit;shard=1"`` (sorted, escaped)."""
    return ";".join(f"{_escape(k)}={_escape(v)}" for k, v in sorted(tags.items()))


def decode_tags(text: str) -> dict[str, str]:
    """The inverse of :func:`encode_tags`."""
    out: dict[str, str] = {}
    if not text:
        return out
    key: list[str] = []
    value: list[str] = []
    current = key
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, ""))
        elif ch == "=" and current is key:
            current = value
        elif ch == ";":
            out["".join(key)] = "".join(value)
            key, value = [], []
            current = key
        else:
            current.append(ch)
    out["".join(key)] = "".join(value)
    return out


@dataclass(slots=True)
class Rollup:
    """Aggregated durations of one series over one time bucket."""

    key: SeriesKey
    start: int  # bucket start, epoch seconds, a multiple of ``resolution``
    resolution: int  # seconds: MINUTE, HOUR or DAY
    count: int
    sum_ns: int
    min_ns: int
    max_ns: int
    sketch: Sketch

    def merge(self, other: Rollup) -> None:
        """Fold ``other`` (same series, any bucket) into this rollup."""
        self.merge_totals(other.count, other.sum_ns, other.min_ns, other.max_ns)
        self.sketch.merge(other.sketch)

    def merge_totals(self, count: int, sum_ns: int, min_ns: int, max_ns: int) -> None:
        """Fold another rollup's count, sum, min and max (its sketch is merged separately)."""
        self.count += count
        self.sum_ns += sum_ns
        self.min_ns = min(self.min_ns, min_ns)
        self.max_ns = max(self.max_ns, max_ns)

    def copy(self) -> Rollup:
        """An independent copy (the sketch is copied too)."""
        return Rollup(
            self.key,
            self.start,
            self.resolution,
            self.count,
            self.sum_ns,
            self.min_ns,
            self.max_ns,
            self.sketch.copy(),
        )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A named point in a flow, ``at_ns`` after the flow started."""

    name: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class Child:
    """An operation that ran inside a flow; ``start_ns`` is an offset from the flow's start."""

    name: str
    kind: str
    start_ns: int
    duration_ns: int
    status: str
    error: str | None = None
    depth: int = 1
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TraceSample:
    """The full tree of one flow, kept because it was slow, failed, or randomly picked."""

    service: str
    instance: str
    name: str
    started_ns: int
    duration_ns: int
    status: str
    error: str | None
    reason: str  # "slowest", "error", "random", or several joined by ","
    checkpoints: list[Checkpoint] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    truncated: int = 0  # children/checkpoints beyond the per-flow cap
    tags: dict[str, str] = field(default_factory=dict)
    #: Samples of one (flow series, minute) written by one sampling slot share a group id;
    #: a store replaces the whole group when it is written again (the open minute is
    #: rewritten at every flush). 0: a group of its own (imports).
    group: int = 0


@dataclass(frozen=True, slots=True)
class DropCount:
    """Events lost for ``reason`` during the minute starting at ``start`` (epoch seconds)."""

    service: str
    instance: str
    start: int
    reason: str
    count: int


@dataclass(slots=True)
class Batch:
    """One unit of writing: minute rollups, trace samples, drop counts and findings."""

    rollups: list[Rollup] = field(default_factory=list)
    traces: list[TraceSample] = field(default_factory=list)
    drops: list[DropCount] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: The writer's clock when the batch was made (epoch ns; 0: the store reads its own).
    #: Stores may treat the minutes still open at that time differently (staging).
    now_ns: int = 0
    #: The writer's last batch (shutdown): nothing stays staged.
    final: bool = False

    def __bool__(self) -> bool:
        return bool(self.rollups or self.traces or self.drops or self.findings)

    @property
    def event_count(self) -> int:
        """How many operations the batch's rollups account for."""
        return sum(r.count for r in self.rollups if r.resolution == MINUTE)


@dataclass(slots=True)
class Operation:
    """One finished operation with an explicit wall-clock start, for imports and tests.

    The pipeline builds these implicitly from ``measure()``/``flow()``; pass them to
    :meth:`botpulse.store.Store.write_operations` to record history with past
    timestamps (e.g. synthetic weeks for analysis tests).
    """

    name: str
    started_ns: int
    duration_ns: int
    kind: str = "op"
    status: str = "ok"
    error: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    #: The flow it ran in, for a step recorded on its own (``""``: none).
    flow: str = ""


@dataclass(slots=True)
class Finding:
    """What a detector concluded: a problem at one place, with counts and an example.

    ``type`` names the detector (``n_plus_one``, ``slow_query``, ``cache_candidate``,
    ``blocking_call``, ``pool_saturation``, ``sync_on_loop``, ``interaction_deadline``,
    ...); ``subject`` is what it is about (a SQL fingerprint, an operation name, a
    ``file:line``); ``flow`` the flow it happened in (``""`` if none). Findings with the
    same ``(service, type, flow, subject)`` merge: counts and times add up, first and
    last seen widen, the newest example and details win. ``total_ns`` is the time
    involved, which ``botpulse audit`` ranks by. ``example`` and ``details`` are small
    JSON-safe dicts (an example trace reference, a stack, thresholds, advice inputs).
    """

    type: str
    subject: str
    flow: str = ""
    service: str = ""
    instance: str = ""
    count: int = 1
    total_ns: int = 0
    max_ns: int = 0
    first_seen_ns: int = 0
    last_seen_ns: int = 0
    source: str | None = None
    example: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies a finding: ``(service, type, flow, subject)``."""
        return (self.service, self.type, self.flow, self.subject)

    def merge(self, other: Finding) -> None:
        """Fold ``other`` (same key) into this finding."""
        self.count += other.count
        self.total_ns += other.total_ns
        self.max_ns = max(self.max_ns, other.max_ns)
        first = other.first_seen_ns
        if first and (not self.first_seen_ns or first < self.first_seen_ns):
            self.first_seen_ns = first
        if other.last_seen_ns >= self.last_seen_ns:
            self.last_seen_ns = other.last_seen_ns
            if other.example:
                self.example = other.example
            if other.details:
                self.details = other.details
            if other.source:
                self.source = other.source
        elif not self.source:
            self.source = other.source
