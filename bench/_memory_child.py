"""Run in a fresh interpreter by ``memory.py``: RSS before/after import, init, 1M operations.

Prints one JSON line. RSS is read from ``/proc/self/statm`` so that nothing but the
standard library is loaded before the baseline.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def peak() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    db, n = sys.argv[1], int(sys.argv[2])
    names = [f"op{i}" for i in range(100)]
    out = {"baseline": rss()}
    import botpulse

    out["after_import"] = rss()
    botpulse.init(store=f"sqlite:///{db}", service="bench")
    out["after_init"] = rss()
    measure = botpulse.measure
    t0 = time.perf_counter()
    for i in range(n):
        with measure(names[i % 100]):
            pass
    out["record_s"] = time.perf_counter() - t0
    out["after_ops"] = rss()
    stats = botpulse.shutdown(timeout=60)
    out["after_shutdown"] = rss()
    out["peak"] = peak()
    out["operations"] = n
    out["written"] = stats.written if stats else None
    out["dropped"] = stats.dropped_total if stats else None
    out["buffer_size"] = 10_000
    print(json.dumps(out))


if __name__ == "__main__":
    main()
