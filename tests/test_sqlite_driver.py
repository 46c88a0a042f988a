"""The embedded default's driver: one trip to aiosqlite's thread per statement
(datasources/sqlite_driver.py), with the results SQLAlchemy got before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from datasources.sql import Database

metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to an aiosqlite connection's thread."""
    sent: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


async def test_each_statement_is_one_trip_to_the_connection_thread(
    db: Database, trips: list[str]
) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("SELECT 1"))  # the connection is checked out and begun
        trips.clear()
        await conn.execute(insert(items).values(name="a"))
        rows = (await conn.execute(select(items.c.name))).all()
        await conn.execute(update(items).values(name="b"))
        assert len(trips) == 3
    assert rows == [("a",)]


async def test_rows_counts_and_ids_are_what_sqlite_reports(db: Database) -> None:
    async with db.engine.begin() as conn:
        first = await conn.execute(insert(items).values(name="a"))
        assert first.inserted_primary_key == (1,)
        returned = await conn.execute(
            insert(items).returning(items.c.id, items.c.name), [{"name": "b"}, {"name": "c"}]
        )
        assert sorted(returned.all()) == [(2, "b"), (3, "c")]
        many = await conn.execute(insert(items), [{"name": "d"}, {"name": "e"}])
        assert many.rowcount == 2
        changed = await conn.execute(
            update(items).where(items.c.id > 3).values(name=items.c.name + "!")
        )
        assert changed.rowcount == 2
        result = await conn.execute(select(items.c.name).order_by(items.c.id))
        assert result.fetchmany(2) == [("a",), ("b",)]
        assert result.fetchone() == ("c",)
        assert result.fetchall() == [("d!",), ("e!",)]
        assert (await conn.execute(select(items).where(items.c.id == 99))).first() is None


async def test_a_failed_statement_raises_and_its_transaction_leaves_nothing(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(insert(items).values(name="a"))
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(insert(items).values(name="b"))
            await conn.execute(insert(items).values(name="a"))
    async with db.engine.connect() as conn:
        names = (await conn.execute(select(items.c.name))).scalars().all()
    assert names == ["a"]


async def test_the_connection_settings_still_apply(db: Database) -> None:
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1


@pytest.mark.parametrize("where", ["memory", "uri"])
async def test_every_url_form_still_opens_its_database(tmp_path: Path, where: str) -> None:
    url = {
        "memory": "sqlite+aiosqlite:///:memory:",
        "uri": f"sqlite+aiosqlite:///file:{tmp_path / 'uri.db'}?mode=rwc&uri=true",
    }[where]
    database = Database(url)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(items).values(name="a"))
            assert (await conn.execute(select(items.c.name))).scalar() == "a"
    finally:
        await database.dispose()
    assert (where == "uri") == (tmp_path / "uri.db").exists()
