"""Each domain (subgraph): its root fields, the types it owns, what it adds to others.

Declared once, here. `schema.supergraph` merges every domain into the monolith;
`schema.subgraphs` derives each subgraph from that monolith by this ownership:

- `owns`: the types a domain defines. An entity (a type with `@key`) must be
  owned by exactly one domain: there it has every field and its
  `resolve_reference`; other subgraphs see a stub (`id` only). Owned types are
  in the domain's subgraph even when no field reaches them (e.g. a type found
  only through `node(id)`). Value types (PageInfo, connections) need no owner.
- `contributes`: fields a domain adds to another domain's entity, by entity
  name: the strawberry mixin class that defines them (e.g.
  `contributes={"User": (UserPostsFields,)}`) or GraphQL field names. The owner's
  subgraph leaves them out; the contributor's subgraph resolves that entity.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schema.common import Node
from schema.media.mutations import MediaMutation
from schema.media.queries import MediaQuery
from schema.media.types import Media
from schema.messaging.attachments import AttachmentsMutation, EncryptedAttachment
from schema.messaging.calls import Call, CallSignal, CallsMutation, CallsSubscription
from schema.messaging.groups import GroupsMutation
from schema.messaging.keys import KeysMutation, KeysQuery
from schema.messaging.presence import (
    PresenceEvent,
    PresenceMutation,
    PresenceSubscription,
    TypingEvent,
)
from schema.messaging.relay import RelayMutation, RelayQuery, RelaySubscription
from schema.messaging.types import Conversation, Envelope
from schema.messaging.user_fields import UserPresenceFields
from schema.node import NodeQuery
from schema.notifications.fields import (
    NotificationsMutation,
    NotificationsQuery,
    NotificationsSubscription,
)
from schema.notifications.types import NotificationGroup, PushDevice
from schema.posts.mutations.comments import CommentMutation
from schema.posts.mutations.engagement import EngagementMutation
from schema.posts.mutations.posts import PostMutation
from schema.posts.queries import PostsQuery
from schema.posts.subscriptions import PostSubscription
from schema.posts.take_mutations import TakesMutation
from schema.posts.take_queries import TakesQuery
from schema.posts.takes import BehindTheTake, Take, TakeTemplate, TakeTrend
from schema.posts.types import Comment, Location, Post
from schema.posts.user_fields import UserPostsFields
from schema.posts.user_takes import UserTakesFields
from schema.search.hashtags import Hashtag, HashtagQuery, TrendingHashtag
from schema.search.results import SearchMutation, SearchQuery
from schema.stories.close_friends import CloseFriendsMutation, CloseFriendsQuery
from schema.stories.mutations import StoriesMutation
from schema.stories.queries import StoriesQuery
from schema.stories.types import STICKER_TYPES, Story, StoryHighlight, StoryReply
from schema.stories.user_fields import UserStoriesFields
from schema.users.mutations.auth import AuthMutation
from schema.users.mutations.profile import ProfileMutation
from schema.users.mutations.social import SocialMutation
from schema.users.queries import UsersQuery
from schema.users.types import User


@dataclass(frozen=True)
class Domain:
    name: str
    queries: tuple[type, ...] = ()
    mutations: tuple[type, ...] = ()
    subscriptions: tuple[type, ...] = ()
    extra_types: tuple[type, ...] = field(default=())
    owns: tuple[type, ...] = ()
    contributes: Mapping[str, tuple[type | str, ...]] = field(default_factory=dict)


DOMAINS: dict[str, Domain] = {
    "users": Domain(
        "users",
        queries=(UsersQuery, NodeQuery),
        mutations=(AuthMutation, ProfileMutation, SocialMutation),
        owns=(Node, User),
    ),
    "media": Domain("media", queries=(MediaQuery,), mutations=(MediaMutation,), owns=(Media,)),
    "posts": Domain(
        "posts",
        queries=(PostsQuery, TakesQuery),
        mutations=(PostMutation, EngagementMutation, CommentMutation, TakesMutation),
        subscriptions=(PostSubscription,),
        owns=(Post, Comment, Location, Take, BehindTheTake, TakeTemplate, TakeTrend),
        contributes={"User": (UserPostsFields, UserTakesFields)},
    ),
    "stories": Domain(
        "stories",
        queries=(StoriesQuery, CloseFriendsQuery),
        mutations=(StoriesMutation, CloseFriendsMutation),
        owns=(Story, StoryReply, StoryHighlight),
        extra_types=tuple(STICKER_TYPES.values()),  # reached only through Sticker
        contributes={"User": (UserStoriesFields,)},
    ),
    "notifications": Domain(
        "notifications",
        queries=(NotificationsQuery,),
        mutations=(NotificationsMutation,),
        subscriptions=(NotificationsSubscription,),
        owns=(NotificationGroup, PushDevice),
    ),
    "search": Domain(
        "search",
        queries=(SearchQuery, HashtagQuery),
        mutations=(SearchMutation,),
        owns=(Hashtag, TrendingHashtag),
    ),
    "messaging": Domain(
        "messaging",
        queries=(KeysQuery, RelayQuery),
        mutations=(
            KeysMutation,
            RelayMutation,
            GroupsMutation,
            PresenceMutation,
            CallsMutation,
            AttachmentsMutation,
        ),
        subscriptions=(RelaySubscription, PresenceSubscription, CallsSubscription),
        owns=(
            Conversation,
            Envelope,
            Call,
            CallSignal,
            TypingEvent,
            PresenceEvent,
            EncryptedAttachment,
        ),
        contributes={"User": (UserPresenceFields,)},
    ),
}
