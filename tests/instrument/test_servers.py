"""The test servers scripts/test starts (scripts/services/) answer on their URLs."""

from __future__ import annotations

import shutil
import subprocess

from tests.servers import server_url


def test_postgres_server_answers_and_has_hypopg() -> None:
    import psycopg

    url = server_url("BOTPULSE_TEST_POSTGRES_URL", "PostgreSQL")
    with psycopg.connect(url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        host = conn.execute("SELECT inet_server_addr()::text").fetchone()
        assert host is not None
        assert host[0].startswith("127.0.0.1")
        names = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
        assert "hypopg" in names
        assert conn.execute("SHOW fsync").fetchone() == ("off",)


def test_redis_server_answers_without_persistence() -> None:
    import redis

    url = server_url("BOTPULSE_TEST_REDIS_URL", "Redis")
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        assert client.ping() is True
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()


def test_sqlite3_shell_has_expert_mode() -> None:
    shell = server_url("BOTPULSE_TEST_SQLITE3_SHELL", "the sqlite3 shell")
    assert shutil.which(shell) or shell.startswith("/")
    out = subprocess.run(
        [shell, ":memory:"],
        input="CREATE TABLE t (a, b);\n.expert\nSELECT * FROM t WHERE b = 1;\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "CREATE INDEX" in out
