"""The opt-in ``performance`` and ``health`` chat commands: what they read and who may run them.

Both commands read only the store's reader API (:func:`botpulse.analysis.report.build_report`,
``Store.summarize``) and :func:`botpulse.stats`, in a worker thread so the event loop never
waits on the disk. Each framework module renders the views natively (a Discord embed,
Telegram HTML, IRC lines); the plain renderers live here.

Example::

    from botpulse.integrations.admin import AdminCommands

    admin = AdminCommands(owner_ids={123456789})          # your user id(s)
    botpulse.integrations.aiogram.instrument(dp, admin=admin)
"""

from __future__ import annotations

import asyncio
import html
import os
import resource
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .. import _config
from .._capture import GAUGE_SCALE
from ..analysis.report import FlowTrace, build_report
from ..errors import ConfigurationError
from ..store import SeriesFilter, Store, open_store

__all__ = [
    "AdminCommands",
    "FlowLine",
    "HealthView",
    "PerformanceView",
    "health_lines",
    "health_telegram_html",
    "performance_lines",
    "performance_telegram_html",
]

_STARTED = time.time()
_MS = 1e6


@dataclass(frozen=True, slots=True)
class FlowLine:
    """One flow of the ``performance`` table."""

    name: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_rate: float
    per_min: float


@dataclass(frozen=True, slots=True)
class PerformanceView:
    """What ``performance`` shows: top flows over the window and the slowest one as a waterfall."""

    window_s: float
    flows: list[FlowLine]
    slowest: FlowTrace | None
    dropped_events: int
    error: str | None = None  # the store could not be read


@dataclass(frozen=True, slots=True)
class HealthView:
    """What ``health`` shows; ``None`` means not known."""

    uptime_s: float
    rss_mb: float | None
    cpu_percent: float | None
    loop_lag_ms: float | None
    store: str
    store_ok: bool
    store_detail: str
    recorded: int | None
    written: int | None
    buffered: int | None
    dropped: dict[str, int] = field(default_factory=dict)
    store_failures: int = 0


class AdminCommands:
    """Configuration of the admin chat commands; pass it as ``admin=`` to a framework's hook.

    ``owner_ids`` are the platform user ids allowed to run them (Discord/Telegram ids,
    IRC nicks); everyone else is ignored. ``store`` is where to read (a URL or a
    :class:`~botpulse.store.Store`); by default the store ``botpulse.init()`` writes to.
    Figures appear once the pipeline has flushed (``flush_interval``).

    Example::

        AdminCommands(owner_ids={123456789}, window=timedelta(hours=1), top=5)
    """

    def __init__(
        self,
        owner_ids: Collection[int | str],
        *,
        store: str | Store | None = None,
        window: timedelta = timedelta(hours=1),
        top: int = 5,
        performance: str = "performance",
        health: str = "health",
    ) -> None:
        if isinstance(owner_ids, (str, int)) or not owner_ids:
            raise ConfigurationError(
                f"owner_ids={owner_ids!r} must be a non-empty collection of user ids"
            )
        if not isinstance(window, timedelta) or window.total_seconds() <= 0:
            raise ConfigurationError(f"window={window!r} must be a positive timedelta")
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 25:
            raise ConfigurationError(f"top={top!r} must be an integer between 1 and 25")
        self.owner_ids = frozenset(str(owner).strip().lower() for owner in owner_ids)
        self._store_setting = store
        self._opened: Store | None = None
        self.window = window
        self.top = top
        self.performance_command = performance
        self.health_command = health
        self._cpu_mark = (time.monotonic(), time.process_time())

    def allowed(self, user_id: Any) -> bool:
        """Whether ``user_id`` is one of the owners."""
        return user_id is not None and str(user_id).strip().lower() in self.owner_ids

    def store(self) -> Store:
        """The store the commands read."""
        setting = self._store_setting
        if isinstance(setting, Store):
            return setting
        if setting is None:
            running = _config._running
            if running is not None:
                return running.store
            setting = _config.default_store_url()
        if self._opened is None:
            self._opened = open_store(setting, create=False)
        return self._opened

    async def performance(self) -> PerformanceView:
        """Read the ``performance`` figures (off the event loop)."""
        return await asyncio.to_thread(self._read_performance)

    async def health(self) -> HealthView:
        """Read the ``health`` figures (off the event loop, except the loop lag probe)."""
        lag = await _loop_lag_ms()
        return await asyncio.to_thread(self._read_health, lag)

    def _read_performance(self) -> PerformanceView:
        now = datetime.now(timezone.utc)
        try:
            report = build_report(self.store(), now - self.window, now, kind="flow", top=1, now=now)
        except Exception as exc:  # noqa: BLE001 - the command says what is wrong
            return PerformanceView(
                self.window.total_seconds(), [], None, 0, f"{type(exc).__name__}: {exc}"[:300]
            )
        flows = sorted(report.operations, key=lambda op: (-op.count, op.name))[: self.top]
        return PerformanceView(
            window_s=self.window.total_seconds(),
            flows=[
                FlowLine(
                    name=op.name,
                    count=op.count,
                    p50_ms=op.p50_ms,
                    p95_ms=op.p95_ms,
                    p99_ms=op.p99_ms,
                    error_rate=op.error_rate,
                    per_min=op.throughput_per_min,
                )
                for op in flows
            ],
            slowest=report.slowest_flows[0] if report.slowest_flows else None,
            dropped_events=report.dropped_events,
        )

    def _read_health(self, loop_lag_ms: float | None) -> HealthView:
        stats = _config.stats()
        gauges: dict[str, float] = {}
        store_ok, detail, description = True, "", "not configured"
        try:
            store = self.store()
            description = store.describe()
            started = time.perf_counter()
            now = time.time()
            summary = store.summarize(now - 300, now + 60, SeriesFilter(kind="gauge"), now=now)
            for (_service, name, _kind, _status), rollup in summary.rollups.items():
                if rollup.count:
                    gauges[name] = rollup.sum_ns / rollup.count / GAUGE_SCALE
            detail = f"read in {(time.perf_counter() - started) * 1000:.1f} ms"
        except Exception as exc:  # noqa: BLE001 - the command reports the store's state
            store_ok, detail = False, f"{type(exc).__name__}: {exc}"[:200]
        if stats is not None and stats.last_error and stats.store_failures:
            store_ok = False
            detail = f"{detail}; last write error: {stats.last_error}"[:300]
        return HealthView(
            uptime_s=time.time() - _process_started(),
            rss_mb=gauges.get("process.rss_mb", _rss_mb()),
            cpu_percent=gauges.get("process.cpu_percent", self._cpu_percent()),
            loop_lag_ms=gauges.get("loop.lag_ms", loop_lag_ms),
            store=description,
            store_ok=store_ok,
            store_detail=detail,
            recorded=None if stats is None else stats.recorded,
            written=None if stats is None else stats.written,
            buffered=None if stats is None else stats.buffered,
            dropped={} if stats is None else dict(stats.dropped),
            store_failures=0 if stats is None else stats.store_failures,
        )

    def _cpu_percent(self) -> float | None:
        wall0, cpu0 = self._cpu_mark
        wall1, cpu1 = time.monotonic(), time.process_time()
        self._cpu_mark = (wall1, cpu1)
        return None if wall1 - wall0 <= 0 else 100.0 * (cpu1 - cpu0) / (wall1 - wall0)


async def _loop_lag_ms() -> float | None:
    """How long a callback waits for the running loop right now."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()
    started = time.perf_counter()

    def arrived() -> None:
        if not done.done():
            done.set_result(time.perf_counter() - started)

    loop.call_soon(arrived)
    return (await done) * 1000.0


def _process_started() -> float:
    """When this process started (Linux /proc), else when botpulse was imported."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            boot = time.time() - float(uptime.read().split()[0])
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _STARTED


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1e6 if sys.platform == "darwin" else peak / 1e3


# -- plain renderers ------------------------------------------------------------------


def _fmt_ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    return f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s"


def _window(view: PerformanceView) -> str:
    return _duration(view.window_s).replace(" 0m", "").replace(" 0s", "")


def flow_row(line: FlowLine, width: int = 24) -> str:
    """One flow as a fixed-width row: name, count, p50/p95/p99, errors, rate."""
    name = line.name if len(line.name) <= width else line.name[: width - 1] + "…"
    return (
        f"{name:<{width}} {line.count:>6} {_fmt_ms(line.p50_ms):>7} {_fmt_ms(line.p95_ms):>7}"
        f" {_fmt_ms(line.p99_ms):>7} {line.error_rate * 100:>5.1f}% {line.per_min:>6.1f}/m"
    )


def flow_header(width: int = 24) -> str:
    """The header of :func:`flow_row`."""
    columns = f"{'count':>6} {'p50ms':>7} {'p95ms':>7} {'p99ms':>7} {'err':>6} {'rate':>8}"
    return f"{'flow':<{width}} {columns}"


def waterfall_rows(trace: FlowTrace, bar: int = 20, limit: int = 12) -> list[str]:
    """The slowest flow's children as text bars (offset and duration to scale)."""
    total = max(trace.duration_ms, 1e-9)
    rows = []
    for child in trace.children[:limit]:
        start = int(bar * child["start_ms"] / total)
        length = max(1, round(bar * child["duration_ms"] / total))
        start = min(start, bar - 1)
        length = min(length, bar - start)
        graph = " " * start + "█" * length + " " * (bar - start - length)
        mark = "" if child["status"] == "ok" else f" {child['error'] or child['status']}"
        name = str(child["name"])
        name = name if len(name) <= 28 else name[:27] + "…"
        rows.append(f"|{graph}| {_fmt_ms(child['duration_ms'])} ms {child['kind']} {name}{mark}")
    hidden = len(trace.children) - limit + trace.truncated
    if hidden > 0:
        rows.append(f"… {hidden} more")
    return rows


def slowest_title(trace: FlowTrace) -> str:
    """``name 123 ms (error: X)``."""
    status = "" if trace.status == "ok" else f" ({trace.status}: {trace.error})"
    return f"{trace.name} {_fmt_ms(trace.duration_ms)} ms{status}"


def health_pairs(view: HealthView) -> list[tuple[str, str]]:
    """``health`` as (label, value) pairs, the order every renderer shows."""

    def maybe(value: float | None, unit: str, digits: int = 1) -> str:
        return "n/a" if value is None else f"{value:.{digits}f} {unit}".rstrip()

    dropped = sum(view.dropped.values())
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(view.dropped.items()))
    return [
        ("uptime", _duration(view.uptime_s)),
        ("rss", maybe(view.rss_mb, "MB")),
        ("cpu", maybe(view.cpu_percent, "%")),
        ("loop lag", maybe(view.loop_lag_ms, "ms", 2)),
        ("store", f"{'ok' if view.store_ok else 'FAILING'} {view.store} ({view.store_detail})"),
        (
            "events",
            "botpulse not running"
            if view.recorded is None
            else f"recorded {view.recorded}, written {view.written}, buffered {view.buffered}",
        ),
        ("dropped", f"{dropped}" + (f" ({reasons})" if reasons else "")),
    ]


def _fit(line: str, limit: int) -> str:
    encoded = line.encode("utf-8")
    if len(encoded) <= limit:
        return line
    return encoded[: limit - 3].decode("utf-8", "ignore") + "..."


def performance_lines(view: PerformanceView, limit: int = 400) -> list[str]:
    """``performance`` as plain lines, each at most ``limit`` bytes (IRC)."""
    lines = [f"botpulse performance, last {_window(view)}:"]
    if view.error:
        lines.append(f"store unavailable: {view.error}")
    elif not view.flows:
        lines.append("no flows recorded yet")
    else:
        lines.extend([flow_header(), *(flow_row(f) for f in view.flows)])
    if view.slowest is not None:
        lines.append("slowest: " + slowest_title(view.slowest))
        lines.extend(waterfall_rows(view.slowest))
    if view.dropped_events:
        lines.append(f"dropped events: {view.dropped_events}")
    return [_fit(line, limit) for line in lines]


def health_lines(view: HealthView, limit: int = 400) -> list[str]:
    """``health`` as plain lines, each at most ``limit`` bytes (IRC)."""
    return [_fit(f"{label}: {value}", limit) for label, value in health_pairs(view)]


def performance_telegram_html(view: PerformanceView) -> str:
    """``performance`` as Telegram HTML (``parse_mode="HTML"``), under 4096 characters."""
    e = html.escape
    parts = [f"<b>botpulse performance</b>, last {e(_window(view))}"]
    if view.error:
        parts.append(f"<b>store unavailable</b>: {e(view.error)}")
    elif view.flows:
        table = "\n".join([flow_header(16), *(flow_row(f, 16) for f in view.flows)])
        parts.append(f"<pre>{e(table)}</pre>")
    else:
        parts.append("<i>no flows recorded yet</i>")
    if view.slowest is not None:
        parts.append(f"<b>Slowest:</b> {e(slowest_title(view.slowest))}")
        rows = waterfall_rows(view.slowest)
        if rows:
            parts.append(f"<pre>{e(chr(10).join(rows))}</pre>")
    if view.dropped_events:
        parts.append(f"dropped events: {view.dropped_events}")
    return "\n".join(parts)[:4096]


def health_telegram_html(view: HealthView) -> str:
    """``health`` as Telegram HTML."""
    e = html.escape
    rows = [f"<b>{e(label)}</b>: {e(value)}" for label, value in health_pairs(view)]
    return "\n".join(["<b>botpulse health</b>", *rows])[:4096]
