"""Synthetic bot traffic shared by the pipeline, storage and report benchmarks.

100 operation names: 10 flows (user-facing commands) and 90 steps of kinds ``db``,
``http``, ``cache``, ``redis`` and ``op``. A top-level unit of work is a flow with
probability 10% (three child steps of its own, two checkpoints), else one step.
Every child is also an operation of its own, as in a live bot where the child timer
is a record too, so a flow unit is 4 events and a step unit 1: flows are about 7.7%
of events, their children 23%. Names are picked with Zipf weights (a few hot
commands, a long tail); durations are lognormal per name (median by kind, sigma
0.4–1.0); 1% of operations fail. Everything is drawn from a seeded numpy generator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from botpulse._model import Checkpoint, Child, Operation

N_FLOWS = 10
N_STEPS = 90
FLOW_SHARE = 0.1
CHILDREN = 3
ERROR_RATE = 0.01
EVENTS_PER_UNIT = 1 + FLOW_SHARE * CHILDREN  # 1.3

KINDS = ("db", "http", "cache", "redis", "op")
_MEDIAN_MS = {"db": 2.0, "http": 80.0, "cache": 0.3, "redis": 0.5, "op": 5.0}

FLOW_NAMES = [f"cmd.command_{i:02d}" for i in range(N_FLOWS)]
STEP_NAMES = [f"{KINDS[i % 5]}.step_{i:02d}" for i in range(N_STEPS)]
STEP_KINDS = [KINDS[i % 5] for i in range(N_STEPS)]
ALL_NAMES = FLOW_NAMES + STEP_NAMES


def _zipf(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()


@dataclass(slots=True)
class Unit:
    """One top-level unit of work: a step, or a flow with children and checkpoints.

    Times are nanoseconds from the unit's start; ``children`` holds
    ``(step index, start offset, duration, failed)``.
    """

    start_ns: int
    flow: int  # flow index, or -1 for a plain step
    step: int  # step index when flow == -1
    duration_ns: int
    failed: bool
    children: list[tuple[int, int, int, bool]]
    checkpoints: list[tuple[str, int]]

    @property
    def events(self) -> int:
        return 1 + len(self.children)


class Traffic:
    """A seeded source of :class:`Unit` and of :class:`Operation` for explicit timestamps."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        params = np.random.default_rng(1234)  # fixed per-name shape, whatever the seed
        self.step_mu = np.array([math.log(_MEDIAN_MS[k] * 1e6) for k in STEP_KINDS])
        self.step_sigma = params.uniform(0.4, 1.0, N_STEPS)
        self.flow_children = [[(3 * f + j) % N_STEPS for j in range(CHILDREN)] for f in range(10)]
        self.step_p = _zipf(N_STEPS)
        self.flow_p = _zipf(N_FLOWS)

    def units(self, start_ns: int, span_ns: int, count: int) -> list[Unit]:
        """``count`` units starting uniformly at random within ``[start_ns, start_ns + span)``."""
        if count <= 0:
            return []
        rng = self.rng
        starts = np.sort(rng.integers(0, span_ns, count)) + start_ns
        is_flow = rng.random(count) < FLOW_SHARE
        step = rng.choice(N_STEPS, size=count, p=self.step_p)
        flow = rng.choice(N_FLOWS, size=count, p=self.flow_p)
        z = rng.standard_normal((count, CHILDREN + 2))
        failed = rng.random((count, CHILDREN + 1)) < ERROR_RATE
        mu, sigma = self.step_mu, self.step_sigma
        step_dur = np.exp(mu[step] + sigma[step] * z[:, 0]).astype(np.int64)
        kids = np.array(self.flow_children)[flow]  # (count, CHILDREN)
        kid_dur = np.exp(mu[kids] + sigma[kids] * z[:, 1 : CHILDREN + 1]).astype(np.int64)
        overhead = np.exp(math.log(3e6) + 0.5 * z[:, CHILDREN + 1]).astype(np.int64)
        out: list[Unit] = []
        for s, f, st, sd, fl, kd, kk, oh, fail in zip(
            starts.tolist(),
            flow.tolist(),
            step.tolist(),
            step_dur.tolist(),
            is_flow.tolist(),
            kid_dur.tolist(),
            kids.tolist(),
            overhead.tolist(),
            failed.tolist(),
            strict=True,
        ):
            if not fl:
                out.append(Unit(s, -1, st, sd, fail[0], [], []))
                continue
            guard = oh // 3
            at = guard
            children = []
            for j in range(CHILDREN):
                children.append((kk[j], at, kd[j], fail[j + 1]))
                at += kd[j]
            reply = at
            total = at + oh - guard
            out.append(
                Unit(s, f, -1, total, fail[0], children, [("guard", guard), ("reply", reply)])
            )
        return out

    def operations(self, units: list[Unit]) -> list[Operation]:
        """The operations a bot would record for ``units`` (children also on their own)."""
        ops: list[Operation] = []
        append = ops.append
        for u in units:
            if u.flow < 0:
                append(
                    Operation(
                        STEP_NAMES[u.step],
                        u.start_ns,
                        u.duration_ns,
                        STEP_KINDS[u.step],
                        "error" if u.failed else "ok",
                        "TimeoutError" if u.failed else None,
                    )
                )
                continue
            children = []
            for step, off, dur, fail in u.children:
                status = "error" if fail else "ok"
                error = "TimeoutError" if fail else None
                children.append(Child(STEP_NAMES[step], STEP_KINDS[step], off, dur, status, error))
                append(
                    Operation(
                        STEP_NAMES[step], u.start_ns + off, dur, STEP_KINDS[step], status, error
                    )
                )
            failed = u.failed or any(c[3] for c in u.children)
            append(
                Operation(
                    FLOW_NAMES[u.flow],
                    u.start_ns,
                    u.duration_ns,
                    "flow",
                    "error" if failed else "ok",
                    "CommandError" if failed else None,
                    flow_attrs(u.start_ns),
                    [Checkpoint(name, at) for name, at in u.checkpoints],
                    children,
                )
            )
        return ops

    def seconds(
        self, start_s: int, seconds: int, events_per_s: float
    ) -> Iterator[tuple[int, list[Operation]]]:
        """Per simulated second: ``(second, operations)`` at ``events_per_s`` on average."""
        rate_units = events_per_s / EVENTS_PER_UNIT
        counts = self.rng.poisson(rate_units, seconds).tolist()
        for i, count in enumerate(counts):
            sec = start_s + i
            yield sec, self.operations(self.units(sec * 1_000_000_000, 1_000_000_000, count))


def flow_attrs(start_ns: int) -> dict[str, Any]:
    """The attributes a flow carries (kept in trace samples)."""
    return {"user_id": 1000 + start_ns % 997, "guild_id": 42}


# -- the same traffic as per-series rates and duration samplers (for long histories) ----


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """One stored series of the traffic model and its mean events per second."""

    name: str
    kind: str
    status: str
    per_second: float
    flow: int  # flow index, or -1
    step: int  # step index when flow == -1


def series_specs(traffic: Traffic, events_per_s: float) -> list[SeriesSpec]:
    """Every (name, kind, status) series the traffic model produces, with its rate."""
    units = events_per_s / EVENTS_PER_UNIT
    step_rate = units * (1 - FLOW_SHARE) * traffic.step_p
    for f, kids in enumerate(traffic.flow_children):
        for k in kids:
            step_rate[k] += units * FLOW_SHARE * traffic.flow_p[f]
    flow_rate = units * FLOW_SHARE * traffic.flow_p
    flow_error = 1 - (1 - ERROR_RATE) ** (1 + CHILDREN)
    specs = []
    for f in range(N_FLOWS):
        r = float(flow_rate[f])
        specs.append(SeriesSpec(FLOW_NAMES[f], "flow", "ok", r * (1 - flow_error), f, -1))
        specs.append(SeriesSpec(FLOW_NAMES[f], "flow", "error", r * flow_error, f, -1))
    for i in range(N_STEPS):
        r = float(step_rate[i])
        specs.append(SeriesSpec(STEP_NAMES[i], STEP_KINDS[i], "ok", r * (1 - ERROR_RATE), -1, i))
        specs.append(SeriesSpec(STEP_NAMES[i], STEP_KINDS[i], "error", r * ERROR_RATE, -1, i))
    return specs


def sample_durations(
    traffic: Traffic, spec: SeriesSpec, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` durations (int64 ns, >= 1) drawn like the traffic model draws ``spec``'s."""
    mu, sigma = traffic.step_mu, traffic.step_sigma
    if spec.flow < 0:
        out = np.exp(mu[spec.step] + sigma[spec.step] * rng.standard_normal(n))
    else:
        out = np.exp(math.log(3e6) + 0.5 * rng.standard_normal(n))
        for k in traffic.flow_children[spec.flow]:
            out += np.exp(mu[k] + sigma[k] * rng.standard_normal(n))
    return np.maximum(out.astype(np.int64), 1)
