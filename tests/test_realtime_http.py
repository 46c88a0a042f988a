"""Subscriptions over HTTP (SSE and multipart) for clients without websockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from resolvers.ids import decode_id
from subscriptions import topics
from tests.conftest import create_users
from tests.posts_helpers import create_post
from tests.realtime_support import COMMENT_ADDED, broker_listens, http_client, live_server

ADD = "mutation($input: AddCommentInput!) { addComment(input: $input) { id } }"
BLOCK = "mutation($id: ID!) { block(userId: $id) { blocking } }"


async def sse_events(lines: AsyncIterator[str], count: int) -> list[tuple[str, str]]:
    """The next `count` (event, data) pairs of an event stream."""
    events: list[tuple[str, str]] = []
    event = ""
    async with asyncio.timeout(5):
        async for line in lines:
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data:"):
                events.append((event, line[len("data:") :].strip()))
                if len(events) == count:
                    return events
    return events


def post_topic(post: dict[str, Any]) -> str:
    return topics.post("socialink", decode_id(post["id"], "Post"))


async def test_sse_streams_comments_and_ends_on_lost_access(app: Any) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    async with live_server(app) as address, http_client(address) as gql:
        post = await create_post(gql, alice)
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
            body = {"query": COMMENT_ADDED, "variables": {"postId": post["id"]}}
            headers = {"accept": "text/event-stream", "authorization": f"Bearer {bob.token}"}
            async with client.stream(
                "POST", "/socialink/graphql", json=body, headers=headers
            ) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                lines = response.aiter_lines()
                await broker_listens(app, post_topic(post))
                await gql(
                    ADD, {"input": {"postId": post["id"], "body": "over sse"}}, token=alice.token
                )
                [(kind, data)] = await sse_events(lines, 1)
                assert kind == "next"
                assert json.loads(data)["data"]["commentAdded"]["body"] == "over sse"
                await gql(BLOCK, {"id": bob.id}, token=alice.token)
                events = await sse_events(lines, 2)
                assert events[0][0] == "next"
                assert json.loads(events[0][1])["errors"][0]["extensions"]["code"] == "FORBIDDEN"
                assert events[1][0] == "complete"


async def test_multipart_streams_like_counts(app: Any) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    async with live_server(app) as address, http_client(address) as gql:
        post = await create_post(gql, alice)
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
            body = {
                "query": "subscription($p: ID!) { postLikeCount(postId: $p) }",
                "variables": {"p": post["id"]},
            }
            headers = {"accept": 'multipart/mixed;subscriptionSpec="1.0", application/json'}
            async with client.stream(
                "POST", "/socialink/graphql", json=body, headers=headers
            ) as response:
                assert response.headers["content-type"].startswith("multipart/mixed")
                await broker_listens(app, post_topic(post))
                like = "mutation($id: ID!) { likePost(postId: $id) { likeCount } }"
                await gql(like, {"id": post["id"]}, token=bob.token)
                buffer = ""
                async with asyncio.timeout(5):
                    async for chunk in response.aiter_text():
                        buffer += chunk
                        if '"postLikeCount":1' in buffer:
                            break
                part = buffer.split("\r\n\r\n", 1)[1]
                assert json.loads(part) == {"payload": {"data": {"postLikeCount": 1}}}


async def test_queries_with_an_event_stream_accept_header_still_work(app: Any) -> None:
    (alice,) = await create_users(app, ["alice"])
    async with live_server(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
            response = await client.post(
                "/socialink/graphql",
                json={"query": "{ viewer { username } }"},
                headers={"accept": "application/json", "authorization": f"Bearer {alice.token}"},
            )
            assert response.json() == {"data": {"viewer": {"username": "alice"}}}


async def test_a_hidden_post_over_sse_is_not_found(app: Any) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    async with live_server(app) as address, http_client(address) as gql:
        post = await create_post(gql, alice, visibility="PRIVATE")
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
            body = {"query": COMMENT_ADDED, "variables": {"postId": post["id"]}}
            headers = {"accept": "text/event-stream", "authorization": f"Bearer {bob.token}"}
            async with client.stream("POST", "/socialink/graphql", json=body, headers=headers) as r:
                events = await sse_events(r.aiter_lines(), 2)
    assert json.loads(events[0][1])["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert events[1][0] == "complete"
