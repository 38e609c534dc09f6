"""Query detectors: N+1, slow query and repeated identical read, run in the pipeline.

They look at the steps of every finished flow (``_detect.FlowRecord``) of kind ``db``,
``redis`` and ``http`` — recorded by :func:`botpulse.instrument` or measured by hand —
and report findings that ``botpulse audit`` ranks:

- ``n_plus_one``: one flow ran the same statement (fingerprint, or operation name for
  hand-measured ones) at least ``n_plus_one_count`` times one after the other, taking at
  least ``n_plus_one_ms`` in total. Executions that overlap (``asyncio.gather``) count as
  one round, so parallel work is not a loop; a batch (``IN``/``ANY``/``executemany``) is
  one execution and never qualifies.
- ``slow_query``: a statement whose p95 over its last 200 executions is above
  ``slow_ms``, or any single execution above ``very_slow_ms``.
- ``cache_candidate``: the same read (SELECT, Redis GET-like command, HTTP GET) with the
  same parameters (compared by a hash kept in memory, never stored) at least
  ``repeat_count`` times within one flow or within ``repeat_window_s``.

Thresholds come from :func:`botpulse.instrument`'s options, per flow where ``flows=``
overrides them. State is bounded (names, keys and samples are capped).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable
from typing import Any

from .. import _detect
from .._model import Finding
from . import _common
from ._common import PARAMS_KEY

__all__ = ["QueryDetector", "disable", "enable", "params_hash"]

QUERY_KINDS = frozenset({"db", "redis", "http"})
_NOT_A_LOOP = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "END"})
_REDIS_READS = frozenset(
    """GET MGET HGET HMGET HGETALL HKEYS HVALS HEXISTS HLEN EXISTS TTL PTTL TYPE STRLEN
    GETRANGE SMEMBERS SISMEMBER SMISMEMBER SCARD LRANGE LINDEX LLEN ZRANGE ZRANGEBYSCORE
    ZREVRANGE ZSCORE ZRANK ZREVRANK ZCARD ZCOUNT XRANGE XLEN GEOPOS""".split()  # noqa: SIM905
)
_MAX_NAMES = 2_000
_MAX_REPEAT_KEYS = 20_000
_SAMPLES = 200
_MAX_PENDING = 1_000
_NS_PER_MS = 1_000_000


def params_hash(value: Any) -> int:
    """A hash of SQL/command parameters for equality only (never stored)."""
    try:
        if isinstance(value, dict):
            return hash(tuple(sorted((str(k), _hashable(v)) for k, v in value.items())))
        return hash(_hashable(value))
    except Exception:  # noqa: BLE001
        return hash(repr(value)[:2000])


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return repr(value)[:2000]
    return value


class QueryDetector(_detect.Detector):
    """The three query detectors in one pass over each flow's steps."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str, str], Finding] = {}
        self.dropped = 0
        self._sources: dict[tuple[str, str], str] = {}
        self._samples: dict[str, deque[int]] = {}
        self._fresh: dict[str, list[int]] = {}
        self._info: dict[tuple[str, str], tuple[str, bool]] = {}
        self._recent: dict[tuple[str, int], deque[int]] = {}
        self._flow_settings: dict[str, _common.Settings] = {}
        self._generation = -1

    # -- per flow ------------------------------------------------------------------

    def _settings(self, flow: str) -> _common.Settings:
        if self._generation != _common.generation:
            self._flow_settings.clear()
            self._generation = _common.generation
        cfg = self._flow_settings.get(flow)
        if cfg is None:
            if len(self._flow_settings) > _MAX_NAMES:
                self._flow_settings.clear()
            cfg = self._flow_settings[flow] = _common.settings.for_flow(flow)
        return cfg

    def observe(self, flow: _detect.FlowRecord) -> None:
        """Look at one finished flow's queries."""
        steps = [s for s in flow.steps if s.kind in QUERY_KINDS]
        if not steps:
            return
        cfg = self._settings(flow.name)
        by_name: dict[str, list[_detect.Step]] = {}
        for step in steps:
            by_name.setdefault(step.name, []).append(step)
            source = step.attrs.get("source")
            if isinstance(source, str) and len(self._sources) < _MAX_NAMES * 4:
                self._sources[(flow.name, step.name)] = source
        at = flow.started_ns
        for name, runs in by_name.items():
            kind = runs[0].kind
            statement_type, is_read = self._describe(name, kind, runs[0])
            self._n_plus_one(flow, cfg, name, kind, statement_type, runs, at)
            if kind == "db":
                self._slow(flow, cfg, name, runs, at)
            if is_read:
                self._repeats(flow, cfg, name, kind, runs, at)

    def _describe(self, name: str, kind: str, step: _detect.Step) -> tuple[str, bool]:
        info = self._info.get((kind, name))
        if info is not None:
            return info
        statement_type = ""
        is_read = False
        if kind == "db":
            try:
                from ._sql import looks_like_sql, statement_info

                if looks_like_sql(name):
                    parsed = statement_info(name)
                    statement_type, is_read = parsed.type, parsed.is_read
            except ImportError:
                pass
        elif kind == "redis":
            statement_type = name.split(" ", 1)[0].upper()
            is_read = statement_type in _REDIS_READS
        elif kind == "http":
            statement_type = name.split(" ", 1)[0].upper()
            is_read = statement_type in {"GET", "HEAD"}
        if len(self._info) > _MAX_NAMES:
            self._info.clear()
        info = self._info[(kind, name)] = (statement_type, is_read)
        return info

    def _source(self, flow: str, name: str, steps: list[_detect.Step]) -> str | None:
        for step in steps:
            source = step.attrs.get("source")
            if isinstance(source, str):
                return source
        return self._sources.get((flow, name))

    def _n_plus_one(
        self,
        flow: _detect.FlowRecord,
        cfg: _common.Settings,
        name: str,
        kind: str,
        statement_type: str,
        steps: list[_detect.Step],
        at: int,
    ) -> None:
        if len(steps) < cfg.n_plus_one_count or statement_type in _NOT_A_LOOP:
            return
        # Rounds: executions that start after the previous round ended (a loop), not
        # ones that overlap it (gathered in parallel).
        rounds = 0
        end = -1
        total = 0
        longest = 0
        for step in steps:
            if step.start_ns >= end:
                rounds += 1
            end = max(end, step.start_ns + step.duration_ns)
            total += step.duration_ns
            longest = max(longest, step.duration_ns)
        if rounds < cfg.n_plus_one_count or total < cfg.n_plus_one_ms * _NS_PER_MS:
            return
        self._add(
            Finding(
                type="n_plus_one",
                subject=name,
                flow=flow.name,
                count=len(steps),
                total_ns=total,
                max_ns=longest,
                first_seen_ns=at,
                last_seen_ns=at,
                source=self._source(flow.name, name, steps),
                example={
                    "flow": flow.name,
                    "started_ns": flow.started_ns,
                    "executions": len(steps),
                },
                details={
                    "kind": kind,
                    "statement_type": statement_type,
                    "per_flow": len(steps),
                    "rounds": rounds,
                    "saved_ns": max(0, total - longest),
                    "threshold_count": cfg.n_plus_one_count,
                    "threshold_ms": cfg.n_plus_one_ms,
                },
            )
        )

    def _slow(
        self,
        flow: _detect.FlowRecord,
        cfg: _common.Settings,
        name: str,
        steps: list[_detect.Step],
        at: int,
    ) -> None:
        samples = self._samples.get(name)
        if samples is None:
            if len(self._samples) >= _MAX_NAMES:
                return
            samples = self._samples[name] = deque(maxlen=_SAMPLES)
        slow_ns = cfg.slow_ms * _NS_PER_MS
        very_slow_ns = cfg.very_slow_ms * _NS_PER_MS
        for step in steps:
            samples.append(step.duration_ns)
        p95 = _p95(samples)
        over = [s for s in steps if s.duration_ns > very_slow_ns or p95 > slow_ns < s.duration_ns]
        if not over:
            return
        self._add(
            Finding(
                type="slow_query",
                subject=name,
                flow=flow.name,
                count=len(over),
                total_ns=sum(s.duration_ns for s in over),
                max_ns=max(s.duration_ns for s in over),
                first_seen_ns=at,
                last_seen_ns=at,
                source=self._source(flow.name, name, over),
                example={"flow": flow.name, "started_ns": flow.started_ns},
                details={
                    "p95_ms": round(p95 / _NS_PER_MS, 3),
                    "samples": len(samples),
                    "threshold_ms": cfg.slow_ms,
                    "single_threshold_ms": cfg.very_slow_ms,
                },
            )
        )

    def _repeats(
        self,
        flow: _detect.FlowRecord,
        cfg: _common.Settings,
        name: str,
        kind: str,
        steps: list[_detect.Step],
        at: int,
    ) -> None:
        groups: dict[int, list[_detect.Step]] = {}
        for step in steps:
            if step.status != "ok":
                continue
            groups.setdefault(params_hash(step.attrs.get(PARAMS_KEY, ())), []).append(step)
        window_ns = int(cfg.repeat_window_s * 1e9)
        for key, same in groups.items():
            # Across flows: wall-clock times of this read within the window.
            recent = self._recent.get((name, key))
            if recent is None:
                if len(self._recent) >= _MAX_REPEAT_KEYS:
                    self._recent.clear()
                recent = self._recent[(name, key)] = deque(maxlen=64)
            for step in same:
                recent.append(at + step.start_ns)
            while recent and recent[-1] - recent[0] > window_ns:
                recent.popleft()
            within_flow = len(same) >= cfg.repeat_count
            across = len(recent) >= cfg.repeat_count
            if not (within_flow or across):
                continue
            repeated = same if within_flow else same[-1:]
            gaps = [b - a for a, b in zip(recent, list(recent)[1:], strict=False)]
            gap_s = statistics.median(gaps) / 1e9 if gaps else 0.0
            ttl_s = _ttl(gap_s, within_flow, flow.duration_ns)
            self._add(
                Finding(
                    type="cache_candidate",
                    subject=name,
                    flow=flow.name,
                    count=len(repeated) - (1 if within_flow else 0) or 1,
                    total_ns=sum(s.duration_ns for s in repeated[1:] if within_flow)
                    or sum(s.duration_ns for s in repeated),
                    max_ns=max(s.duration_ns for s in repeated),
                    first_seen_ns=at,
                    last_seen_ns=at,
                    source=self._source(flow.name, name, repeated),
                    example={"flow": flow.name, "started_ns": flow.started_ns},
                    details={
                        "kind": kind,
                        "scope": "flow" if within_flow else "window",
                        "per_flow": len(same),
                        "interval_s": round(gap_s, 3),
                        "ttl_s": ttl_s,
                    },
                )
            )
            if not within_flow:
                recent.clear()  # one finding per burst, not one per later flow

    # -- findings ------------------------------------------------------------------

    def _add(self, finding: Finding) -> None:
        key = (finding.type, finding.flow, finding.subject)
        have = self._pending.get(key)
        if have is not None:
            have.merge(finding)
        elif len(self._pending) < _MAX_PENDING:
            self._pending[key] = finding
        else:
            self.dropped += 1

    def collect(self, now_ns: int) -> Iterable[Finding]:
        """Findings concluded since the last call."""
        pending = list(self._pending.values())
        self._pending.clear()
        return pending


def _p95(samples: Iterable[int]) -> float:
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    return float(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))])


def _ttl(gap_s: float, within_flow: bool, flow_ns: int) -> float:
    """A cache TTL from the observed repetition: long enough to catch the repeats seen."""
    if within_flow and gap_s <= 0:
        return max(1.0, round(flow_ns / 1e9, 1))
    return float(min(300, max(1, round(gap_s * 3))))


_detector: QueryDetector | None = None


def enable() -> QueryDetector:
    """Register the query detector (idempotent); returns it."""
    global _detector
    if _detector is None:
        _detector = QueryDetector()
    _detect.register(_detector)
    return _detector


def disable() -> None:
    """Unregister the query detector."""
    global _detector
    if _detector is not None:
        _detect.unregister(_detector)
        _detector = None
