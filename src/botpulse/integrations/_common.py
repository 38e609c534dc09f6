"""What every framework hook shares: never raising, wall-clock ages, friendly import errors."""

from __future__ import annotations

import importlib
import time
from datetime import datetime
from types import ModuleType
from typing import Any

from .._diagnostics import internal_error

__all__ = ["age_ms", "hook_error", "require", "wall_time"]

#: The wall clock used for ages measured against a platform's timestamps (tests replace it).
wall_time = time.time


def hook_error(site: str, exc: Exception) -> None:
    """A botpulse hook failed: count and log it; the framework carries on."""
    internal_error(f"integrations.{site}", exc)


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"botpulse.integrations.{extra} needs {module!r}: pip install 'botpulse[{extra}]'"
        ) from exc


def age_ms(sent: Any) -> float | None:
    """Milliseconds between ``sent`` (an aware datetime or epoch seconds) and now, or None."""
    try:
        if sent is None:
            return None
        seconds = sent.timestamp() if isinstance(sent, datetime) else float(sent)
        return max(0.0, (wall_time() - seconds) * 1000.0)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
