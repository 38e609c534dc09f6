"""The ``botpulse`` command line (placeholder until the CLI lands)."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Entry point of the ``botpulse`` command."""
    raise SystemExit("botpulse: the command line is not built yet")
