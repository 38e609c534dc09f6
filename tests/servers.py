"""Real servers for the tests, started by scripts/test (scripts/services/*.sh).

A test that needs a server asks for its URL here. Locally, a missing server skips the
test; under ``CI=true`` it fails: CI must run everything (DEVELOPERS.md).
"""

from __future__ import annotations

import os

import pytest

__all__ = ["server_url"]


def server_url(variable: str, what: str) -> str:
    """The URL in environment ``variable`` (e.g. ``BOTPULSE_TEST_POSTGRES_URL``), or skip/fail."""
    url = os.environ.get(variable, "").strip()
    if url:
        return url
    message = f"{what} is not running ({variable} unset; scripts/test starts it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
