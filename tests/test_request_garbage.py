"""A request's objects are freed when it ends, not left for the cycle collector.

A reference cycle through a request's loaders or executor keeps its context and
everything it read (records, futures, wrappers: about 450 objects for a feed page)
alive until a full collection runs; under load those collections took a sixth of
the server's time (bench/feed.py). datasources/loading.py and schema/execution.py
keep such cycles from forming.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.conftest import GraphQLClient, create_users, insert_media
from tests.posts_helpers import add_comment, create_post, mark
from tests.realtime_support import TRANSPORT, http_client, live_server, open_socket
from tests.test_messaging_relay import add_devices, addressed, send
from tests.test_messaging_relay_live import ENVELOPES, received

OURS = ("datasources", "resolvers", "schema", "server", "graphql", "strawberry")

FEED = """
{ feed(first: 10) { totalCount edges { cursor node {
  id caption author { username followerCount viewerRelationship { following } }
  media { url mimeType width } viewerHasLiked viewerHasSaved
  comments(first: 2) { pageInfo { endCursor } edges { node { body author { username } } } }
} } } }
"""
PROFILE = """
query($u: String!) { user(username: $u) { username followers(first: 5) { edges { node {
  username viewerRelationship { following followedBy } } } }
  posts(first: 5) { edges { node { caption likeCount } } } } }
"""
FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"


@contextmanager
def cyclic_garbage() -> Iterator[list[str]]:
    """The types of our objects (and graphql-core's and strawberry's) that only the
    cycle collector could free, among what the block left behind."""
    found: list[str] = []
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found += sorted(
            {
                type(thing).__qualname__
                for thing in gc.garbage
                if type(thing).__module__.split(".")[0] in OURS
            }
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_reads_leave_nothing_for_the_cycle_collector(app: Any, gql: GraphQLClient) -> None:
    viewer, *authors = await create_users(app, ["viewer", "a1", "a2"])
    for author in authors:
        (await gql(FOLLOW, {"u": author.id}, token=viewer.token)).ok()
    for i in range(6):
        author = authors[i % 2]
        post = await create_post(
            gql, author, f"post {i}", mediaIds=[await insert_media(app, author)]
        )
        await add_comment(gql, viewer, f"on {i}", postId=post["id"])
        if i % 2:
            (await gql(mark("likePost"), {"id": post["id"]}, token=viewer.token)).ok()

    for query, variables in ((FEED, None), (PROFILE, {"u": "viewer"})):
        # once to have the query validated: graphql-core's validation rules make cycles
        # of their own, but strawberry validates a document once, not on every request
        (await gql(query, variables, token=viewer.token)).ok()
        with cyclic_garbage() as left:
            data = (await gql(query, variables, token=viewer.token)).ok()
        assert data and left == [], f"{left} kept alive by a reference cycle"


async def test_a_relayed_message_leaves_nothing_for_the_cycle_collector(app: Any) -> None:
    """The mutation, and the subscription event that delivers it (subscriptions/hub.py
    executes each event's selection with the same executor)."""
    async with live_server(app) as address, http_client(address) as gql:
        ada, bob = await create_users(app, ["ada", "bob"])
        await add_devices(app, ada, 1)
        await add_devices(app, bob, 1)
        sock = await open_socket(address, bob.token, TRANSPORT)
        await sock.subscribe("e", ENVELOPES, {"d": 1})
        (await send(gql, ada, addressed(ada, 1, bob, 1, b"first"), "first")).ok()
        await received(sock, 1)  # documents validated, connections made
        with cyclic_garbage() as left:
            (await send(gql, ada, addressed(ada, 1, bob, 1, b"second"), "second")).ok()
            [delivered] = await received(sock, 1)
        assert delivered["sequence"] == 2
        assert left == [], f"{left} kept alive by a reference cycle"


async def test_the_check_sees_a_cycle(app: Any, gql: GraphQLClient) -> None:
    """The check above would see a request kept alive by a cycle."""
    with cyclic_garbage() as left:
        from resolvers.context import Viewer

        viewer = Viewer(1, "vignette", "session")
        holder: dict[str, Any] = {"viewer": viewer}
        holder["self"] = holder
        del holder, viewer
    assert left == ["Viewer"]
