"""Carry the current flow into thread pools: work submitted inside a flow joins its tree.

``loop.run_in_executor()`` and ``ThreadPoolExecutor.submit()`` do not copy
``contextvars`` to the worker thread, so operations measured there would belong to no
flow. While botpulse runs, ``ThreadPoolExecutor.submit`` (which ``run_in_executor``
uses, for the default executor and custom ones alike) runs the submitted function in
a copy of the submitter's context whenever the submitter is inside a flow; outside a
flow it does nothing extra. ``asyncio.to_thread`` copies the context by itself.
``ProcessPoolExecutor`` work runs in another process and is not covered.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from . import _capture

__all__ = ["install", "installed", "uninstall"]

_original: Callable[..., Any] | None = None


def install() -> None:
    """Patch ``ThreadPoolExecutor.submit`` (idempotent)."""
    global _original
    if _original is not None:
        return
    original = ThreadPoolExecutor.submit
    current = _capture._current.get
    copy_context = contextvars.copy_context

    def submit(
        self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        if current() is not None:
            return original(self, copy_context().run, fn, *args, **kwargs)
        return original(self, fn, *args, **kwargs)

    functools.update_wrapper(submit, original)  # type: ignore[arg-type]
    setattr(ThreadPoolExecutor, "submit", submit)  # noqa: B010 - assigning a method
    _original = original


def uninstall() -> None:
    """Restore the original ``ThreadPoolExecutor.submit``."""
    global _original
    if _original is None:
        return
    setattr(ThreadPoolExecutor, "submit", _original)  # noqa: B010
    _original = None


def installed() -> bool:
    """Whether ``ThreadPoolExecutor.submit`` is patched."""
    return _original is not None
