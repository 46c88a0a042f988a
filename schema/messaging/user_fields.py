"""User.lastSeenAt and User.isOnline: what the messaging domain contributes to User.

A mixin (never registered on its own): `schema.users.types.User` inherits it, and
schema/domains.py lists it under the messaging domain's `contributes`. Who may
see them is resolvers/messaging/presence.py (`can_see_presence`); to anyone else
they read `null` and `false`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry
from strawberry.types import Info

from resolvers.messaging import presence as presence_resolvers

if TYPE_CHECKING:
    from datasources.users.store import UserRecord


@strawberry.type
class UserPresenceFields:
    if TYPE_CHECKING:
        record: UserRecord

    @strawberry.field(
        description="last time this user was online; null when hidden by privacy or never seen"
    )
    async def last_seen_at(self, info: Info) -> datetime | None:
        return await presence_resolvers.last_seen_at(info.context, self.record)

    @strawberry.field
    async def is_online(self, info: Info) -> bool:
        return await presence_resolvers.is_online(info.context, self.record)
