"""Runtime health in a report: gauges, caches, pools and the runtime findings with advice.

Pure functions over store reads (no I/O besides the store's reader API).
:func:`build_runtime` returns a :class:`RuntimeSection`; :func:`runtime_to_dict` gives
its JSON arrays (``"gauges"``, ``"caches"``, ``"pools"``, ``"runtime_findings"``) and
:func:`runtime_tables` the same as plain tables (title, header, rows of text) that
every renderer prints the same way.

- **gauges** (``loop.lag_ms``, ``process.rss_mb``, ...): min / avg / max / p99 over the
  window and the worst minute (the minute with the highest maximum, from minute rows).
- **caches**: hits and misses summed from ``cache.<name>.hits`` / ``.misses``, hit ratio,
  the largest size seen.
- **pools** (and limiters): size, peak and average in use, peak utilisation, peak
  waiting, acquisitions and their p95.
- **findings**: ``blocking_call``, ``sync_on_loop``, ``pool_saturation`` and
  ``cache_low_hit_ratio``, each with advice (:func:`advise`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._model import MINUTE, Finding, Rollup
from .._sketch import Sketch
from ..store.base import SeriesFilter, Store, Summary, default_group, to_epoch_seconds

__all__ = [
    "RUNTIME_FINDINGS",
    "CacheStats",
    "GaugeStats",
    "PoolStats",
    "RuntimeSection",
    "advise",
    "build_runtime",
    "runtime_tables",
    "runtime_to_dict",
]

RUNTIME_FINDINGS = ("blocking_call", "sync_on_loop", "pool_saturation", "cache_low_hit_ratio")
_SCALE = 1e6  # gauge values are stored × 1e6 in the duration columns
_POOL_PREFIXES = ("pool.", "limit.")
_RUNTIME_KINDS = ("gauge", "pool")  # what the section reads: samples and pool acquisitions
_MAX_MINUTE_ROWS = 3 * 24 * 60  # worst minute from at most the last 3 days of minute rows

_ASYNC_ALTERNATIVES = {
    "requests": "httpx.AsyncClient or aiohttp",
    "redis": "redis.asyncio",
    "psycopg2": "asyncpg or psycopg 3's AsyncConnection",
    "pymysql": "aiomysql",
    "sqlite3": "aiosqlite, or asyncio.to_thread()",
    "urllib": "httpx.AsyncClient or aiohttp",
    "socket": "asyncio streams",
    "subprocess": "asyncio.create_subprocess_exec",
}


@dataclass(frozen=True, slots=True)
class GaugeStats:
    """One gauge over the window."""

    service: str
    name: str
    samples: int
    min: float
    avg: float
    max: float
    p99: float
    worst_minute: datetime | None
    worst_minute_max: float | None


@dataclass(frozen=True, slots=True)
class CacheStats:
    """One cache over the window."""

    service: str
    name: str
    hits: int
    misses: int
    hit_ratio: float | None
    max_size: int | None


@dataclass(frozen=True, slots=True)
class PoolStats:
    """One pool, executor or limiter over the window."""

    service: str
    name: str
    kind: str  # "pool" or "limit"
    size: int
    peak_in_use: int
    avg_in_use: float
    peak_utilisation: float
    peak_waiting: int
    acquisitions: int
    failed_acquisitions: int
    acquire_p95_ms: float | None


@dataclass(slots=True)
class RuntimeSection:
    """What the report shows about the runtime."""

    gauges: list[GaugeStats] = field(default_factory=list)
    caches: list[CacheStats] = field(default_factory=list)
    pools: list[PoolStats] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def is_empty(self) -> bool:
        """Whether there is nothing to show."""
        return not (self.gauges or self.caches or self.pools or self.findings)


def advise(finding: Finding) -> str:
    """What to do about a runtime finding, in one or two sentences."""
    details = finding.details or {}
    if finding.type == "blocking_call":
        blocked = details.get("blocked_ms") or finding.max_ns / 1e6
        where = finding.source or finding.subject
        calls = str(details.get("calls") or "")
        module = calls.split("/", 1)[0].split(".", 1)[0] if calls else ""
        specific = _ASYNC_ALTERNATIVES.get(module)
        text = (
            f"{where} held the event loop up to {blocked:.0f} ms"
            f"{' (flow ' + finding.flow + ')' if finding.flow else ''}; every other handler "
            "waited. Run it with `await asyncio.to_thread(...)` or an executor"
        )
        return text + (f", or use {specific}." if specific else ", or use an async driver.")
    if finding.type == "sync_on_loop":
        per_run = details.get("on_loop_ms_per_run", 0)
        share = details.get("share_of_duration", 0) * 100
        return (
            f"Flow {finding.flow or finding.subject} runs {per_run:.1f} ms of synchronous code "
            f"on the loop per call ({share:.0f}% of its time); at high rates that starves "
            "other handlers. Move the heavy steps to asyncio.to_thread() or a process pool."
        )
    if finding.type == "pool_saturation":
        return str(
            details.get("advice")
            or f"Pool {finding.subject} stayed saturated; make it larger or hold it shorter."
        )
    if finding.type == "cache_low_hit_ratio":
        ratio = details.get("hit_ratio", 0) * 100
        shapes = details.get("most_missed_shapes") or []
        top = f" Most misses: {shapes[0]['shape']}." if shapes else ""
        return (
            f"Cache {finding.subject} hits only {ratio:.0f}% of lookups. Check its size and "
            f"TTL, and whether its keys include something that changes every call.{top}"
        )
    return str(details.get("advice") or "")


def _value(ns: float) -> float:
    return ns / _SCALE


def _worst_minutes(
    store: Store, since_s: float, until_s: float
) -> dict[tuple[str, str], tuple[int, int]]:
    start = int(max(since_s, until_s - _MAX_MINUTE_ROWS * MINUTE) // MINUTE * MINUTE)
    end = int(-(-until_s // MINUTE) * MINUTE)
    per_minute: dict[tuple[str, str, int], int] = {}
    for rollup in store.read_rollups(MINUTE, start, end, SeriesFilter(kind="gauge")):
        key = (rollup.key.service, rollup.key.name, rollup.start)
        per_minute[key] = max(per_minute.get(key, 0), rollup.max_ns)
    worst: dict[tuple[str, str], tuple[int, int]] = {}
    for (service, name, minute), peak in per_minute.items():
        have = worst.get((service, name))
        if have is None or peak > have[1]:
            worst[(service, name)] = (minute, peak)
    return worst


def _gauge(service: str, name: str, rollup: Rollup, worst: tuple[int, int] | None) -> GaugeStats:
    p99 = rollup.sketch.quantiles((0.99,))[0] or 0.0
    p99 = min(max(p99, float(rollup.min_ns)), float(rollup.max_ns))
    return GaugeStats(
        service=service,
        name=name,
        samples=rollup.count,
        min=_value(rollup.min_ns),
        avg=_value(rollup.sum_ns / rollup.count) if rollup.count else 0.0,
        max=_value(rollup.max_ns),
        p99=_value(p99),
        worst_minute=None if worst is None else datetime.fromtimestamp(worst[0], tz=timezone.utc),
        worst_minute_max=None if worst is None else _value(worst[1]),
    )


def build_runtime(
    store: Store,
    since: datetime,
    until: datetime,
    *,
    now: datetime | None = None,
    per_series: Summary | None = None,
) -> RuntimeSection:
    """Read gauges, cache and pool series and runtime findings of ``[since, until)``.

    ``per_series`` is the window already read per series (``group=series_group``,
    every series): it is regrouped instead of read again.

    Example::

        section = build_runtime(store, now - timedelta(hours=1), now)
        print([g.name for g in section.gauges])
    """
    rollups: dict[tuple[str, ...], Rollup] = {}
    for kind in _RUNTIME_KINDS:
        selector = SeriesFilter(kind=kind)
        if per_series is not None:
            rollups.update(per_series.regroup(default_group, selector).rollups)
        else:
            rollups.update(store.summarize(since, until, selector, now=now).rollups)
    since_s, until_s = to_epoch_seconds(since), to_epoch_seconds(until)
    gauges: dict[tuple[str, str], Rollup] = {}
    operations: dict[tuple[str, str], dict[str, Rollup]] = {}
    for (service, name, kind, status), rollup in rollups.items():
        if kind == "gauge":
            have = gauges.get((service, name))
            if have is None:
                gauges[(service, name)] = rollup
            else:
                have.merge(rollup)
        elif kind == "pool":
            operations.setdefault((service, name), {})[status] = rollup
    section = RuntimeSection()
    worst = _worst_minutes(store, since_s, until_s) if gauges else {}
    caches: dict[tuple[str, str], dict[str, Rollup]] = {}
    pools: dict[tuple[str, str, str], dict[str, Rollup]] = {}
    for (service, name), rollup in sorted(gauges.items()):
        if name.startswith("cache."):
            base, _, metric = name[len("cache.") :].rpartition(".")
            caches.setdefault((service, base), {})[metric] = rollup
        elif name.startswith(_POOL_PREFIXES):
            prefix, _, rest = name.partition(".")
            base, _, metric = rest.rpartition(".")
            pools.setdefault((service, prefix, base), {})[metric] = rollup
        else:
            section.gauges.append(_gauge(service, name, rollup, worst.get((service, name))))
    for (service, name), metrics in sorted(caches.items()):
        hits = round(_value(metrics["hits"].sum_ns)) if "hits" in metrics else 0
        misses = round(_value(metrics["misses"].sum_ns)) if "misses" in metrics else 0
        size = metrics.get("size")
        section.caches.append(
            CacheStats(
                service=service,
                name=name,
                hits=hits,
                misses=misses,
                hit_ratio=hits / (hits + misses) if hits + misses else None,
                max_size=None if size is None else round(_value(size.max_ns)),
            )
        )
    for (service, prefix, name), metrics in sorted(pools.items()):
        capacity = round(_value(metrics["size"].max_ns)) if "size" in metrics else 0
        in_use = metrics.get("in_use")
        waiting = metrics.get("waiting")
        peak = round(_value(in_use.max_ns)) if in_use is not None else 0
        avg = _value(in_use.sum_ns / in_use.count) if in_use is not None and in_use.count else 0.0
        by_status = operations.get((service, f"{prefix}.{name}.acquire"), {})
        sketch = Sketch()
        for rollup in by_status.values():
            sketch.merge(rollup.sketch)
        acquisitions = sum(r.count for r in by_status.values())
        p95 = sketch.quantiles((0.95,))[0] if acquisitions else None
        section.pools.append(
            PoolStats(
                service=service,
                name=name,
                kind=prefix,
                size=capacity,
                peak_in_use=peak,
                avg_in_use=avg,
                peak_utilisation=peak / capacity if capacity else 0.0,
                peak_waiting=round(_value(waiting.max_ns)) if waiting is not None else 0,
                acquisitions=acquisitions,
                failed_acquisitions=sum(
                    r.count for status, r in by_status.items() if status != "ok"
                ),
                acquire_p95_ms=None if p95 is None else p95 / 1e6,
            )
        )
    for kind in RUNTIME_FINDINGS:
        section.findings.extend(store.read_findings(since_s, until_s, type=kind))
    section.findings.sort(key=lambda f: (-f.total_ns, f.type, f.subject))
    return section


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def runtime_to_dict(section: RuntimeSection | None) -> dict[str, Any]:
    """The report's JSON arrays ``gauges``, ``caches``, ``pools`` and ``runtime_findings``."""
    section = section or RuntimeSection()
    return {
        "gauges": [
            {
                "service": g.service,
                "name": g.name,
                "samples": g.samples,
                "min": _r(g.min),
                "avg": _r(g.avg),
                "max": _r(g.max),
                "p99": _r(g.p99),
                "worst_minute": _iso(g.worst_minute),
                "worst_minute_max": _r(g.worst_minute_max),
            }
            for g in section.gauges
        ],
        "caches": [
            {
                "service": c.service,
                "name": c.name,
                "hits": c.hits,
                "misses": c.misses,
                "hit_ratio": None if c.hit_ratio is None else round(c.hit_ratio, 4),
                "max_size": c.max_size,
            }
            for c in section.caches
        ],
        "pools": [
            {
                "service": p.service,
                "name": p.name,
                "kind": p.kind,
                "size": p.size,
                "peak_in_use": p.peak_in_use,
                "avg_in_use": _r(p.avg_in_use),
                "peak_utilisation": round(p.peak_utilisation, 4),
                "peak_waiting": p.peak_waiting,
                "acquisitions": p.acquisitions,
                "failed_acquisitions": p.failed_acquisitions,
                "acquire_p95_ms": _r(p.acquire_p95_ms),
            }
            for p in section.pools
        ],
        "runtime_findings": [
            {
                "service": f.service,
                "type": f.type,
                "subject": f.subject,
                "flow": f.flow,
                "count": f.count,
                "total_ms": _r(f.total_ns / 1e6),
                "max_ms": _r(f.max_ns / 1e6),
                "source": f.source,
                "advice": advise(f),
            }
            for f in section.findings
        ],
    }


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def runtime_tables(section: RuntimeSection | None) -> list[tuple[str, list[str], list[list[str]]]]:
    """The section as ``(title, header, rows)`` tables of text, for any renderer."""
    if section is None or section.is_empty():
        return []
    tables: list[tuple[str, list[str], list[list[str]]]] = []
    if section.gauges:
        tables.append(
            (
                "Gauges",
                ["gauge", "min", "avg", "max", "p99", "worst minute (max)"],
                [
                    [
                        g.name,
                        _num(g.min, 2),
                        _num(g.avg, 2),
                        _num(g.max, 2),
                        _num(g.p99, 2),
                        "—"
                        if g.worst_minute is None
                        else f"{g.worst_minute:%Y-%m-%d %H:%M} ({_num(g.worst_minute_max, 2)})",
                    ]
                    for g in section.gauges
                ],
            )
        )
    if section.caches:
        tables.append(
            (
                "Caches",
                ["cache", "hits", "misses", "hit ratio", "max size"],
                [
                    [
                        c.name,
                        f"{c.hits:,}",
                        f"{c.misses:,}",
                        "—" if c.hit_ratio is None else f"{c.hit_ratio * 100:.1f}%",
                        "—" if c.max_size is None else f"{c.max_size:,}",
                    ]
                    for c in section.caches
                ],
            )
        )
    if section.pools:
        tables.append(
            (
                "Pools",
                ["pool", "size", "peak in use", "peak util.", "peak waiting", "acquires", "p95 ms"],
                [
                    [
                        p.name if p.kind == "pool" else f"{p.name} (limit)",
                        str(p.size),
                        str(p.peak_in_use),
                        f"{p.peak_utilisation * 100:.0f}%",
                        str(p.peak_waiting),
                        f"{p.acquisitions:,}",
                        _num(p.acquire_p95_ms, 2),
                    ]
                    for p in section.pools
                ],
            )
        )
    if section.findings:
        tables.append(
            (
                "Runtime findings",
                ["finding", "where", "flow", "count", "max ms", "advice"],
                [
                    [
                        f.type,
                        f.source or f.subject,
                        f.flow or "—",
                        f"{f.count:,}",
                        _num(f.max_ns / 1e6, 0),
                        advise(f),
                    ]
                    for f in section.findings
                ],
            )
        )
    return tables
