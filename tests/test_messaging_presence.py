"""Typing and presence: who sees them, how long they last, and that nothing is stored.

The presence rule (resolvers/messaging/presence.py `can_see_presence`) is tested
as a table of viewer kinds, both as the pure function and through the API
(User.isOnline / User.lastSeenAt); the subscriptions over real websockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from datasources.users.graph import RelationshipRecord
from datasources.users.store import UserRecord
from resolvers.messaging.presence import PresenceViewer, can_see_presence, typists
from tests.conftest import Account, GraphQLClient, create_users
from tests.messaging_realtime_support import census, conversation, pk
from tests.realtime_support import http_client, live_server, open_socket, subscriptions_live
from tests.stories_support import Clock

SET_PRESENCE = "mutation($s: PresenceStatus!) { setPresence(status: $s) }"
SET_TYPING = "mutation($c: ID!, $t: Boolean!) { setTyping(conversationId: $c, isTyping: $t) }"
SEEN = "query($u: String!) { user(username: $u) { isOnline lastSeenAt } }"
TYPING = """
subscription($c: ID!) {
  typing(conversationId: $c) { conversationId isTyping at user { username } }
}
"""
PRESENCE = """
subscription($ids: [ID!]!) { presence(userIds: $ids) { status lastSeenAt user { username } } }
"""
FOLLOW = "mutation($id: ID!) { follow(userId: $id) { following } }"
FRIEND = "mutation($id: ID!) { sendFriendRequest(userId: $id) { friends } }"
BLOCK = "mutation($id: ID!) { block(userId: $id) { blocking } }"

TARGET = UserRecord(
    id=1,
    platform="socialink",
    username="target",
    email="t@example.com",
    display_name="t",
    bio=None,
    avatar_media_id=None,
    is_private=False,
    is_verified=False,
    follower_count=0,
    following_count=0,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)
NONE = RelationshipRecord()

# viewer kind → (viewer, their relationship to TARGET, may they see TARGET's presence)
VIEWER_KINDS: dict[str, tuple[PresenceViewer, RelationshipRecord, bool]] = {
    "self": (PresenceViewer(1, "socialink"), NONE, True),
    "mutual follower": (
        PresenceViewer(2, "socialink"),
        RelationshipRecord(following=True, followed_by=True),
        True,
    ),
    "one-way follower": (PresenceViewer(2, "socialink"), RelationshipRecord(following=True), False),
    "followed one way": (
        PresenceViewer(2, "socialink"),
        RelationshipRecord(followed_by=True),
        False,
    ),
    "pending request": (PresenceViewer(2, "socialink"), RelationshipRecord(requested=True), False),
    "friend": (PresenceViewer(2, "socialink"), RelationshipRecord(friends=True), True),
    "stranger": (PresenceViewer(2, "socialink"), NONE, False),
    "blocked": (
        PresenceViewer(2, "socialink"),
        RelationshipRecord(friends=True, following=True, followed_by=True, blocked_by=True),
        False,
    ),
    "blocker": (
        PresenceViewer(2, "socialink"),
        RelationshipRecord(friends=True, following=True, followed_by=True, blocking=True),
        False,
    ),
    "signed out": (PresenceViewer(None, None), NONE, False),
    "other platform": (
        PresenceViewer(2, "vignette"),
        RelationshipRecord(following=True, followed_by=True),
        False,
    ),
    "self on another platform": (PresenceViewer(1, "vignette"), NONE, False),
}


@pytest.mark.parametrize("kind", list(VIEWER_KINDS))
def test_presence_policy_table(kind: str) -> None:
    viewer, relationship, expected = VIEWER_KINDS[kind]
    assert can_see_presence(viewer, TARGET, relationship) is expected


@pytest.fixture
def clock(app: Any) -> Clock:
    controlled = Clock()
    app.state.runtime.stores.clock = controlled
    return controlled


async def _relate(gql: GraphQLClient, target: Account, viewers: dict[str, Account]) -> None:
    """Make each viewer's relationship to `target` what its name says."""

    async def both(query: str, one: Account, other: Account) -> None:
        (await gql(query, {"id": other.id}, token=one.token)).ok()
        (await gql(query, {"id": one.id}, token=other.token)).ok()

    await both(FOLLOW, viewers["mutual"], target)
    (await gql(FOLLOW, {"id": target.id}, token=viewers["follower"].token)).ok()
    await both(FRIEND, viewers["friend"], target)
    await both(FOLLOW, viewers["blocked"], target)
    (await gql(BLOCK, {"id": viewers["blocked"].id}, token=target.token)).ok()
    await both(FOLLOW, viewers["blocker"], target)
    (await gql(BLOCK, {"id": target.id}, token=viewers["blocker"].token)).ok()


async def test_presence_visibility_by_viewer_kind(app: Any, gql: GraphQLClient) -> None:
    names = ["target", "mutual", "follower", "friend", "stranger", "blocked", "blocker"]
    accounts = dict(zip(names, await create_users(app, names), strict=True))
    (elsewhere,) = await create_users(app, ["elsewhere"], platform="vignette")
    target = accounts["target"]
    await _relate(gql, target, accounts)
    assert (await gql(SET_PRESENCE, {"s": "ONLINE"}, token=target.token)).ok() == {
        "setPresence": True
    }

    async def seen_by(token: str | None, platform: str = "socialink") -> dict[str, Any] | None:
        result = await gql(SEEN, {"u": "target"}, token=token, platform=platform)
        user: dict[str, Any] | None = (result.data or {}).get("user")
        return user

    expected = {
        "target": True,
        "mutual": True,
        "friend": True,
        "follower": False,
        "stranger": False,
        "blocked": False,
        "blocker": False,
    }
    for name, visible in expected.items():
        shown = await seen_by(accounts[name].token)
        if visible:
            assert shown is not None and shown["isOnline"] is True, name
            assert shown["lastSeenAt"] is not None, name
        else:  # hidden reads as never seen (or no profile at all, for a block)
            assert shown in (None, {"isOnline": False, "lastSeenAt": None}), name
    assert await seen_by(None) == {"isOnline": False, "lastSeenAt": None}
    assert await seen_by(elsewhere.token, "vignette") is None  # no such user there
    # A token of the other platform does not work here at all.
    assert (await gql(SEEN, {"u": "target"}, token=elsewhere.token)).status in (200, 401)


async def test_statuses_online_away_offline(app: Any, gql: GraphQLClient, clock: Clock) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    for one, other in ((ada, bob), (bob, ada)):
        (await gql(FOLLOW, {"id": other.id}, token=one.token)).ok()

    async def seen() -> dict[str, Any]:
        user: dict[str, Any] = (await gql(SEEN, {"u": "ada"}, token=bob.token)).ok()["user"]
        return user

    assert await seen() == {"isOnline": False, "lastSeenAt": None}  # never seen
    (await gql(SET_PRESENCE, {"s": "ONLINE"}, token=ada.token)).ok()
    online = await seen()
    assert online["isOnline"] is True
    assert datetime.fromisoformat(online["lastSeenAt"]) == clock.now
    (await gql(SET_PRESENCE, {"s": "AWAY"}, token=ada.token)).ok()
    assert (await seen())["isOnline"] is True  # away is still connected
    left_at = clock.now
    (await gql(SET_PRESENCE, {"s": "OFFLINE"}, token=ada.token)).ok()
    clock.move(minutes=5)
    assert await seen() == {"isOnline": False, "lastSeenAt": left_at.isoformat()}


async def test_set_presence_needs_a_viewer(gql: GraphQLClient) -> None:
    result = await gql(SET_PRESENCE, {"s": "ONLINE"})
    assert result.codes == ["UNAUTHENTICATED"]


async def test_typing_is_for_members_and_expires_after_six_seconds(
    app: Any, gql: GraphQLClient, clock: Clock
) -> None:
    ada, bob, eve = await create_users(app, ["ada", "bob", "eve"])
    chat = await conversation(app, [ada, bob])
    context_clock = app.state.runtime

    result = await gql(SET_TYPING, {"c": chat, "t": True}, token=eve.token)
    assert result.codes == ["NOT_FOUND"]
    assert await _typists(context_clock, chat) == []  # nothing marked for the outsider
    assert (await gql(SET_TYPING, {"c": chat, "t": True})).codes == ["UNAUTHENTICATED"]
    bad = await gql(SET_TYPING, {"c": "nope", "t": True}, token=ada.token)
    assert bad.codes == ["BAD_USER_INPUT"]

    assert (await gql(SET_TYPING, {"c": chat, "t": True}, token=ada.token)).ok() == {
        "setTyping": True
    }
    assert await _typists(context_clock, chat) == [pk(ada.id)]
    clock.move(seconds=5.9)
    assert await _typists(context_clock, chat) == [pk(ada.id)]
    clock.move(seconds=0.2)
    assert await _typists(context_clock, chat) == []  # expired after 6 s by itself

    (await gql(SET_TYPING, {"c": chat, "t": True}, token=bob.token)).ok()
    (await gql(SET_TYPING, {"c": chat, "t": False}, token=bob.token)).ok()
    assert await _typists(context_clock, chat) == []  # stopped at once


async def _typists(runtime: Any, chat: str) -> list[int]:
    from datasources.registry import Loaders
    from resolvers.context import Context

    context = Context(
        platform="socialink",
        viewer=None,
        settings=runtime.settings,
        stores=runtime.stores,
        loaders=Loaders(runtime.stores, "socialink"),
        auth=runtime.auth,
        request_id="test",
    )
    return await typists(context, pk(chat))


async def test_typing_and_presence_are_never_stored(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    chat = await conversation(app, [ada, bob])
    before = await census(app)
    for status in ("ONLINE", "AWAY", "OFFLINE"):
        (await gql(SET_PRESENCE, {"s": status}, token=ada.token)).ok()
    for typing in (True, False):
        (await gql(SET_TYPING, {"c": chat, "t": typing}, token=ada.token)).ok()
    assert await census(app) == before


@pytest.fixture
async def server(app: Any) -> AsyncIterator[tuple[str, GraphQLClient]]:
    async with live_server(app) as address, http_client(address) as client:
        yield address, client


async def test_typing_subscription_reaches_members_only(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    ada, bob, eve = await create_users(app, ["ada", "bob", "eve"])
    chat = await conversation(app, [ada, bob])
    bobs = await open_socket(address, bob.token)
    eves = await open_socket(address, eve.token)
    await bobs.subscribe("t", TYPING, {"c": chat})
    await eves.subscribe("t", TYPING, {"c": chat})
    refused = await eves.receive()
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "NOT_FOUND"
    await subscriptions_live(app, 1)

    (await gql(SET_TYPING, {"c": chat, "t": True}, token=ada.token)).ok()
    event = (await bobs.next("t"))["data"]["typing"]
    assert event["conversationId"] == chat
    assert event["isTyping"] is True
    assert event["user"] == {"username": "ada"}
    assert datetime.fromisoformat(event["at"]).tzinfo is not None
    (await gql(SET_TYPING, {"c": chat, "t": False}, token=ada.token)).ok()
    assert (await bobs.next("t"))["data"]["typing"]["isTyping"] is False
    assert await eves.silent()
    await bobs.close()
    await eves.close()


async def test_presence_subscription_shows_only_visible_users(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    viewer, friend, stranger, mutual = await create_users(
        app, ["viewer", "friend", "stranger", "mutual"]
    )
    for one, other in ((viewer, friend), (friend, viewer)):
        (await gql(FRIEND, {"id": other.id}, token=one.token)).ok()
    for one, other in ((viewer, mutual), (mutual, viewer)):
        (await gql(FOLLOW, {"id": other.id}, token=one.token)).ok()
    socket = await open_socket(address, viewer.token)
    watched = [friend.id, stranger.id, mutual.id]
    await socket.subscribe("p", PRESENCE, {"ids": watched})
    await subscriptions_live(app, 1)

    (await gql(SET_PRESENCE, {"s": "ONLINE"}, token=stranger.token)).ok()
    (await gql(SET_PRESENCE, {"s": "AWAY"}, token=friend.token)).ok()
    event = (await socket.next("p"))["data"]["presence"]
    assert event["user"] == {"username": "friend"}  # the stranger's came to nobody here
    assert event["status"] == "AWAY"
    assert event["lastSeenAt"] is not None
    (await gql(SET_PRESENCE, {"s": "OFFLINE"}, token=mutual.token)).ok()
    event = (await socket.next("p"))["data"]["presence"]
    assert (event["user"], event["status"]) == ({"username": "mutual"}, "OFFLINE")

    # Blocked: the subscription that watched them ends, and nothing more comes.
    (await gql(BLOCK, {"id": viewer.id}, token=friend.token)).ok()
    ended = await socket.receive()
    assert ended["type"] == "error"
    assert ended["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    (await gql(SET_PRESENCE, {"s": "ONLINE"}, token=friend.token)).ok()
    assert await socket.silent()
    await socket.close()


async def test_watchers_are_told_when_a_user_connects_and_leaves(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    """A user's first socket makes them ONLINE to whoever may see their presence, and
    their last one closing makes them OFFLINE; sockets in between, strangers' sockets
    and a user who appears offline by choice send nothing."""
    address, gql = server
    viewer, friend, stranger = await create_users(app, ["viewer", "friend", "stranger"])
    for one, other in ((viewer, friend), (friend, viewer)):
        (await gql(FRIEND, {"id": other.id}, token=one.token)).ok()
    socket = await open_socket(address, viewer.token)
    await socket.subscribe("p", PRESENCE, {"ids": [friend.id, stranger.id]})
    await subscriptions_live(app, 1)

    phone = await open_socket(address, friend.token)
    event = (await socket.next("p"))["data"]["presence"]
    assert (event["user"], event["status"]) == ({"username": "friend"}, "ONLINE")
    laptop = await open_socket(address, friend.token)
    strangers = await open_socket(address, stranger.token)  # not visible to the viewer
    await phone.close()
    assert await socket.silent()  # the laptop still holds the friend online
    await laptop.close()
    event = (await socket.next("p"))["data"]["presence"]
    assert (event["user"], event["status"]) == ({"username": "friend"}, "OFFLINE")
    assert event["lastSeenAt"] is not None

    (await gql(SET_PRESENCE, {"s": "OFFLINE"}, token=friend.token)).ok()
    assert (await socket.next("p"))["data"]["presence"]["status"] == "OFFLINE"
    hidden = await open_socket(address, friend.token)  # appearing offline: nothing told
    await hidden.close()
    assert await socket.silent()
    await strangers.close()
    await socket.close()


async def test_presence_subscription_input_errors(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, _gql = server
    (viewer,) = await create_users(app, ["viewer"])
    signed_out = await open_socket(address, None)
    await signed_out.subscribe("p", PRESENCE, {"ids": [viewer.id]})
    message = await signed_out.receive()
    assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    socket = await open_socket(address, viewer.token)
    await socket.subscribe("p", PRESENCE, {"ids": ["not-an-id"]})
    message = await socket.receive()
    assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await socket.subscribe("q", PRESENCE, {"ids": [viewer.id] * 201})
    message = await socket.receive()
    assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await signed_out.close()
    await socket.close()


async def test_subscribers_are_told_when_typing_expires(
    app: Any, server: tuple[str, GraphQLClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    import resolvers.messaging.presence as presence_resolvers

    monkeypatch.setattr(presence_resolvers, "TYPING_EXPIRY_SECONDS", 0.3)  # 6 s in production
    clock = Clock()
    app.state.runtime.stores.clock = clock
    address, gql = server
    ada, bob = await create_users(app, ["ada", "bob"])
    chat = await conversation(app, [ada, bob])
    bobs = await open_socket(address, bob.token)
    await bobs.subscribe("t", TYPING, {"c": chat})
    await subscriptions_live(app, 1)

    (await gql(SET_TYPING, {"c": chat, "t": True}, token=ada.token)).ok()
    assert (await bobs.next("t"))["data"]["typing"]["isTyping"] is True
    assert await bobs.silent(0.5)  # renewed on the clock: the check finds ada still typing
    (await gql(SET_TYPING, {"c": chat, "t": True}, token=ada.token)).ok()
    assert (await bobs.next("t"))["data"]["typing"]["isTyping"] is True
    clock.move(seconds=6)  # no keystroke for 6 s
    expired = (await bobs.next("t"))["data"]["typing"]
    assert (expired["user"], expired["isTyping"]) == ({"username": "ada"}, False)
    await bobs.close()
