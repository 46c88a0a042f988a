"""The users domain's events: each foundation write leaves exactly its events in the
outbox, in its own transaction; a refused write leaves none; and the embedded relay
carries a GraphQL mutation's event to an in-process consumer."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from datasources.events.model import Event
from resolvers.ids import encode_id, split_id
from tests.conftest import Account, GraphQLClient, create_users, sign_up
from tests.events_support import Recorder, eventually, outbox

RELATION = "{ following requested friends blocking }"
FOLLOW = f"mutation($id: ID!) {{ follow(userId: $id) {RELATION} }}"
UNFOLLOW = f"mutation($id: ID!) {{ unfollow(userId: $id) {RELATION} }}"
ANSWER_FOLLOW = (
    f"mutation($id: ID!, $ok: Boolean!) {{ respondToFollowRequest(userId: $id, accept: $ok) "
    f"{RELATION} }}"
)
FRIEND = f"mutation($id: ID!) {{ sendFriendRequest(userId: $id) {RELATION} }}"
ANSWER_FRIEND = (
    f"mutation($id: ID!, $ok: Boolean!) {{ respondToFriendRequest(userId: $id, accept: $ok) "
    f"{RELATION} }}"
)
UNFRIEND = f"mutation($id: ID!) {{ removeFriend(userId: $id) {RELATION} }}"
BLOCK = f"mutation($id: ID!) {{ block(userId: $id) {RELATION} }}"
UNBLOCK = f"mutation($id: ID!) {{ unblock(userId: $id) {RELATION} }}"
PROFILE = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }"


def pk(account: Account) -> int:
    parts = split_id(account.id)
    assert parts is not None
    return int(parts[1])


async def emitted(app: Any, write: Awaitable[Any]) -> list[Event]:
    """The events `write` added to the outbox."""
    db = app.state.runtime.stores.db
    before = len(await outbox(db))
    await write
    return [event for event, _ in (await outbox(db))[before:]]


def shape(events: list[Event]) -> list[tuple[str, int | None, int, dict[str, Any]]]:
    return [(e.type, e.actor_id, e.subject_id, e.data) for e in events]


async def ok(gql: GraphQLClient, query: str, account: Account, **variables: Any) -> Any:
    result = await gql(query, variables, token=account.token, platform=account.platform)
    return result.ok()


async def test_sign_up_emits_user_created(app: Any, gql: GraphQLClient) -> None:
    events = await emitted(app, sign_up(gql, "ada"))
    user = (await outbox(app.state.runtime.stores.db))[-1][0].subject_id
    assert shape(events) == [
        (
            "user.created",
            user,
            user,
            {"username": "ada", "display_name": "ada", "is_verified": False},
        )
    ]
    assert events[0].platform == "socialink" and events[0].subject_type == "user"


async def test_follow_and_unfollow(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"], platform="vignette")
    pair = {"follower_id": pk(ada), "followee_id": pk(bob)}

    followed = await emitted(app, ok(gql, FOLLOW, ada, id=bob.id))
    again = await emitted(app, ok(gql, FOLLOW, ada, id=bob.id))
    unfollowed = await emitted(app, ok(gql, UNFOLLOW, ada, id=bob.id))
    unfollowed_again = await emitted(app, ok(gql, UNFOLLOW, ada, id=bob.id))

    assert shape(followed) == [("user.followed", pk(ada), pk(bob), pair)]
    assert followed[0].platform == "vignette"
    assert again == []
    assert shape(unfollowed) == [
        ("user.unfollowed", pk(ada), pk(bob), {**pair, "was_pending": False})
    ]
    assert unfollowed_again == []


async def test_follow_requests_and_their_answers(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cy = await create_users(app, ["ada", "bob", "cy"], platform="vignette")
    await ok(gql, PROFILE, ada, input={"isPrivate": True})

    requested = await emitted(app, ok(gql, FOLLOW, bob, id=ada.id))
    await ok(gql, FOLLOW, cy, id=ada.id)
    accepted = await emitted(app, ok(gql, ANSWER_FOLLOW, ada, id=bob.id, ok=True))
    declined = await emitted(app, ok(gql, ANSWER_FOLLOW, ada, id=cy.id, ok=False))

    bob_ada = {"follower_id": pk(bob), "followee_id": pk(ada)}
    assert shape(requested) == [("user.follow_requested", pk(bob), pk(ada), bob_ada)]
    assert shape(accepted) == [
        ("user.follow_request_answered", pk(ada), pk(bob), {**bob_ada, "accepted": True})
    ]
    assert shape(declined) == [
        (
            "user.follow_request_answered",
            pk(ada),
            pk(cy),
            {"follower_id": pk(cy), "followee_id": pk(ada), "accepted": False},
        )
    ]


async def test_withdrawing_a_follow_request(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"], platform="vignette")
    await ok(gql, PROFILE, ada, input={"isPrivate": True})
    await ok(gql, FOLLOW, bob, id=ada.id)
    withdrawn = await emitted(app, ok(gql, UNFOLLOW, bob, id=ada.id))
    assert shape(withdrawn) == [
        (
            "user.unfollowed",
            pk(bob),
            pk(ada),
            {"follower_id": pk(bob), "followee_id": pk(ada), "was_pending": True},
        )
    ]


async def test_friend_requests_answers_and_unfriending(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cy = await create_users(app, ["ada", "bob", "cy"])
    ada_bob = {"sender_id": pk(ada), "recipient_id": pk(bob)}

    requested = await emitted(app, ok(gql, FRIEND, ada, id=bob.id))
    repeated = await emitted(app, ok(gql, FRIEND, ada, id=bob.id))
    accepted = await emitted(app, ok(gql, ANSWER_FRIEND, bob, id=ada.id, ok=True))
    unfriended = await emitted(app, ok(gql, UNFRIEND, ada, id=bob.id))
    await ok(gql, FRIEND, cy, id=ada.id)
    declined = await emitted(app, ok(gql, ANSWER_FRIEND, ada, id=cy.id, ok=False))

    assert shape(requested) == [("user.friend_requested", pk(ada), pk(bob), ada_bob)]
    assert repeated == []
    assert shape(accepted) == [
        ("user.friend_request_answered", pk(bob), pk(ada), {**ada_bob, "accepted": True})
    ]
    assert shape(unfriended) == [
        ("user.unfriended", pk(ada), pk(bob), {"user_id": pk(ada), "friend_id": pk(bob)})
    ]
    assert shape(declined) == [
        (
            "user.friend_request_answered",
            pk(ada),
            pk(cy),
            {"sender_id": pk(cy), "recipient_id": pk(ada), "accepted": False},
        )
    ]


async def test_asking_back_accepts_and_removing_withdraws(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cy = await create_users(app, ["ada", "bob", "cy"])
    await ok(gql, FRIEND, ada, id=bob.id)
    crossed = await emitted(app, ok(gql, FRIEND, bob, id=ada.id))
    await ok(gql, FRIEND, ada, id=cy.id)
    withdrawn = await emitted(app, ok(gql, UNFRIEND, ada, id=cy.id))

    assert shape(crossed) == [
        (
            "user.friend_request_answered",
            pk(bob),
            pk(ada),
            {"sender_id": pk(ada), "recipient_id": pk(bob), "accepted": True},
        )
    ]
    assert shape(withdrawn) == [
        (
            "user.friend_request_withdrawn",
            pk(ada),
            pk(cy),
            {"sender_id": pk(ada), "recipient_id": pk(cy)},
        )
    ]


async def test_block_and_unblock(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    await ok(gql, FOLLOW, ada, id=bob.id)
    await ok(gql, FOLLOW, bob, id=ada.id)
    await ok(gql, FRIEND, ada, id=bob.id)
    await ok(gql, ANSWER_FRIEND, bob, id=ada.id, ok=True)

    blocked = await emitted(app, ok(gql, BLOCK, ada, id=bob.id))
    again = await emitted(app, ok(gql, BLOCK, ada, id=bob.id))
    unblocked = await emitted(app, ok(gql, UNBLOCK, ada, id=bob.id))
    unblocked_again = await emitted(app, ok(gql, UNBLOCK, ada, id=bob.id))

    ids = {"blocker_id": pk(ada), "blocked_id": pk(bob)}
    assert len(blocked) == 1 and blocked[0].type == "user.blocked"
    assert (blocked[0].actor_id, blocked[0].subject_id) == (pk(ada), pk(bob))
    cut = blocked[0].data
    assert cut["unfriended"] is True
    assert sorted(map(lambda f: (f["follower_id"], f["followee_id"]), cut["unfollowed"])) == sorted(
        [(pk(ada), pk(bob)), (pk(bob), pk(ada))]
    )
    assert {key: cut[key] for key in ids} == ids
    assert again == []
    assert shape(unblocked) == [("user.unblocked", pk(ada), pk(bob), ids)]
    assert unblocked_again == []


async def test_profile_updates_name_what_changed(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cy = await create_users(app, ["ada", "bob", "cy"], platform="vignette")
    renamed = await emitted(app, ok(gql, PROFILE, ada, input={"displayName": "Ada L", "bio": None}))
    unchanged = await emitted(app, ok(gql, PROFILE, ada, input={"displayName": "Ada L"}))
    await ok(gql, PROFILE, ada, input={"isPrivate": True})
    await ok(gql, FOLLOW, bob, id=ada.id)
    await ok(gql, FOLLOW, cy, id=ada.id)
    public = await emitted(app, ok(gql, PROFILE, ada, input={"isPrivate": False}))

    # bio was already empty: only the name changed
    assert shape(renamed) == [
        (
            "user.profile_updated",
            pk(ada),
            pk(ada),
            {"changed": ["display_name"], "values": {"display_name": "Ada L"}},
        )
    ]
    assert unchanged == []
    assert public[0].data == {"changed": ["is_private"], "values": {"is_private": False}}
    answers = sorted((e.type, e.actor_id, e.subject_id, e.data["accepted"]) for e in public[1:])
    assert answers == sorted(
        [
            ("user.follow_request_answered", pk(ada), pk(bob), True),
            ("user.follow_request_answered", pk(ada), pk(cy), True),
        ]
    )


async def test_refused_writes_leave_no_event(app: Any, gql: GraphQLClient) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    vignette_user = (await create_users(app, ["vera"], platform="vignette"))[0]
    unknown = encode_id("User", 999_999)
    refused: list[tuple[str, Account, dict[str, Any], str | None]] = [
        (FOLLOW, ada, {"id": ada.id}, "BAD_USER_INPUT"),
        (FOLLOW, ada, {"id": unknown}, "NOT_FOUND"),
        (ANSWER_FOLLOW, ada, {"id": bob.id, "ok": True}, "NOT_FOUND"),
        (ANSWER_FRIEND, ada, {"id": bob.id, "ok": False}, "NOT_FOUND"),
        (BLOCK, ada, {"id": ada.id}, "BAD_USER_INPUT"),
        (PROFILE, ada, {"input": {"bio": "x" * 151}}, "BAD_USER_INPUT"),
        (PROFILE, ada, {"input": {"displayName": ""}}, "BAD_USER_INPUT"),
        (
            FRIEND,
            vignette_user,
            {"id": vignette_user.id},
            "BAD_USER_INPUT",
        ),  # no friends on Vignette
    ]
    db = app.state.runtime.stores.db
    before = [event for event, _ in await outbox(db)]
    for query, viewer, variables, code in refused:
        result = await gql(query, variables, token=viewer.token, platform=viewer.platform)
        assert result.errors, (query, variables)
        if code is not None:
            assert result.codes == [code], (query, variables, result.codes)
    taken = await gql(
        "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }",
        {"input": {"username": "ada", "email": "other@example.com", "password": "long enough pw"}},
    )
    assert taken.codes == ["CONFLICT"]
    assert [event for event, _ in await outbox(db)] == before


async def test_a_mutation_reaches_an_in_process_consumer(app: Any, gql: GraphQLClient) -> None:
    """GraphQL mutation → outbox row (same transaction) → embedded relay → consumer."""
    ada, bob = await create_users(app, ["ada", "bob"])
    received = Recorder()
    events = app.state.runtime.stores.events
    await events.bus.subscribe("test-consumer", ["users"], received)

    await ok(gql, FOLLOW, ada, id=bob.id)

    followed = [
        e for e, _ in await outbox(app.state.runtime.stores.db) if e.type == "user.followed"
    ]
    await eventually(lambda: followed[0].id in received.ids, seconds=5, what="the follow event")
    assert [e for e in received.events if e.type == "user.followed"] == followed
    await eventually(lambda: events.relay.stats.published >= 3, seconds=5, what="marked")
