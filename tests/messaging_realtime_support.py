"""Helpers of the typing, presence, calls and attachments tests: conversations made
straight in the database (ConversationRow / ConversationMemberRow), so these tests
do not depend on sendMessage, and a census of every table to show nothing durable
was written."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from datasources.messaging.tables import ConversationMemberRow, ConversationRow
from datasources.tables import metadata
from resolvers.ids import encode_id, split_id
from tests.conftest import Account


def pk(global_id: str) -> int:
    parts = split_id(global_id)
    assert parts is not None
    return int(parts[1])


async def conversation(app: Any, members: list[Account], kind: str = "DIRECT") -> str:
    """A conversation of `members` (the first created it); its global ID."""
    stores = app.state.runtime.stores
    now = stores.clock()
    ids = sorted(pk(member.id) for member in members)
    async with stores.db.transaction() as session:
        row = ConversationRow(
            platform=members[0].platform,
            kind=kind,
            direct_key=f"{ids[0]}:{ids[1]}" if kind == "DIRECT" else None,
            group_id=None if kind == "DIRECT" else f"group-{ids}".encode(),
            epoch=None if kind == "DIRECT" else 0,
            created_by=pk(members[0].id),
            created_at=now,
            last_activity_at=now,
        )
        session.add(row)
        await session.flush()
        for user_id in ids:
            session.add(
                ConversationMemberRow(
                    conversation_id=row.id, user_id=user_id, joined_at=now, unread_count=0
                )
            )
        return encode_id("Conversation", row.id)


BOOKKEEPING = frozenset({"consumed_events"})
"""Consumers record events of earlier writes (the sign-ups) whenever they get to them."""


async def census(app: Any) -> dict[str, int]:
    """Rows per table, every table but the consumers' bookkeeping."""
    counts = {}
    async with app.state.runtime.stores.db.session() as session:
        for table in metadata.sorted_tables:
            if table.name in BOOKKEEPING:
                continue
            counts[table.name] = int(
                await session.scalar(select(func.count()).select_from(table)) or 0
            )
    return counts
