"""CLI fixtures: a store with known data and an in-process ``botpulse`` runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from botpulse.cli import main

from .known_data import KnownStore, build_known_store


@pytest.fixture
def known_store(tmp_path: Path) -> KnownStore:
    """A SQLite store filled with operations whose statistics the tests know exactly."""
    return build_known_store(tmp_path)


@pytest.fixture
def invoke() -> Callable[..., Result]:
    """Run ``botpulse ARGS`` in-process; stdout and stderr are kept apart."""
    runner = CliRunner(env={"FORCE_COLOR": None, "NO_COLOR": "1", "TTY_COMPATIBLE": None})

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run
