"""Domain events → broker messages: the consumer group `realtime`.

Every writer already emits its domain events in the transaction of the change
(datasources/events); this consumer turns the ones live fields care about into
small broker messages (subscriptions/topics.py). So no mutation resolver calls
the realtime layer, and a mutation in one process reaches subscribers in every
process (the broker is Redis there). With Kafka, `entativa worker` runs it.
"""

from __future__ import annotations

from typing import Any

from datasources.events.bus import EventBus
from datasources.events.consumers import EventConsumer
from datasources.events.model import Event
from subscriptions import topics
from subscriptions.broker import Broker

ACCESS_EVENTS = frozenset(
    {
        "user.blocked",
        "user.unblocked",
        "user.followed",
        "user.unfollowed",
        "user.follow_request_answered",
        "user.unfriended",
        "user.friend_request_answered",
        "user.profile_updated",  # a private account changes who sees its posts
    }
)


def messages_for(event: Event) -> list[tuple[str, dict[str, Any]]]:
    """The (topic, message) pairs an event makes, possibly none."""
    data, platform = event.data, event.platform
    if event.type == "comment.created" and data.get("subject_type") == "post":
        message = {
            "kind": "comment",
            "comment_id": event.subject_id,
            "author_id": data.get("author_id"),
            "parent_author_id": data.get("parent_author_id"),
        }
        return [(topics.post(platform, int(data["subject_id"])), message)]
    if event.type in ("post.liked", "post.unliked"):
        return [
            (
                topics.post(platform, event.subject_id),
                {"kind": "likes", "post_id": event.subject_id},
            )
        ]
    if event.type in ("post.edited", "post.deleted"):
        return [(topics.post(platform, event.subject_id), {"kind": "access"})]
    if event.type in ACCESS_EVENTS:
        users = {event.subject_id, *([event.actor_id] if event.actor_id else [])}
        return [(topics.access(platform, uid), {"kind": "access"}) for uid in sorted(users)]
    return []


class RealtimeRelay(EventConsumer):
    """Turns domain events into broker messages (consumer group `realtime`).

    Nothing relational: a redelivered event publishes again, which subscribers see
    as a repeated notification (the likes count is read fresh; a comment repeated
    within the broker's best effort is the same comment id, which clients key on).
    """

    name = "realtime"
    domains = ("posts", "users")

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def handle(self, event: Event) -> None:
        for topic, message in messages_for(event):
            await self.broker.publish(topic, topics.encode(message))

    async def subscribe(self, bus: EventBus) -> None:
        await bus.subscribe(self.name, self.domains, self.handle)
