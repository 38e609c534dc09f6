"""After fork() the child gets its own runtime thread; the parent's GC hook does not linger."""

from __future__ import annotations

import gc
import os

import pytest

import botpulse
from botpulse import runtime

pytestmark = [
    pytest.mark.forks,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
    # Python 3.12+ warns about fork() with threads running; this test forks on purpose.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


def test_child_restarts_the_runtime_thread() -> None:
    botpulse.init(store="memory://", resources_interval=0.5)
    parent = runtime.current()
    assert parent is not None
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        ok = False
        try:
            child = runtime.current()
            hooks = [cb for cb in gc.callbacks if getattr(cb, "__self__", None) is not None]
            ok = (
                child is not None
                and child is not parent
                and child._thread.is_alive()
                and len([h for h in hooks if type(h.__self__).__name__ == "GcTracker"]) == 1
            )
            botpulse.shutdown()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert runtime.current() is parent
