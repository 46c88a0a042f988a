"""aiosqlite with one trip to the connection's thread per statement.

aiosqlite runs each sqlite3 call on the connection's own thread, and SQLAlchemy's
aiosqlite adapter drives a statement as four such calls: open a cursor, execute,
fetch the rows, close the cursor. Each is a trip between threads: a queue put
that wakes the connection's thread, the GIL handed over and back, a future
resolved through the event loop's self-pipe. On the embedded default's hot path
(the relay's group commit, bench/messaging.py) those trips were a cost of their
own on the event loop's thread, per statement.

Here a cursor's `execute` runs the statement, fetches every row and closes the
sqlite3 cursor in one trip, keeping the description, rowcount and lastrowid;
its fetches read the rows that came back and opening or closing it takes no
trip. SQLAlchemy buffers a result completely anyway (the app streams no result),
and the statement's read ends sooner. Commit, rollback and everything else is
aiosqlite's own.

`Database` installs it through SQLAlchemy's `do_connect` event with the
arguments SQLAlchemy made of the URL, so every `sqlite+aiosqlite` URL means what
it did.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Generator, Iterable, Sequence
from typing import Any

import aiosqlite

Description = tuple[tuple[Any, ...], ...] | None


class OneTripConnection(aiosqlite.Connection):
    """aiosqlite's connection whose cursors make one trip per statement."""

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)


class OneTripCursor:
    """What SQLAlchemy's adapter uses of aiosqlite's cursor, one trip per statement."""

    __slots__ = ("_connection", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self._rows: deque[Any] = deque()
        self.arraysize = 1
        self.description: Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    def __await__(self) -> Generator[Any, None, OneTripCursor]:
        """`await connection.cursor()`, as with aiosqlite; no trip."""
        return self._itself().__await__()

    async def _itself(self) -> OneTripCursor:
        return self

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        await self._run(sql, () if parameters is None else parameters, many=False)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneTripCursor:
        await self._run(sql, parameters, many=True)
        return self

    async def _run(self, sql: str, parameters: Any, many: bool) -> None:
        connection = self._connection
        outcome = await connection._execute(_execute, connection._conn, sql, parameters, many)
        self.description, self.rowcount, self.lastrowid, rows = outcome
        self._rows = deque(rows)

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = min(len(self._rows), self.arraysize if size is None else size)
        return [self._rows.popleft() for _ in range(count)]

    async def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()


Outcome = tuple[Description, int, int | None, Sequence[Any]]


def _execute(connection: sqlite3.Connection, sql: str, parameters: Any, many: bool) -> Outcome:
    """On the connection's thread: the statement, its rows and what the cursor says."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description is not None else ()
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def connect(database: str, **options: Any) -> OneTripConnection:
    """`aiosqlite.connect` with `OneTripConnection`; its thread is a daemon, as
    SQLAlchemy makes aiosqlite's (a pooled connection never closed does not keep
    the process alive)."""

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(database, **options)

    connection = OneTripConnection(connector, iter_chunk_size=64)
    connection._thread.daemon = True
    return connection


def connect_one_trip(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
    """SQLAlchemy's `do_connect` event: the adapter's connection over `connect`,
    with the arguments SQLAlchemy made of the URL."""
    return dialect.dbapi.connect(*cargs, async_creator_fn=connect, **cparams)
