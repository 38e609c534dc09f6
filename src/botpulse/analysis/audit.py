"""``botpulse audit``: the findings of a window, ranked by the time fixing them would save.

Reads findings (N+1, slow query, cache candidate) from the store, adds slow statements
seen in the rollups (p95 above the threshold, inside a flow or not), and, given the
bot's own database (``--db``), index advice from plain ``EXPLAIN``
(:mod:`botpulse.analysis.index_advice`). Each entry carries concrete advice: a
``CREATE INDEX``, a batched query, a cache TTL.

Example::

    audit = build_audit(store, since, until, db_url="sqlite:///bot.db")
    for item in audit.items:
        print(item.type, item.flow, item.saved_ms, item.advice)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._model import Finding
from ..store.base import SeriesFilter, Store, to_epoch_seconds
from .runtime import RUNTIME_FINDINGS
from .runtime import advise as runtime_advice

__all__ = [
    "AUDIT_SCHEMA",
    "Audit",
    "AuditItem",
    "build_audit",
    "findings_summary",
]

AUDIT_SCHEMA = "botpulse.audit/1"
_NS_PER_MS = 1_000_000
_DEFAULT_SLOW_MS = 100.0
_TYPES = ("n_plus_one", "slow_query", "cache_candidate")
_ORDER = {"missing_index": 0, "n_plus_one": 1, "slow_query": 2, "cache_candidate": 3}


@dataclass
class AuditItem:
    """One thing to fix: what, where, how often, how much time, and the advice."""

    type: str  # n_plus_one | slow_query | missing_index | cache_candidate
    flow: str
    fingerprint: str
    count: int
    total_ms: float
    saved_ms: float
    source: str | None
    advice: str
    statement: str | None = None
    kind: str = "db"
    service: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``botpulse.audit/1`` form of this entry."""
        out: dict[str, Any] = {
            "type": self.type,
            "flow": self.flow,
            "fingerprint": self.fingerprint,
            "count": self.count,
            "total_ms": round(self.total_ms, 3),
            "saved_ms": round(self.saved_ms, 3),
            "source": self.source,
            "advice": self.advice,
            "kind": self.kind,
            "service": self.service,
        }
        if self.statement is not None:
            out["statement"] = self.statement
        if self.kind == "db":
            out.update(_statement_fields(self.fingerprint))
        return out


@dataclass
class Audit:
    """The ranked items of a window, and notes on what could not be checked."""

    since: datetime | float
    until: datetime | float
    items: list[AuditItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"schema": "botpulse.audit/1", "findings": [...]}`` (plus the notes)."""
        return {
            "schema": AUDIT_SCHEMA,
            "findings": [item.to_json() for item in self.items],
            "notes": list(self.notes),
        }


def _statement_fields(fingerprint: str) -> dict[str, Any]:
    """``statement_type`` and ``tables`` of a SQL fingerprint (nothing for other names)."""
    try:
        from ..instrument._sql import looks_like_sql, statement_info
    except ImportError:  # sqlparse not installed: the store was written elsewhere
        return {}
    if not looks_like_sql(fingerprint):
        return {}
    info = statement_info(fingerprint)
    return {"statement_type": info.type, "tables": list(info.tables)}


def build_audit(
    store: Store,
    since: datetime | float,
    until: datetime | float,
    *,
    service: str | None = None,
    db_url: str | None = None,
    slow_ms: float = _DEFAULT_SLOW_MS,
) -> Audit:
    """Findings of ``[since, until)`` ranked by the time that fixing them would save."""
    since_s, until_s = to_epoch_seconds(since), to_epoch_seconds(until)
    audit = Audit(since, until)
    findings = [
        f for f in store.read_findings(since_s, until_s, service=service) if f.type in _TYPES
    ]
    items = [_item(f) for f in findings]
    items.extend(_slow_from_rollups(store, since, until, service, slow_ms, findings))
    items.extend(
        _other_item(f)
        for f in store.read_findings(since_s, until_s, service=service)
        if f.type not in _TYPES
    )
    if db_url:
        items.extend(_index_items(db_url, items, audit.notes))
    else:
        audit.notes.append("pass --db URL (the bot's own database) for index advice")
    items.sort(key=lambda i: (-i.saved_ms, _ORDER.get(i.type, 9), i.flow, i.fingerprint))
    audit.items = items
    return audit


# -- findings → items ---------------------------------------------------------------


def _other_item(finding: Finding) -> AuditItem:
    """Runtime and framework findings (blocking calls, pools, caches, deadlines, ...)."""
    details = finding.details or {}
    total_ms = finding.total_ns / _NS_PER_MS
    if finding.type in RUNTIME_FINDINGS:
        advice = runtime_advice(finding)
    else:
        advice = str(details.get("advice") or f"{finding.type.replace('_', ' ')}: see the details")
    return AuditItem(
        type=finding.type,
        flow=finding.flow,
        fingerprint=finding.subject,
        count=finding.count,
        total_ms=total_ms,
        saved_ms=total_ms,  # the time the bot spent blocked, saturated or missing
        source=finding.source,
        advice=advice,
        kind="runtime",
        service=finding.service,
    )


def _item(finding: Finding) -> AuditItem:
    details = finding.details or {}
    kind = str(details.get("kind", "db"))
    total_ms = finding.total_ns / _NS_PER_MS
    if finding.type == "n_plus_one":
        per_flow = max(1, int(details.get("per_flow", finding.count) or 1))
        saved = total_ms * (1 - 1 / per_flow)
        advice, statement = _batch_advice(finding.subject, kind, finding.flow, per_flow)
    elif finding.type == "slow_query":
        threshold = float(details.get("threshold_ms", _DEFAULT_SLOW_MS))
        saved = max(0.0, total_ms - finding.count * threshold)
        p95 = details.get("p95_ms")
        advice = (
            f"p95 {p95} ms over the {threshold:g} ms threshold"
            if p95 is not None
            else f"slower than {threshold:g} ms"
        ) + "; check its plan (pass --db for index advice), fetch less, or move it off the hot path"
        statement = None
    else:  # cache_candidate
        ttl = details.get("ttl_s", 60)
        saved = total_ms
        if details.get("scope") == "flow":
            advice = (
                f"the same read with the same parameters ran {details.get('per_flow', '?')}× "
                f"in one '{finding.flow}': keep the first result for the rest of the command"
            )
        else:
            advice = (
                f"the same read with the same parameters repeats every "
                f"~{details.get('interval_s', '?')} s: cache it for ~{ttl} s"
            )
        advice += f" (suggested TTL {ttl} s)"
        statement = None
    return AuditItem(
        type=finding.type,
        flow=finding.flow,
        fingerprint=finding.subject,
        count=finding.count,
        total_ms=total_ms,
        saved_ms=saved,
        source=finding.source,
        advice=advice,
        statement=statement,
        kind=kind,
        service=finding.service,
    )


_EQUALS = re.compile(r"\bWHERE\s+((?:\w+\.)?(\w+))\s*=\s*\?", re.IGNORECASE)


def _batch_advice(fingerprint: str, kind: str, flow: str, per_flow: int) -> tuple[str, str | None]:
    where = f"{per_flow}× per '{flow}'" if flow else f"{per_flow}× in a row"
    if kind == "redis":
        return (
            f"runs {where}: fetch them in one round trip (MGET/HMGET, or a pipeline)",
            None,
        )
    if kind == "http":
        return (
            f"runs {where}: use the API's bulk endpoint, or run the calls concurrently "
            "(asyncio.gather) if they are independent",
            None,
        )
    match = _EQUALS.search(fingerprint)
    if match is None or not fingerprint.upper().startswith("SELECT "):
        return (
            f"runs {where}, once per item: do it once for all items "
            "(a JOIN, WHERE ... IN (...), or executemany for writes)",
            None,
        )
    qualified, column = match.group(1), match.group(2)
    batched = (
        fingerprint[: match.start()] + f"WHERE {qualified} IN (?)" + fingerprint[match.end() :]
    )
    select_list = batched[len("SELECT ") : batched.upper().find(" FROM ")]
    if select_list.strip() != "*" and column not in re.split(r"[\s,.]+", select_list):
        batched = f"SELECT {qualified}, " + batched[len("SELECT ") :]
    return (
        f"runs {where}, once per {column}: load them all in one query "
        f"(or JOIN it into the query that produced the {column} values; "
        f"on PostgreSQL: {qualified} = ANY($1) with a list)",
        batched,
    )


def _slow_from_rollups(
    store: Store,
    since: datetime | float,
    until: datetime | float,
    service: str | None,
    slow_ms: float,
    findings: list[Finding],
) -> list[AuditItem]:
    """Statements whose p95 over the window is above ``slow_ms`` and that no finding names."""
    named = {f.subject for f in findings if f.type == "slow_query"}
    summary = store.summarize(since, until, SeriesFilter(kind="db", service=service))
    merged: dict[tuple[str, str], Any] = {}
    for (svc, name, _kind, _status), rollup in summary.rollups.items():
        have = merged.get((svc, name))
        if have is None:
            merged[(svc, name)] = rollup.copy()
        else:
            have.merge(rollup)
    items: list[AuditItem] = []
    for (svc, name), rollup in merged.items():
        if name in named or rollup.count == 0:
            continue
        p95 = rollup.sketch.quantile(0.95)
        if p95 is None or p95 / _NS_PER_MS <= slow_ms:
            continue
        total_ms = rollup.sum_ns / _NS_PER_MS
        items.append(
            AuditItem(
                type="slow_query",
                flow="",
                fingerprint=name,
                count=rollup.count,
                total_ms=total_ms,
                saved_ms=max(0.0, total_ms - rollup.count * slow_ms),
                source=None,
                advice=f"p95 {p95 / _NS_PER_MS:.1f} ms over the {slow_ms:g} ms threshold; "
                "check its plan (pass --db for index advice), fetch less, or cache it",
                service=svc,
            )
        )
    return items


def _index_items(db_url: str, items: list[AuditItem], notes: list[str]) -> list[AuditItem]:
    """``missing_index`` items for the db statements whose plan scans a table."""
    from .index_advice import open_advisor

    try:
        advisor = open_advisor(db_url)
    except ImportError as exc:
        notes.append(str(exc))
        return []
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        from ..store import redact_url

        notes.append(f"cannot open --db {redact_url(db_url)!r}: {exc}")
        return []
    out: list[AuditItem] = []
    seen: dict[str, Any] = {}
    try:
        for item in items:
            if item.kind != "db" or item.type == "cache_candidate":
                continue
            if item.fingerprint not in seen:
                seen[item.fingerprint] = advisor.advise(item.fingerprint)
            advice = seen[item.fingerprint]
            if advice is None:
                continue
            gain = 0.9
            if advice.cost_before and advice.cost_after is not None:
                gain = max(0.0, 1 - advice.cost_after / advice.cost_before)
            checked = (
                f"plan cost {advice.cost_before:.0f} → {advice.cost_after:.0f} with it (hypopg)"
                if advice.cost_after is not None
                else ("proposed by sqlite3 .expert" if advice.verified else "not verified")
            )
            out.append(
                AuditItem(
                    type="missing_index",
                    flow=item.flow,
                    fingerprint=item.fingerprint,
                    count=item.count,
                    total_ms=item.total_ms,
                    saved_ms=item.total_ms * gain,
                    source=item.source,
                    advice=f"{advice.plan}: an index on {advice.table}"
                    f"({', '.join(advice.columns)}) avoids the full scan ({checked})",
                    statement=advice.statement,
                    kind="db",
                    service=item.service,
                )
            )
        notes.extend(advisor.notes)
    finally:
        advisor.close()
    return out


def findings_summary(store: Store, since: datetime | float, until: datetime | float) -> str | None:
    """One line for the end of a report, e.g. ``2 N+1 patterns, 1 slow query ...``, or None.

    Example::

        line = findings_summary(store, since, until)
        # "Findings: 1 N+1 pattern (3.2 s), 1 slow query (0.8 s) — run `botpulse audit`"
    """
    try:
        found = store.read_findings(to_epoch_seconds(since), to_epoch_seconds(until))
    except Exception:  # noqa: BLE001 - the report must not fail over its last line
        return None
    labels = {
        "n_plus_one": ("N+1 pattern", "N+1 patterns"),
        "slow_query": ("slow query", "slow queries"),
        "cache_candidate": ("caching candidate", "caching candidates"),
    }
    parts: list[str] = []
    for type_, (one, many) in labels.items():
        chosen = [f for f in found if f.type == type_]
        if chosen:
            seconds = sum(f.total_ns for f in chosen) / 1e9
            parts.append(f"{len(chosen)} {one if len(chosen) == 1 else many} ({seconds:.1f} s)")
    if not parts:
        return None
    return "Findings: " + ", ".join(parts) + " — run `botpulse audit` for what to fix"
