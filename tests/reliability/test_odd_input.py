"""Odd input never raises: whatever the bot passes as names, kinds, attributes or
checkpoints is truncated, masked or bucketed off the hot path, never raised into the bot.

Strict mode is on (tests/conftest.py), so an internal error anywhere in capture, the
pipeline or the store would fail these tests instead of being swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import botpulse
from botpulse.analysis import build_report, parse_window
from botpulse.errors import ConfigurationError
from botpulse.store import SeriesFilter, TraceSample, open_store, parse_store_url

from .helpers import NO_RUNTIME, stored_counts


class ReprRaises:
    def __repr__(self) -> str:
        raise RuntimeError("__repr__ explodes")


class ReprNotStr:
    def __repr__(self) -> Any:
        return 42


class StrRaises(str):
    """A str subclass whose str() and repr() raise."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ explodes")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ explodes")


TEN_MB = "x" * 10_000_000
ODD: list[Any] = [
    0,
    -1,
    2**53,
    -(2**63),
    10**100,
    10**5000,  # repr() itself raises ValueError (int max str digits)
    1.5,
    float("nan"),
    float("inf"),
    -float("inf"),
    None,
    True,
    b"\x00\xffmessage bytes",
    bytearray(b"abc"),
    memoryview(b"xyz"),
    "\ud800",
    "a\udfffb",
    "",
    " ",
    "é" * 300,
    TEN_MB,
    ("tuple", 1),
    object(),
    [1, 2],
    {"k": "v"},
    {1, 2},
    ReprRaises(),
    ReprNotStr(),
    StrRaises("odd"),
]
ODD_IDS = [f"{i}-{type(v).__name__}" for i, v in enumerate(ODD)]


def _all_traces(url: str) -> list[TraceSample]:
    with open_store(url, create=False) as store:
        return store.read_traces(0, time.time() + 3600, SeriesFilter(), limit=100_000)


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(k)
            yield from _walk_strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk_strings(v)


@pytest.mark.parametrize("odd", ODD, ids=ODD_IDS)
def test_odd_value_as_name_kind_attribute_and_checkpoint(sqlite_url: str, odd: Any) -> None:
    """One odd value everywhere a bot can pass one: nothing raises, all is stored bounded."""
    botpulse.init(store=sqlite_url, service="odd", instance="i", flush_interval=0.05)
    sentinel = object()

    @botpulse.measure(odd, kind=odd, attr=odd)
    def decorated() -> object:
        return sentinel

    with botpulse.flow(odd, attr=odd, other=odd) as f:
        f.checkpoint(odd, attr=odd)
        botpulse.checkpoint(odd)
        f.set(later=odd)
        with botpulse.measure(odd, kind=odd, attr=odd) as t:
            t.set(more=odd)
        with botpulse.measure("child", kind="db", attr=odd):
            pass
        assert decorated() is sentinel
    with botpulse.flow("named-flow", attr=odd):
        pass
    final = botpulse.shutdown(timeout=10)

    assert final is not None
    assert (final.recorded, final.written, final.dropped) == (5, 5, {})
    counts = stored_counts(sqlite_url, service="odd")
    assert sum(counts.values()) == 5
    for name, kind, _status in counts:
        assert 0 < len(name) <= 200
        assert 0 < len(kind) <= 32
        name.encode("utf-8")  # valid text, lone surrogates replaced
        kind.encode("utf-8")
    traces = _all_traces(sqlite_url)
    assert len(traces) == 2
    for trace in traces:
        assert len(trace.name) <= 200
        for text in _walk_strings(trace.attrs):
            assert len(text) <= 1024
            text.encode("utf-8")
        assert "message bytes" not in json.dumps(trace.attrs, default=str)
        for child in trace.children:
            assert len(child.name) <= 200
            assert len(child.kind) <= 32
            for text in _walk_strings(child.attrs):
                assert len(text) <= 1024
        for cp in trace.checkpoints:
            assert len(cp.name) <= 200
    outer = next(t for t in traces if t.name != "named-flow")
    assert len(outer.children) == 3
    assert len(outer.checkpoints) == 2
    assert set(outer.attrs) == {"attr", "other", "later"}


def test_ten_thousand_names_are_capped_with_an_overflow_bucket(sqlite_url: str) -> None:
    max_names = 100
    botpulse.init(store=sqlite_url, service="names", instance="i", max_names=max_names)
    for i in range(10_000):
        with botpulse.measure(f"user-{i}-command"):
            pass
    botpulse.shutdown(timeout=10)

    now = datetime.now(timezone.utc)
    with open_store(sqlite_url, create=False) as store:
        report = build_report(store, now - timedelta(hours=1), now + timedelta(minutes=1))
        series = store.series()
    names = [op.name for op in report.operations]
    assert len(names) == max_names + 1
    assert "(other)" in names
    counts = {op.name: op.count for op in report.operations}
    assert counts["(other)"] == 10_000 - max_names
    assert sum(counts.values()) == 10_000
    assert len(series) == max_names + 1


def test_distinct_kinds_are_capped_too(sqlite_url: str) -> None:
    """Kinds are a label like names (RELIABILITY.md: label values are capped in cardinality
    with an overflow bucket): 64 distinct kinds at most, the rest under ``other``.

    Non-str kinds and kinds longer than 32 characters must count against the cap too.
    """
    botpulse.init(store=sqlite_url, service="kinds", instance="i")
    for i in range(300):
        with botpulse.measure("by-int-kind", kind=i):
            pass
        with botpulse.measure("by-long-kind", kind=f"{i}-" + "k" * 40):
            pass
    botpulse.shutdown(timeout=10)
    counts = stored_counts(sqlite_url, service="kinds")
    kinds = {kind for _name, kind, _status in counts}
    assert sum(counts.values()) == 600
    assert len(kinds) <= 65, f"{len(kinds)} distinct kinds stored"


def test_secrets_are_masked_and_canaries_leak_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Canary secrets under credential-looking keys, and message bytes, must not appear in
    the store file (raw or inflated), in trace samples, in the report JSON or in logs."""
    path = tmp_path / "secrets.db"
    url = f"sqlite:///{path}"
    canaries = {
        "password": "CANARY-pw-3f9a",
        "token": "CANARY-tok-7c21",
        "api_key": "CANARY-key-9d0e",
        "Authorization": "CANARY-auth-51b3",
        "client_secret": "CANARY-sec-aa42",
        "session_cookie": "CANARY-cookie-19f0",
        "db_passwd": "CANARY-passwd-6e6e",
    }
    message = b"CANARY-message-text secret plans"
    botpulse.init(store=url, service="secrets", instance="i", flush_interval=0.05)
    for _ in range(3):
        with botpulse.flow("login", user="u1", payload=message, **canaries) as f:
            f.set(**{"x-" + k: v for k, v in canaries.items()})
            with botpulse.measure("auth.check", kind="http", **canaries):
                pass
    botpulse.shutdown(timeout=10)

    traces = _all_traces(url)
    assert traces
    for trace in traces:
        for key in canaries:
            assert trace.attrs[key] == "***"
            assert trace.attrs["x-" + key] == "***"
            assert trace.children[0].attrs[key] == "***"
        assert trace.attrs["user"] == "u1"  # ordinary attributes are kept
        assert trace.attrs["payload"] == f"<bytes of {len(message)} bytes>"

    blobs = [p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("secrets.db")]
    conn = sqlite3.connect(path)
    try:
        for (body,) in conn.execute("SELECT body FROM traces"):
            blobs.append(zlib.decompress(body[1:], -15) if body[:1] == b"z" else body)
    finally:
        conn.close()
    now = datetime.now(timezone.utc)
    with open_store(url, create=False) as store:
        report = build_report(store, now - timedelta(hours=1), now + timedelta(minutes=1))
    blobs.append(json.dumps(report.to_dict()).encode())
    blobs.append(caplog.text.encode())
    for secret in [*canaries.values(), "CANARY-message"]:
        for blob in blobs:
            assert secret.encode() not in blob


# -- hypothesis: the public API, every way it can be used -------------------------------


class Boom(Exception):
    """An ordinary handler failure."""


EXCEPTIONS: list[Callable[[], BaseException]] = [
    lambda: Boom("boom"),
    lambda: ValueError("bad"),
    lambda: KeyError("k"),
    lambda: RuntimeError("rt"),
    lambda: KeyboardInterrupt(),
    lambda: SystemExit(3),
    lambda: asyncio.CancelledError(),
    lambda: GeneratorExit(),
]
odd_values = st.one_of(
    st.sampled_from(ODD),
    st.text(max_size=30),
    st.integers(),
    st.floats(),
    st.binary(max_size=16),
    st.none(),
    st.lists(st.integers(), max_size=3),
)
attr_maps = st.dictionaries(
    st.text(max_size=12).filter(lambda k: k not in ("name", "kind")), odd_values, max_size=4
)
MODES = [
    "with_measure",
    "with_flow",
    "async_with_measure",
    "async_with_flow",
    "deco_measure",
    "deco_flow",
    "deco_async_measure",
    "deco_async_flow",
]


def test_fuzz_public_api_passes_results_and_exceptions_through(sqlite_url: str) -> None:
    """>= 1,000 random uses of measure/flow/checkpoint/set, as ``with``, ``async with`` and
    decorators of sync and async functions, with odd names, kinds and attributes: the
    user's return value and exception come back as the very same object, nothing else
    raises, and every operation is counted and written."""
    botpulse.init(
        store=sqlite_url, service="fuzz", instance="i", flush_interval=0.05, buffer_size=1_000_000,
        **NO_RUNTIME,
    )  # fmt: skip
    loop = asyncio.new_event_loop()
    examples = 0

    @settings(
        max_examples=1000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        mode=st.sampled_from(MODES),
        name=odd_values,
        kind=odd_values,
        attrs=attr_maps,
        inner_name=odd_values,
        inner_attrs=attr_maps,
        set_attrs=attr_maps,
        checkpoint_name=odd_values,
        raises=st.one_of(st.none(), st.sampled_from(EXCEPTIONS)),
    )
    def run(
        mode: str,
        name: Any,
        kind: Any,
        attrs: dict[str, Any],
        inner_name: Any,
        inner_attrs: dict[str, Any],
        set_attrs: dict[str, Any],
        checkpoint_name: Any,
        raises: Callable[[], BaseException] | None,
    ) -> None:
        nonlocal examples
        examples += 1
        result = object()
        exc = raises() if raises is not None else None

        def body() -> object:
            botpulse.checkpoint(checkpoint_name, **set_attrs)
            flow = botpulse.current_flow()
            if flow is not None:
                flow.set(**set_attrs)
                flow.checkpoint(checkpoint_name)
            with botpulse.measure(inner_name, kind=kind, **inner_attrs) as inner:
                inner.set(**set_attrs)
            if exc is not None:
                raise exc
            return result

        async def async_body() -> object:
            await asyncio.sleep(0)
            return body()

        def make() -> Any:
            if mode.endswith("flow"):
                return botpulse.flow(name, **attrs)
            return botpulse.measure(name, kind, **attrs)

        async def capture(awaitable: Any) -> tuple[str, Any]:
            try:
                return "returned", await awaitable
            except BaseException as caught:  # compared by identity below
                return "raised", caught

        def capture_sync(func: Callable[[], Any]) -> tuple[str, Any]:
            try:
                return "returned", func()
            except BaseException as caught:
                return "raised", caught

        timer = make()
        if mode in ("with_measure", "with_flow"):

            def in_with() -> object:
                with timer as entered:
                    assert entered is timer
                    return body()

            outcome = capture_sync(in_with)
        elif mode in ("async_with_measure", "async_with_flow"):

            async def in_async_with() -> object:
                async with timer as entered:
                    assert entered is timer
                    return await async_body()

            outcome = loop.run_until_complete(capture(in_async_with()))
        elif mode in ("deco_measure", "deco_flow"):
            wrapped = timer(body)
            assert wrapped.__wrapped__ is body
            outcome = capture_sync(wrapped)
        else:
            wrapped = timer(async_body)
            assert asyncio.iscoroutinefunction(wrapped)
            outcome = loop.run_until_complete(capture(wrapped()))

        if exc is None:
            assert outcome == ("returned", result)
            assert outcome[1] is result
        else:
            assert outcome[0] == "raised"
            assert outcome[1] is exc

    try:
        run()
    finally:
        loop.close()
    final = botpulse.shutdown(timeout=30)
    assert examples >= 1000
    assert final is not None
    # Two operations per example (the outer one and the inner measure), all written.
    assert final.recorded == 2 * examples
    assert (final.written, final.pending, final.dropped) == (2 * examples, 0, {})
    assert sum(stored_counts(sqlite_url, service="fuzz").values()) == 2 * examples


# -- hypothesis: configuration boundaries raise ConfigurationError and nothing else -------

URL_STARTS = ("", "sqlite:", "sqlite://", "sqlite:///", "sqlite:////", "memory://", "mysql://")
url_text = st.builds(
    lambda scheme, rest: scheme + rest,
    st.sampled_from([*URL_STARTS, "postgresql://", "SQLITE:///"]),
    st.text(alphabet=st.sampled_from(list("ab.:/@[]%?#\x00 é\ud800")), max_size=20),
)


def test_fuzz_store_urls_raise_only_configuration_errors() -> None:
    @settings(max_examples=1000, deadline=None, database=None)
    @given(url=st.one_of(url_text, st.text(max_size=40)))
    def run(url: str) -> None:
        try:
            parsed = parse_store_url(url)
        except ConfigurationError as exc:
            message = str(exc)
        else:
            assert parsed.scheme in ("sqlite", "memory", "postgresql")
            return
        assert "\n" not in message  # one line

    run()


moments = st.one_of(
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.one_of(st.integers(0, 10**30), st.floats(0, 1e30).map(lambda f: f"{f:.3f}")),
        st.sampled_from(["s", "m", "h", "d", "w", "min", "days", "x", ""]),
    ),
    st.builds(
        lambda dt, off: dt.isoformat() + off,
        st.datetimes(),
        st.sampled_from(["", "Z", "+00:00", "+14:00", "-12:00", "+05:30"]),
    ),
    st.text(max_size=25),
)


def test_fuzz_report_windows_raise_only_configuration_errors() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

    @settings(max_examples=1000, deadline=None, database=None)
    @given(since=moments, until=st.one_of(st.none(), moments))
    def run(since: str, until: str | None) -> None:
        try:
            start, end = parse_window(since, until, now=now)
        except ConfigurationError as exc:
            message = str(exc)
        else:
            assert start < end
            return
        assert "\n" not in message

    run()


numbers = st.one_of(
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([None, "1", True, [1], 10**400]),
)


def test_fuzz_init_settings_raise_only_configuration_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every numeric setting of ``init()`` is validated into a ConfigurationError."""
    monkeypatch.setenv("BOTPULSE_DISABLED", "1")  # validate, then stay off: no threads

    @settings(max_examples=1000, deadline=None, database=None)
    @given(
        flush=numbers,
        size=numbers,
        names=numbers,
        slowest=numbers,
        service=st.one_of(st.none(), st.text(max_size=10), st.integers()),
    )
    def run(flush: Any, size: Any, names: Any, slowest: Any, service: Any) -> None:
        try:
            botpulse.init(
                store="memory://",
                service=service,
                flush_interval=flush,
                buffer_size=size,
                max_names=names,
                trace_slowest=slowest,
            )
        except ConfigurationError as exc:
            message = str(exc)
            assert "\n" not in message
        with contextlib.suppress(ConfigurationError):
            botpulse.shutdown(timeout=flush)

    run()
