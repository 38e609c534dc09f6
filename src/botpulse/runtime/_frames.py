"""Which frames of a stack are the bot's own code, and how to name one (``file:line in func``).

The blocking-call detector and the sync-on-loop sampler look at the event loop's
thread from a watchdog thread (``sys._current_frames()``). The frame to name is the
innermost one in the bot's code: not asyncio, not the standard library, not an
installed package, not botpulse itself (its decorators and task wrappers sit between
the loop and the handler). The innermost library frame above it, if any, says what
blocked (``redis/connection.py in read_response``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from types import FrameType

__all__ = ["Frame", "StackSummary", "summarize", "thread_frame"]

_MAX_DEPTH = 64


def _library_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            roots.add(os.path.realpath(paths[key]))
    with contextlib.suppress(AttributeError):  # some virtualenv builds lack it
        roots.update(os.path.realpath(p) for p in site.getsitepackages())
    user_site = getattr(site, "USER_SITE", None)
    if user_site:
        roots.add(os.path.realpath(user_site))
    roots.add(os.path.dirname(os.path.realpath(os.__file__)))
    return tuple(sorted(r.rstrip(os.sep) + os.sep for r in roots))


_LIBRARY_ROOTS = _library_roots()
_BOTPULSE_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep
_is_user_cache: dict[str, bool] = {}


def is_user_file(filename: str) -> bool:
    """Whether ``filename`` is the bot's own code (cached per file name)."""
    known = _is_user_cache.get(filename)
    if known is not None:
        return known
    if filename.startswith("<"):
        result = False
    else:
        real = os.path.realpath(filename)
        result = not real.startswith(_BOTPULSE_ROOT) and not any(
            real.startswith(root) for root in _LIBRARY_ROOTS
        )
    if len(_is_user_cache) > 10_000:
        _is_user_cache.clear()
    _is_user_cache[filename] = result
    return result


@functools.lru_cache(maxsize=4096)
def _is_botpulse(filename: str) -> bool:
    return os.path.realpath(filename).startswith(_BOTPULSE_ROOT) if filename[:1] != "<" else False


def display_path(filename: str) -> str:
    """``filename`` relative to the working directory when inside it, else as is."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if relative.startswith("..") else relative


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: where (``path:line``) and in which function."""

    path: str
    line: int
    function: str

    @property
    def where(self) -> str:
        """``path:line``: what findings aggregate on."""
        return f"{self.path}:{self.line}"

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.function}"


@dataclass(frozen=True, slots=True)
class StackSummary:
    """A captured stack: the innermost user frame, the library call it made, the top frames."""

    user: Frame | None
    library: Frame | None
    frames: tuple[Frame, ...]


def thread_frame(thread_id: int) -> FrameType | None:
    """The current frame of thread ``thread_id`` (from another thread), or ``None``."""
    return sys._current_frames().get(thread_id)


def _frame(frame: FrameType) -> Frame:
    code = frame.f_code
    return Frame(display_path(code.co_filename), frame.f_lineno, code.co_name)


def summarize(frame: FrameType | None, depth: int = 12) -> StackSummary:
    """Summarise the stack ending at ``frame``: its innermost user frame and the top frames."""
    frames: list[Frame] = []
    user: Frame | None = None
    library: Frame | None = None
    last_library: FrameType | None = None
    seen = 0
    while frame is not None and seen < _MAX_DEPTH:
        filename = frame.f_code.co_filename
        ours = _is_botpulse(filename)
        if len(frames) < depth and not ours:
            frames.append(_frame(frame))
        if user is None:
            if is_user_file(filename):
                user = _frame(frame)
                if last_library is not None:
                    library = _frame(last_library)
            elif not ours:
                last_library = frame  # ends as the library frame the user code called
        frame = frame.f_back
        seen += 1
    return StackSummary(user, library, tuple(frames))
