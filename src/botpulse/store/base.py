"""The store interface: how the pipeline writes and how every reader (CLI, dashboard) reads.

A store keeps rollups at three resolutions. The pipeline writes minute rollups; the
store folds each of them into its minute, hour and day rows in the same transaction,
so coarser rows are always complete. Aging is deletion: minute rows expire first
(2 days), hour rows next (35 days), day rows last (90 days), trace samples after 7
days. A read over any window is planned onto the coarsest rows that cover it
(:func:`plan_window`): whole days from day rows, whole hours from hour rows, the
edges from minute rows, so a 30-day report reads about 30 rows per series.

Writers and readers meet only here: the CLI never reaches into a running bot.
"""

from __future__ import annotations

import fnmatch
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._aggregate import Aggregator
from .._model import (
    DAY,
    HOUR,
    MINUTE,
    RESOLUTIONS,
    Batch,
    Finding,
    Operation,
    Rollup,
    SeriesKey,
    TraceSample,
)

__all__ = [
    "Activity",
    "Retention",
    "FINDING_COLUMNS",
    "finding_from_row",
    "merge_findings",
    "SeriesFilter",
    "Store",
    "Summary",
    "WindowPlan",
    "default_group",
    "series_group",
    "refine_plan",
    "expand_resolutions",
    "merge_spans",
    "plan_window",
    "to_epoch_seconds",
]


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each kind of data is kept, in days."""

    traces_days: float = 7
    minute_rollups_days: float = 2
    hour_rollups_days: float = 35
    rollups_days: float = 90

    def __post_init__(self) -> None:
        for name in ("traces_days", "minute_rollups_days", "hour_rollups_days", "rollups_days"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"retention {name}={value!r} must be a positive number of days")

    def horizon(self, resolution: int, now_s: float) -> float:
        """The oldest bucket start (epoch seconds) still kept at ``resolution``."""
        days = {
            MINUTE: self.minute_rollups_days,
            HOUR: self.hour_rollups_days,
            DAY: self.rollups_days,
        }[resolution]
        return now_s - days * DAY


@dataclass(frozen=True, slots=True)
class SeriesFilter:
    """Which series a read selects (``None`` = any).

    ``name`` is a glob; ``kind``, ``service``, ``instance``, ``status`` exact; ``flow``
    the flow an operation ran in (``""``: flows themselves and operations outside any flow).
    """

    name: str | None = None
    kind: str | None = None
    service: str | None = None
    instance: str | None = None
    flow: str | None = None
    status: str | None = None

    def matches(self, key: SeriesKey) -> bool:
        """Whether ``key`` is selected."""
        if self.kind is not None and key.kind != self.kind:
            return False
        if self.service is not None and key.service != self.service:
            return False
        if self.instance is not None and key.instance != self.instance:
            return False
        if self.flow is not None and key.flow != self.flow:
            return False
        if self.status is not None and key.status != self.status:
            return False
        return self.name is None or fnmatch.fnmatchcase(key.name, self.name)


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Segments ``(resolution, start, end)`` covering a window, and what they cover."""

    segments: tuple[tuple[int, int, int], ...]
    start: int
    end: int


@dataclass(slots=True)
class Summary:
    """Rollups merged over a window, per group of series.

    By default a group is ``(service, name, kind, status)``: merged across instances,
    flows and tags. ``Store.summarize(group=...)`` groups otherwise.
    """

    start: int  # covered window, epoch seconds
    end: int
    rollups: dict[tuple[str, ...], Rollup] = field(default_factory=dict)

    def regroup(
        self,
        group: Callable[[SeriesKey], tuple[str, ...]] | None = None,
        selector: SeriesFilter | None = None,
    ) -> Summary:
        """This summary merged per ``group(key)`` over the series ``selector`` selects.

        Regrouping a summary read per series (``group=series_group``) gives what
        :meth:`Store.summarize` would return for that grouping, without another read:
        a report reads its window once for its operations, steps, splits and gauges.
        This summary is left unchanged.
        """
        group = group or default_group
        out = Summary(self.start, self.end)
        into = out.rollups
        for rollup in self.rollups.values():
            if selector is not None and not selector.matches(rollup.key):
                continue
            key = group(rollup.key)
            have = into.get(key)
            if have is None:
                into[key] = rollup.copy()
            else:
                have.merge(rollup)
        return out


def default_group(key: SeriesKey) -> tuple[str, ...]:
    """``(service, name, kind, status)``: the default grouping of :meth:`Store.summarize`."""
    return (key.service, key.name, key.kind, key.status)


def series_group(key: SeriesKey) -> tuple[str, ...]:
    """Every field of the key: one group per series (see :meth:`Summary.regroup`)."""
    return tuple(key)


def refine_plan(plan: WindowPlan, pending: Iterable[tuple[int, int]]) -> WindowPlan:
    """Read buckets that are not folded yet (``pending``) from the next finer rows."""
    pending_set = set(pending)
    if not pending_set:
        return plan
    segments: list[tuple[int, int, int]] = []

    def add(res: int, lo: int, hi: int) -> None:
        if res == MINUTE:
            segments.append((res, lo, hi))
            return
        finer = RESOLUTIONS[RESOLUTIONS.index(res) - 1]
        run_lo: int | None = None
        for bucket in range(lo, hi, res):
            if (res, bucket) in pending_set:
                if run_lo is not None:
                    segments.append((res, run_lo, bucket))
                    run_lo = None
                add(finer, bucket, bucket + res)
            elif run_lo is None:
                run_lo = bucket
        if run_lo is not None:
            segments.append((res, run_lo, hi))

    for res, lo, hi in plan.segments:
        add(res, lo, hi)
    return WindowPlan(tuple(segments), plan.start, plan.end)


_IMPORT_CHUNK = 50_000


def _started(op: Operation) -> int:
    return op.started_ns if isinstance(op.started_ns, int) else 0


@dataclass(slots=True)
class Activity:
    """What one process (service, instance) recorded in a window, and when.

    ``count``, ``errors`` and ``cancelled`` count operations (gauge samples are not
    operations, but they do make a minute active). ``spans`` are the bucket-aligned
    ``(start, end)`` epoch-second spans in which it recorded anything, merged and
    sorted: whole minutes where minute rows are kept, whole hours or days where only
    coarser rows remain. ``first_s``/``last_s`` are the
    start of the first span and the end of the last.
    """

    service: str
    instance: str
    count: int = 0
    errors: int = 0
    cancelled: int = 0
    spans: list[tuple[int, int]] = field(default_factory=list)

    @property
    def first_s(self) -> int:
        """Start of the first bucket with data (epoch seconds)."""
        return self.spans[0][0] if self.spans else 0

    @property
    def last_s(self) -> int:
        """End of the last bucket with data (epoch seconds)."""
        return self.spans[-1][1] if self.spans else 0

    @property
    def active_minutes(self) -> int:
        """Minutes in which this process recorded anything."""
        return sum(end - start for start, end in self.spans) // MINUTE


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping ``(start, end)`` spans covering the same time as ``spans``."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def to_epoch_seconds(moment: datetime | float | int) -> float:
    """Epoch seconds of an aware datetime (naive means UTC) or a number."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return float(moment)


def plan_window(since_s: float, until_s: float, now_s: float, retention: Retention) -> WindowPlan:
    """Cover ``[since, until)`` with the coarsest buckets that fit, finest at the edges.

    Buckets that overlap the window edges are included whole (minute granularity at
    best). Where minute rows have expired the edge widens to whole hours, and where
    hour rows have expired to whole days; the plan's ``start``/``end`` say what is covered.
    """
    start = math.floor(since_s / MINUTE) * MINUTE
    end = math.ceil(until_s / MINUTE) * MINUTE
    if end <= start:
        end = start + MINUTE
    segments: list[tuple[int, int, int]] = []

    def cover(lo: int, hi: int, resolutions: Sequence[int]) -> None:
        # Cover [lo, hi) (aligned to resolutions[-1]) with resolutions[0] in the middle.
        if hi <= lo:
            return
        res = resolutions[0]
        if len(resolutions) == 1:
            segments.append((res, lo, hi))
            return
        a = math.ceil(lo / res) * res
        b = math.floor(hi / res) * res
        if b > a:
            segments.append((res, a, b))
            cover(lo, a, resolutions[1:])
            cover(b, hi, resolutions[1:])
        else:
            cover(lo, hi, resolutions[1:])

    cover(start, end, (DAY, HOUR, MINUTE))

    # Widen segments whose rows have expired to the next coarser resolution.
    widened: list[tuple[int, int, int]] = []
    for segment in segments:
        res, lo, hi = segment
        while res != DAY and lo < retention.horizon(res, now_s):
            res = RESOLUTIONS[RESOLUTIONS.index(res) + 1]
            lo = math.floor(lo / res) * res
            hi = math.ceil(hi / res) * res
        widened.append((res, lo, hi))
    merged = _merge_overlaps(widened)
    cov_start = min(lo for _r, lo, _h in merged)
    cov_end = max(hi for _r, _l, hi in merged)
    return WindowPlan(tuple(merged), cov_start, cov_end)


def _merge_overlaps(segments: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    # A widened coarse segment may swallow finer ones next to it: keep coarse, trim fine.
    coarse_first = sorted(segments, key=lambda s: -s[0])
    kept: list[tuple[int, int, int]] = []
    for res, lo, hi in coarse_first:
        pieces = [(lo, hi)]
        for _r, klo, khi in kept:
            next_pieces = []
            for plo, phi in pieces:
                if phi <= klo or plo >= khi:
                    next_pieces.append((plo, phi))
                    continue
                if plo < klo:
                    next_pieces.append((plo, klo))
                if phi > khi:
                    next_pieces.append((khi, phi))
            pieces = next_pieces
        kept.extend((res, plo, phi) for plo, phi in pieces if phi > plo)
    return sorted(kept, key=lambda s: (s[1], s[0]))


def expand_resolutions(
    rollups: Iterable[Rollup], resolutions: Sequence[int] = RESOLUTIONS
) -> dict[tuple[int, int, SeriesKey], Rollup]:
    """Fold minute rollups into their buckets at ``resolutions`` (pre-merged, copied)."""
    out: dict[tuple[int, int, SeriesKey], Rollup] = {}
    for rollup in rollups:
        for res in resolutions:
            if res < rollup.resolution:
                continue
            start = rollup.start - rollup.start % res
            key = (res, start, rollup.key)
            have = out.get(key)
            if have is None:
                copy = rollup.copy()
                copy.start = start
                copy.resolution = res
                out[key] = copy
            else:
                have.merge(rollup)
    return out


class Store(ABC):
    """Where rollups, trace samples and drop counts live; one implementation per backend.

    Implementations: :class:`~botpulse.store.memory.MemoryStore` (tests, short-lived
    runs) and :class:`~botpulse.store.sqlite.SQLiteStore` (the embedded default). Every
    backend passes the same contract tests (``tests/store/test_contract.py``).

    Example::

        store = botpulse.store.open_store("sqlite:///botpulse.db")
        summary = store.summarize(since, until, SeriesFilter(name="db.*"))
    """

    retention: Retention

    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention or Retention()

    # -- writing -----------------------------------------------------------------

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Write a batch atomically: all of it or none; raise StoreError on failure."""

    def write_operations(
        self,
        operations: Iterable[Operation],
        *,
        service: str = "imported",
        instance: str = "import",
    ) -> int:
        """Record operations with explicit past timestamps; return how many were stored.

        Any amount of history is streamed in bounded chunks (each sorted by time,
        aggregated and written in one transaction), so memory stays bounded and nothing
        is dropped. Raises ``ValueError``/``TypeError`` at the first invalid operation;
        the chunks before it are already stored. Hour and day rows of buckets that have
        closed are completed before returning.

        Example::

            store.write_operations(
                (Operation("leaderboard", started_ns, duration_ns, kind="flow") for ...),
                service="mybot",
            )
        """
        stored = 0
        chunk: list[Operation] = []
        for op in operations:
            chunk.append(op)
            if len(chunk) >= _IMPORT_CHUNK:
                stored += self._write_chunk(chunk, service, instance)
                chunk = []
        if chunk:
            stored += self._write_chunk(chunk, service, instance)
        while self.fold(limit=100):
            pass
        return stored

    def _write_chunk(self, chunk: list[Operation], service: str, instance: str) -> int:
        chunk.sort(key=_started)
        aggregator = Aggregator(service, instance, max_pending_rollups=len(chunk) + 1)
        count = aggregator.add_operations(chunk)
        self.write(aggregator.batch(None))
        return count

    @abstractmethod
    def apply_retention(self, now_s: float | None = None) -> int:
        """Delete what has aged out; return how many rows were deleted."""

    # -- reading (the only way analysis, the CLI and the dashboard read data) ----

    @abstractmethod
    def read_rollups(
        self, resolution: int, start_s: int, end_s: int, selector: SeriesFilter
    ) -> Iterator[Rollup]:
        """Rows at ``resolution`` whose bucket starts in ``[start_s, end_s)``."""

    @abstractmethod
    def read_traces(
        self,
        since_s: float,
        until_s: float,
        selector: SeriesFilter | None = None,
        *,
        limit: int = 10,
        order: str = "slowest",
    ) -> list[TraceSample]:
        """Trace samples that started in the window, slowest first (or ``order="recent"``)."""

    @abstractmethod
    def read_drops(self, since_s: float, until_s: float) -> dict[str, int]:
        """Events lost per reason in the window (minute granularity)."""

    @abstractmethod
    def series(self) -> list[SeriesKey]:
        """Every series the store has ever seen."""

    @abstractmethod
    def read_findings(
        self,
        since_s: float,
        until_s: float,
        *,
        type: str | None = None,  # noqa: A002 - the finding's type
        service: str | None = None,
        instance: str | None = None,
    ) -> list[Finding]:
        """Findings seen in the window (hour granularity), merged across hours and instances.

        One entry per ``(service, type, flow, subject)``, most total time first; a merged
        entry's ``instance`` is the instance name when only one reported it, else ``"*"``.
        """

    def summarize(
        self,
        since: datetime | float,
        until: datetime | float,
        selector: SeriesFilter | None = None,
        *,
        now: datetime | float | None = None,
        group: Callable[[SeriesKey], tuple[str, ...]] = default_group,
    ) -> Summary:
        """Rollups merged over the window across buckets, per ``group(series key)``.

        The default group is ``(service, name, kind, status)``, merging instances,
        flows and tags; pass e.g. ``lambda k: (k.service, k.flow, k.name, k.kind, k.status)``
        for per-flow steps.
        """
        selector = selector or SeriesFilter()
        now_s = time.time() if now is None else to_epoch_seconds(now)
        plan = plan_window(to_epoch_seconds(since), to_epoch_seconds(until), now_s, self.retention)
        plan = refine_plan(plan, self.pending_buckets())
        summary = Summary(plan.start, plan.end)
        for res, lo, hi in plan.segments:
            self._fold_rollups(res, lo, hi, selector, summary.rollups, group)
        return summary

    def pending_buckets(self) -> list[tuple[int, int]]:
        """``(resolution, start)`` of hour/day buckets whose rows are not complete yet.

        Readers take those from finer rows. Backends that fold at write time have none.
        """
        return []

    def fold(self, now_s: float | None = None, *, limit: int = 1) -> int:
        """Complete up to ``limit`` closed hour/day buckets; return how many (default: none)."""
        return 0

    def _fold_rollups(
        self,
        resolution: int,
        start_s: int,
        end_s: int,
        selector: SeriesFilter,
        into: dict[tuple[str, ...], Rollup],
        group: Callable[[SeriesKey], tuple[str, ...]] = default_group,
    ) -> None:
        """Merge the rows of one plan segment into ``into``, per ``group(key)``.

        Backends may override this with a faster path; the result must be the same.
        """
        for rollup in self.read_rollups(resolution, start_s, end_s, selector):
            key = group(rollup.key)
            have = into.get(key)
            if have is None:
                into[key] = rollup  # read_rollups returns fresh objects: take it
            else:
                have.merge(rollup)

    # -- activity reads (issue 7: report rates, covered span, per-instance summary) --
    # Read-only and generic over read_rollups(). A backend may override
    # _activity_rows() with a query that skips the sketches when only activity is read.

    #: How many operations' worth of coarse buckets an activity read re-reads per minute.
    ACTIVITY_REFINE_BUDGET = 5_000

    def read_activity(
        self,
        since: datetime | float,
        until: datetime | float,
        selector: SeriesFilter | None = None,
        *,
        now: datetime | float | None = None,
    ) -> list[Activity]:
        """Per (service, instance): counts and the bucket spans in which it recorded anything.

        Reads the rows :meth:`summarize` reads (:func:`plan_window`: minute rows at the
        window's edges, hour and day rows in the middle of longer windows), then, where
        minute rows are still kept, re-reads at minute resolution the first and last
        coarse bucket of each process and the quietest other ones, fewest operations
        first, up to ``ACTIVITY_REFINE_BUDGET`` operations in all. So a bot that is idle
        most of the time gets exact active minutes and first/last seen; a busy hour read
        from an hour row counts whole. Sorted by service and instance.

        Example::

            for a in store.read_activity(since, until):
                print(a.service, a.instance, a.count, a.active_minutes, a.last_s)
        """
        selector = selector or SeriesFilter()
        fold = _ActivityFold(selector, None)
        self._read_activity(fold, since, until, now)
        return fold.activities()

    def summarize_activity(
        self,
        since: datetime | float,
        until: datetime | float,
        selector: SeriesFilter | None = None,
        *,
        now: datetime | float | None = None,
        group: Callable[[SeriesKey], tuple[str, ...]] = default_group,
        read: SeriesFilter | None = None,
    ) -> tuple[Summary, list[Activity], list[tuple[int, int]]]:
        """:meth:`summarize` and :meth:`read_activity` together, for a report.

        Returns the summary of the series ``selector`` selects (of those ``read``
        selects, when given: a report reads once, per series, everything its sections
        need), grouped by ``group``; the activity of every process ``selector``
        selects (only its ``service`` and ``instance`` apply: a process is active
        whatever it recorded); and the spans in which the series ``selector`` selects
        have data (what a report covers).

        Example::

            summary, activity, covered = store.summarize_activity(since, until, selector)
        """
        selector = selector or SeriesFilter()
        summary = self.summarize(since, until, read or selector, now=now, group=group)
        processes = SeriesFilter(service=selector.service, instance=selector.instance)
        fold = _ActivityFold(processes, selector)
        self._read_activity(fold, since, until, now)
        return summary, fold.activities(), fold.covered()

    def _activity_rows(
        self, resolution: int, start_s: int, end_s: int, selector: SeriesFilter, *, sketches: bool
    ) -> Iterator[Rollup]:
        """Rows for an activity read, as :meth:`read_rollups` returns them.

        With ``sketches=False`` only each row's key, start and count are used: a backend
        may override this to skip reading and decoding the sketches (the generic
        version decodes them, which makes an activity read cost about a summarize).
        """
        return self.read_rollups(resolution, start_s, end_s, selector)

    def _read_activity(
        self,
        fold: _ActivityFold,
        since: datetime | float,
        until: datetime | float,
        now: datetime | float | None,
    ) -> WindowPlan:
        now_s = time.time() if now is None else to_epoch_seconds(now)
        plan = plan_window(to_epoch_seconds(since), to_epoch_seconds(until), now_s, self.retention)
        plan = refine_plan(plan, self.pending_buckets())
        for res, lower, upper in plan.segments:
            rows = self._activity_rows(
                res, math.floor(lower / res) * res, upper, fold.processes, sketches=False
            )
            for rollup in rows:
                fold.add(rollup, res, lower, upper)
        horizon = self.retention.horizon(MINUTE, now_s)
        for bucket, keys in fold.to_refine(horizon, self.ACTIVITY_REFINE_BUDGET):
            lo, hi = fold.clip[bucket]
            rows = self._activity_rows(MINUTE, lo, hi, fold.processes, sketches=False)
            fold.refine(bucket, keys, rows)
        return plan

    # -- lifecycle ---------------------------------------------------------------

    def describe(self) -> str:
        """A one-line description safe to log (credentials masked)."""
        return type(self).__name__

    def before_fork(self) -> None:  # noqa: B027 - optional hook
        """Called before fork(): finish in-flight writes, close connections. Default: nothing."""

    def after_fork_in_parent(self) -> None:  # noqa: B027 - optional hook
        """Called in the parent after fork(). Default: nothing."""

    def after_fork(self) -> None:  # noqa: B027 - optional hook
        """Called in a forked child before use: reopen connections. Default: nothing."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_COVERED = ("", "\x00covered")  # the pseudo-process whose spans are what a report covers


class _ActivityFold:
    """Accumulates an activity read: per process counts and spans; with ``folding``, also
    the spans of the series it selects (what a report covers)."""

    def __init__(self, processes: SeriesFilter, folding: SeriesFilter | None) -> None:
        self.processes = processes
        self.folding = folding
        self.found: dict[tuple[str, str], Activity] = {}
        # per process: bucket (resolution, start) -> the spans it has data in there
        self.spans: dict[tuple[str, str], dict[tuple[int, int], set[tuple[int, int]]]] = {}
        self.counts: dict[tuple[tuple[str, str], int, int], int] = {}
        self.clip: dict[tuple[int, int], tuple[int, int]] = {}

    def add(self, rollup: Rollup, res: int, lower: int, upper: int) -> None:
        lo, hi = max(rollup.start, lower), min(rollup.start + res, upper)
        if hi <= lo or rollup.count <= 0:
            return
        key = rollup.key
        process = (key.service, key.instance)
        activity = self.found.get(process)
        if activity is None:
            activity = self.found[process] = Activity(*process)
        if key.kind != "gauge":  # a sample, not an operation; it still shows the process ran
            activity.count += rollup.count
            if key.status == "error":
                activity.errors += rollup.count
            elif key.status == "cancelled":
                activity.cancelled += rollup.count
        self._mark(process, rollup, res, lo, hi)
        if self.folding is not None and self.folding.matches(key):
            self._mark(_COVERED, rollup, res, lo, hi)

    def _mark(self, process: tuple[str, str], rollup: Rollup, res: int, lo: int, hi: int) -> None:
        bucket = (res, rollup.start)
        self.spans.setdefault(process, {}).setdefault(bucket, set()).add((lo, hi))
        if res != MINUTE:
            self.clip[bucket] = (lo, hi)
            self.counts[process, res, rollup.start] = (
                self.counts.get((process, res, rollup.start), 0) + rollup.count
            )

    def to_refine(
        self, horizon: float, budget: int
    ) -> list[tuple[tuple[int, int], set[tuple[str, str]]]]:
        """Coarse buckets worth re-reading per minute: each process's first and last,
        then the quietest, while their operations fit ``budget``."""
        edges: dict[tuple[str, str], tuple[int, int]] = {}
        for process, _res, start in self.counts:
            first, last = edges.get(process, (start, start))
            edges[process] = (min(first, start), max(last, start))
        candidates = sorted(
            (start not in edges[process], count, process, res, start)
            for (process, res, start), count in self.counts.items()
            if start >= horizon
        )
        chosen: dict[tuple[int, int], set[tuple[str, str]]] = {}
        spent = 0
        for _inner, count, process, res, start in candidates:
            if spent + count > budget:
                continue
            spent += count
            chosen.setdefault((res, start), set()).add(process)
        return sorted(chosen.items())

    def refine(
        self, bucket: tuple[int, int], processes: set[tuple[str, str]], rows: Iterable[Rollup]
    ) -> None:
        """Replace ``bucket``'s whole span by its minutes with data, for ``processes``."""
        minutes: dict[tuple[str, str], set[tuple[int, int]]] = {}
        for rollup in rows:
            if rollup.count <= 0:
                continue
            span = (rollup.start, rollup.start + MINUTE)
            process = (rollup.key.service, rollup.key.instance)
            if process in processes:
                minutes.setdefault(process, set()).add(span)
            if _COVERED in processes and self.folding and self.folding.matches(rollup.key):
                minutes.setdefault(_COVERED, set()).add(span)
        for process, spans in minutes.items():
            self.spans[process][bucket] = spans

    def _merged(self, process: tuple[str, str]) -> list[tuple[int, int]]:
        buckets = self.spans.get(process, {})
        return merge_spans(span for spans in buckets.values() for span in spans)

    def activities(self) -> list[Activity]:
        for process, activity in self.found.items():
            activity.spans = self._merged(process)
        return [self.found[process] for process in sorted(self.found)]

    def covered(self) -> list[tuple[int, int]]:
        return self._merged(_COVERED)


def merge_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Merge stored finding rows per ``(service, type, flow, subject)``, most total time first."""
    merged: dict[tuple[str, str, str, str], Finding] = {}
    for finding in findings:
        have = merged.get(finding.key)
        if have is None:
            merged[finding.key] = finding
        else:
            if have.instance != finding.instance:
                have.instance = "*"
            have.merge(finding)
    return sorted(merged.values(), key=lambda f: (-f.total_ns, -f.count, f.type, f.subject))


#: The column order :func:`finding_from_row` reads (every backend selects these).
FINDING_COLUMNS = (
    "service, instance, type, flow, subject, count, total_ns, max_ns, "
    "first_seen_ns, last_seen_ns, source, example, details"
)


def finding_from_row(r: Sequence[Any]) -> Finding:
    """A stored finding row (:data:`FINDING_COLUMNS`) as a :class:`Finding`.

    Raises ``ValueError`` when its JSON example or details are damaged.
    """
    return Finding(
        type=r[2],
        subject=r[4],
        flow=r[3],
        service=r[0],
        instance=r[1],
        count=int(r[5]),
        total_ns=int(r[6]),
        max_ns=int(r[7]),
        first_seen_ns=int(r[8]),
        last_seen_ns=int(r[9]),
        source=r[10],
        example=json.loads(r[11]),
        details=json.loads(r[12]),
    )
