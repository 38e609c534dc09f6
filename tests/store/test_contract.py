"""The contract every store backend passes: write, fold into hours/days, read, age out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.store.pg import fresh_schema

from botpulse._model import DAY, HOUR, MINUTE
from botpulse.store import (
    Batch,
    Checkpoint,
    Child,
    DropCount,
    MemoryStore,
    Operation,
    Retention,
    SeriesFilter,
    SeriesKey,
    Store,
    TraceSample,
    open_store,
)

# Midnight UTC, so day and hour boundaries are easy to reason about.
DAY0 = 1_700_006_400  # 2023-11-15T00:00:00Z
assert DAY0 % DAY == 0
NS = 10**9
MS = 10**6


def op(name: str, at_s: float, ms: float, **kw) -> Operation:  # type: ignore[no-untyped-def]
    return Operation(name=name, started_ns=int(at_s * NS), duration_ns=int(ms * MS), **kw)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        s: Store = MemoryStore()
    elif request.param == "postgres":
        with fresh_schema() as url:
            s = open_store(url)
            yield s
            s.close()
        return
    else:
        s = open_store(f"sqlite:///{tmp_path / 'contract.db'}")
    yield s
    s.close()


def counts(store: Store, since: float, until: float, now: float, **filt) -> dict:  # type: ignore[no-untyped-def]
    summary = store.summarize(since, until, SeriesFilter(**filt), now=now)
    return {(k[1], k[2], k[3]): r.count for k, r in summary.rollups.items()}


class TestWriteAndSummarize:
    def test_counts_sums_min_max_are_exact(self, store: Store) -> None:
        ops = [op("db.q", DAY0 + 10 + i, ms, kind="db") for i, ms in enumerate([5, 7, 3, 11])]
        assert store.write_operations(ops, service="bot", instance="a") == 4
        summary = store.summarize(DAY0, DAY0 + 3600, now=DAY0 + 3600)
        rollup = summary.rollups[("bot", "db.q", "db", "ok")]
        assert (rollup.count, rollup.sum_ns, rollup.min_ns, rollup.max_ns) == (
            4, 26 * MS, 3 * MS, 11 * MS,
        )  # fmt: skip
        assert rollup.sketch.quantile(1.0) == pytest.approx(11 * MS, rel=0.01)

    def test_instances_and_repeated_writes_merge(self, store: Store) -> None:
        store.write_operations([op("cmd", DAY0 + 5, 10)], service="bot", instance="a")
        store.write_operations([op("cmd", DAY0 + 6, 30)], service="bot", instance="b")
        store.write_operations([op("cmd", DAY0 + 7, 20)], service="bot", instance="a")
        summary = store.summarize(DAY0, DAY0 + 60, now=DAY0 + 60)
        rollup = summary.rollups[("bot", "cmd", "op", "ok")]
        assert rollup.count == 3
        assert rollup.sketch.quantile(0.5) == pytest.approx(20 * MS, rel=0.01)
        assert {k.instance for k in store.series()} == {"a", "b"}

    def test_statuses_are_separate_series(self, store: Store) -> None:
        store.write_operations(
            [op("t", DAY0, 1), op("t", DAY0, 2, status="error", error="Boom"),
             op("t", DAY0, 3, status="cancelled")]
        )  # fmt: skip
        assert counts(store, DAY0, DAY0 + 60, DAY0 + 60) == {
            ("t", "op", "ok"): 1, ("t", "op", "error"): 1, ("t", "op", "cancelled"): 1,
        }  # fmt: skip

    def test_hour_and_day_rows_equal_their_minutes(self, store: Store) -> None:
        ops = [op("x", DAY0 + m * 60 + 1, 1 + m % 7) for m in range(0, 180, 3)]
        store.write_operations(ops)
        minutes = list(store.read_rollups(MINUTE, DAY0, DAY0 + DAY, SeriesFilter()))
        hours = list(store.read_rollups(HOUR, DAY0, DAY0 + DAY, SeriesFilter()))
        days = list(store.read_rollups(DAY, DAY0, DAY0 + DAY, SeriesFilter()))
        assert len(minutes) == 60
        assert [h.start for h in hours] == [DAY0, DAY0 + 3600, DAY0 + 7200]
        assert sum(h.count for h in hours) == days[0].count == 60
        merged = minutes[0].sketch.copy()
        for m in minutes[1:]:
            merged.merge(m.sketch)
        assert days[0].sketch == merged

    def test_window_edges_select_overlapping_minutes(self, store: Store) -> None:
        store.write_operations(
            [op("x", DAY0 + 30, 1), op("x", DAY0 + 90, 1), op("x", DAY0 + 150, 1)]
        )
        assert counts(store, DAY0 + 60, DAY0 + 120, DAY0 + 200) == {("x", "op", "ok"): 1}
        assert counts(store, DAY0 + 61, DAY0 + 121, DAY0 + 200) == {("x", "op", "ok"): 2}
        assert counts(store, DAY0 + 200, DAY0 + 400, DAY0 + 400) == {}

    def test_long_windows_read_coarse_rows_with_the_same_result(self, store: Store) -> None:
        ops = [op("y", DAY0 + i * 1800 + 7, 1 + i % 5) for i in range(48 * 3)]  # 3 days
        store.write_operations(ops)
        now = DAY0 + 3 * DAY
        summary = store.summarize(DAY0 - 3600, now, now=now)
        (rollup,) = summary.rollups.values()
        assert rollup.count == 144
        assert (summary.start, summary.end) == (DAY0 - 3600, now)

    def test_filters_by_name_glob_kind_and_service(self, store: Store) -> None:
        store.write_operations([op("db.a", DAY0, 1, kind="db"), op("db.b", DAY0, 1, kind="db"),
                                op("http.c", DAY0, 1, kind="http")], service="s1")  # fmt: skip
        store.write_operations([op("db.a", DAY0, 1, kind="db")], service="s2")
        window = (DAY0, DAY0 + 60, DAY0 + 60)
        assert set(counts(store, *window, name="db.*")) == {
            ("db.a", "db", "ok"),
            ("db.b", "db", "ok"),
        }
        assert set(counts(store, *window, kind="http")) == {("http.c", "http", "ok")}
        assert counts(store, *window, service="s2", name="db.a") == {("db.a", "db", "ok"): 1}
        assert counts(store, *window, name="DB.*") == {}  # globs are case-sensitive

    def test_unicode_names_round_trip(self, store: Store) -> None:
        store.write_operations([op("/classement 🏆 Ünïcode", DAY0, 4)])
        assert counts(store, DAY0, DAY0 + 60, DAY0 + 60) == {
            ("/classement 🏆 Ünïcode", "op", "ok"): 1
        }

    def test_invalid_operations_are_refused_before_anything_is_written(self, store: Store) -> None:
        with pytest.raises(ValueError, match="status 'weird'"):
            store.write_operations([op("ok", DAY0, 1), op("bad", DAY0, 1, status="weird")])
        with pytest.raises(ValueError, match="negative duration"):
            store.write_operations([Operation("neg", DAY0 * NS, -5)])
        assert store.series() == []


class TestRetention:
    def test_expired_minutes_still_count_through_hours_and_days(self, store: Store) -> None:
        store.write_operations([op("old", DAY0 + 10 * 60 + 5, 2), op("old", DAY0 + 20 * 60, 4)])
        now = DAY0 + 10 * DAY
        deleted = store.apply_retention(now)
        assert deleted >= 2
        assert list(store.read_rollups(MINUTE, DAY0, DAY0 + DAY, SeriesFilter())) == []
        assert len(list(store.read_rollups(HOUR, DAY0, DAY0 + DAY, SeriesFilter()))) == 1
        # A window inside that hour widens to the whole hour instead of reading nothing.
        summary = store.summarize(DAY0 + 600, DAY0 + 700, now=now)
        assert [r.count for r in summary.rollups.values()] == [2]
        assert (summary.start, summary.end) == (DAY0, DAY0 + 3600)

    def test_everything_ages_out_eventually(self, store: Store) -> None:
        store.write_operations([op("f", DAY0, 2, kind="flow")])
        store.write(Batch(drops=[DropCount("s", "i", DAY0, "buffer_full", 3)]))
        store.apply_retention(DAY0 + 200 * DAY)
        assert list(store.read_rollups(DAY, 0, DAY0 + DAY, SeriesFilter())) == []
        assert store.read_traces(0, DAY0 + DAY) == []
        assert store.read_drops(0, DAY0 + DAY) == {}

    def test_day_rows_outlive_hour_rows_until_their_own_retention(self, store: Store) -> None:
        # Defaults: minutes 2 days, hours 35 days, days 90 days.
        store.write_operations([op("kept", DAY0 + 3600 * h + 7, 3) for h in range(5)])

        def rows(resolution: int) -> list[int]:
            return [
                r.count for r in store.read_rollups(resolution, DAY0, DAY0 + DAY, SeriesFilter())
            ]

        store.apply_retention(DAY0 + 36 * DAY)
        assert (rows(MINUTE), rows(HOUR), rows(DAY)) == ([], [], [5])
        store.apply_retention(DAY0 + 89 * DAY)
        assert rows(DAY) == [5]
        summary = store.summarize(DAY0, DAY0 + DAY, now=DAY0 + 89 * DAY)
        assert [r.count for r in summary.rollups.values()] == [5]
        assert (summary.start, summary.end) == (DAY0, DAY0 + DAY)
        store.apply_retention(DAY0 + 91 * DAY)
        assert rows(DAY) == []

    def test_window_across_the_minute_cutoff_reads_hours_for_the_expired_part(
        self, store: Store
    ) -> None:
        # One event a minute from 00:10 to 00:49; minute rows older than `now - 2 days`
        # (00:30) are gone, so 20 of the 40 events survive only in the 00:00 hour row.
        store.write_operations([op("cmd", DAY0 + 60 * m + 5, 2) for m in range(10, 50)])
        now = DAY0 + 2 * DAY + 30 * 60
        store.apply_retention(now)
        minutes = list(store.read_rollups(MINUTE, DAY0, DAY0 + HOUR, SeriesFilter()))
        assert sum(r.count for r in minutes) == 20
        summary = store.summarize(DAY0 + 5 * 60, DAY0 + 55 * 60, now=now)
        assert {k: r.count for k, r in summary.rollups.items()} == {
            ("imported", "cmd", "op", "ok"): 40
        }
        # The covered window says honestly that it widened to the whole hour.
        assert (summary.start, summary.end) == (DAY0, DAY0 + HOUR)
        # A window wholly after the cutoff still reads exact minutes.
        summary = store.summarize(DAY0 + 40 * 60, DAY0 + 45 * 60, now=now)
        assert [r.count for r in summary.rollups.values()] == [5]
        assert (summary.start, summary.end) == (DAY0 + 40 * 60, DAY0 + 45 * 60)

    def test_custom_retention_is_validated(self) -> None:
        with pytest.raises(ValueError, match="traces_days"):
            Retention(traces_days=0)
        with pytest.raises(ValueError, match="rollups_days"):
            Retention(rollups_days=float("nan"))


def _trace(name: str, at_s: float, ms: float, **kw) -> TraceSample:  # type: ignore[no-untyped-def]
    return TraceSample(
        service="bot", instance="i", name=name, started_ns=int(at_s * NS), duration_ns=int(ms * MS),
        status=kw.pop("status", "ok"), error=kw.pop("error", None), reason=kw.pop("reason", "slowest"),
        checkpoints=[Checkpoint("guard", 1 * MS), Checkpoint("loaded", int(ms * MS * 0.8))],
        children=[Child("db.q", "db", 2 * MS, int(ms * MS * 0.7), "ok", None, 1, {"table": "t"}),
                  Child("render", "op", int(ms * MS * 0.8), 3 * MS, "error", "KeyError", 1, {})],
        attrs={"guild": 42}, truncated=kw.pop("truncated", 0),
    )  # fmt: skip


class TestTraces:
    def test_round_trip_every_field(self, store: Store) -> None:
        sample = _trace("cmd", DAY0 + 5, 120, status="error", error="Boom", reason="slowest,error",
                        truncated=4)  # fmt: skip
        store.write(Batch(traces=[sample]))
        assert store.read_traces(DAY0, DAY0 + 60) == [sample]

    def test_slowest_first_limit_window_and_glob(self, store: Store) -> None:
        store.write(Batch(traces=[_trace("a", DAY0 + 1, 10), _trace("b", DAY0 + 2, 50),
                                  _trace("a", DAY0 + 3, 30), _trace("a", DAY0 + 100, 99)]))  # fmt: skip
        got = store.read_traces(DAY0, DAY0 + 60, limit=2)
        assert [(t.name, t.duration_ns // MS) for t in got] == [("b", 50), ("a", 30)]
        got = store.read_traces(DAY0, DAY0 + 60, SeriesFilter(name="a"), limit=10)
        assert [t.duration_ns // MS for t in got] == [30, 10]
        recent = store.read_traces(DAY0, DAY0 + 200, limit=1, order="recent")
        assert recent[0].started_ns == (DAY0 + 100) * NS

    def test_window_bounds_are_since_inclusive_until_exclusive(self, store: Store) -> None:
        at = [DAY0 + 60, DAY0 + 90.25, DAY0 + 120, DAY0 + 120.5]
        store.write(Batch(traces=[_trace("w", t, 10 + i) for i, t in enumerate(at)]))

        def started(since: float, until: float, order: str = "slowest") -> list[int]:
            got = store.read_traces(since, until, limit=10, order=order)  # type: ignore[arg-type]
            return sorted(t.started_ns for t in got)

        a, b, c, d = (int(t * NS) for t in at)
        for order in ("slowest", "recent"):
            assert started(DAY0 + 60, DAY0 + 120, order) == [a, b]
            assert started(DAY0 + 90.25, DAY0 + 120.5, order) == [b, c]
            assert started(DAY0 + 60.001, DAY0 + 90.25, order) == []
            assert started(DAY0 + 120, DAY0 + 121, order) == [c, d]

    def test_flows_written_through_operations_are_sampled(self, store: Store) -> None:
        flow = op("cmd", DAY0 + 1, 40, kind="flow", checkpoints=[Checkpoint("half", 20 * MS)],
                  children=[Child("db.q", "db", 0, 30 * MS, "ok")])  # fmt: skip
        store.write_operations([flow, op("cmd", DAY0 + 2, 10, kind="flow")])
        traces = store.read_traces(DAY0, DAY0 + 60, limit=5)
        assert [t.duration_ns // MS for t in traces] == [40, 10]
        assert traces[0].checkpoints == [Checkpoint("half", 20 * MS)]
        assert [c.name for c in traces[0].children] == ["db.q"]


class TestDrops:
    def test_drop_counts_add_up_per_reason_in_the_window(self, store: Store) -> None:
        store.write(Batch(drops=[DropCount("s", "i", DAY0, "buffer_full", 3),
                                 DropCount("s", "i", DAY0, "buffer_full", 4),
                                 DropCount("s", "j", DAY0 + 60, "store_unavailable", 5),
                                 DropCount("s", "i", DAY0 + 600, "buffer_full", 100)]))  # fmt: skip
        assert store.read_drops(DAY0, DAY0 + 120) == {"buffer_full": 7, "store_unavailable": 5}
        assert store.read_drops(DAY0 + 30, DAY0 + 90) == {"buffer_full": 7, "store_unavailable": 5}


def test_series_lists_every_key(store: Store) -> None:
    store.write_operations([op("a", DAY0, 1), op("b", DAY0, 1, kind="db", status="error")],
                           service="s", instance="i")  # fmt: skip
    assert store.series() == [
        SeriesKey("s", "i", "a", "op", "ok"),
        SeriesKey("s", "i", "b", "db", "error"),
    ]


def test_slowest_and_recent_traces_across_many_minutes(store: Store) -> None:
    import random

    rng = random.Random(4)
    samples = [
        _trace(rng.choice(["a", "b"]), DAY0 + minute * 60 + rng.uniform(0, 59), rng.uniform(1, 500),
               status=rng.choice(["ok", "ok", "error"]))
        for minute in range(40)
        for _ in range(5)
    ]  # fmt: skip
    store.write(Batch(traces=samples))
    window = (DAY0 + 300.5, DAY0 + 1800)
    inside = [s for s in samples if window[0] * NS <= s.started_ns < window[1] * NS]
    for limit in (1, 7, 500):
        got = store.read_traces(*window, limit=limit)
        expected = sorted(inside, key=lambda s: (-s.duration_ns, s.started_ns))[:limit]
        assert [(t.name, t.started_ns, t.duration_ns) for t in got] == [
            (t.name, t.started_ns, t.duration_ns) for t in expected
        ]
        got = store.read_traces(*window, limit=limit, order="recent")
        expected = sorted(inside, key=lambda s: -s.started_ns)[:limit]
        assert [t.started_ns for t in got] == [t.started_ns for t in expected]
    only_b = store.read_traces(*window, SeriesFilter(name="b"), limit=3)
    assert {t.name for t in only_b} == {"b"}


@pytest.mark.parametrize("hours", [1, 12, 47])
def test_slowest_traces_of_long_and_short_windows(store: Store, hours: int) -> None:
    # Long windows walk the groups from the slowest down, short ones sort their minutes:
    # both give the exact slowest samples of [since, until), also for one flow only.
    import random

    rng = random.Random(hours)
    samples = [
        _trace(rng.choice(["a", "b", "c"]), DAY0 + minute * 60 + rng.uniform(0, 59),
               rng.uniform(1, 900))
        for minute in range(0, 48 * 60, 7)
        for _ in range(2)
    ]  # fmt: skip
    store.write(Batch(traces=samples))
    window = (DAY0 + 30.5, DAY0 + 30.5 + hours * HOUR)
    for selector, names in ((None, {"a", "b", "c"}), (SeriesFilter(name="c"), {"c"})):
        inside = [
            s
            for s in samples
            if window[0] * NS <= s.started_ns < window[1] * NS and s.name in names
        ]
        got = store.read_traces(*window, selector, limit=9)
        expected = sorted(inside, key=lambda s: (-s.duration_ns, s.started_ns))[:9]
        assert [(t.name, t.started_ns, t.duration_ns) for t in got] == [
            (t.name, t.started_ns, t.duration_ns) for t in expected
        ]


def test_a_summary_per_series_regroups_into_any_grouping(store: Store) -> None:
    # A report reads its window once, per series, and regroups it per section.
    from botpulse.store.base import default_group, series_group

    for instance in ("p0", "p1"):
        ops = [
            op(name, DAY0 + 30 * i, 5 + i % 17, kind=kind, flow=flow, tags=tags,
               status="ok" if i % 5 else "error")
            for i in range(400)
            for name, kind, flow, tags in [
                ("cmd", "flow", "", {"cache": "hit" if i % 3 else "miss"}),
                ("db.q", "db", "cmd", {}),
            ]
        ]  # fmt: skip
        store.write_operations(ops, service="bot", instance=instance)
    window = (DAY0, DAY0 + 4 * HOUR)
    per_series = store.summarize(*window, now=DAY0 + DAY, group=series_group)
    assert {r.key for r in per_series.rollups.values()} == set(store.series())

    def by_flow(k: SeriesKey) -> tuple[str, ...]:
        return (k.flow, k.name, k.status, k.tags)

    def as_tuples(summary) -> dict:  # type: ignore[no-untyped-def]
        return {
            key: (r.count, r.sum_ns, r.min_ns, r.max_ns, r.sketch)
            for key, r in summary.rollups.items()
        }

    for group, selector in [
        (default_group, None),
        (by_flow, None),
        (default_group, SeriesFilter(kind="db")),
        (by_flow, SeriesFilter(status="error")),
    ]:
        direct = store.summarize(*window, selector, now=DAY0 + DAY, group=group)
        assert as_tuples(per_series.regroup(group, selector)) == as_tuples(direct)
    before = as_tuples(per_series)
    per_series.regroup(default_group)
    assert as_tuples(per_series) == before  # regrouping leaves the summary unchanged


class TestFindings:
    def _finding(self, at_s: float, **kw):  # type: ignore[no-untyped-def]
        from botpulse._model import Finding

        fields = {
            "type": "n_plus_one",
            "subject": "SELECT * FROM t WHERE id = ?",
            "flow": "stats",
            "service": "bot",
            "instance": "a",
            "count": 1,
            "total_ns": 30 * MS,
            "max_ns": 30 * MS,
            "first_seen_ns": int(at_s * NS),
            "last_seen_ns": int(at_s * NS),
        }
        fields.update(kw)
        return Finding(**fields)

    def test_findings_merge_across_writes_hours_and_instances(self, store: Store) -> None:
        store.write(Batch(findings=[self._finding(DAY0 + 10, source="bot.py:3")]))
        store.write(Batch(findings=[self._finding(DAY0 + 20, details={"n": 2})]))
        store.write(Batch(findings=[self._finding(DAY0 + HOUR + 5, instance="b")]))
        store.write(Batch(findings=[self._finding(DAY0 + 30, type="slow_query")]))
        found = store.read_findings(DAY0, DAY0 + DAY)
        assert [(f.type, f.count) for f in found] == [("n_plus_one", 3), ("slow_query", 1)]
        merged = found[0]
        assert merged.total_ns == 90 * MS
        assert merged.first_seen_ns == (DAY0 + 10) * NS
        assert merged.last_seen_ns == (DAY0 + HOUR + 5) * NS
        assert merged.instance == "*"
        assert merged.source == "bot.py:3"
        assert merged.details == {"n": 2}

    def test_findings_window_and_filters(self, store: Store) -> None:
        store.write(Batch(findings=[self._finding(DAY0 + 10)]))
        store.write(Batch(findings=[self._finding(DAY0 + 3 * HOUR, type="slow_query")]))
        assert [f.type for f in store.read_findings(DAY0 + HOUR, DAY0 + DAY)] == ["slow_query"]
        assert [f.type for f in store.read_findings(DAY0, DAY0 + DAY, type="n_plus_one")] == [
            "n_plus_one"
        ]
        assert store.read_findings(DAY0, DAY0 + DAY, service="other") == []
        assert store.read_findings(DAY0, DAY0 + 5) != []

    def test_findings_age_out_with_rollups(self, store: Store) -> None:
        store.write(Batch(findings=[self._finding(DAY0 + 10)]))
        store.apply_retention(DAY0 + 89 * DAY)
        assert len(store.read_findings(DAY0, DAY0 + DAY)) == 1
        store.apply_retention(DAY0 + 91 * DAY)
        assert store.read_findings(DAY0, DAY0 + DAY) == []


class TestBulkHistory:
    @pytest.mark.slow
    def test_ninety_days_at_a_thousand_operations_an_hour_read_back_exactly(
        self, tmp_path: Path
    ) -> None:
        # SQLite only: streaming in bounded chunks is what is tested (the memory store
        # holds everything by design), and 2.16M operations take a while.
        store = open_store(f"sqlite:///{tmp_path / 'bulk.db'}")
        days, per_hour = 90, 1000
        start = DAY0 - days * DAY

        def history():  # type: ignore[no-untyped-def]
            # Generated lazily: the store must stream, not hold it all.
            for hour in range(days * 24):
                base = start + hour * HOUR
                for i in range(per_hour):
                    yield Operation(
                        "cmd" if i % 4 else "db.q",
                        int((base + i * 3.6) * NS),
                        (1 + i % 7) * MS,
                        kind="flow" if i % 4 else "db",
                    )

        assert (
            store.write_operations(history(), service="bot", instance="imp") == days * 24 * per_hour
        )
        now = DAY0  # every minute row is still there for the check below
        retention = store.retention
        store.retention = Retention(minute_rollups_days=100, hour_rollups_days=100)
        try:
            for res in (MINUTE, HOUR, DAY):
                counts: dict[int, int] = {}
                for r in store.read_rollups(res, start, DAY0, SeriesFilter()):
                    counts[r.start] = counts.get(r.start, 0) + r.count
                assert sum(counts.values()) == days * 24 * per_hour, res
                expected_per_bucket = per_hour * res // HOUR if res >= HOUR else None
                if expected_per_bucket is not None:
                    assert set(counts.values()) == {expected_per_bucket}, res
                else:  # 1,000 an hour, one every 3.6 s: 16 or 17 per minute
                    assert set(counts.values()) <= {16, 17}
            summary = store.summarize(start, DAY0, now=now)
            assert summary.rollups[("bot", "cmd", "flow", "ok")].count == days * 24 * 750
            assert store.read_drops(start, DAY0) == {}
        finally:
            store.retention = retention
            store.close()
