"""SQLAlchemy 2 instrumentation: sync ORM on SQLite, async engine on PostgreSQL, errors."""

import pytest
from sqlalchemy import Column, Integer, String, create_engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session, declarative_base
from tests.servers import server_url

import botpulse
from botpulse.instrument import instrument
from botpulse.testing import capture

from .helpers import children

Base = declarative_base()


class Player(Base):  # type: ignore[misc, valid-type]
    __tablename__ = "players"
    id = Column(Integer, primary_key=True)
    name = Column(String(30))


def test_sqlalchemy_sync_orm_and_errors() -> None:
    instrument("sqlalchemy", "sqlite3")  # both: each statement still recorded once
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with capture() as recorded:
        with Session(engine) as session, botpulse.flow("orm"):
            session.add(Player(id=1, name="ann"))
            session.commit()
            assert session.scalars(select(Player).where(Player.id == 1)).one().name == "ann"
            with pytest.raises(OperationalError):
                session.execute(text("SELECT * FROM nowhere"))
        ops = children(recorded, "orm", "db")
    engine.dispose()
    names = [(c.name, c.status) for c in ops]
    assert names == [
        ("INSERT INTO players (id, name) VALUES (?)", "ok"),
        (
            "SELECT players.id, players.name FROM players WHERE players.id = ?",
            "ok",
        ),
        ("SELECT * FROM nowhere", "error"),
    ]
    assert ops[0].attrs["system"] == "sqlite"


async def test_sqlalchemy_async_engine_on_postgres() -> None:
    url = server_url("BOTPULSE_TEST_POSTGRES_URL", "PostgreSQL")

    instrument("sqlalchemy", "asyncpg")
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        with capture() as recorded:
            async with engine.connect() as conn, botpulse.flow("async_orm"):
                value = await conn.scalar(text("SELECT :x + 1"), {"x": 41})
                assert value == 42
                with pytest.raises(Exception, match="nowhere"):
                    await conn.execute(text("SELECT * FROM nowhere"))
            ops = children(recorded, "async_orm", "db")
    finally:
        await engine.dispose()
    assert [(c.name, c.status) for c in ops] == [
        ("SELECT ? + ?", "ok"),
        ("SELECT * FROM nowhere", "error"),
    ]
    assert ops[0].attrs["system"] == "postgresql"
