"""SQL for users, profiles and credentials (the social graph: graph.py).

Business rules live in resolvers/users, not here. Writes emit their `user.*`
domain events in their own transaction (DEVELOPERS.md, "Domain events").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.model import NewEvent
from datasources.events.outbox import emit
from datasources.sql import Database, utcnow
from datasources.users.tables import UserRow


@dataclass(frozen=True)
class UserRecord:
    id: int
    platform: str
    username: str
    email: str
    display_name: str
    bio: str | None
    avatar_media_id: int | None
    is_private: bool
    is_verified: bool
    follower_count: int
    following_count: int
    created_at: datetime


@dataclass(frozen=True)
class Credentials:
    user: UserRecord
    password_hash: str


UNCHANGED: Any = object()
"""Marks a ProfileChanges field that the update leaves as it is."""


@dataclass(frozen=True)
class ProfileChanges:
    """Profile fields to write; those left UNCHANGED are not touched."""

    display_name: str = UNCHANGED
    bio: str | None = UNCHANGED
    avatar_media_id: int | None = UNCHANGED
    is_private: bool = UNCHANGED


class UsernameTaken(Exception):
    """Username or email already used on this platform; `field` says which."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def to_record(row: UserRow) -> UserRecord:
    return UserRecord(
        id=row.id,
        platform=row.platform,
        username=row.username,
        email=row.email,
        display_name=row.display_name,
        bio=row.bio,
        avatar_media_id=row.avatar_media_id,
        is_private=row.is_private,
        is_verified=row.is_verified,
        follower_count=row.follower_count,
        following_count=row.following_count,
        created_at=row.created_at,
    )


class UserStore:
    def __init__(self, db: Database) -> None:
        # graph.py builds on this module's records, hence the import here.
        from datasources.users.graph import SocialGraph

        self.db = db
        self.graph = SocialGraph(db)

    async def create(
        self,
        platform: str,
        username: str,
        email: str,
        password_hash: str,
        display_name: str,
        is_verified: bool = False,
    ) -> UserRecord:
        username_key, email_key = username.casefold(), email.casefold()
        async with self.db.transaction() as session:
            for column, value, field in (
                (UserRow.username_key, username_key, "username"),
                (UserRow.email_key, email_key, "email"),
            ):
                taken = await session.scalar(
                    select(UserRow.id).where(UserRow.platform == platform, column == value)
                )
                if taken is not None:
                    raise UsernameTaken(field)
            row = UserRow(
                platform=platform,
                username=username,
                username_key=username_key,
                email=email,
                email_key=email_key,
                password_hash=password_hash,
                display_name=display_name,
                is_verified=is_verified,
                created_at=utcnow(),
            )
            session.add(row)
            try:
                await session.flush()
            except IntegrityError as exc:  # a concurrent sign-up won the race
                raise UsernameTaken("username") from exc
            await emit(
                session,
                NewEvent(
                    "user.created",
                    platform,
                    row.id,
                    "user",
                    row.id,
                    {
                        "username": username,
                        "display_name": display_name,
                        "is_verified": is_verified,
                    },
                ),
            )
            return to_record(row)

    async def by_ids(self, platform: str, ids: Sequence[int]) -> dict[int, UserRecord]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(UserRow).where(UserRow.platform == platform, UserRow.id.in_(ids))
            )
            return {row.id: to_record(row) for row in rows}

    async def by_username(self, platform: str, username: str) -> UserRecord | None:
        async with self.db.session() as session:
            row = await session.scalar(
                select(UserRow).where(
                    UserRow.platform == platform, UserRow.username_key == username.casefold()
                )
            )
            return to_record(row) if row else None

    async def credentials(self, platform: str, login: str) -> Credentials | None:
        """Look a user up by username or email (case-insensitive) for sign-in."""
        key = login.casefold()
        column = UserRow.email_key if "@" in key else UserRow.username_key
        async with self.db.session() as session:
            row = await session.scalar(
                select(UserRow).where(UserRow.platform == platform, column == key)
            )
            return Credentials(to_record(row), row.password_hash) if row else None

    async def update_profile(self, user_id: int, changes: ProfileChanges) -> UserRecord:
        """Write the given profile fields in one transaction.

        Going public (is_private false) approves every pending follow request in the
        same transaction, counts included: a public account has no requests.
        """
        from datasources.users.graph import (
            approve_pending_follows,
            lock_users,
            pending_follower_ids,
        )

        values = {
            name: value
            for name, value in (
                ("display_name", changes.display_name),
                ("bio", changes.bio),
                ("avatar_media_id", changes.avatar_media_id),
                ("is_private", changes.is_private),
            )
            if value is not UNCHANGED
        }
        going_public = values.get("is_private") is False
        async with self.db.transaction() as session:
            # Approving touches each requester's following_count: lock them with the
            # user, in one ordered batch, so no concurrent follow can deadlock with us.
            requesters = await pending_follower_ids(session, user_id) if going_public else []
            await lock_users(session, [user_id, *requesters])
            before = await _profile_values(session, user_id, values)
            if values:
                await session.execute(update(UserRow).where(UserRow.id == user_id).values(values))
            approved = await approve_pending_follows(session, user_id) if going_public else []
            row = await session.scalar(
                select(UserRow)
                .where(UserRow.id == user_id)
                .execution_options(populate_existing=True)
            )
            assert row is not None
            await emit(session, *_profile_events(row, before, values, approved))
            return to_record(row)


async def _profile_values(
    session: AsyncSession, user_id: int, values: dict[str, Any]
) -> dict[str, Any]:
    """The current values of the profile fields about to be written (under the lock)."""
    if not values:
        return {}
    columns = [getattr(UserRow, name) for name in values]
    found = (await session.execute(select(*columns).where(UserRow.id == user_id))).one()
    return dict(zip(values, found, strict=True))


def _profile_events(
    row: UserRow, before: dict[str, Any], values: dict[str, Any], approved: list[int]
) -> list[NewEvent]:
    """user.profile_updated with the fields that really changed (their new values),
    and, when going public approved pending requests, one answer per requester."""
    changed = {name: value for name, value in values.items() if before.get(name) != value}
    events = []
    if changed:
        events.append(
            NewEvent(
                "user.profile_updated",
                row.platform,
                row.id,
                "user",
                row.id,
                {"changed": sorted(changed), "values": changed},
            )
        )
    for follower_id in approved:
        events.append(
            NewEvent(
                "user.follow_request_answered",
                row.platform,
                row.id,
                "user",
                follower_id,
                {"follower_id": follower_id, "followee_id": row.id, "accepted": True},
            )
        )
    return events
