"""The demo bot's game database: a real SQLite file in a temporary directory, queried off the loop.

:meth:`GameDatabase.create` makes a temporary directory, creates the tables and
seeds them in a few tenths of a second (the rows are generated inside SQLite by
recursive CTEs, deterministic, no Python loop):

- ``players``: 20,000 players with a rating
- ``matches``: 25,000 matches over five seasons and three modes
- ``scores``: 200,000 rows, eight per match; indexed by ``match_id`` only, so
  anything keyed by player or season scans the whole table, as in many real bots
- ``items`` and ``trades``: a small market for ``/trade``

Every query runs in a worker thread (``asyncio.to_thread``) so the event loop keeps
serving other users, and is timed with ``botpulse.measure("db.<what>", kind="db")``
around the ``await``: what the command waited for, thread-pool queueing included.
Each query also pays a simulated network round trip (``ROUND_TRIP_S``, 3 ms: a
database server on the next machine, not a local file), so ``/stats``'s one query per
match costs what it would in a real bot and ``botpulse audit`` reports it as an N+1
with the line in ``bot.py`` that loops (each operation carries its call site).
Each thread keeps its own connection; :meth:`GameDatabase.close` closes them all and
removes the directory.

Example::

    db = GameDatabase.create()
    try:
        top = await db.leaderboard_scores("season")
    finally:
        db.close()
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botpulse

__all__ = ["LEADERBOARD_SCOPES", "ROUND_TRIP_S", "GameDatabase", "Profile"]

#: The simulated network round trip of every query (seconds).
ROUND_TRIP_S = 0.003
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PLAYERS = 20_000
SCORES = 200_000
PER_MATCH = 8
MATCHES = SCORES // PER_MATCH
SEASONS = 5
ITEMS = 500
CURRENT_SEASON = SEASONS

_SCHEMA = """
CREATE TABLE players (id INTEGER PRIMARY KEY, name TEXT NOT NULL, rating INTEGER NOT NULL,
                      banned INTEGER NOT NULL DEFAULT 0);
CREATE TABLE matches (id INTEGER PRIMARY KEY, mode TEXT NOT NULL, season INTEGER NOT NULL,
                      played_at INTEGER NOT NULL);
CREATE TABLE scores (match_id INTEGER NOT NULL, player_id INTEGER NOT NULL,
                     season INTEGER NOT NULL, points INTEGER NOT NULL, kills INTEGER NOT NULL,
                     deaths INTEGER NOT NULL);
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, floor_price INTEGER NOT NULL,
                    last_price INTEGER);
CREATE TABLE trades (id INTEGER PRIMARY KEY, player_id INTEGER NOT NULL,
                     item_id INTEGER NOT NULL, price INTEGER NOT NULL);
"""

# Rows are generated inside SQLite: a counter CTE, and a multiplicative hash of the
# counter (Knuth's) to spread players, points and prices without Python-side randomness.
_SEED = [
    """WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < :players),
    h(x, h) AS (SELECT x, (x * 2654435761) % 4294967296 FROM n)
    INSERT INTO players (id, name, rating) SELECT x, 'player' || x, 800 + (h >> 8) % 1600 FROM h""",
    """WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < :matches)
    INSERT INTO matches (id, mode, season, played_at)
    SELECT x, CASE x % 3 WHEN 0 THEN 'ranked' WHEN 1 THEN 'casual' ELSE 'arena' END,
           1 + (x - 1) * :seasons / :matches, 1700000000 + x * 97 FROM n""",
    """WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < :scores - 1),
    h(x, h) AS (SELECT x, (x * 2654435761) % 4294967296 FROM n)
    INSERT INTO scores (match_id, player_id, season, points, kills, deaths)
    SELECT 1 + x / :per_match, 1 + h % :players, 1 + (x / :per_match) * :seasons / :matches,
           (h >> 5) % 100, (h >> 12) % 25, (h >> 17) % 15 FROM h""",
    """WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < :items),
    h(x, h) AS (SELECT x, (x * 2654435761) % 4294967296 FROM n)
    INSERT INTO items (id, name, floor_price) SELECT x, 'item' || x, 10 + (h >> 9) % 490 FROM h""",
    "CREATE INDEX scores_by_match ON scores (match_id)",
]
_SIZES = {
    "players": PLAYERS,
    "matches": MATCHES,
    "scores": SCORES,
    "per_match": PER_MATCH,
    "seasons": SEASONS,
    "items": ITEMS,
}


#: ``/leaderboard`` scopes and their queries. None can use an index: the season,
#: mode and all-time totals all aggregate the whole ``scores`` table.
LEADERBOARD_SCOPES: dict[str, str] = {
    "season": """
        SELECT p.name, SUM(s.points) AS total, COUNT(*) AS games
        FROM scores s JOIN players p ON p.id = s.player_id
        WHERE s.season = ? GROUP BY s.player_id ORDER BY total DESC LIMIT 10""",
    "ranked": """
        SELECT p.name, SUM(s.points) AS total, COUNT(*) AS games
        FROM scores s JOIN matches m ON m.id = s.match_id JOIN players p ON p.id = s.player_id
        WHERE m.mode = 'ranked' AND s.season >= ? - 1 GROUP BY s.player_id
        ORDER BY total DESC LIMIT 10""",
    "all": """
        SELECT p.name, SUM(s.points) AS total, COUNT(*) AS games
        FROM scores s JOIN players p ON p.id = s.player_id
        WHERE s.season <= ? GROUP BY s.player_id ORDER BY total DESC LIMIT 10""",
}


@dataclass(frozen=True, slots=True)
class Profile:
    """What ``/profile`` shows about a player."""

    player_id: int
    name: str
    rating: int
    games: int
    average_points: float
    best_points: int
    kills: int


class GameDatabase:
    """The demo bot's SQLite database: created, seeded, queried off the loop, then removed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def create(cls, directory: str | Path | None = None) -> GameDatabase:
        """Make a temporary directory (inside ``directory`` if given) and seed a database in it."""
        root = Path(tempfile.mkdtemp(prefix="botpulse-demo-", dir=directory))
        db = cls(root / "game.db")
        try:
            conn = db._connection()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            for statement in _SEED:
                params = {k: v for k, v in _SIZES.items() if f":{k}" in statement}
                conn.execute(statement, params)
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
        except BaseException:
            db.close()
            raise
        return db

    @property
    def directory(self) -> Path:
        """The temporary directory that holds the database (removed by :meth:`close`)."""
        return self.path.parent

    def close(self) -> None:
        """Close every thread's connection and remove the temporary directory."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- plumbing ------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; transactions are explicit)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the demo database is closed")
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._connections.append(conn)
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA synchronous = OFF")  # a throwaway database
            self._local.conn = conn
        return conn

    def _fetch_all(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        time.sleep(ROUND_TRIP_S)
        return self._connection().execute(sql, params).fetchall()

    def _write_trade(self, player_id: int, item_id: int, price: int) -> None:
        time.sleep(ROUND_TRIP_S)
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO trades (player_id, item_id, price) VALUES (?, ?, ?)",
                (player_id, item_id, price),
            )
            conn.execute("UPDATE items SET last_price = ? WHERE id = ?", (price, item_id))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def _query(self, name: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with botpulse.measure(name, kind="db", source=_call_site()) as timer:
            rows = await asyncio.to_thread(self._fetch_all, sql, params)
            timer.set(rows=len(rows))
            return rows

    # -- the queries the bot runs ----------------------------------------------------

    async def guard_player(self, player_id: int) -> bool:
        """Whether the player exists and is not banned (primary-key lookup: fast)."""
        rows = await self._query(
            "db.guard_player", "SELECT banned FROM players WHERE id = ?", player_id
        )
        return bool(rows) and not rows[0][0]

    async def leaderboard_scores(self, scope: str) -> list[tuple[str, int, int]]:
        """Top ten ``(name, points, games)`` for a scope: an aggregate over every score row."""
        sql = LEADERBOARD_SCOPES[scope]
        async with botpulse.measure(
            "db.leaderboard_scores", kind="db", scope=scope, source=_call_site()
        ) as timer:
            rows = await asyncio.to_thread(self._fetch_all, sql, (CURRENT_SEASON,))
            timer.set(rows=len(rows))
        return [(str(name), int(total), int(games)) for name, total, games in rows]

    async def profile_load(self, player_id: int) -> Profile | None:
        """A player's profile; ``scores`` has no index on the player, so this scans it."""
        rows = await self._query(
            "db.profile_load",
            """SELECT p.name, p.rating, COUNT(s.points), AVG(s.points), MAX(s.points), SUM(s.kills)
            FROM players p LEFT JOIN scores s ON s.player_id = p.id
            WHERE p.id = ? GROUP BY p.id""",
            player_id,
        )
        if not rows:
            return None
        name, rating, games, average, best, kills = rows[0]
        return Profile(player_id, name, rating, games, average or 0.0, best or 0, kills or 0)

    async def recent_matches(self, limit: int) -> list[int]:
        """The ids of the latest ``limit`` matches."""
        rows = await self._query(
            "db.recent_matches", "SELECT id FROM matches ORDER BY id DESC LIMIT ?", limit
        )
        return [int(row[0]) for row in rows]

    async def match_score(self, match_id: int) -> tuple[int, int, int]:
        """``(players, points, best kills)`` of one match (indexed: fast, but one per match)."""
        rows = await self._query(
            "db.match_score",
            "SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(MAX(kills), 0) "
            "FROM scores WHERE match_id = ?",
            match_id,
        )
        players, points, kills = rows[0]
        return int(players), int(points), int(kills)

    async def item_price(self, item_id: int) -> int | None:
        """The current floor price of an item, or ``None`` if there is no such item."""
        rows = await self._query(
            "db.item_price", "SELECT floor_price FROM items WHERE id = ?", item_id
        )
        return int(rows[0][0]) if rows else None

    async def trade_write(self, player_id: int, item_id: int, price: int) -> None:
        """Record a trade and the item's last price, in one transaction."""
        async with botpulse.measure("db.trade_write", kind="db", source=_call_site()):
            await asyncio.to_thread(self._write_trade, player_id, item_id, price)


def _call_site() -> str | None:
    """``botpulse/demo/bot.py:154 in stats``: the bot's line that asked for the query.

    A ``source`` attribute is what the N+1 and slow-query findings name; instrumented
    drivers (``botpulse.instrument``) add it themselves, hand-measured operations like
    these pass it along.
    """
    frame: Any = sys._getframe(1)
    while frame is not None and (
        frame.f_code.co_filename == __file__ or frame.f_code.co_name.startswith("<")
    ):
        frame = frame.f_back
    if frame is None:
        return None
    path = os.path.relpath(frame.f_code.co_filename, _PACKAGE_PARENT)
    return f"{path}:{frame.f_lineno} in {frame.f_code.co_name}"
