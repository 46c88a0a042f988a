"""SQL of calls: the call row is all a call leaves behind (signals are never stored).

Every state change is a compare-and-set on the row (`answered_at IS NULL`,
`ended_at IS NULL`), so an ANSWER racing the ring timeout, or two HANGUPs, settle
on one outcome: exactly one writer ends a call, and only that writer tells the
devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from datasources.messaging.call_tables import CallRow
from datasources.messaging.members import device_ids, member_ids
from datasources.sql import Database

RING_SWEEP_BATCH = 500


@dataclass(frozen=True)
class CallRecord:
    id: int
    platform: str
    conversation_id: int
    caller_id: int
    caller_device_id: int
    kind: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True)
class NewCall:
    platform: str
    conversation_id: int
    caller_id: int
    caller_device_id: int
    kind: str
    started_at: datetime


def _record(row: CallRow) -> CallRecord:
    return CallRecord(
        id=row.id,
        platform=row.platform,
        conversation_id=row.conversation_id,
        caller_id=row.caller_id,
        caller_device_id=row.caller_device_id,
        kind=row.kind,
        started_at=row.started_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
    )


class CallStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, call: NewCall) -> CallRecord:
        row = CallRow(
            platform=call.platform,
            conversation_id=call.conversation_id,
            caller_id=call.caller_id,
            caller_device_id=call.caller_device_id,
            kind=call.kind,
            started_at=call.started_at,
        )
        async with self.db.transaction() as session:
            session.add(row)
            await session.flush()
            return _record(row)

    async def by_ids(self, platform: str, ids: Sequence[int]) -> dict[int, CallRecord]:
        if not ids:
            return {}
        async with self.db.session() as session:
            rows = await session.scalars(
                select(CallRow).where(CallRow.platform == platform, CallRow.id.in_(list(ids)))
            )
            return {row.id: _record(row) for row in rows}

    async def answer(self, call_id: int, now: datetime) -> bool:
        """Mark the call answered, once; False when it was answered or ended already."""
        return await self._set(call_id, now, answered=True)

    async def end(self, call_id: int, now: datetime) -> bool:
        """End the call, once; False when something else ended it first."""
        return await self._set(call_id, now, answered=False)

    async def ring_out(self, call_id: int, ended_at: datetime) -> bool:
        """End the call as unanswered, once; False when it was answered or ended."""
        return await self._set(call_id, ended_at, answered=False, unanswered_only=True)

    async def _set(
        self, call_id: int, now: datetime, answered: bool, unanswered_only: bool = False
    ) -> bool:
        where = [CallRow.id == call_id, CallRow.ended_at.is_(None)]
        if answered or unanswered_only:
            where.append(CallRow.answered_at.is_(None))
        values = {"answered_at": now} if answered else {"ended_at": now}
        async with self.db.transaction() as session:
            result = await session.execute(
                update(CallRow)
                .where(*where)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    async def end_unanswered(self, started_before: datetime, ring: float) -> list[CallRecord]:
        """End every call still ringing that started at or before `started_before`; its
        `ended_at` is its start plus `ring` seconds (when it stopped ringing, whenever the
        sweep runs). Returns the calls this call ended (not those another sweeper did)."""
        async with self.db.session() as session:
            rows = list(
                await session.scalars(
                    select(CallRow)
                    .where(
                        CallRow.ended_at.is_(None),
                        CallRow.answered_at.is_(None),
                        CallRow.started_at <= started_before,
                    )
                    .order_by(CallRow.started_at)
                    .limit(RING_SWEEP_BATCH)
                )
            )
        ended = []
        for row in rows:
            stopped = row.started_at + timedelta(seconds=ring)
            async with self.db.transaction() as session:
                result = await session.execute(
                    update(CallRow)
                    .where(
                        CallRow.id == row.id,
                        CallRow.ended_at.is_(None),
                        CallRow.answered_at.is_(None),
                    )
                    .values(ended_at=stopped)
                    .execution_options(synchronize_session=False)
                )
            if getattr(result, "rowcount", 0):
                row.ended_at = stopped
                ended.append(_record(row))
        return ended

    async def participants(self, conversation_id: int) -> dict[int, dict[int, int]]:
        """Every member of the call's conversation and their devices:
        {user id: {device id: registration id}}."""
        async with self.db.session() as session:
            members = await member_ids(session, conversation_id)
            return await device_ids(session, members)
