"""Memory: RSS that ``import botpulse`` + ``init()`` add, and RSS after 1M operations.

Measured in a fresh interpreter (``_memory_child.py``) against a new SQLite file,
with the default bounded buffer (10,000 events): operations recorded faster than
the pipeline drains are dropped and counted, and memory stays bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._common import BENCH_DIR, MB, Figure, Outcome, at_most


def measure_child(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="botpulse-bench-") as tmp:
        out = subprocess.run(
            [sys.executable, str(BENCH_DIR / "_memory_child.py"), str(Path(tmp) / "m.db"), str(n)],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> Outcome:
    n = 100_000 if quick else 1_000_000
    runs = [measure_child(n) for _ in range(1 if quick else 3)]
    # The median run by RSS after the operations (the machine's other load does not matter).
    r = sorted(runs, key=lambda x: x["after_ops"])[len(runs) // 2]
    base = r["baseline"]
    init_added = (r["after_init"] - base) / MB
    ops_added = (r["after_ops"] - base) / MB
    figures = [
        Figure(
            "memory.import_init_mb",
            "RSS added by import botpulse + init(sqlite)",
            init_added,
            "MB",
            "<= 10 MB",
            at_most(init_added, 10),
            note=f"import alone {(r['after_import'] - base) / MB:.1f} MB",
        ),
        Figure(
            "memory.after_ops_mb",
            f"RSS added after recording {n:,} operations (buffer 10,000)",
            ops_added,
            "MB",
            # The 10 MB target is for import + init(); this shows that recording
            # stays bounded (the buffer holds at most 10,000 events).
            note=(
                f"information; peak {(r['peak'] - base) / MB:.1f} MB over baseline; "
                f"{r['written']:,} written, {r['dropped']:,} dropped (buffer full)"
            ),
        ),
        Figure(
            "memory.recording_mb",
            "of which added by recording (after init)",
            (r["after_ops"] - r["after_init"]) / MB,
            "MB",
            note=f"after shutdown {(r['after_shutdown'] - base) / MB:.1f} MB over baseline",
        ),
    ]
    return Outcome(figures, {"runs": runs, "chosen": r, "unit": "bytes"})
