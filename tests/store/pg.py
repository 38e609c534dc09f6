"""PostgreSQL for store tests: each test gets its own schema in the test server, dropped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tests.servers import server_url

__all__ = ["fresh_schema", "schema_url"]


def schema_url(base: str, schema: str) -> str:
    """``base`` with its search_path set to ``schema`` (libpq ``options`` parameter)."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A store URL whose tables live in a new schema, dropped when the block ends."""
    import psycopg

    base = server_url("BOTPULSE_TEST_POSTGRES_URL", "PostgreSQL")
    schema = f"bp_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
