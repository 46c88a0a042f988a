"""GraphQL transport of the reference client: HTTP (httpx) and websockets.

HTTP posts operations to /<platform>/graphql with a bearer token. Live
delivery is the `envelopes` subscription over graphql-transport-ws (the
protocol Apollo and urql speak): connection_init with the token, subscribe,
then `next` messages until the socket closes; pings are answered.

The caller owns the httpx.AsyncClient, so the same code runs against a real
server (base_url) and against an in-process ASGI app (httpx.ASGITransport).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

SUBPROTOCOL = "graphql-transport-ws"


class GraphQLError(Exception):
    """An operation answered with errors; `code` is the first error's extensions.code."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        first = errors[0] if errors else {}
        self.extensions: dict[str, Any] = first.get("extensions") or {}
        self.code: str | None = self.extensions.get("code")
        super().__init__(f"{self.code}: {first.get('message')}")


class Api:
    """One signed-in user's GraphQL endpoint over HTTP."""

    def __init__(self, http: httpx.AsyncClient, token: str, platform: str = "socialink") -> None:
        self.http = http
        self.token = token
        self.platform = platform

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """The operation's `data`; raises GraphQLError when it has errors."""
        response = await self.http.post(
            f"/{self.platform}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]


class Subscription:
    """One graphql-transport-ws subscription on its own socket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(
        cls,
        url: str,
        token: str,
        query: str,
        variables: dict[str, Any],
        **options: Any,
    ) -> Subscription:
        """Connect, authenticate and subscribe; `url` like ws://host:port/socialink/graphql."""
        ws = await connect(url, subprotocols=[SUBPROTOCOL], **options)  # type: ignore[list-item]
        subscription = cls(ws)
        await subscription._send(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        )
        ack = await subscription._receive()
        if ack.get("type") != "connection_ack":
            await ws.close()
            raise ConnectionError(f"not acknowledged: {ack}")
        await subscription._send(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
        return subscription

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def _receive(self) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await self.ws.recv())
            kind = message.get("type")
            if kind == "ping":
                await self._send({"type": "pong"})
            elif kind != "pong":
                return message

    async def next(self, within: float | None = None) -> Any:
        """The next result's data; raises GraphQLError on an error message."""
        async with asyncio.timeout(within):
            message = await self._receive()
        if message["type"] == "next":
            payload = message["payload"]
            if payload.get("errors"):
                raise GraphQLError(payload["errors"])
            return payload["data"]
        if message["type"] == "error":
            raise GraphQLError(message["payload"])
        raise ConnectionError(f"subscription ended: {message}")

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            yield await self.next()

    async def close(self) -> None:
        await self.ws.close()
