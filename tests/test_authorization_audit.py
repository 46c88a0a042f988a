"""Authorization audit: every field of the served schema that returns private data,
tried by every kind of viewer, against the rules of the domain that owns it.

The rules come from the contract's descriptions and each domain's policy module
(resolvers/users/policy.py, resolvers/posts/policy.py, resolvers/posts/take_policy.py,
resolvers/stories/policy.py, resolvers/notifications/*, resolvers/search/history.py).
One world is built per backend: a *private* Socialink account `owner` with posts of
every visibility, a take, an EVERYONE and a CLOSE_FRIENDS story (question stickers
answered, replies), a highlight, a saved post, a close friend, pending follow and
friend requests, a blocked user, a push device, notification preferences, a search,
and the notifications all of that produced. Then each PROBE runs once per viewer
kind and its outcome is compared with the table (then the four subscriptions, LIVE,
over a real websocket per kind):

    ALLOW            the owner's data comes back
    FORBIDDEN        refused with FORBIDDEN (the viewer can see the thing, not this)
    HIDDEN           NOT_FOUND, null, or absent from a list: indistinguishable from
                     nothing, which is what a block or another platform must look like
    UNAUTHENTICATED  refused with UNAUTHENTICATED (signed out)

The viewer's own lists (savedPosts, notifications…) can only ever hold the viewer's
own data: for anyone but the owner, HIDDEN means "the owner's entry is not in mine".

`test_every_field_is_classified` is the registry check: every field of every
object type of the served schema must be in PRIVATE_FIELDS (with the probes that
audit it) or PUBLIC_FIELDS (with why it needs no audit of its own), so a new field
fails until someone decides which it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLObjectType

from schema.supergraph import is_federation_type, supergraph
from tests.conftest import Account, GraphQLClient, Result, create_users
from tests.events_support import consumers_settled
from tests.messaging_realtime_support import conversation
from tests.messaging_support import register_device
from tests.posts_helpers import ADD_COMMENT, create_post, mark
from tests.realtime_support import Socket, live_server, open_socket, subscriptions_live
from tests.stories_support import ADD_CLOSE, BLOCK, FOLLOW, SEEN, create_story, placed, run
from tests.test_takes import create_take

KINDS = (
    "owner", "follower", "friend", "close_friend", "stranger",
    "blocked", "signed_out", "other",
)  # fmt: skip

A, F, H, U = "ALLOW", "FORBIDDEN", "HIDDEN", "UNAUTHENTICATED"
P = "NOT_ON_PLATFORM"  # BAD_USER_INPUT: friends exist on Socialink only


def row(**outcomes: str) -> dict[str, str]:
    """A full row of the table: `default` for every kind not named."""
    default = outcomes.pop("default")
    return {kind: outcomes.get(kind, default) for kind in KINDS}


# A private account's lists and content: owner, approved followers and friends only;
# the others see the profile but get FORBIDDEN; a block or another platform hides it.
CONNECTIONS = row(default=F, owner=A, follower=A, friend=A, blocked=H, other=H)
# A private account's content read by id (posts, takes, EVERYONE stories): hidden, not
# refused, from everyone but the owner, approved followers and friends.
FOLLOWERS_ONLY = row(default=H, owner=A, follower=A, friend=A)
# Author-only story fields: FORBIDDEN to whoever can see the story, NOT_FOUND otherwise.
AUTHOR_ONLY_EVERYONE = row(default=H, owner=A, follower=F, friend=F)
CLOSE_FRIENDS_ONLY = row(default=H, owner=A, close_friend=A)
AUTHOR_ONLY_CLOSE = row(default=H, owner=A, close_friend=F)
# The viewer's own data: the owner finds theirs, everyone else finds only their own.
OWN = row(default=H, owner=A, signed_out=U)
OWNER_ONLY = row(default=H, owner=A)

REFUSALS = {"FORBIDDEN": F, "NOT_FOUND": H, "UNAUTHENTICATED": U, "BAD_USER_INPUT": P}


@dataclass(frozen=True)
class Probe:
    """One question put to every viewer kind: `query` with variables from the world,
    `observe` turning the answer into an outcome, `expected` the table row."""

    name: str
    query: str
    observe: Callable[[Result, dict[str, Any]], str]
    expected: dict[str, str]
    variables: Callable[[dict[str, Any]], dict[str, Any]] = lambda world: {}


def refusal(result: Result) -> str | None:
    for code in result.codes:
        if code in REFUSALS:
            return REFUSALS[code]
    if result.errors:  # anything else is a bug, not a refusal: reported as a mismatch
        return f"ERROR {result.errors}"
    return None


def dig(data: Any, path: str) -> Any:
    for key in path.split("."):
        if data is None:
            return None
        data = data[key] if isinstance(data, dict) else None
    return data


def present(path: str) -> Callable[[Result, dict[str, Any]], str]:
    """ALLOW when the value at `path` is there, else the refusal (or HIDDEN for null)."""

    def observe(result: Result, world: dict[str, Any]) -> str:
        refused = refusal(result)
        if refused:
            return refused
        return A if dig(result.data, path) is not None else H

    return observe


def holds(path: str, marker: str) -> Callable[[Result, dict[str, Any]], str]:
    """ALLOW when the list at `path` (ids found anywhere under it) holds world[marker]."""

    def observe(result: Result, world: dict[str, Any]) -> str:
        refused = refusal(result)
        if refused:
            return refused
        return A if world[marker] in set(strings(dig(result.data, path))) else H

    return observe


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def own_count(result: Result, world: dict[str, Any]) -> str:
    """unreadNotificationCount must count the viewer's own unread groups."""
    refused = refusal(result)
    if refused:
        return refused
    unread = [e for e in result.data["notifications"]["edges"] if not e["node"]["isRead"]]
    if result.data["unreadNotificationCount"] != len(unread):
        return "COUNTS ANOTHER INBOX"
    return A if world["group"] in strings(result.data["notifications"]) else H


def by_node(selection: str) -> str:
    return f"query($id: ID!) {{ node(id: $id) {{ id {selection} }} }}"


def of(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda world: {"id": world[key]}


ON_OWNER = "... on User {{ {} }}"
CONNECTION = "{}(first: 50) {{ totalCount edges {{ node {{ id }} }} }}"


def user_probe(field: str, expected: dict[str, str], selection: str | None = None) -> Probe:
    selection = selection or CONNECTION.format(field)
    return Probe(
        f"User.{field}",
        by_node(ON_OWNER.format(selection)),
        present(f"node.{field}"),
        expected,
        of("owner"),
    )


def node_probe(name: str, key: str, expected: dict[str, str], selection: str = "") -> Probe:
    return Probe(name, by_node(selection), present("node"), expected, of(key))


def story_probe(field: str, audience: str, expected: dict[str, str]) -> Probe:
    return Probe(
        f"Story.{field.split()[0].split('(')[0]} ({audience})",
        f"query($id: ID!) {{ story(id: $id) {{ {field} }} }}",
        present(f"story.{field.split()[0].split('(')[0]}"),
        expected,
        of(f"story {audience}"),
    )


def own_probe(name: str, query: str, path: str, marker: str) -> Probe:
    return Probe(name, query, holds(path, marker), OWN)


SEARCH_POSTS = "query { search(query: $q) { edges { node { node { ... on Post { id } } } } } }"
RESPONSES = (
    "stickers { ... on QuestionSticker { responses { totalCount edges { node { text } } } } }"
)

# Presence (resolvers/messaging/presence.py): self, mutual followers and friends only
# (tests/test_messaging_presence.py has the full table, one-way followers included).
PRESENCE_VISIBLE = row(default=H, owner=A, friend=A)
# A conversation's calls and signals: its members only (owner and friend here).
MEMBERS_ONLY = row(default=H, owner=A, friend=A)
START_CALL = "mutation($i: StartCallInput!) { startCall(input: $i) { id } }"
SEND_MESSAGE = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { conversationId } }"


def message_to_owner(world: dict[str, Any], client_message_id: str) -> dict[str, Any]:
    """The friend's message to the owner's only device, in their conversation."""
    owner = world["accounts"]["owner"]
    envelope = {
        "recipientId": owner.id,
        "recipientDeviceId": 1,
        "recipientRegistrationId": world["owner registration"],
        "type": "CIPHERTEXT",
        "content": "Y2lwaGVydGV4dA==",
    }
    return {
        "clientMessageId": client_message_id,
        "senderDeviceId": 1,
        "conversationId": world["chat"],
        "envelopes": [envelope],
    }

CALL_INPUT = {"kind": "AUDIO", "senderDeviceId": 1, "offer": "b2ZmZXI="}

PROBES = [
    # first: presence lasts 45 s without a heartbeat, and the world just set it
    Probe(
        "User.isOnline / User.lastSeenAt",
        by_node(ON_OWNER.format("isOnline lastSeenAt")),
        lambda result, world: (
            A if dig(result.data, "node.isOnline") and dig(result.data, "node.lastSeenAt") else H
        ),
        PRESENCE_VISIBLE,
        of("owner"),
    ),
    # Conversations and their queues: members only; a device's queue: its owner only.
    node_probe(
        "Conversation (node)",
        "chat",
        MEMBERS_ONLY,
        "... on Conversation { kind members { id } readStates { readUpTo } unreadCount "
        "lastActivityAt disappearingAfterSeconds name groupId epoch }",
    ),
    Probe(
        "Query.conversation",
        "query($id: ID!) { conversation(id: $id) { id members { id } unreadCount } }",
        present("conversation"),
        row(default=H, owner=A, friend=A, signed_out=U),
        of("chat"),
    ),
    Probe(
        "Query.conversations",
        "query { conversations(first: 50) { totalCount edges { node { id } } } }",
        holds("conversations", "chat"),
        row(default=H, owner=A, friend=A, signed_out=U),
    ),
    own_probe(
        "Query.pendingEnvelopes",
        "query { pendingEnvelopes(deviceId: 1) { totalCount edges { node { id content "
        "senderId sequence } } } }",
        "pendingEnvelopes",
        "envelope",
    ),
    node_probe("Envelope (node)", "envelope", OWNER_ONLY, "... on Envelope { content sequence }"),
    own_probe(
        "Query.messagingDevices",
        "query { messagingDevices { deviceId name registrationId } }",
        "messagingDevices",
        "device name",
    ),
    node_probe(
        "Call (node)",
        "call",
        MEMBERS_ONLY,
        "... on Call { kind conversationId caller { id } startedAt endedAt }",
    ),
    # users: a private account's lists; the relationship as each viewer sees it
    user_probe("followers", CONNECTIONS),
    user_probe("following", CONNECTIONS),
    user_probe("friends", CONNECTIONS),
    user_probe("posts", CONNECTIONS),
    user_probe("takes", CONNECTIONS),
    Probe(
        "User.stories (EVERYONE)",
        by_node(ON_OWNER.format("stories { id }")),
        holds("node.stories", "story EVERYONE"),
        FOLLOWERS_ONLY,
        of("owner"),
    ),
    Probe(
        "User.stories (CLOSE_FRIENDS)",
        by_node(ON_OWNER.format("stories { id }")),
        holds("node.stories", "story CLOSE_FRIENDS"),
        CLOSE_FRIENDS_ONLY,
        of("owner"),
    ),
    Probe(
        "User.highlights (CLOSE_FRIENDS story)",
        by_node(ON_OWNER.format("highlights { stories { id } }")),
        holds("node.highlights", "story CLOSE_FRIENDS"),
        CLOSE_FRIENDS_ONLY,
        of("owner"),
    ),
    Probe(
        "User.viewerRelationship",
        by_node(ON_OWNER.format("viewerRelationship { following }")),
        present("node.viewerRelationship"),
        # null signed out; a block or another platform hides the whole user
        row(default=A, blocked=H, other=H, signed_out=H),
        of("owner"),
    ),
    Probe(
        # Close friends are silent: being on someone's list never shows.
        "Relationship.isCloseFriend (of the lister, seen by the listed)",
        by_node(ON_OWNER.format("viewerRelationship { isCloseFriend }")),
        lambda result, world: (
            "LEAKS" if dig(result.data, "node.viewerRelationship.isCloseFriend") else H
        ),
        row(default=H),
        of("owner"),
    ),
    Probe(
        # The owner blocked `blocked`: nobody, the blocked user included, learns it
        # from the owner's side (the blocked user cannot even see the owner).
        "Relationship.blockedBy",
        by_node(ON_OWNER.format("viewerRelationship { blockedBy }")),
        lambda result, world: (
            "LEAKS" if dig(result.data, "node.viewerRelationship.blockedBy") else H
        ),
        row(default=H),
        of("owner"),
    ),
    Probe(
        # The viewer's own relationships, as the blocker sees the user they blocked.
        "Relationship.* (the owner's, with the blocked user)",
        "query { blockedUsers(first: 50) { edges { node { id viewerRelationship { "
        "following followedBy requested blocking blockedBy friends friendRequestSent "
        "friendRequestReceived isCloseFriend } } } } }",
        lambda result, world: (
            refusal(result)
            or (
                A
                if any(
                    e["node"]["id"] == world["blocked"]
                    and e["node"]["viewerRelationship"]["blocking"]
                    for e in result.data["blockedUsers"]["edges"]
                )
                else H
            )
        ),
        OWN,
    ),
    node_probe(
        # The basic profile is everyone's, except across a block (users/policy.py).
        "Query.node (User)",
        "owner",
        row(default=A, blocked=H, other=H),
        "... on User { username bio followerCount }",
    ),
    node_probe(
        "Query.node (User, the blocker looking at whom they blocked)",
        "blocked",
        row(default=A, owner=H, other=H),
        "... on User { username bio followerCount }",
    ),
    Probe(
        "Query.viewer",
        "query { viewer { id } }",
        holds("viewer", "owner"),
        row(default=H, owner=A),
    ),
    own_probe(
        "Query.followRequests",
        "query { followRequests(first: 50) { edges { node { id } } } }",
        "followRequests",
        "requester",
    ),
    Probe(
        "Query.friendRequests",
        "query { friendRequests(first: 50) { edges { node { id } } } }",
        holds("friendRequests", "requester"),
        {**OWN, "other": P},
    ),
    own_probe(
        "Query.blockedUsers",
        "query { blockedUsers(first: 50) { edges { node { id } } } }",
        "blockedUsers",
        "blocked",
    ),
    # posts and takes of a private account, by visibility
    *(
        Probe(
            f"Query.post ({visibility})",
            "query($id: ID!) { post(id: $id) { id likers { totalCount } "
            "comments { totalCount } } }",
            present("post"),
            expected,
            of(f"post {visibility}"),
        )
        for visibility, expected in {
            "PUBLIC": FOLLOWERS_ONLY,
            "FOLLOWERS": row(default=H, owner=A, follower=A),
            "FRIENDS": row(default=H, owner=A, friend=A),
            "PRIVATE": OWNER_ONLY,
        }.items()
    ),
    node_probe("Query.node (PRIVATE post)", "post PRIVATE", OWNER_ONLY),
    Probe(
        "Query.search (PRIVATE post)",
        SEARCH_POSTS.replace("$q", '"zanzibarprivate"'),
        holds("search", "post PRIVATE"),
        OWNER_ONLY,
    ),
    Probe(
        "Query.search (FOLLOWERS post)",
        SEARCH_POSTS.replace("$q", '"zanzibarfollowers"'),
        holds("search", "post FOLLOWERS"),
        row(default=H, owner=A, follower=A),
    ),
    Probe(
        "Query.take",
        "query($id: ID!) { take(id: $id) { id comments { totalCount } } }",
        present("take"),
        FOLLOWERS_ONLY,
        of("take"),
    ),
    own_probe(
        "Query.savedPosts",
        "query { savedPosts(first: 50) { edges { node { id } } } }",
        "savedPosts",
        "post PUBLIC",
    ),
    # stories
    Probe(
        "Query.story (EVERYONE)",
        "query($id: ID!) { story(id: $id) { id } }",
        present("story"),
        FOLLOWERS_ONLY,
        of("story EVERYONE"),
    ),
    Probe(
        "Query.story (CLOSE_FRIENDS)",
        "query($id: ID!) { story(id: $id) { id } }",
        present("story"),
        CLOSE_FRIENDS_ONLY,
        of("story CLOSE_FRIENDS"),
    ),
    node_probe("Query.node (CLOSE_FRIENDS story)", "story CLOSE_FRIENDS", CLOSE_FRIENDS_ONLY),
    *(
        story_probe(field, audience, expected)
        for audience, expected in (
            ("EVERYONE", AUTHOR_ONLY_EVERYONE),
            ("CLOSE_FRIENDS", AUTHOR_ONLY_CLOSE),
        )
        for field in (
            "viewCount",
            "viewers { totalCount edges { node { user { id } viewedAt reaction } } }",
            "replies { totalCount edges { node { id body } } }",
            "insights { reach impressions replies stickerTaps linkTaps exits }",
        )
    ),
    *(
        Probe(
            f"QuestionSticker.responses ({audience})",
            f"query($id: ID!) {{ story(id: $id) {{ {RESPONSES} }} }}",
            present("story"),
            expected,
            of(f"story {audience}"),
        )
        for audience, expected in (
            ("EVERYONE", AUTHOR_ONLY_EVERYONE),
            ("CLOSE_FRIENDS", AUTHOR_ONLY_CLOSE),
        )
    ),
    # A reply is between its author (follower) and the story's author.
    node_probe(
        "StoryReply (node)",
        "reply",
        row(default=H, owner=A, follower=A),
        "... on StoryReply { body story { id } author { id } }",
    ),
    own_probe(
        "Query.closeFriends",
        "query { closeFriends(first: 50) { edges { node { id } } } }",
        "closeFriends",
        "close_friend",
    ),
    # notifications, preferences, devices, search history: the viewer's own only
    own_probe(
        "Query.notifications",
        "query { notifications(first: 50) { edges { node { id summary } } } }",
        "notifications",
        "group",
    ),
    Probe(
        "Query.unreadNotificationCount",
        "query { unreadNotificationCount "
        "notifications(first: 100) { edges { node { id isRead } } } }",
        own_count,
        OWN,
    ),
    node_probe(
        "NotificationGroup (node)", "group", OWNER_ONLY, "... on NotificationGroup { summary }"
    ),
    own_probe(
        "Query.notificationPreferences",
        "query { notificationPreferences { quietHours { timezone } pausedUntil emailDigest "
        "types { type channels } } }",
        "notificationPreferences",
        "timezone",
    ),
    own_probe("Query.pushDevices", "query { pushDevices { id name } }", "pushDevices", "device"),
    node_probe("PushDevice (node)", "device", OWNER_ONLY, "... on PushDevice { name }"),
    own_probe(
        "Query.searchHistory",
        "query { searchHistory { id query type searchedAt } }",
        "searchHistory",
        "searched",
    ),
]

# Every field returning private data → the probes above that audit it.
PRIVATE_FIELDS: dict[str, tuple[str, ...]] = {
    "User.followers": ("User.followers",),
    "User.following": ("User.following",),
    "User.friends": ("User.friends",),
    "User.posts": ("User.posts",),
    "User.takes": ("User.takes",),
    "User.stories": ("User.stories (EVERYONE)", "User.stories (CLOSE_FRIENDS)"),
    "User.highlights": ("User.highlights (CLOSE_FRIENDS story)",),
    "User.viewerRelationship": ("User.viewerRelationship",),
    **{
        f"Relationship.{field}": ("Relationship.* (the owner's, with the blocked user)",)
        for field in (
            "following followedBy requested blocking friends "
            "friendRequestSent friendRequestReceived"
        ).split()
    },
    "Relationship.isCloseFriend": (
        "Relationship.isCloseFriend (of the lister, seen by the listed)",
        "Relationship.* (the owner's, with the blocked user)",
    ),
    "Relationship.blockedBy": (
        "Relationship.blockedBy",
        "Relationship.* (the owner's, with the blocked user)",
    ),
    "Query.viewer": ("Query.viewer",),
    "Query.followRequests": ("Query.followRequests",),
    "Query.friendRequests": ("Query.friendRequests",),
    "Query.blockedUsers": ("Query.blockedUsers",),
    "Query.post": tuple(f"Query.post ({v})" for v in ("PUBLIC", "FOLLOWERS", "FRIENDS", "PRIVATE")),
    "Query.node": (
        "Query.node (User)",
        "Query.node (User, the blocker looking at whom they blocked)",
        "Query.node (PRIVATE post)",
        "Query.node (CLOSE_FRIENDS story)",
        "StoryReply (node)",
        "NotificationGroup (node)",
        "PushDevice (node)",
        "Call (node)",
        "Conversation (node)",
        "Envelope (node)",
    ),
    "Query.search": ("Query.search (PRIVATE post)", "Query.search (FOLLOWERS post)"),
    "Query.take": ("Query.take",),
    "Query.savedPosts": ("Query.savedPosts",),
    "Query.story": ("Query.story (EVERYONE)", "Query.story (CLOSE_FRIENDS)"),
    **{
        f"Story.{field}": (f"Story.{field} (EVERYONE)", f"Story.{field} (CLOSE_FRIENDS)")
        for field in ("viewCount", "viewers", "replies", "insights")
    },
    "QuestionSticker.responses": (
        "QuestionSticker.responses (EVERYONE)",
        "QuestionSticker.responses (CLOSE_FRIENDS)",
    ),
    **{f"StoryReply.{f}": ("StoryReply (node)",) for f in ("id", "story", "author", "body")},
    "Query.closeFriends": ("Query.closeFriends",),
    "Query.notifications": ("Query.notifications",),
    "Query.unreadNotificationCount": ("Query.unreadNotificationCount",),
    "NotificationGroup.summary": ("NotificationGroup (node)", "Query.notifications"),
    "Query.notificationPreferences": ("Query.notificationPreferences",),
    "Query.pushDevices": ("Query.pushDevices",),
    "PushDevice.name": ("PushDevice (node)", "Query.pushDevices"),
    "Query.searchHistory": ("Query.searchHistory",),
    "Query.conversation": ("Query.conversation",),
    "Query.conversations": ("Query.conversations",),
    **{
        f"Conversation.{field}": ("Conversation (node)", "Query.conversation")
        for field in "id kind members readStates unreadCount lastActivityAt "
        "disappearingAfterSeconds name groupId epoch".split()
    },
    "Query.pendingEnvelopes": ("Query.pendingEnvelopes",),
    **{
        f"Envelope.{field}": ("Envelope (node)", "Query.pendingEnvelopes")
        for field in "id sequence type senderId senderDeviceId conversationId content "
        "serverTimestamp expiresAt".split()
    },
    "Query.messagingDevices": ("Query.messagingDevices",),
    **{
        f"MessagingDevice.{field}": ("Query.messagingDevices",)
        for field in "deviceId registrationId name createdAt lastSeenAt".split()
    },
    "User.isOnline": ("User.isOnline / User.lastSeenAt",),
    "User.lastSeenAt": ("User.isOnline / User.lastSeenAt",),
    **{
        f"Call.{field}": ("Call (node)",)
        for field in "id kind conversationId caller startedAt endedAt".split()
    },
}

# Subscriptions, over a real websocket (each kind subscribes to all four, then one
# like and one comment on the owner's FOLLOWERS post happen): the post's live fields
# reach whoever may see the post; notifications reach their recipient only.
LIVE: dict[str, tuple[str, dict[str, str]]] = {
    "commentAdded": (
        "subscription($p: ID!) { commentAdded(postId: $p) { id body } }",
        row(default=H, owner=A, follower=A),
    ),
    "postLikeCount": (
        "subscription($p: ID!) { postLikeCount(postId: $p) }",
        row(default=H, owner=A, follower=A),
    ),
    "notificationReceived": ("subscription { notificationReceived { id summary } }", OWN),
    "unreadNotificationCount": ("subscription { unreadNotificationCount }", OWN),
    # The friend types in the owner's conversation with them; the owner goes AWAY;
    # the owner calls the friend (an OFFER to the friend's device 1 only).
    "typing": (
        "subscription($c: ID!) { typing(conversationId: $c) { isTyping user { id } } }",
        row(default=H, owner=A, friend=A, signed_out=U),
    ),
    "presence": (
        "subscription($u: [ID!]!) { presence(userIds: $u) { status user { id } } }",
        row(default=H, owner=A, friend=A, signed_out=U),
    ),
    "callSignals": (
        "subscription($d: Int!) { callSignals(deviceId: $d) { type fromUser { id } payload } }",
        row(default=H, friend=A, signed_out=U),  # never echoed to the caller's device
    ),
    # The friend sends the owner a message: the owner's device 1 queue only.
    "envelopes": ("subscription($d: Int!) { envelopes(deviceId: $d) { sequence content } }", OWN),
}
PRIVATE_FIELDS |= {f"Subscription.{name}": (f"Subscription.{name}",) for name in LIVE}


def fields(names: str) -> set[str]:
    return set(names.split())


# Everything else, by type, with the reason it needs no probe of its own.
PUBLIC_FIELDS: dict[str, set[str]] = {
    # The key directory hands out public keys and opaque key packages by design; a
    # block either way or another platform is NOT_FOUND (tests/test_messaging_keys.py).
    "PreKeyBundle": fields(
        "userId deviceId registrationId identityKey signedPreKey oneTimePreKey kemPreKey"
    ),
    "SignedPreKey": fields("keyId publicKey signature"),
    "OneTimePreKey": fields("keyId publicKey"),
    "ClaimedKeyPackage": fields("userId deviceId keyPackage"),
    # Returned only by the viewer's own mutations / about the viewer's own device (no
    # user argument: it cannot name anyone else's; tests/test_messaging_keys.py).
    "PreKeyStatus": fields("deviceId oneTimePreKeyCount signedPreKeyId kemPreKeyId"),
    "SendMessageResult": fields("conversationId serverTimestamp deliveredDeviceCount duplicate"),
    # Reached only through a conversation the viewer is a member of (audited above).
    "ReadState": fields("user readUpTo"),
    "ConversationConnection": fields("edges pageInfo totalCount"),
    "ConversationEdge": fields("cursor node"),
    "EnvelopeConnection": fields("edges pageInfo totalCount"),
    "EnvelopeEdge": fields("cursor node"),
    # Events of the messaging subscriptions, reached only through them (audited in
    # LIVE: typing and callSignals members only, presence by the presence rule).
    "TypingEvent": fields("conversationId user isTyping at"),
    "PresenceEvent": fields("user status lastSeenAt"),
    "CallSignal": fields("callId type fromUser fromDeviceId payload at"),
    # Returned only to its uploader, by uploadEncryptedAttachment: the id is the
    # capability (256 random bits); the bytes are ciphertext (server/attachment_routes.py).
    "EncryptedAttachment": fields("id sizeBytes url expiresAt"),
    # The basic profile and the counts stay visible to everyone (users/policy.py);
    # the User is reached only when the profile itself may be seen (a block: NOT_FOUND).
    "User": fields(
        "id username displayName bio avatar isPrivate isVerified createdAt "
        "followerCount followingCount"
    ),
    # Discovery and public lookups: each applies its own policy per item (the item
    # then audited above: Query.post, Query.take, Query.story, User.*).
    "Query": fields(
        "platform user suggestedUsers media feed explore comment takesFeed takeTrend preKeyStatus "
        "trendingTakeTrends takeTemplates storyTray autocomplete hashtag trendingHashtags "
        "_service _entities"
    ),
    # A post's, take's and comment's fields: reached only through a post/take the
    # viewer may see (posts/policy.py invariant; audited as Query.post/take above).
    "Post": fields(
        "id caption hashtags visibility createdAt editedAt likeCount commentCount "
        "shareCount saveCount author media mentions location viewerHasLiked "
        "viewerHasSaved sharedPost comments likers"
    ),
    "Comment": fields("id body likeCount createdAt author subject parent replies viewerHasLiked"),
    "Take": fields(
        "id author video caption hashtags soundName durationMs viewCount likeCount "
        "commentCount shareCount viewerHasLiked createdAt template trend originator "
        "comments behindTheTake"
    ),
    "BehindTheTake": fields("id take steps tools createdAt"),
    "BehindTheTakeStep": fields("position title body media"),
    # Templates are a public format; a trend is seen with its originator take.
    "TakeTemplate": fields("id creator name description sourceTake slots useCount takes createdAt"),
    "TemplateSlot": fields("position durationMs hint"),
    "TakeTrend": fields(
        "id name hashtag originator originatorAuthor participantCount participants createdAt"
    ),
    # Media bytes are behind an HMAC-keyed URL; metadata is scoped to the platform.
    "Media": fields(
        "id kind mimeType url thumbnailUrl width height durationMs sizeBytes sha256 "
        "altText createdAt owner"
    ),
    "Location": fields("id name latitude longitude"),
    # A story's public face (reached only through a story the viewer may see).
    "Story": fields("id author media caption audience createdAt expiresAt stickers viewerHasSeen"),
    "StoryHighlight": fields("id owner title cover stories createdAt"),
    "StoryTrayItem": fields("user stories hasUnseen latestAt"),
    # What only the author reads is behind Story.viewers/insights and
    # QuestionSticker.responses (audited); these are what the author gets there.
    "StoryViewer": fields("user viewedAt reaction"),
    "StoryInsights": fields(
        "reach impressions replies stickerTaps linkTaps exits forwardTaps backTaps"
    ),
    "StickerResponse": fields("user text createdAt"),
    "StoryReply": fields("createdAt"),
    # Sticker aggregates are shown to every viewer of the story (Instagram-like);
    # viewer* fields are the viewer's own answer.
    **{
        sticker: fields("id x y width height rotation") | extra
        for sticker, extra in {
            "PollSticker": fields("question options viewerVote"),
            "QuizSticker": fields("question options correctOption viewerAnswer answerCounts"),
            "QuestionSticker": fields("prompt viewerResponse"),
            "CountdownSticker": fields("title endsAt subscriberCount viewerIsSubscribed"),
            "SliderSticker": fields("question emoji averageValue responseCount viewerValue"),
            "MentionSticker": fields("user"),
            "LinkSticker": fields("url label tapCount"),
            "LocationSticker": fields("location"),
            "HashtagSticker": fields("hashtag"),
            "AddYoursSticker": fields("prompt participantCount originStory"),
        }.items()
    },
    "PollOption": fields("text voteCount percent"),
    # Reached only through the viewer's own notifications / preferences / devices /
    # history (audited as a whole above); a group's subject applies its owner's policy.
    "NotificationGroup": fields("id type actors actorCount subject latestAt isRead"),
    "NotificationPreferences": fields("types quietHours pausedUntil emailDigest"),
    "TypePreference": fields("type channels"),
    "QuietHours": fields("start end timezone"),
    "PushDevice": fields("id provider createdAt lastUsedAt"),
    "SearchHistoryEntry": fields("id query type searchedAt"),
    # Aggregates over every use on the platform, no content (search/hashtags.py);
    # Hashtag.posts/takes list only what the viewer may see.
    "Hashtag": fields("name postCount takeCount related posts takes"),
    "TrendingHashtag": fields("hashtag count previousCount growthRate"),
    "SearchResult": fields("score highlight node"),
    "Suggestion": fields("text type node"),
    # The signed-in user's own tokens, returned by signUp/signIn/refreshSession only.
    "AuthPayload": fields("accessToken refreshToken expiresAt user"),
    # Pagination shapes: what they hold is audited where they are reached.
    **{
        f"{item}Connection": fields("edges pageInfo totalCount")
        for item in (
            "User Post Comment Take TakeTemplate TakeTrend NotificationGroup "
            "StickerResponse StoryReply StoryViewer"
        ).split()
    },
    "SearchResultConnection": fields("edges pageInfo totalCount tookMs"),
    **{
        f"{item}Edge": fields("cursor node")
        for item in (
            "User Post Comment Take TakeTemplate TakeTrend NotificationGroup "
            "StickerResponse StoryReply StoryViewer SearchResult"
        ).split()
    },
    "PageInfo": fields("hasNextPage hasPreviousPage startCursor endCursor"),
}

# Mutations act as the signed-in viewer on what the viewer may see; who may do what
# is each domain's own tests' (social, posts, takes, stories, notifications). Listed
# so that a new mutation is a decision too.
WRITE_FIELDS = fields(
    "signUp signIn refreshSession signOut updateProfile follow unfollow "
    "respondToFollowRequest sendFriendRequest respondToFriendRequest removeFriend block "
    "unblock uploadMedia deleteMedia createPost editPost deletePost sharePost likePost "
    "unlikePost savePost unsavePost likeComment unlikeComment addComment deleteComment "
    "createTake deleteTake likeTake unlikeTake recordTakeView addBehindTheTake "
    "createTakeTemplate startTrend createStory deleteStory markStorySeen "
    "recordStoryNavigation respondToSticker replyToStory createHighlight addToHighlight "
    "removeFromHighlight deleteHighlight addCloseFriend removeCloseFriend "
    "markNotificationsRead updateNotificationPreferences registerPushDevice "
    "unregisterPushDevice clearSearchHistory "
    "setTyping setPresence startCall sendCallSignal uploadEncryptedAttachment "
    "registerMessagingDevice removeMessagingDevice uploadPreKeys claimPreKeyBundles "
    "publishKeyPackages claimKeyPackages sendMessage acknowledgeEnvelopes "
    "markConversationRead setDisappearingMessages createGroup commitToGroup "
    "sendGroupMessage leaveGroup"
)


def served_fields() -> set[str]:
    """Every field of every object type of the served schema, as `Type.field`."""
    schema = supergraph()._schema
    found = set()
    for name, gtype in schema.type_map.items():
        if name.startswith("__") or is_federation_type(name):
            continue
        if isinstance(gtype, GraphQLObjectType):
            found |= {f"{name}.{field}" for field in gtype.fields}
    return found


def classified() -> dict[str, str]:
    where: dict[str, str] = {}
    for coordinate in PRIVATE_FIELDS:
        where[coordinate] = "PRIVATE_FIELDS"
    for type_name, names in PUBLIC_FIELDS.items():
        for name in names:
            assert f"{type_name}.{name}" not in where, f"{type_name}.{name} classified twice"
            where[f"{type_name}.{name}"] = "PUBLIC_FIELDS"
    for name in WRITE_FIELDS:
        where[f"Mutation.{name}"] = "WRITE_FIELDS"
    return where


def test_every_field_is_classified() -> None:
    served = served_fields()
    where = classified()
    unclassified = sorted(served - set(where))
    assert not unclassified, (
        "fields of the served schema not in the authorization audit: add each to "
        "tests/test_authorization_audit.py, to PRIVATE_FIELDS (with a probe in PROBES "
        "trying every viewer kind) if it returns anyone's private data, else to "
        f"PUBLIC_FIELDS (or WRITE_FIELDS for a mutation) with why: {unclassified}"
    )
    stale = sorted(set(where) - served)
    assert not stale, f"the audit lists fields the schema no longer serves: {stale}"
    assert len({probe.name for probe in PROBES}) == len(PROBES), "two probes with one name"
    probes = {probe.name for probe in PROBES} | {f"Subscription.{name}" for name in LIVE}
    missing = {c: p for c, names in PRIVATE_FIELDS.items() for p in names if p not in probes}
    assert not missing, f"PRIVATE_FIELDS names probes that do not exist: {missing}"


# ── the world ───────────────────────────────────────────────────────────────


async def world(app: Any, gql: GraphQLClient) -> dict[str, Any]:
    names = ["owner", "follower", "friend", "close_friend", "stranger", "blocked", "requester"]
    accounts = dict(zip(names, await create_users(app, names), strict=True))
    (accounts["other"],) = await create_users(app, ["owner"], platform="vignette")
    owner = accounts["owner"]
    await run(gql, FOLLOW, accounts["follower"], u=owner.id)
    befriend = "mutation($u: ID!) { sendFriendRequest(userId: $u) { friends } }"
    accept = "mutation($u: ID!) { respondToFriendRequest(userId: $u, accept: true) { friends } }"
    await run(gql, befriend, accounts["friend"], u=owner.id)
    await run(gql, accept, owner, u=accounts["friend"].id)
    await run(gql, ADD_CLOSE, owner, u=accounts["close_friend"].id)
    await run(gql, "mutation { updateProfile(input: {isPrivate: true}) { id } }", owner)
    # Pending, after the account went private: a follow request and a friend request.
    await run(gql, FOLLOW, accounts["requester"], u=owner.id)
    await run(gql, befriend, accounts["requester"], u=owner.id)

    found: dict[str, Any] = {kind: account.id for kind, account in accounts.items()}
    for visibility in ("PUBLIC", "FOLLOWERS", "FRIENDS", "PRIVATE"):
        caption = f"zanzibar{visibility.lower()} post"
        post = await create_post(gql, owner, caption, visibility=visibility)
        found[f"post {visibility}"] = post["id"]
    await run(gql, mark("savePost"), owner, id=found["post PUBLIC"])
    found["take"] = (await create_take(app, gql, owner))["id"]

    question = [placed("question", prompt="ask me")]
    for audience, visitor in (("EVERYONE", "follower"), ("CLOSE_FRIENDS", "close_friend")):
        story = await create_story(app, gql, owner, audience=audience, stickers=question)
        found[f"story {audience}"] = story["id"]
        viewer = accounts[visitor]
        await run(gql, SEEN, viewer, id=story["id"], r="🔥")
        answer = {
            "storyId": story["id"],
            "stickerId": story["stickers"][0]["id"],
            "response": {"questionText": "secret answer"},
        }
        respond = (
            "mutation($input: RespondToStickerInput!) { respondToSticker(input: $input) { id } }"
        )
        await run(gql, respond, viewer, input=answer)
        reply = 'mutation($s: ID!) { replyToStory(storyId: $s, body: "psst") { id } }'
        replied = await run(gql, reply, viewer, s=story["id"])
        if audience == "EVERYONE":
            found["reply"] = replied["replyToStory"]["id"]
    highlight = 'mutation($s: [ID!]!) { createHighlight(input: {title: "h", storyIds: $s}) { id } }'
    await run(gql, highlight, owner, s=[found["story EVERYONE"], found["story CLOSE_FRIENDS"]])
    await run(gql, BLOCK, owner, u=accounts["blocked"].id)
    # messaging: a DIRECT conversation of the owner and the friend (devices 1), a call
    # in it, and the owner online (last: presence lasts 45 s without a heartbeat)
    owner_device = await register_device(gql, owner.token, device_name="owner-phone")
    found["device name"] = "owner-phone"
    found["owner registration"] = owner_device.registration_id
    await register_device(gql, accounts["friend"].token)
    found["chat"] = await conversation(app, [owner, accounts["friend"]])
    found["accounts"] = accounts
    await run(gql, SEND_MESSAGE, accounts["friend"], i=message_to_owner(found, "audit-1"))
    queue = "query { pendingEnvelopes(deviceId: 1) { edges { node { id } } } }"
    found["envelope"] = (await run(gql, queue, owner))["pendingEnvelopes"]["edges"][0]["node"]["id"]
    call = await run(gql, START_CALL, owner, i={**CALL_INPUT, "conversationId": found["chat"]})
    found["call"] = call["startCall"]["id"]

    device = (
        'mutation { registerPushDevice(input: {provider: FCM, token: "t-owner", '
        'name: "owner phone"}) { id } }'
    )
    found["device"] = (await run(gql, device, owner))["registerPushDevice"]["id"]
    found["timezone"] = "Pacific/Chatham"
    prefs = (
        "mutation { updateNotificationPreferences(input: {quietHours: "
        '{start: "22:00", end: "07:00", timezone: "Pacific/Chatham"}}) { emailDigest } }'
    )
    await run(gql, prefs, owner)
    found["searched"] = "ownerssecretsearch"
    await run(gql, 'query { search(query: "ownerssecretsearch") { totalCount } }', owner)

    await consumers_settled(app)  # notifications and the search index are written
    groups = await run(gql, "query { notifications(first: 1) { edges { node { id } } } }", owner)
    found["group"] = groups["notifications"]["edges"][0]["node"]["id"]
    found["accounts"] = accounts
    await run(gql, "mutation { setPresence(status: ONLINE) }", owner)
    return found


async def observe(gql: GraphQLClient, setup: dict[str, Any], probe: Probe, kind: str) -> str:
    viewer: Account | None = None if kind == "signed_out" else setup["accounts"][kind]
    result = await gql(
        probe.query,
        probe.variables(setup),
        token=viewer.token if viewer else None,
        platform=viewer.platform if viewer else "socialink",
    )
    return probe.observe(result, setup)


# Leaks this audit found that are not fixed yet: (probe, kind) → what is observed.
# Strict both ways: a leak not listed fails, and so does a listed one once fixed
# (delete its entry with the fix).
KNOWN_LEAKS: dict[tuple[str, str], str] = {
    # Add an entry only with an issue to fix it: the test then fails once it is fixed.
}


async def test_authorization_table(app: Any, gql: GraphQLClient) -> None:
    setup = await world(app, gql)
    mismatches = {}
    for probe in PROBES:
        for kind in KINDS:
            outcome = await observe(gql, setup, probe, kind)
            if outcome != probe.expected[kind]:
                mismatches[(probe.name, kind)] = outcome
    report = "\n".join(
        f"{name} as {kind}: {outcome}, want {expected}"
        for (name, kind), outcome in mismatches.items()
        for expected in [next(p.expected[kind] for p in PROBES if p.name == name)]
    )
    live = await live_outcomes(app, gql, setup)
    for name, (_query, expected) in LIVE.items():
        for kind in KINDS:
            if live[kind][name] != expected[kind]:
                mismatches[(f"Subscription.{name}", kind)] = live[kind][name]
                report += (
                    f"\nSubscription.{name} as {kind}: {live[kind][name]}, want {expected[kind]}"
                )
    known = "\n".join(f"known leak: {name} as {kind}" for name, kind in KNOWN_LEAKS)
    assert mismatches == KNOWN_LEAKS, f"{report}\n\n{known}"


async def drain(sock: Socket, awaited: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Every message that arrives until the socket has been quiet for a moment, having
    waited up to 5 s for a message of each operation in `awaited` (the realtime relay
    delivers after the event consumers, so "settled" does not cover it)."""
    messages: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        missing = awaited - {m.get("id") for m in messages}
        quiet = max(deadline - asyncio.get_running_loop().time(), 0.3) if missing else 0.3
        try:
            messages.append(await sock.receive(within=quiet))
        except TimeoutError:
            return messages


def live_variables(query: str, setup: dict[str, Any]) -> dict[str, Any]:
    """The variables of a LIVE subscription, by the ones its query declares."""
    given = {
        "$p": ("p", setup["post FOLLOWERS"]),
        "$c": ("c", setup["chat"]),
        "$u": ("u", [setup["owner"]]),
        "$d": ("d", 1),
    }
    return dict(pair for marker, pair in given.items() if marker in query)


async def live_outcomes(
    app: Any, gql: GraphQLClient, setup: dict[str, Any]
) -> dict[str, dict[str, str]]:
    """Each kind's outcome for each LIVE subscription: the refusal it got when it
    subscribed, ALLOW when the like and comment below reached it, else HIDDEN."""
    owner, follower = setup["accounts"]["owner"], setup["accounts"]["follower"]
    post = setup["post FOLLOWERS"]
    async with live_server(app) as address:
        sockets = {}
        for kind in KINDS:
            viewer = None if kind == "signed_out" else setup["accounts"][kind]
            platform = viewer.platform if viewer else "socialink"
            sock = await open_socket(address, viewer.token if viewer else None, platform=platform)
            for name, (query, _expected) in LIVE.items():
                await sock.subscribe(name, query, live_variables(query, setup))
            sockets[kind] = sock
        # Refusals come at once; what a subscription sends on its own start is not news.
        before = dict(zip(KINDS, await asyncio.gather(*map(drain, sockets.values())), strict=True))
        refused = sum("error" in m["type"] for messages in before.values() for m in messages)
        await subscriptions_live(app, len(KINDS) * len(LIVE) - refused)
        await run(gql, mark("likePost"), follower, id=post)
        await run(gql, ADD_COMMENT, owner, input={"postId": post, "body": "live"})
        friend, chat = setup["accounts"]["friend"], setup["chat"]
        typing = "mutation($c: ID!) { setTyping(conversationId: $c, isTyping: true) }"
        await run(gql, typing, friend, c=chat)
        await run(gql, "mutation { setPresence(status: AWAY) }", owner)
        await run(gql, START_CALL, owner, i={**CALL_INPUT, "conversationId": chat})
        await run(gql, SEND_MESSAGE, friend, i=message_to_owner(setup, "audit-live"))
        await consumers_settled(app)
        # First until the deliveries that must come came, then the others: a delivery
        # that must not come would have come by then too.
        awaited = {k: frozenset(n for n, (_q, want) in LIVE.items() if want[k] == A) for k in KINDS}
        after: dict[str, list[dict[str, Any]]] = {}
        for phase in ([k for k in KINDS if awaited[k]], [k for k in KINDS if not awaited[k]]):
            drained = await asyncio.gather(*(drain(sockets[k], awaited[k]) for k in phase))
            after |= dict(zip(phase, drained, strict=True))
        for sock in sockets.values():
            await sock.close()
    outcomes: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        outcomes[kind] = {}
        for name in LIVE:
            errors = [
                m
                for m in before[kind] + after[kind]
                if m.get("id") == name and "error" in m["type"]
            ]
            data = [m for m in after[kind] if m.get("id") == name and m["type"] in ("next", "data")]
            if errors:
                codes = [e.get("extensions", {}).get("code") for e in errors[0]["payload"]]
                outcomes[kind][name] = next(
                    (REFUSALS[c] for c in codes if c in REFUSALS), str(codes)
                )
            else:
                outcomes[kind][name] = A if data else H
    return outcomes
