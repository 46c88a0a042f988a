"""Small SQL helpers of the posts domain: insert-ignore, exact counters, windowed pages,
and the pieces of statements built once and run with parameters (cursor, id lists,
record columns)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Table,
    any_,
    bindparam,
    case,
    column,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import TypeEngine

from datasources.sql import Database, UTCDateTime


@asynccontextmanager
async def using(db: Database, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
    """`session` when the caller has one open (several reads on one connection), else
    a session of our own for this read."""
    if session is not None:
        yield session
    else:
        async with db.session() as own:
            yield own


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def insert_ignore(session: AsyncSession, table: type[Any], values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING RETURNING; True when a row was really inserted.

    Counters then move by rows really touched: a repeated like inserts nothing and
    counts nothing (the technique of datasources/users/graph.py).
    """
    dialect = postgresql if dialect_name(session) == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
    first_key = next(iter(table.__table__.primary_key.columns))
    result = await session.execute(stmt.returning(first_key))
    return result.first() is not None


async def bump(
    session: AsyncSession, table: type[Any], column: str, row_id: int, step: int
) -> bool:
    """Add `step` to a counter column of one row; decrements stop at zero. False: no row.

    `column + step` is evaluated by the database on the latest row version under
    the row lock, so concurrent bumps never lose an update.
    """
    if step == 0:
        return True
    attribute = getattr(table, column)
    value = (
        attribute + step if step > 0 else case((attribute + step > 0, attribute + step), else_=0)
    )
    result = await session.execute(
        update(table).where(table.id == row_id).values({column: value}).returning(table.id)
    )
    return result.first() is not None


def at_literal(at: datetime) -> ColumnElement[datetime]:
    """A cursor time bound with the columns' type (UTC handling on both backends)."""
    return literal(at, UTCDateTime())


def older_than(at_column: Any, id_column: Any, at: datetime, pk: int) -> ColumnElement[bool]:
    """Rows after (at, pk) in newest-first order."""
    return tuple_(at_column, id_column) < tuple_(at_literal(at), literal(pk))


def past_cursor(at_column: Any, id_column: Any, newest_first: bool = True) -> ColumnElement[bool]:
    """Rows after the cursor bound as :after_at, :after_id (`cursor_params`), in
    newest-first (or oldest-first) order: `older_than` for statements built once
    and run with parameters."""
    cursor = tuple_(
        bindparam("after_at", type_=UTCDateTime()), bindparam("after_id", type_=BigInteger())
    )
    position = tuple_(at_column, id_column)
    return position < cursor if newest_first else position > cursor


def cursor_params(at: datetime, pk: int) -> dict[str, Any]:
    return {"after_at": at, "after_id": pk}


def among(
    column: Any, name: str, dialect: str, item: TypeEngine[Any] | None = None
) -> ColumnElement[bool]:
    """`column` is one of the values bound as `name` (a list; ids unless `item`
    says what else).

    On PostgreSQL one array parameter (`= ANY(:name)`, the plan of an IN list):
    the SQL is the same for every list length, so nothing is expanded per
    execution and the driver's prepared statement is reused. Elsewhere an
    expanding IN.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(item or BigInteger())))
    return column.in_(bindparam(name, expanding=True))


def unnested(name: str, *columns: Any) -> Any:
    """Rows bound as one array parameter per column (`name_<column>`), as a table
    with these columns' names and types: `unnest(:name_a, :name_b) AS (a, b)`, for an
    UPDATE … FROM, an INSERT … SELECT or a row IN over many rows. PostgreSQL only.

    Its SQL is the same for any number of rows, so nothing is rendered again per
    execution (an expanding IN and an executemany's "insertmanyvalues" are, which
    was most of the CPU of a batch's statements) and asyncpg reuses its prepared
    statement. Bind with `unnested_params`.
    """
    arrays = [bindparam(f"{name}_{c.name}", type_=ARRAY(c.type)) for c in columns]
    typed = [column(c.name, c.type) for c in columns]
    return func.unnest(*arrays).table_valued(*typed).render_derived()


def unnested_params(
    name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> dict[str, list[Any]]:
    """The parameters of `unnested(name, …)` for `rows`, each in `columns`' order."""
    arrays = list(zip(*rows, strict=True)) or [() for _ in columns]
    return {f"{name}_{c}": list(array) for c, array in zip(columns, arrays, strict=True)}


class InsertRows:
    """INSERT … RETURNING of many rows (dicts of every column but the generated key),
    one statement for all of them.

    On PostgreSQL an INSERT … SELECT from `unnested` arrays, one SQL text for any
    number of rows. Elsewhere SQLAlchemy's executemany, and one row as a single
    execution (an executemany's SQL is rendered again on every call). Match the
    returned rows by a unique key, not by position.
    """

    def __init__(self, table: Table, *returning: Any) -> None:
        self.columns = tuple(c for c in table.c if c is not table.autoincrement_column)
        self.names = [c.name for c in self.columns]
        self.name = table.name
        self.each = insert(table).returning(*returning)
        arrays = unnested(table.name, *self.columns)
        self.unnested = (
            insert(table).from_select(self.names, select(*arrays.c)).returning(*returning)
        )

    async def run(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> Any:
        if conn.dialect.name == "postgresql":
            values = map(itemgetter(*self.names), rows)
            return await conn.execute(self.unnested, unnested_params(self.name, self.names, values))
        return await conn.execute(self.each, rows[0] if len(rows) == 1 else rows)


def table_of(row: type[Any]) -> Table:
    """The Core table of a mapped class, typed as a Table (mypy sees a FromClause)."""
    table: Table = row.__table__
    return table


def record_columns(table: Any, record: type[Any]) -> tuple[Any, ...]:
    """The columns of `table` named like the fields of the dataclass `record`, in
    field order: a Core select of them gives rows that build the record
    positionally (`record(*row[i:j])`), far cheaper than loading ORM entities."""
    return tuple(table.c[field.name] for field in fields(record))


def windowed(
    ids: Any, part: Any, order: Sequence[Any], where: Sequence[Any], joins: Sequence[Any] = ()
) -> Any:
    """A subquery numbering each partition's rows (`rn`) and counting them (`total`).

    One statement then returns the first page of many lists at once (the posts of
    20 users, the first comments of 20 posts): keep rows with `rn <= limit + 1`.
    `joins`: (target, on) pairs joined to the first table of `ids`.
    """
    stmt = select(
        ids.label("id"),
        part.label("part"),
        func.row_number().over(partition_by=part, order_by=list(order)).label("rn"),
        func.count().over(partition_by=part).label("total"),
    )
    for target, on in joins:
        stmt = stmt.join(target, on)
    return stmt.where(*where).subquery("windowed")
