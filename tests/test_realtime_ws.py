"""Subscriptions over real websockets against a real uvicorn: both protocols,
auth close codes, visibility and loss of access, fan-out, limits, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from resolvers.ids import decode_id
from subscriptions import topics
from tests.conftest import Account, GraphQLClient, create_users
from tests.events_support import eventually
from tests.posts_helpers import create_post
from tests.realtime_support import (
    COMMENT_ADDED,
    LEGACY,
    LIKE_COUNT,
    TRANSPORT,
    Socket,
    broker_listens,
    http_client,
    live_server,
    open_socket,
    socket_to,
    subscriptions_live,
)

ADD = "mutation($input: AddCommentInput!) { addComment(input: $input) { id body } }"
LIKE = "mutation($id: ID!) { likePost(postId: $id) { likeCount } }"
BLOCK = "mutation($id: ID!) { block(userId: $id) { blocking } }"
FOLLOW = "mutation($id: ID!) { follow(userId: $id) { following } }"
UNFOLLOW = "mutation($id: ID!) { unfollow(userId: $id) { following } }"
SIGN_OUT = "mutation($t: String!) { signOut(refreshToken: $t) }"


@pytest.fixture
async def server(app: Any) -> AsyncIterator[tuple[str, GraphQLClient]]:
    async with live_server(app) as address, http_client(address) as gql:
        yield address, gql


async def comment(gql: GraphQLClient, who: Account, post_id: str, body: str) -> str:
    result = await gql(ADD, {"input": {"postId": post_id, "body": body}}, token=who.token)
    return str(result.ok()["addComment"]["id"])


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_comment_added_reaches_each_subscriber(
    app: Any, server: tuple[str, GraphQLClient], protocol: str
) -> None:
    address, gql = server
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    post = await create_post(gql, alice)
    signed_in = await open_socket(address, bob.token, protocol)
    anonymous = await open_socket(address, None, protocol)
    for sock in (signed_in, anonymous):
        await sock.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
    await subscriptions_live(app, 2)
    comment_id = await comment(gql, carol, post["id"], "first!")
    for sock in (signed_in, anonymous):
        payload = await sock.next("c")
        assert payload == {
            "data": {
                "commentAdded": {
                    "id": comment_id,
                    "body": "first!",
                    "author": {"username": "carol"},
                }
            }
        }
    await signed_in.stop("c")
    await subscriptions_live(app, 1)
    await comment(gql, carol, post["id"], "second")
    assert (await anonymous.next("c"))["data"]["commentAdded"]["body"] == "second"
    if protocol == LEGACY:  # stop is confirmed with complete in graphql-ws
        assert (await signed_in.receive())["type"] == "complete"
    assert await signed_in.silent()


async def test_post_like_count_is_live(app: Any, server: tuple[str, GraphQLClient]) -> None:
    address, gql = server
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    post = await create_post(gql, alice)
    sock = await open_socket(address, alice.token)
    await sock.subscribe("likes", LIKE_COUNT, {"postId": post["id"]})
    await subscriptions_live(app, 1)
    await gql(LIKE, {"id": post["id"]}, token=bob.token)
    assert await sock.next("likes") == {"data": {"postLikeCount": 1}}
    await gql(LIKE, {"id": post["id"]}, token=carol.token)
    assert await sock.next("likes") == {"data": {"postLikeCount": 2}}


async def test_bad_tokens_are_refused_at_connection_init_with_4403(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, _gql = server
    (alice,) = await create_users(app, ["alice"])
    for platform, token in [
        ("socialink", "not-a-token"),
        ("vignette", alice.token),  # a Socialink token on Vignette's path
    ]:
        async with socket_to(address, platform=platform) as sock:
            await sock.send(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
            )
            assert await sock.closed_with() == 4403
    async with socket_to(address) as sock:  # not "Bearer …"
        await sock.send({"type": "connection_init", "payload": {"authorization": alice.token}})
        assert await sock.closed_with() == 4403


async def test_subscribing_before_the_ack_closes_4401_and_no_subprotocol_4406(
    server: tuple[str, GraphQLClient],
) -> None:
    address, _gql = server
    async with socket_to(address) as sock:
        await sock.subscribe("x", LIKE_COUNT, {"postId": "UG9zdDox"})
        assert await sock.closed_with() == 4401
    async with socket_to(address, protocol="chat") as sock:
        assert await sock.closed_with() == 4406


async def test_signing_out_closes_that_sessions_sockets_with_4403(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    alice, bob = await create_users(app, ["alice", "bob"])
    post = await create_post(gql, alice)
    mine = await open_socket(address, alice.token)
    other = await open_socket(address, bob.token)
    await mine.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
    await other.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
    await subscriptions_live(app, 2)
    await gql(SIGN_OUT, {"t": alice.refresh_token})
    assert await mine.closed_with() == 4403
    await comment(gql, bob, post["id"], "still here?")
    assert (await other.next("c"))["data"]["commentAdded"]["body"] == "still here?"
    async with socket_to(address) as sock:  # the token no longer opens a socket
        await sock.send(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {alice.token}"}}
        )
        assert await sock.closed_with() == 4403


async def test_a_hidden_post_fails_that_operation_only(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    alice, bob = await create_users(app, ["alice", "bob"])
    public = await create_post(gql, alice)
    hidden = await create_post(gql, alice, visibility="FOLLOWERS")
    sock = await open_socket(address, bob.token)
    await sock.subscribe("hidden", COMMENT_ADDED, {"postId": hidden["id"]})
    error = await sock.receive()
    assert error["type"] == "error" and error["id"] == "hidden"
    assert [e["extensions"]["code"] for e in error["payload"]] == ["NOT_FOUND"]
    await sock.subscribe("public", COMMENT_ADDED, {"postId": public["id"]})
    await subscriptions_live(app, 1)
    await comment(gql, alice, hidden["id"], "followers only")
    await comment(gql, alice, public["id"], "for all")
    assert (await sock.next("public"))["data"]["commentAdded"]["body"] == "for all"
    assert await sock.silent()


async def test_invalid_documents_fail_the_operation_with_a_contract_code(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, _gql = server
    (alice,) = await create_users(app, ["alice"])
    sock = await open_socket(address, alice.token)
    await sock.subscribe("bad", "subscription { commentAdded(postId: 1) { nope } }", {})
    error = await sock.receive()
    assert error["type"] == "error"
    assert {e["extensions"]["code"] for e in error["payload"]} == {"BAD_USER_INPUT"}


async def test_a_blocked_viewer_stops_receiving_with_forbidden(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    post = await create_post(gql, alice)
    sock = await open_socket(address, bob.token)
    await sock.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
    await sock.subscribe("likes", LIKE_COUNT, {"postId": post["id"]})
    await subscriptions_live(app, 2)
    await gql(BLOCK, {"id": bob.id}, token=alice.token)
    ended = {}
    for _ in range(2):
        message = await sock.receive()
        assert message["type"] == "error"
        ended[message["id"]] = [e["extensions"]["code"] for e in message["payload"]]
    assert ended == {"c": ["FORBIDDEN"], "likes": ["FORBIDDEN"]}
    await comment(gql, carol, post["id"], "after the block")
    assert await sock.silent()


async def test_an_unfollowed_viewer_stops_receiving_a_followers_post(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    alice, bob = await create_users(app, ["alice", "bob"])
    await gql(FOLLOW, {"id": alice.id}, token=bob.token)
    post = await create_post(gql, alice, visibility="FOLLOWERS")
    sock = await open_socket(address, bob.token)
    await sock.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
    await subscriptions_live(app, 1)
    await comment(gql, alice, post["id"], "for followers")
    assert (await sock.next("c"))["data"]["commentAdded"]["body"] == "for followers"
    await gql(UNFOLLOW, {"id": alice.id}, token=bob.token)
    message = await sock.receive()
    assert message["type"] == "error" and message["id"] == "c"
    assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    await comment(gql, alice, post["id"], "not for bob any more")
    assert await sock.silent()


async def test_comments_by_someone_blocked_are_not_delivered(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    post = await create_post(gql, alice)
    await gql(BLOCK, {"id": carol.id}, token=bob.token)
    bobs = await open_socket(address, bob.token)
    alices = await open_socket(address, alice.token)
    for sock in (bobs, alices):
        await sock.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
    await subscriptions_live(app, 2)
    await comment(gql, carol, post["id"], "bob blocked me")
    assert (await alices.next("c"))["data"]["commentAdded"]["body"] == "bob blocked me"
    assert await bobs.silent()


async def test_one_event_is_executed_once_for_many_subscribers(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    users = await create_users(app, [f"user{n}" for n in range(12)])
    post = await create_post(gql, users[0])
    socks = [await open_socket(address, user.token) for user in users[1:]]
    socks.append(await open_socket(address, None))
    for sock in socks:
        await sock.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
    await subscriptions_live(app, len(socks))
    hub = app.state.realtime.hub
    before = hub.executions
    await comment(gql, users[0], post["id"], "to everyone")
    payloads = [await sock.next("c") for sock in socks]
    assert all(p == payloads[0] for p in payloads)
    assert hub.executions - before == 1


async def test_a_viewer_dependent_selection_is_executed_per_viewer(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    post = await create_post(gql, alice)
    query = "subscription($p: ID!) { commentAdded(postId: $p) { body viewerHasLiked } }"
    socks = [await open_socket(address, u.token) for u in (bob, carol, bob)]
    for sock in socks:
        await sock.subscribe("c", query, {"p": post["id"]})
    await subscriptions_live(app, len(socks))
    hub = app.state.realtime.hub
    before = hub.executions
    await comment(gql, alice, post["id"], "hi")
    for sock in socks:
        assert (await sock.next("c"))["data"]["commentAdded"] == {
            "body": "hi",
            "viewerHasLiked": False,
        }
    assert hub.executions - before == 2  # bob (two sockets) and carol


async def test_a_slow_client_is_closed_and_never_delays_the_others(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    app.state.realtime.settings.ws_queue_size = 8
    alice, bob = await create_users(app, ["alice", "bob"])
    post = await create_post(gql, alice)
    comment_id = await comment(gql, alice, post["id"], "x" * 2000)
    # Big frames (about 60 KB) fill a stalled client's socket buffers quickly.
    aliases = " ".join(f"b{n}: body" for n in range(28))
    query = f"subscription($p: ID!) {{ commentAdded(postId: $p) {{ {aliases} }} }}"
    fast = await open_socket(address, bob.token)
    await fast.subscribe("c", query, {"p": post["id"]})
    slow = await open_socket(address, None, stalling=True)
    await slow.subscribe("c", query, {"p": post["id"]})
    slow.ws.transport.pause_reading()  # type: ignore[attr-defined]  # and reads no more
    await subscriptions_live(app, 2)
    broker = app.state.realtime.broker
    pk, events = decode_id(post["id"], "Post"), 150
    message = {"kind": "comment", "comment_id": decode_id(comment_id, "Comment")}
    started = asyncio.get_running_loop().time()
    for _ in range(events):
        await broker.publish(topics.post("socialink", pk), topics.encode(message))
    for _ in range(events):
        payload = await fast.next("c", within=10)
        assert payload["data"]["commentAdded"]["b0"] == "x" * 2000
    assert asyncio.get_running_loop().time() - started < 10
    slow.ws.transport.resume_reading()  # type: ignore[attr-defined]
    assert await slow.closed_with(within=20) == 1013


async def test_limits_per_connection_and_per_user(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    settings = app.state.realtime.settings
    settings.max_subscriptions_per_connection = 2
    settings.max_connections_per_user = 2
    alice, bob = await create_users(app, ["alice", "bob"])
    post = await create_post(gql, alice)
    sock = await open_socket(address, bob.token)
    for op in ("a", "b", "c"):
        await sock.subscribe(op, LIKE_COUNT, {"postId": post["id"]})
    error = await sock.receive()
    assert error["id"] == "c" and error["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    await open_socket(address, bob.token)
    async with socket_to(address) as third:
        await third.send(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {bob.token}"}}
        )
        assert await third.closed_with() == 4429
    await sock.close()
    connections = app.state.realtime.connections
    await eventually(lambda: len(connections) == 1, 10, "the closed socket let go")
    await open_socket(address, bob.token)  # a slot is free again


async def test_keep_alive_pings_and_queries_over_the_socket(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    (alice,) = await create_users(app, ["alice"])
    realtime = app.state.realtime
    realtime.settings.ws_ping_seconds = 0.1
    await realtime.close()  # restart the timer with the new period
    realtime.closing = False
    await realtime.start()
    for protocol, keep_alive in ((TRANSPORT, "ping"), (LEGACY, "ka")):
        async with socket_to(address, protocol) as raw:
            sock = Socket(raw.ws, protocol)
            await sock.init(alice.token)
            async with asyncio.timeout(2):
                while (await raw.ws.recv()) != f'{{"type":"{keep_alive}"}}':
                    pass
            await sock.subscribe("q", "query { viewer { username } }", {})
            assert await sock.next("q") == {"data": {"viewer": {"username": "alice"}}}
            assert (await sock.receive())["type"] == "complete"


async def test_shutdown_closes_sockets_with_1001(app: Any) -> None:
    (alice,) = await create_users(app, ["alice"])
    async with live_server(app) as address:
        sock = await open_socket(address, alice.token)
        legacy = await open_socket(address, None, LEGACY)
        closing = asyncio.gather(sock.closed_with(), legacy.closed_with())
        await asyncio.sleep(0.05)
    assert await closing == [1001, 1001]


async def test_deleting_the_post_ends_its_subscriptions(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    alice, bob = await create_users(app, ["alice", "bob"])
    post = await create_post(gql, alice)
    sock = await open_socket(address, bob.token, LEGACY)
    await sock.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
    await subscriptions_live(app, 1)
    await gql("mutation($id: ID!) { deletePost(id: $id) }", {"id": post["id"]}, token=alice.token)
    error = await sock.receive()
    assert error["type"] == "error" and error["payload"]["extensions"]["code"] == "FORBIDDEN"
    assert (await sock.receive())["type"] == "complete"


async def test_the_schema_resolvers_serve_the_same_rules_per_subscriber(app: Any) -> None:
    """strawberry's own path (schema.subscribe), as its protocol handlers use it."""
    from datasources.registry import Loaders
    from resolvers.context import Context

    async with live_server(app) as address, http_client(address) as gql:
        alice, bob = await create_users(app, ["alice", "bob"])
        post = await create_post(gql, alice)
        runtime = app.state.runtime
        context = Context(
            platform="socialink",
            viewer=None,
            settings=runtime.settings,
            stores=runtime.stores,
            loaders=Loaders(runtime.stores, "socialink"),
            auth=runtime.auth,
            request_id="direct",
        )
        stream = await runtime.schema.subscribe(
            COMMENT_ADDED, variable_values={"postId": post["id"]}, context_value=context
        )
        first = asyncio.ensure_future(stream.__anext__())
        await broker_listens(app, topics.post("socialink", decode_id(post["id"], "Post")))
        await comment(gql, bob, post["id"], "direct")
        result = await asyncio.wait_for(first, 5)
        assert result.data == {
            "commentAdded": {
                "id": result.data["commentAdded"]["id"],
                "body": "direct",
                "author": {"username": "bob"},
            }
        }
        await stream.aclose()
