"""GraphQL types of notifications: NotificationGroup, its subject union, preferences, devices.

A NotificationGroup wraps a group of the viewer's own (resolvers/notifications);
its subject is loaded through the owner type's `resolve_reference`, i.e. the
owner's visibility policy and per-request DataLoaders, so a page of groups
resolves its subjects with one batch per kind and a subject the viewer can no
longer see (deleted, made private, behind a block) is null.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Union

import strawberry
from strawberry.types import Info

from datasources.notifications.channels import ordered
from datasources.notifications.records import DeviceRecord, GroupRecord, QuietHoursRecord
from resolvers.ids import encode_id, key_of
from resolvers.notifications import inbox
from resolvers.notifications import preferences as preference_resolvers
from resolvers.pagination import Page
from schema.common import Connection, Node, connection
from schema.posts.takes import Take, TakeTemplate, TakeTrend
from schema.posts.types import Comment, Post
from schema.stories.types import Story
from schema.users.types import User


@strawberry.enum
class NotificationType(Enum):
    FOLLOW = "FOLLOW"
    FOLLOW_REQUEST = "FOLLOW_REQUEST"
    FOLLOW_ACCEPTED = "FOLLOW_ACCEPTED"
    FRIEND_REQUEST = "FRIEND_REQUEST"
    FRIEND_ACCEPTED = "FRIEND_ACCEPTED"
    POST_LIKE = "POST_LIKE"
    POST_COMMENT = "POST_COMMENT"
    COMMENT_REPLY = "COMMENT_REPLY"
    COMMENT_LIKE = "COMMENT_LIKE"
    MENTION = "MENTION"
    POST_SHARE = "POST_SHARE"
    TAKE_LIKE = "TAKE_LIKE"
    TAKE_COMMENT = "TAKE_COMMENT"
    TREND_JOINED = "TREND_JOINED"
    TEMPLATE_USED = "TEMPLATE_USED"
    STORY_MENTION = "STORY_MENTION"
    STORY_REPLY = "STORY_REPLY"
    STICKER_RESPONSE = "STICKER_RESPONSE"
    COUNTDOWN_ENDED = "COUNTDOWN_ENDED"


@strawberry.enum
class NotificationChannel(Enum):
    IN_APP = "IN_APP"
    PUSH = "PUSH"
    EMAIL = "EMAIL"


@strawberry.enum
class PushProvider(Enum):
    FCM = "FCM"
    APNS = "APNS"


NotificationSubject = Annotated[
    Union[Post, Comment, Take, TakeTrend, TakeTemplate, Story, User],  # noqa: UP007
    strawberry.union("NotificationSubject"),
]

# subject_type of a group → (GraphQL type, module of its class)
SUBJECT_TYPES: dict[str, tuple[str, str]] = {
    "post": ("Post", "schema.posts.types"),
    "comment": ("Comment", "schema.posts.types"),
    "take": ("Take", "schema.posts.takes"),
    "trend": ("TakeTrend", "schema.posts.takes"),
    "template": ("TakeTemplate", "schema.posts.takes"),
    "story": ("Story", "schema.stories.types"),
    "user": ("User", "schema.users.types"),
}


async def subject_of(info: Info, group: GroupRecord) -> Any | None:
    """The group's subject through its owner's reference resolver (policy and loaders)."""
    import importlib

    found = SUBJECT_TYPES.get(group.subject_type)
    if found is None:
        return None
    type_name, module = found
    cls = getattr(importlib.import_module(module), type_name)
    global_id = strawberry.ID(encode_id(type_name, group.subject_id))
    return await cls.resolve_reference(info=info, id=global_id)


@strawberry.federation.type(
    keys=["id"],
    name="NotificationGroup",
    description="Notifications of the same type on the same subject, close in time, as one entry.",
)
class NotificationGroup(Node):
    record: strawberry.Private[GroupRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("NotificationGroup", self.record.id))

    @strawberry.field
    def type(self) -> NotificationType:
        return NotificationType(self.record.type)

    @strawberry.field(description="most recent actors first")
    async def actors(self, info: Info, limit: int | None = 3) -> list[User]:
        count = inbox.actor_limit(limit)
        ids = await info.context.loaders.notifications.actor_ids.load(self.record.id)
        users = await info.context.loaders.users.by_id.load_many(ids[:count])
        return [User(record=user) for user in users if user is not None]

    @strawberry.field
    def actor_count(self) -> int:
        return self.record.actor_count

    @strawberry.field
    async def subject(self, info: Info) -> NotificationSubject | None:
        return await subject_of(info, self.record)  # type: ignore[no-any-return]

    @strawberry.field(description="e.g. 'alice and 5 others liked your post'")
    async def summary(self, info: Info) -> str:
        ids = await info.context.loaders.notifications.actor_ids.load(self.record.id)
        users = await info.context.loaders.users.by_id.load_many(ids[:2])
        names = [user.username for user in users if user is not None]
        return inbox.summary(self.record.type, names, self.record.actor_count)

    @strawberry.field
    def latest_at(self) -> datetime:
        return self.record.latest_at

    @strawberry.field
    def is_read(self) -> bool:
        return self.record.is_read

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> NotificationGroup | None:
        pk = key_of(id, "NotificationGroup")
        record = await inbox.group_of_viewer(info.context, pk) if pk is not None else None
        return cls(record=record) if record else None


def groups_connection(page: Page[GroupRecord]) -> Connection[NotificationGroup]:
    return connection(page.map(lambda record: NotificationGroup(record=record)))


# ── preferences ──────────────────────────────────────────────────────────


@strawberry.type
class TypePreference:
    type: NotificationType
    channels: list[NotificationChannel]


@strawberry.type
class QuietHours:
    start: str
    end: str
    timezone: str

    @classmethod
    def of(cls, record: QuietHoursRecord | None) -> QuietHours | None:
        return cls(start=record.start, end=record.end, timezone=record.timezone) if record else None


@strawberry.type
class NotificationPreferences:
    types: list[TypePreference]
    quiet_hours: QuietHours | None
    paused_until: datetime | None
    email_digest: bool

    @classmethod
    def of(cls, shown: preference_resolvers.Preferences) -> NotificationPreferences:
        return cls(
            types=[
                TypePreference(
                    type=NotificationType(type_),
                    channels=[NotificationChannel(c) for c in ordered(channels)],
                )
                for type_, channels in shown.channels
            ],
            quiet_hours=QuietHours.of(shown.quiet_hours),
            paused_until=shown.paused_until,
            email_digest=shown.email_digest,
        )


@strawberry.input
class TypePreferenceInput:
    type: NotificationType
    channels: list[NotificationChannel]


@strawberry.input
class QuietHoursInput:
    start: str
    end: str
    timezone: str


@strawberry.input
class UpdateNotificationPreferencesInput:
    types: list[TypePreferenceInput] | None = strawberry.UNSET
    quiet_hours: QuietHoursInput | None = strawberry.UNSET
    clear_quiet_hours: bool | None = strawberry.UNSET
    paused_until: datetime | None = strawberry.UNSET
    email_digest: bool | None = strawberry.UNSET


# ── push devices ─────────────────────────────────────────────────────────


@strawberry.federation.type(keys=["id"], name="PushDevice")
class PushDevice(Node):
    record: strawberry.Private[DeviceRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("PushDevice", self.record.id))

    @strawberry.field
    def provider(self) -> PushProvider:
        return PushProvider(self.record.provider)

    @strawberry.field
    def name(self) -> str | None:
        return self.record.name

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field
    def last_used_at(self) -> datetime | None:
        return self.record.last_used_at

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> PushDevice | None:
        """The viewer's own device only (tokens are nobody else's business)."""
        pk = key_of(id, "PushDevice")
        if pk is None or info.context.viewer_id is None:
            return None
        for device in await preference_resolvers.devices(info.context):
            if device.id == pk:
                return cls(record=device)
        return None
