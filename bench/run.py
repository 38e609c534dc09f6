"""Run botpulse's benchmarks, print every figure against its target, write JSON.

Usage::

    .venv/bin/python bench/run.py                 # the full run (about 11 minutes)
    .venv/bin/python bench/run.py --quick         # smoke run of every benchmark (< 60 s)
    .venv/bin/python bench/run.py --only hot_path,pipeline
    .venv/bin/python bench/run.py --markdown bench/RESULTS.md   # also write RESULTS.md
    .venv/bin/python bench/run.py --profile pipeline            # cProfile one benchmark

Exit status: 0 when every benchmark ran (targets may still be missed: see the
table, or pass ``--check`` to exit 3 when one is), 1 when a benchmark crashed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

from bench import (
    accuracy,
    allin,
    frameworks,
    hot_path,
    memory,
    pipeline,
    queries,
    report_latency,
    runtime,
    sanitize,
    soak,
    storage,
)
from bench._common import BENCH_DIR, Figure, Outcome, machine_info

#: In run order: the hot path first, in a process not yet grown by the others.
BENCHMARKS: dict[str, Callable[[bool], Outcome]] = {
    "hot_path": hot_path.run,
    "pipeline": pipeline.run,
    "accuracy": accuracy.run,
    "storage": storage.run,
    "report": report_latency.run,
    "memory": memory.run,
    "sanitize": sanitize.run,
    "allin": allin.run,
    "soak": soak.run,
    "frameworks": frameworks.run,
    "queries": queries.run,
    "runtime": runtime.run,
}
MARKER = "<!-- everything above this line is written by bench/run.py --markdown -->"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in {"ns/op", "ns/add", "events/s", "bytes"}:
        return f"{value:,.0f} {unit}"
    if unit == "%":
        return f"{value:.3f} %"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.1f} {unit}"


def verdict(figure: Figure) -> str:
    if figure.passed is None:
        return "info"
    return "PASS" if figure.passed else "FAIL"


def ordered(results: dict[str, Any]) -> list[tuple[str, Figure]]:
    """Ratios first, then every other figure by benchmark."""
    rows = [(name, Figure(**f)) for name, res in results.items() for f in res.get("figures", [])]
    return [r for r in rows if r[1].ratio] + [r for r in rows if not r[1].ratio]


def print_table(results: dict[str, Any], console: Console, title: str) -> None:
    table = Table(title=title, show_lines=False)
    table.add_column("benchmark", style="cyan", no_wrap=True)
    table.add_column("figure")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("target", justify="right", no_wrap=True)
    table.add_column("result", justify="center")
    table.add_column("note", style="dim")
    for name, figure in ordered(results):
        mark = verdict(figure)
        style = {"PASS": "green", "FAIL": "bold red"}.get(mark, "dim")
        table.add_row(
            name,
            figure.label,
            fmt(figure.value, figure.unit),
            figure.target,
            f"[{style}]{mark}[/]",
            figure.note,
        )
    for name, res in results.items():
        if res.get("error"):
            table.add_row(name, "[bold red]crashed[/]", "", "", "[bold red]ERROR[/]", res["error"])
    console.print(table)


def markdown(doc: dict[str, Any], previous: str | None) -> str:
    m = doc["machine"]
    lines = [
        "# botpulse benchmark results",
        "",
        f"Latest {'quick' if doc['quick'] else 'full'} run: `{doc['command']}`, "
        f"{doc['timestamp']}, {doc['duration_s']:.0f} s, botpulse {m['botpulse']} "
        f"(commit {m['git_commit']}).",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu']} |",
        f"| cores | {m['cores']} |",
        f"| memory | {(m['memory_bytes'] or 0) / 2**30:.1f} GiB |",
        f"| Python | {m['python']} |",
        f"| SQLite | {m['sqlite']} |",
        f"| OS | {m['os']} |",
        f"| load average at start | {', '.join(str(x) for x in m['load_average_at_start'])} |",
        "| peers | " + ", ".join(f"{k} {v}" for k, v in m["peers"].items() if v) + " |",
        "",
        "Every figure below was measured in the same run; ratios first. "
        "Hot-path figures are minimum ns/op over interleaved rounds, net of the empty loop.",
        "",
        "| benchmark | figure | value | target | result | note |",
        "|---|---|---:|---:|:---:|---|",
    ]
    for name, figure in ordered(doc["results"]):
        mark = verdict(figure)
        shown = f"**{mark}**" if mark == "FAIL" else mark
        lines.append(
            f"| {name} | {figure.label} | {fmt(figure.value, figure.unit)} | "
            f"{figure.target} | {shown} | {figure.note} |"
        )
    lines += ["", MARKER, ""]
    text = "\n".join(lines)
    if previous and MARKER in previous:
        text += previous.split(MARKER, 1)[1].lstrip("\n")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run of every benchmark")
    parser.add_argument("--json", default=str(BENCH_DIR / "results" / "latest.json"))
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(BENCHMARKS)}")
    parser.add_argument("--markdown", default="", help="also write a RESULTS.md to this path")
    parser.add_argument("--profile", default="", help="cProfile this benchmark, print the top")
    parser.add_argument("--check", action="store_true", help="exit 3 when a target is missed")
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    console = Console(width=None if sys.stdout.isatty() else 200)
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "machine": machine_info(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "command": "bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": {},
    }
    crashed = False
    for name in names:
        console.print(f"[cyan]running {name}{' (quick)' if args.quick else ''}…[/]")
        t0 = time.perf_counter()
        profiler = cProfile.Profile() if args.profile == name else None
        try:
            if profiler:
                profiler.enable()
            outcome = BENCHMARKS[name](args.quick)
            entry: dict[str, Any] = {
                "figures": [f.to_dict() for f in outcome.figures],
                "details": outcome.details,
            }
        except Exception as exc:
            crashed = True
            entry = {"figures": [], "error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        finally:
            if profiler:
                profiler.disable()
        entry["elapsed_s"] = time.perf_counter() - t0
        doc["results"][name] = entry
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
            stats.print_stats(30)
            console.print(out.getvalue(), markup=False, highlight=False)
    doc["duration_s"] = time.perf_counter() - started

    print_table(doc["results"], console, "botpulse benchmarks" + (" (quick)" if args.quick else ""))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    console.print(f"wrote {path} in {doc['duration_s']:.0f} s")
    if args.markdown:
        md = Path(args.markdown)
        previous = md.read_text() if md.exists() else None
        md.write_text(markdown(doc, previous))
        console.print(f"wrote {md}")
    if crashed:
        return 1
    missed = any(f.passed is False for _n, f in ordered(doc["results"]))
    return 3 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
