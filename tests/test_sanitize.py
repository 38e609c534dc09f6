"""Credentials inside values are masked before storage; ordinary text is left alone."""

from __future__ import annotations

import pytest

from botpulse._sanitize import MAX_NAME_CHARS, clean_attrs, clean_json, clean_text, scrub_secrets

TG = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
DISCORD = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GcAnAr.abcdefghijklmnopqrstuvwxyz0123456"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (
            f"https://api.telegram.org/bot{TG}/sendMessage",
            "https://api.telegram.org/bot***/sendMessage",
        ),
        (
            f"https://api.telegram.org/file/bot{TG}/photos/1.jpg",
            "https://api.telegram.org/file/bot***/photos/1.jpg",
        ),
        (f"token is {TG}.", "token is 123456789:***."),
        ("postgresql://bot:hunter2@db:5432/prod", "postgresql://bot:***@db:5432/prod"),
        ("postgresql://bot:p@ss@db/prod", "postgresql://bot:***@db/prod"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("https://ghp_abc123@github.com/x.git", "https://***@github.com/x.git"),
        ("connect failed: amqp://guest:guest@mq//", "connect failed: amqp://guest:***@mq//"),
        (
            "POST https://discord.com/api/v10/webhooks/1234567890/AbC-dEf_GhI.jKl/messages",
            "POST https://discord.com/api/v10/webhooks/1234567890/***/messages",
        ),
        (
            "https://discord.com/api/interactions/99887766/aW50ZXJhY3Rpb24/callback",
            "https://discord.com/api/interactions/99887766/***/callback",
        ),
        ("Authorization: Bearer abcdef0123456789", "Authorization: Bearer ***"),
        (f"Bot {DISCORD}", "Bot ***"),
        ("Basic dXNlcjpwYXNzd29yZA==", "Basic ***"),
        (f"headers={{'x': 'token {TG}'}}", "headers={'x': 'token ***'}"),
        (f"bare discord token {DISCORD} here", "bare discord token *** here"),
        (f"jwt {JWT}", "jwt ***"),
        (
            "host=db user=bot password=hunter2 dbname=prod",
            "host=db user=bot password=*** dbname=prod",
        ),
        (
            "GET /cb?code=1&access_token=abc.def&api_key=zz&page=2",
            "GET /cb?code=1&access_token=***&api_key=***&page=2",
        ),
        ("PASSWORD=x;PORT=1", "PASSWORD=***;PORT=1"),
    ],
)
def test_secrets_in_text_are_masked(raw: str, stored: str) -> None:
    assert scrub_secrets(raw) == stored
    assert clean_text(raw, 1024) == stored


@pytest.mark.parametrize(
    "text",
    [
        "db.load_rows",
        "SELECT id FROM players WHERE guild_id = ? AND score >= ?",
        "https://api.example.com/v1/users/42?page=2&sort=desc",
        "the bot crashed at 12:30:45",
        "Bot is ready",
        "cache_key=leaderboard:42",
        "tg.reply",
        "v1.2.3 release",
        "mailto:admin@example.com",
        "https://example.com/@user/status/1",
        "",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert scrub_secrets(text) == text


def test_names_and_checkpoints_cut_then_scrubbed() -> None:
    raw = "x" * (MAX_NAME_CHARS - 60) + f" https://api.telegram.org/bot{TG}/getMe"
    cleaned = clean_text(raw, MAX_NAME_CHARS)
    assert "AAHdq" not in cleaned
    assert len(cleaned) <= MAX_NAME_CHARS


def test_attribute_values_keys_and_nested_json_are_scrubbed() -> None:
    attrs = clean_attrs(
        {
            "url": f"https://api.telegram.org/bot{TG}/sendMessage",
            "dsn": "postgresql://u:pw123456@h/db",
            "password": "a user's message that must not be kept",
            "headers": {"Authorization": "Bearer abcdef0123456789", "via": "Bearer abcdef012345"},
            "user": {"name": "ann", "db": {"password": "hunter2"}},
            "count": 3,
        }
    )
    assert attrs == {
        "url": "https://api.telegram.org/bot***/sendMessage",
        "dsn": "postgresql://u:***@h/db",
        "password": "***",
        "headers": "{'Authorization': '***', 'via': 'Bearer ***'}",
        "user": "{'name': 'ann', 'db': {'password': '***'}}",
        "count": 3,
    }
    nested = clean_json(
        {"request": {"url": f"/bot{TG}/x", "api_key": "k"}, "hits": [f"Bot {DISCORD}"]}
    )
    assert nested == {"request": {"url": "/bot***/x", "api_key": "***"}, "hits": ["Bot ***"]}
