"""Scrubbing cost: what masking credentials inside values adds to the pipeline thread.

``clean_text`` runs once per distinct name (then cached) and per attribute value,
checkpoint name and error text of each sampled trace, never on the bot's thread.
Figures are the best ns per call over rounds; the baseline is the same call with
scrubbing swapped out (``scrub_secrets`` replaced by the identity), so the ratio is
what scrubbing adds.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

from botpulse import _sanitize

from ._common import Figure, Outcome

TG = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TEXTS = {
    "name": "db.load_rows",
    "sql": "SELECT id, name FROM players WHERE guild_id = ? ORDER BY score DESC LIMIT ?",
    "url": "https://api.example.com/v1/users/12345/profile?page=2",
    "secret_url": f"https://api.telegram.org/bot{TG}/sendMessage",
    "1k_text": ("lorem ipsum dolor sit amet " * 40)[:1024],
}
# The attributes of a typical sampled flow (what clean_attrs sees per trace).
ATTRS = {
    "user_id": 1234,
    "chat": "group",
    "url": "https://api.example.com/v1/users/12345/profile?page=2",
    "route": "/start",
    "cached": True,
    "dsn": "postgresql://bot:hunter2@db:5432/prod",
}


def _best_ns(func: Callable[[], Any], number: int, rounds: int) -> float:
    empty = min(timeit.repeat(lambda: None, number=number, repeat=rounds))
    took = min(timeit.repeat(func, number=number, repeat=rounds))
    return max(0.0, (took - empty) / number * 1e9)


def _measure(number: int, rounds: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, text in TEXTS.items():
        out[key] = _best_ns(lambda text=text: _sanitize.clean_text(text, 1024), number, rounds)
    out["attrs"] = _best_ns(lambda: _sanitize.clean_attrs(ATTRS), number, rounds)
    return out


def run(quick: bool) -> Outcome:
    number, rounds = (2_000, 3) if quick else (20_000, 7)
    scrubbed = _measure(number, rounds)
    real = _sanitize.scrub_secrets
    _sanitize.scrub_secrets = lambda text: text  # type: ignore[assignment]
    try:
        plain = _measure(number, rounds)
    finally:
        _sanitize.scrub_secrets = real  # type: ignore[assignment]
    figures = [
        Figure(
            f"sanitize.clean_text_{key}",
            f"clean_text({key}, {len(TEXTS[key])} chars) with scrubbing",
            scrubbed[key],
            "ns/op",
            note=f"{plain[key]:,.0f} ns without scrubbing",
        )
        for key in TEXTS
    ]
    figures.append(
        Figure(
            "sanitize.clean_attrs",
            f"clean_attrs of a typical flow's {len(ATTRS)} attributes with scrubbing",
            scrubbed["attrs"],
            "ns/op",
            note=f"{plain['attrs']:,.0f} ns without scrubbing",
        )
    )
    return Outcome(figures, {"scrubbed_ns": scrubbed, "plain_ns": plain})
