"""Every live Subscription root field served by the hub, by GraphQL name.

Messaging and notifications add theirs here (and their strawberry fields in their
domain's Subscription class, built with `subscriptions.live.stream`)."""

from __future__ import annotations

from subscriptions.live import LiveField
from subscriptions.notifications import NotificationReceived, UnreadNotificationCount
from subscriptions.posts import CommentAdded, PostLikeCount

LIVE_FIELDS: dict[str, LiveField] = {
    field.name: field
    for field in (
        CommentAdded(),
        PostLikeCount(),
        NotificationReceived(),
        UnreadNotificationCount(),
    )
}
