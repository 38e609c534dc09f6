"""Reversible monkey-patching of class attributes, for drivers without a hook of their own."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from .. import _capture
from .._diagnostics import internal_error
from ._common import record, recording

__all__ = ["Patches", "timed_async", "timed_sync"]

Describe = Callable[..., "tuple[Any, dict[str, Any]] | None"]


class Patches:
    """Patches applied by one instrumentation, undone together."""

    def __init__(self) -> None:
        self._applied: list[tuple[Any, str, Any, Any]] = []

    def replace(self, owner: Any, name: str, new: Any) -> None:
        """Set ``owner.name = new``, remembering what was there (own dict only)."""
        original = (
            owner.__dict__.get(name, _MISSING)
            if isinstance(owner, type)
            else getattr(owner, name, _MISSING)
        )
        setattr(owner, name, new)
        self._applied.append((owner, name, original, new))

    def undo(self) -> None:
        """Put everything back, newest first (only where our patch is still in place)."""
        while self._applied:
            owner, name, original, new = self._applied.pop()
            current = (
                owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
            )
            if current is not new:
                continue  # someone patched over us: leave theirs
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)

    def __bool__(self) -> bool:
        return bool(self._applied)


_MISSING = object()


def _describe(describe: Describe, args: Any, kwargs: Any) -> tuple[Any, dict[str, Any]] | None:
    """``describe(*args, **kwargs)``, or None (call not recorded) if it fails: never raise."""
    try:
        return describe(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the call itself must still happen
        internal_error("instrument.describe", exc)
        return None


def timed_async(
    original: Callable[..., Awaitable[Any]],
    kind: str,
    describe: Describe,
    rows: Callable[[Any], int] | None = None,
) -> Callable[..., Awaitable[Any]]:
    """An async wrapper of ``original`` that records one operation per call.

    ``describe(*args, **kwargs)`` returns ``(name, attrs)`` or None to skip recording.
    """

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _capture._capacity or not recording():
            return await original(*args, **kwargs)
        described = _describe(describe, args, kwargs)
        if described is None:
            return await original(*args, **kwargs)
        name, attrs = described
        t0 = _capture._now()
        try:
            result = await original(*args, **kwargs)
        except BaseException as exc:
            record(name, kind, t0, type(exc), attrs)
            raise
        if rows is not None:
            try:
                count = rows(result)
                if count >= 0:
                    attrs["rows"] = count
            except Exception:  # noqa: BLE001, S110 - rows are a nicety
                pass
        record(name, kind, t0, None, attrs)
        return result

    wrapper.__botpulse_original__ = original  # type: ignore[attr-defined]
    return wrapper


def timed_sync(
    original: Callable[..., Any],
    kind: str,
    describe: Describe,
    rows: Callable[[Any], int] | None = None,
) -> Callable[..., Any]:
    """A sync wrapper of ``original`` that records one operation per call (see timed_async)."""

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _capture._capacity or not recording():
            return original(*args, **kwargs)
        described = _describe(describe, args, kwargs)
        if described is None:
            return original(*args, **kwargs)
        name, attrs = described
        t0 = _capture._now()
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            record(name, kind, t0, type(exc), attrs)
            raise
        if rows is not None:
            try:
                count = rows(result)
                if count >= 0:
                    attrs["rows"] = count
            except Exception:  # noqa: BLE001, S110
                pass
        record(name, kind, t0, None, attrs)
        return result

    wrapper.__botpulse_original__ = original  # type: ignore[attr-defined]
    return wrapper
