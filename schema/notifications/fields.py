"""Root fields of notifications: queries, mutations and live subscriptions.

The subscriptions are served by the realtime hub (subscriptions/notifications.py);
the strawberry resolvers here are the same rules the per-subscriber way, for
strawberry's own protocol handlers and direct `schema.subscribe` calls.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from datasources.notifications.records import QuietHoursRecord
from resolvers.notifications import inbox
from resolvers.notifications import preferences as preference_resolvers
from resolvers.notifications.preferences import PreferencesInput, TypeChoice
from schema.common import NO_CURSOR, Connection, given
from schema.notifications.types import (
    NotificationGroup,
    NotificationPreferences,
    NotificationType,
    PushDevice,
    PushProvider,
    UpdateNotificationPreferencesInput,
    groups_connection,
)
from subscriptions.live import LiveField, stream
from subscriptions.notifications import (
    VIEWER_ARGUMENT,
    NotificationReceived,
    UnreadNotificationCount,
)


@strawberry.input
class RegisterPushDeviceInput:
    provider: PushProvider
    token: str
    name: str | None = strawberry.UNSET


@strawberry.type
class NotificationsQuery:
    @strawberry.field
    async def notifications(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = NO_CURSOR,
        types: list[NotificationType] | None = strawberry.UNSET,
    ) -> Connection[NotificationGroup]:
        wanted = [t.value for t in given(types) or ()]
        page = await inbox.notifications(info.context, first, given(after), wanted)
        return groups_connection(page)

    @strawberry.field
    async def unread_notification_count(self, info: Info) -> int:
        return await inbox.unread_count(info.context)

    @strawberry.field
    async def notification_preferences(self, info: Info) -> NotificationPreferences:
        return NotificationPreferences.of(await preference_resolvers.preferences(info.context))

    @strawberry.field
    async def push_devices(self, info: Info) -> list[PushDevice]:
        return [PushDevice(record=d) for d in await preference_resolvers.devices(info.context)]


@strawberry.type
class NotificationsMutation:
    @strawberry.mutation
    async def mark_notifications_read(
        self, info: Info, up_to: datetime | None = strawberry.UNSET
    ) -> int:
        return await inbox.mark_read(info.context, given(up_to))

    @strawberry.mutation
    async def update_notification_preferences(
        self, info: Info, input: UpdateNotificationPreferencesInput
    ) -> NotificationPreferences:
        quiet = given(input.quiet_hours)
        types = given(input.types)
        plain = PreferencesInput(
            types=None
            if types is None
            else [TypeChoice(t.type.value, [c.value for c in t.channels]) for t in types],
            quiet_hours=None
            if quiet is None
            else QuietHoursRecord(quiet.start, quiet.end, quiet.timezone),
            clear_quiet_hours=given(input.clear_quiet_hours),
            paused_until=given(input.paused_until),
            paused_until_given=input.paused_until is not strawberry.UNSET,
            email_digest=given(input.email_digest),
        )
        shown = await preference_resolvers.update_preferences(info.context, plain)
        return NotificationPreferences.of(shown)

    @strawberry.mutation
    async def register_push_device(self, info: Info, input: RegisterPushDeviceInput) -> PushDevice:
        record = await preference_resolvers.register_device(
            info.context, input.provider.value, input.token, given(input.name)
        )
        return PushDevice(record=record)

    @strawberry.mutation
    async def unregister_push_device(self, info: Info, id: strawberry.ID) -> bool:
        return await preference_resolvers.unregister_device(info.context, id)


async def _viewer_stream(info: Info, field: LiveField) -> AsyncGenerator[Any, None]:
    """`field`'s events for the signed-in viewer, on their own topic."""
    context = info.context
    viewer = context.require_viewer()
    arguments = {VIEWER_ARGUMENT: viewer.user_id}
    async for value in stream(field, context, context.stores.broker, arguments):
        yield value


@strawberry.type
class NotificationsSubscription:
    @strawberry.subscription
    async def notification_received(self, info: Info) -> AsyncGenerator[NotificationGroup, None]:
        async for group in _viewer_stream(info, NotificationReceived()):
            yield group

    @strawberry.subscription
    async def unread_notification_count(self, info: Info) -> AsyncGenerator[int, None]:
        async for count in _viewer_stream(info, UnreadNotificationCount()):
            yield count
