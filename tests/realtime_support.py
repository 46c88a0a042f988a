"""Real servers and real websocket clients for the realtime tests."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from subscriptions import serving
from subscriptions.hub import Sub
from tests.conftest import GraphQLClient
from tests.events_support import eventually

TRANSPORT = "graphql-transport-ws"
LEGACY = "graphql-ws"

COMMENT_ADDED = """
subscription($postId: ID!) { commentAdded(postId: $postId) { id body author { username } } }
"""
LIKE_COUNT = "subscription($postId: ID!) { postLikeCount(postId: $postId) }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def live_server(app: Any) -> AsyncIterator[str]:
    """uvicorn on a free 127.0.0.1 port serving `app` (its lifespan already runs);
    yields "127.0.0.1:PORT". Stopping it runs our shutdown (sockets closed 1001)."""
    port = free_port()
    server = serving.Server(serving.config(app, "127.0.0.1", port, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def subscriptions_live(app: Any, count: int, within: float = 10.0) -> None:
    """Return once the app's websockets hold exactly `count` live subscriptions.

    A subscription is live once the server has authorized it and its broker listens
    on its topics, so an event published after this returns reaches it (and, after a
    `stop`, no longer does). Live events are never replayed: a fixed sleep before
    publishing lost the event when a loaded machine took longer to authorize."""
    realtime = app.state.realtime

    def live() -> int:
        return sum(isinstance(op, Sub) for peer in realtime.connections for op in peer.ops.values())

    await eventually(lambda: live() == count, within, f"{count} live subscriptions")


async def broker_listens(app: Any, topic: str, within: float = 10.0) -> None:
    """Return once the app's broker delivers `topic` to a handler: for streams that
    do not go through a websocket (strawberry's own `schema.subscribe`)."""
    interest = app.state.realtime.broker._interest
    await eventually(lambda: topic in interest.handlers, within, f"a handler of {topic}")


@asynccontextmanager
async def http_client(address: str) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
        yield GraphQLClient(client)


class Socket:
    """A websocket client speaking either protocol, the way apps do."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, within: float = 5.0) -> dict[str, Any]:
        """The next message other than keep-alives."""
        while True:
            async with asyncio.timeout(within):
                raw = await self.ws.recv()
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") not in ("ping", "pong", "ka"):
                return message

    async def init(self, token: str | None = None) -> dict[str, Any]:
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await self.send({"type": "connection_init", "payload": payload})
        return await self.receive()

    async def subscribe(self, op_id: str, query: str, variables: dict[str, Any]) -> None:
        kind = "subscribe" if self.protocol == TRANSPORT else "start"
        await self.send(
            {"id": op_id, "type": kind, "payload": {"query": query, "variables": variables}}
        )

    async def stop(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "complete" if self.protocol == TRANSPORT else "stop"})

    async def next(self, op_id: str, within: float = 5.0) -> dict[str, Any]:
        """The payload of the next result for `op_id` (fails on an error message)."""
        message = await self.receive(within)
        assert message.get("id") == op_id, message
        assert message["type"] in ("next", "data"), message
        return message["payload"]  # type: ignore[no-any-return]

    async def closed_with(self, within: float = 5.0) -> int | None:
        """Read until the server closes; its close code."""
        try:
            async with asyncio.timeout(within):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        return None

    async def silent(self, seconds: float = 0.3) -> bool:
        """Whether nothing but keep-alives arrives for `seconds`."""
        try:
            message = await self.receive(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected message {message}")

    async def close(self) -> None:
        await self.ws.close()


@asynccontextmanager
async def socket_to(
    address: str, protocol: str = TRANSPORT, platform: str = "socialink", **options: Any
) -> AsyncIterator[Socket]:
    url = f"ws://{address}/{platform}/graphql"
    async with connect(url, subprotocols=[protocol], **options) as ws:  # type: ignore[list-item]
        yield Socket(ws, protocol)


async def open_socket(
    address: str,
    token: str | None,
    protocol: str = TRANSPORT,
    platform: str = "socialink",
    **options: Any,
) -> Socket:
    """A connected, acknowledged socket. `stalling=True`: a small receive buffer, no
    compression and at most one frame held by the client library, so a client that
    stops reading fills the server's side soon."""
    url = f"ws://{address}/{platform}/graphql"
    if options.pop("stalling", False):  # a tiny receive buffer: the server fills it fast
        host, port = address.split(":")
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect((host, int(port)))
        options |= {"sock": raw, "max_queue": 1, "compression": None}
    ws = await connect(url, subprotocols=[protocol], **options)  # type: ignore[list-item]
    sock = Socket(ws, protocol)
    ack = await sock.init(token)
    assert ack["type"] == "connection_ack", ack
    return sock


class CountingTransport:
    """A transport that counts its writes and passes everything on."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def counting(protocol: Any) -> CountingTransport:
    """Count the writes of a websocket protocol's transport from now on."""
    transport = CountingTransport(protocol.transport)
    protocol.transport = transport  # type: ignore[assignment]
    return transport
