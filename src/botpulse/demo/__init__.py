"""The demo: a simulated chat bot under load, recorded by botpulse (``botpulse demo``).

``run_demo()`` runs a small game bot in-process for a few seconds: several users
send ``/ping``, ``/profile``, ``/leaderboard``, ``/stats``, ``/trade`` and
``/weather`` concurrently; the bot queries a real SQLite database in worker threads,
checks a cache and calls a (simulated) HTTP API. Afterwards ``botpulse report``
shows ``/leaderboard`` as the slow command, ``db.leaderboard_scores`` as its slow
step, ``/stats`` as an N+1 waterfall and ``/trade`` failing now and then.

Example::

    from botpulse.demo import run_demo

    summary = run_demo("sqlite:///botpulse.db", seconds=20, seed=1)
"""

from __future__ import annotations

from .runner import DemoSummary, run_demo

__all__ = ["DemoSummary", "run_demo"]
