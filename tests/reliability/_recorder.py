"""A bot process for the crash and multi-process tests (run as a script, not collected).

``_recorder.py forever URL SERVICE``: records forever with ``flush_interval=0.2`` and
prints ``<monotonic seconds> <events recorded so far>`` after every 50 turns.

``_recorder.py count URL INSTANCE N``: records N events as fast as it can, shuts down and
prints the final ``Stats`` as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ["BOTPULSE_STRICT"] = "1"

import botpulse


def turn() -> None:
    with botpulse.flow("cmd") as f:
        with botpulse.measure("db.query", kind="db"):
            pass
        f.checkpoint("done")


def forever(url: str, service: str) -> None:
    botpulse.init(
        store=url, service=service, instance=service, flush_interval=0.2, buffer_size=1_000_000
    )
    recorded = 0
    out = sys.stdout
    while True:
        for _ in range(50):
            turn()
        recorded += 100
        out.write(f"{time.monotonic():.6f} {recorded}\n")
        out.flush()
        time.sleep(0.002)


def count(url: str, instance: str, n: int) -> None:
    botpulse.init(
        store=url, service="multi", instance=instance, flush_interval=0.05, buffer_size=1_000_000
    )
    for _ in range(n // 2):
        turn()
    final = botpulse.shutdown(timeout=30)
    assert final is not None
    print(
        json.dumps(
            {
                "recorded": final.recorded,
                "written": final.written,
                "pending": final.pending,
                "dropped": final.dropped,
                "failures": final.store_failures,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "forever":
        forever(sys.argv[2], sys.argv[3])
    else:
        count(sys.argv[2], sys.argv[3], int(sys.argv[4]))
