"""Detectors see every finished flow in the pipeline; normalizers rename a kind's operations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

import botpulse
from botpulse import _detect
from botpulse._model import Finding
from botpulse.testing import capture


class Repeats(_detect.Detector):
    """Reports a finding for a flow that ran the same db step 3 or more times."""

    def __init__(self) -> None:
        self.seen: list[_detect.FlowRecord] = []
        self.pending: list[Finding] = []

    def observe(self, flow: _detect.FlowRecord) -> None:
        self.seen.append(flow)
        names = [s.name for s in flow.steps if s.kind == "db"]
        for name in set(names):
            if names.count(name) >= 3:
                self.pending.append(Finding("n_plus_one", name, flow=flow.name))

    def collect(self, now_ns: int) -> Iterable[Finding]:
        found, self.pending = self.pending, []
        return found


@pytest.fixture
def detector() -> Iterator[Repeats]:
    d = Repeats()
    _detect.register(d)
    _detect.register_normalizer("db", lambda sql: sql.split(" WHERE ")[0] + " WHERE ?")
    yield d
    _detect.unregister(d)
    _detect.unregister_normalizer("db")


def test_detector_sees_flows_with_normalized_steps_and_its_findings_are_stored(
    detector: Repeats,
) -> None:
    with capture() as recorded:
        with botpulse.flow("stats"):
            for i in range(3):
                with botpulse.measure(f"SELECT score FROM m WHERE id = {i}", kind="db"):
                    pass
        recorded.flush()
        findings = recorded.store.read_findings(0, 2**40)
    (flow,) = detector.seen
    assert [s.name for s in flow.steps] == ["SELECT score FROM m WHERE ?"] * 3
    assert recorded.count("SELECT score FROM m WHERE ?", kind="db") == 3
    assert [(f.type, f.flow, f.subject, f.service) for f in findings] == [
        ("n_plus_one", "stats", "SELECT score FROM m WHERE ?", "test")
    ]


def test_a_failing_detector_is_an_internal_error_not_the_bots(detector: Repeats) -> None:
    def boom(flow: _detect.FlowRecord) -> None:
        raise RuntimeError("detector bug")

    detector.observe = boom  # type: ignore[method-assign]
    from botpulse import _diagnostics

    _diagnostics._STRICT = False
    before = _diagnostics.internal_error_count()
    try:
        with capture() as recorded:
            with botpulse.flow("stats"):
                pass
            assert recorded.count("stats") == 1
    finally:
        _diagnostics._STRICT = True
    assert _diagnostics.internal_error_count() == before + 1
    _diagnostics._error_count = before  # the autouse fixture checks nothing leaked
