"""Close friends through the API: closeFriends, addCloseFriend, removeCloseFriend.

Who may be listed, that the list is the viewer's own and private (no event, the
listed user is never told), and `close_friend_of`, the flag stories read to show
CLOSE_FRIENDS stories to the people their author listed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from datasources.events.tables import OutboxRow
from datasources.users.tables import CloseFriendRow
from resolvers.ids import encode_id, split_id
from tests.conftest import Account, GraphQLClient, Result, create_users

RELATIONSHIP = "isCloseFriend following blocking"
LIST = """
query($first: Int, $after: String) {
  closeFriends(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { username viewerRelationship { isCloseFriend } } }
  }
}
"""


async def change(
    gql: GraphQLClient,
    field: str,
    actor: Account | None,
    target_id: str,
    platform: str = "socialink",
) -> Result:
    """`addCloseFriend` or `removeCloseFriend` as `actor` (None: signed out)."""
    return await gql(
        f"mutation($u: ID!) {{ {field}(userId: $u) {{ {RELATIONSHIP} }} }}",
        {"u": target_id},
        token=actor.token if actor else None,
        platform=platform,
    )


async def listed(app: Any) -> set[tuple[int, int]]:
    async with app.state.runtime.stores.db.session() as session:
        rows = (
            await session.execute(select(CloseFriendRow.user_id, CloseFriendRow.friend_id))
        ).all()
    return {(row[0], row[1]) for row in rows}


async def outbox_size(app: Any) -> int:
    async with app.state.runtime.stores.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxRow)) or 0)


def pk(account: Account) -> int:
    parts = split_id(account.id)
    assert parts is not None
    return int(parts[1])


async def test_add_and_remove_are_idempotent_and_show_in_the_relationship(
    app: Any, gql: GraphQLClient
) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    for _ in range(2):
        added = await change(gql, "addCloseFriend", alice, bob.id)
        assert added.ok() == {
            "addCloseFriend": {"isCloseFriend": True, "following": False, "blocking": False}
        }
    assert await listed(app) == {(pk(alice), pk(bob))}
    seen = await gql(
        '{ user(username: "bob") { viewerRelationship { isCloseFriend } } }', token=alice.token
    )
    assert seen.ok() == {"user": {"viewerRelationship": {"isCloseFriend": True}}}
    for _ in range(2):
        removed = await change(gql, "removeCloseFriend", alice, bob.id)
        assert removed.ok()["removeCloseFriend"]["isCloseFriend"] is False
    assert await listed(app) == set()


async def test_adding_and_removing_emit_no_event(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    before = await outbox_size(app)
    (await change(gql, "addCloseFriend", alice, bob.id)).ok()
    (await change(gql, "removeCloseFriend", alice, bob.id)).ok()
    assert await outbox_size(app) == before


async def test_the_list_is_the_viewers_own_newest_first_in_pages(
    app: Any, gql: GraphQLClient
) -> None:
    alice, bob, carol, dave, erin = await create_users(
        app, ["alice", "bob", "carol", "dave", "erin"]
    )
    for friend in (bob, carol, dave):
        (await change(gql, "addCloseFriend", alice, friend.id)).ok()
    (await change(gql, "addCloseFriend", erin, alice.id)).ok()  # someone else's list

    first = (await gql(LIST, {"first": 2}, token=alice.token)).ok()["closeFriends"]
    assert first["totalCount"] == 3
    assert [e["node"]["username"] for e in first["edges"]] == ["dave", "carol"]
    assert [e["node"]["viewerRelationship"]["isCloseFriend"] for e in first["edges"]] == [
        True,
        True,
    ]
    assert first["pageInfo"]["hasNextPage"] is True
    after = first["pageInfo"]["endCursor"]
    rest = (await gql(LIST, {"first": 2, "after": after}, token=alice.token)).ok()["closeFriends"]
    assert [e["node"]["username"] for e in rest["edges"]] == ["bob"]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["totalCount"] == 3

    # Re-adding keeps the entry's place; removing takes it out of list and count.
    (await change(gql, "addCloseFriend", alice, bob.id)).ok()
    (await change(gql, "removeCloseFriend", alice, carol.id)).ok()
    again = (await gql(LIST, token=alice.token)).ok()["closeFriends"]
    assert [e["node"]["username"] for e in again["edges"]] == ["dave", "bob"]
    assert again["totalCount"] == 2

    bobs = (await gql(LIST, token=bob.token)).ok()["closeFriends"]
    assert bobs == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }


async def test_the_listed_user_is_close_friend_of_the_lister_but_never_told(
    app: Any, gql: GraphQLClient
) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    (await change(gql, "addCloseFriend", alice, bob.id)).ok()
    graph = app.state.runtime.stores.users.graph
    bob_to_alice = (await graph.relationships(pk(bob), [pk(alice)]))[pk(alice)]
    assert bob_to_alice.close_friend_of is True
    assert bob_to_alice.is_close_friend is False
    alice_to_bob = (await graph.relationships(pk(alice), [pk(bob)]))[pk(bob)]
    assert (alice_to_bob.is_close_friend, alice_to_bob.close_friend_of) == (True, False)
    # Through the API bob sees no trace of alice's list.
    seen = await gql(
        '{ user(username: "alice") { viewerRelationship { isCloseFriend } } }', token=bob.token
    )
    assert seen.ok() == {"user": {"viewerRelationship": {"isCloseFriend": False}}}
    # Both ways at once, each flag from its own row.
    (await change(gql, "addCloseFriend", bob, alice.id)).ok()
    both = (await graph.relationships(pk(bob), [pk(alice)]))[pk(alice)]
    assert (both.is_close_friend, both.close_friend_of) == (True, True)


async def test_yourself_is_bad_user_input(app: Any, gql: GraphQLClient) -> None:
    (alice,) = await create_users(app, ["alice"])
    for field in ("addCloseFriend", "removeCloseFriend"):
        result = await change(gql, field, alice, alice.id)
        assert result.codes == ["BAD_USER_INPUT"]
        assert result.errors[0]["extensions"]["field"] == "userId"
    assert await listed(app) == set()


async def test_a_malformed_id_is_bad_user_input(app: Any, gql: GraphQLClient) -> None:
    (alice,) = await create_users(app, ["alice"])
    result = await change(gql, "addCloseFriend", alice, encode_id("Post", 1))
    assert result.codes == ["BAD_USER_INPUT"]


async def test_blocked_unknown_or_other_platform_users_are_not_found(
    app: Any, gql: GraphQLClient
) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    (vera,) = await create_users(app, ["vera"], platform="vignette")
    blocks = "mutation($u: ID!) { block(userId: $u) { blocking } }"
    (await gql(blocks, {"u": bob.id}, token=alice.token)).ok()  # alice blocks bob
    (await gql(blocks, {"u": alice.id}, token=carol.token)).ok()  # carol blocks alice
    for target in (bob.id, carol.id, vera.id, encode_id("User", 999_999)):
        for field in ("addCloseFriend", "removeCloseFriend"):
            result = await change(gql, field, alice, target)
            assert result.codes == ["NOT_FOUND"], (field, target)
    assert await listed(app) == set()
    # The same from the blocked side, and across platforms the other way.
    assert (await change(gql, "addCloseFriend", bob, alice.id)).codes == ["NOT_FOUND"]
    cross = await change(gql, "addCloseFriend", vera, alice.id, platform="vignette")
    assert cross.codes == ["NOT_FOUND"]
    assert await listed(app) == set()


async def test_signed_out_is_unauthenticated(app: Any, gql: GraphQLClient) -> None:
    (alice,) = await create_users(app, ["alice"])
    for field in ("addCloseFriend", "removeCloseFriend"):
        assert (await change(gql, field, None, alice.id)).codes == ["UNAUTHENTICATED"]
    assert (await gql(LIST)).codes == ["UNAUTHENTICATED"]
    assert await listed(app) == set()


async def test_a_block_either_way_removes_the_entries(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    (await change(gql, "addCloseFriend", alice, bob.id)).ok()
    (await change(gql, "addCloseFriend", bob, alice.id)).ok()
    (await change(gql, "addCloseFriend", alice, carol.id)).ok()
    # bob blocks alice: both entries between them go, alice's entry for carol stays.
    block = "mutation($u: ID!) { block(userId: $u) { blocking } }"
    (await gql(block, {"u": alice.id}, token=bob.token)).ok()
    assert await listed(app) == {(pk(alice), pk(carol))}
    page = (await gql(LIST, token=alice.token)).ok()["closeFriends"]
    assert [e["node"]["username"] for e in page["edges"]] == ["carol"]
    assert page["totalCount"] == 1
    # Unblocking restores nothing; adding again works once no block remains.
    (
        await gql(
            "mutation($u: ID!) { unblock(userId: $u) { blocking } }",
            {"u": alice.id},
            token=bob.token,
        )
    ).ok()
    assert await listed(app) == {(pk(alice), pk(carol))}
    assert (await change(gql, "addCloseFriend", alice, bob.id)).ok()["addCloseFriend"][
        "isCloseFriend"
    ] is True


async def test_the_store_refuses_an_entry_across_a_block(app: Any) -> None:
    """The resolver checks first; the store checks again under the users' locks, so a
    block that lands between the two still leaves no entry."""
    alice, bob = await create_users(app, ["alice", "bob"])
    graph = app.state.runtime.stores.users.graph
    await graph.block(pk(bob), pk(alice), "socialink")
    assert await graph.add_close_friend(pk(alice), pk(bob)) is False
    assert await listed(app) == set()
    assert await graph.remove_close_friend(pk(alice), pk(bob)) is False
