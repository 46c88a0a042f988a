"""notificationReceived and unreadNotificationCount over real websockets: the
recipient's sockets get each notification as it is made, nobody else's do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import GraphQLClient, create_users
from tests.posts_helpers import create_post
from tests.realtime_support import (
    LEGACY,
    TRANSPORT,
    http_client,
    live_server,
    open_socket,
    subscriptions_live,
)

RECEIVED = """
subscription { notificationReceived { type actorCount summary isRead actors { username }
  subject { __typename ... on Post { id } } } }
"""
COUNT = "subscription { unreadNotificationCount }"
LIKE = "mutation($id: ID!) { likePost(postId: $id) { likeCount } }"
MARK_READ = "mutation { markNotificationsRead }"


@pytest.fixture
async def server(app: Any) -> AsyncIterator[tuple[str, GraphQLClient]]:
    async with live_server(app) as address, http_client(address) as gql:
        yield address, gql


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_the_recipient_receives_notifications_live(
    app: Any, server: tuple[str, GraphQLClient], protocol: str
) -> None:
    address, gql = server
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    post = await create_post(gql, ada)
    mine = await open_socket(address, ada.token, protocol)
    theirs = await open_socket(address, cyd.token, protocol)
    await mine.subscribe("n", RECEIVED, {})
    await mine.subscribe("u", COUNT, {})
    await theirs.subscribe("n", RECEIVED, {})
    await subscriptions_live(app, 3)

    (await gql(LIKE, {"id": post["id"]}, token=bob.token)).ok()
    got = {}
    for _ in range(2):
        message = await mine.receive()
        got[message["id"]] = message["payload"]["data"]
    assert got["n"] == {
        "notificationReceived": {
            "type": "POST_LIKE",
            "actorCount": 1,
            "summary": "bob liked your post",
            "isRead": False,
            "actors": [{"username": "bob"}],
            "subject": {"__typename": "Post", "id": post["id"]},
        }
    }
    assert got["u"] == {"unreadNotificationCount": 1}

    (await gql(LIKE, {"id": post["id"]}, token=cyd.token)).ok()
    got = {}
    for _ in range(2):
        message = await mine.receive()
        got[message["id"]] = message["payload"]["data"]
    assert got["n"]["notificationReceived"]["summary"] == "cyd and bob liked your post"
    assert got["u"] == {"unreadNotificationCount": 1}  # the same group, grown

    (await gql(MARK_READ, token=ada.token)).ok()
    assert await mine.next("u") == {"data": {"unreadNotificationCount": 0}}
    assert await theirs.silent()  # cyd's own like told cyd nothing, ada's nothing either
    await mine.close()
    await theirs.close()


async def test_signed_out_sockets_cannot_subscribe(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, _ = server
    anonymous = await open_socket(address, None)
    await anonymous.subscribe("n", RECEIVED, {})
    message = await anonymous.receive()
    assert message["type"] == "error", message
    assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await anonymous.close()
