"""Every live Subscription root field served by the hub, by GraphQL name.

Messaging and notifications add theirs here (and their strawberry fields in their
domain's Subscription class, built with `subscriptions.live.stream`)."""

from __future__ import annotations

from subscriptions.calls import CallSignals
from subscriptions.live import LiveField
from subscriptions.messaging import Envelopes
from subscriptions.notifications import NotificationReceived, UnreadNotificationCount
from subscriptions.posts import CommentAdded, PostLikeCount
from subscriptions.typing_presence import PresenceField, Typing

LIVE_FIELDS: dict[str, LiveField] = {
    field.name: field
    for field in (
        CommentAdded(),
        PostLikeCount(),
        NotificationReceived(),
        UnreadNotificationCount(),
        Typing(),
        PresenceField(),
        CallSignals(),
        Envelopes(),
    )
}
