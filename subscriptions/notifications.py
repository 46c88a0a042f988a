"""Live fields of notifications: `notificationReceived` and `unreadNotificationCount`.

Both are the signed-in viewer's own (UNAUTHENTICATED otherwise) and take no
arguments. Their messages come on the viewer's own topic
(`datasources.notifications.consumer.inbox`: the `access` topic every live
subscription of a signed-in viewer listens on, subscriptions/server.py), where
the notifications consumer publishes after each commit that changed the
viewer's groups, and `markNotificationsRead` after marking. Only that viewer's
sockets listen there, so a message never reaches anyone else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from datasources.notifications.consumer import NOTIFICATION, UNREAD, inbox
from resolvers.context import Context
from resolvers.notifications import inbox as inbox_resolvers
from subscriptions.live import SKIP

VIEWER_ARGUMENT = "_viewer_id"
"""Set by the strawberry resolvers (schema/notifications/subscriptions.py) so the
per-subscriber path (`subscriptions.live.stream`) listens on the viewer's topic;
the hub adds that topic itself."""


class _ViewerField:
    name: ClassVar[str]

    def topics(self, platform: str, arguments: dict[str, Any]) -> Sequence[str]:
        viewer_id = arguments.get(VIEWER_ARGUMENT)
        return (inbox(platform, int(viewer_id)),) if viewer_id is not None else ()

    async def authorize(self, context: Context, arguments: dict[str, Any]) -> None:
        context.require_viewer()

    def hidden_by(self, message: dict[str, Any]) -> Sequence[int]:
        return ()  # blocked users' activity never reaches the groups (the consumer)


class NotificationReceived(_ViewerField):
    name = "notificationReceived"

    def handles(self, message: dict[str, Any]) -> bool:
        return message.get("kind") == NOTIFICATION

    async def root(self, context: Context, message: dict[str, Any]) -> Any:
        from schema.notifications.types import NotificationGroup

        group = await inbox_resolvers.group_of_viewer(context, int(message["group_id"]))
        return SKIP if group is None else NotificationGroup(record=group)


class UnreadNotificationCount(_ViewerField):
    name = "unreadNotificationCount"

    def handles(self, message: dict[str, Any]) -> bool:
        return message.get("kind") == UNREAD  # sent after every change, new groups too

    async def root(self, context: Context, message: dict[str, Any]) -> Any:
        return await inbox_resolvers.unread_count(context)
