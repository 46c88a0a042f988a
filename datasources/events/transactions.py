"""A transaction for background work that creates no asyncio task.

SQLAlchemy's `async with session` closes the session in a task of its own (shielded
from cancellation). The relay and consumers run beside request handling in the
server process, and per-request measurements (tests that count the tasks a query
creates) must not see them; this context manager commits, rolls back and closes
with plain awaits instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from datasources.sql import Database


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[AsyncSession]:
    """Like `Database.transaction`: commit at the end of the block, roll back on error."""
    session = db.sessions()
    try:
        await session.begin()
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()
