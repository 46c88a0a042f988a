"""Subscriptions over plain HTTP, for clients without websockets.

A POST (or GET with `?query=`) to any `/…/graphql` path whose `Accept` asks for
`text/event-stream` (graphql-sse, "distinct connections" mode: one operation per
request) or `multipart/mixed` (the multipart subscription protocol,
`subscriptionSpec=1.0`) and whose operation is a subscription is streamed here,
through the same hub as websockets: same fan-out, same bounded queue (overflow
ends the response: reconnect and resume), same access re-checks, same revocation.
Anything else (queries, mutations, plain JSON clients) goes on to the normal view.

Auth is the request's `Authorization` header, checked by the view before this.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from graphql import GraphQLError

from resolvers.context import Viewer
from resolvers.errors import ApiError
from server.masking import Origin, client_errors
from subscriptions.documents import ErrorList
from subscriptions.hub import Sub

if TYPE_CHECKING:
    from subscriptions.server import Realtime

SSE = "text/event-stream"
MULTIPART = "multipart/mixed"
BOUNDARY = "graphql"


def wanted_mode(scope: Any) -> str | None:
    accept = ""
    for name, value in scope.get("headers", []):
        if name == b"accept":
            accept += value.decode("latin-1").lower()
    if SSE in accept:
        return SSE
    if MULTIPART in accept:
        return MULTIPART
    return None


async def read_request(scope: Any, receive: Any) -> tuple[Any, list[dict[str, Any]]]:
    """The GraphQL request (dict or None) and the ASGI messages read, to replay."""
    if scope["method"] == "GET":
        params = parse_qs(scope.get("query_string", b"").decode())
        payload: dict[str, Any] = {k: v[0] for k, v in params.items()}
        if isinstance(payload.get("variables"), str):
            with contextlib.suppress(ValueError):
                payload["variables"] = json.loads(payload["variables"])
        return payload, []
    messages, body = [], b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    try:
        return json.loads(body or b"null"), messages
    except ValueError:
        return None, messages


def replaying(messages: list[dict[str, Any]], receive: Any) -> Any:
    pending = deque(messages)

    async def replay() -> dict[str, Any]:
        return pending.popleft() if pending else await receive()

    return replay


class HttpStream:
    """One streamed operation: a Peer of the hub writing SSE or multipart parts."""

    def __init__(  # noqa: PLR0913
        self,
        realtime: Realtime,
        platform: str,
        viewer: Viewer | None,
        mode: str,
        send: Any,
        request_id: str | None = None,
    ) -> None:
        self.realtime, self.platform, self.viewer, self.mode = realtime, platform, viewer, mode
        self._send = send
        self.blocked: frozenset[int] = frozenset()
        self.request_id = request_id or uuid.uuid4().hex
        self.ops: dict[str, Sub | None] = {}
        self.done = asyncio.Event()
        self._queue: deque[bytes] = deque()
        self._writer: asyncio.Task[None] | None = None

    # ── the Peer interface ──────────────────────────────────────────────

    def next_prefix(self, op_id: str) -> str:
        return ""

    @property
    def backlog_full(self) -> bool:
        """Half the outgoing queue is waiting: a replaying stream pauses (resumable.py)."""
        return len(self._queue) >= self.realtime.settings.ws_queue_size // 2

    def push_next(self, sub: Any, payload: str) -> None:
        if self.mode == SSE:
            self._push(f"event: next\ndata: {payload}\n\n".encode())
        else:
            self._push(_part('{"payload":' + payload + "}"))

    def answer(self, op_id: str, payload: str) -> None:
        """A query's or mutation's result, which ends the response."""
        self.push_next(None, payload)
        self.finish()

    def end(self, sub: Any, errors: list[GraphQLError]) -> None:
        self.ops.pop(getattr(sub, "id", ""), None)
        masked = client_errors(errors, Origin(self.request_id, self.platform))
        body = json.dumps({"errors": [e.formatted for e in masked]}, separators=(",", ":"))
        self.push_next(sub, body)
        self.finish()

    async def refresh_access(self) -> None:
        if self.viewer is not None:
            self.blocked = await self.realtime.blocked_of(self.platform, self.viewer.user_id)

    def ping(self) -> None:
        if not self._writer:
            self._push(b":\n\n" if self.mode == SSE else _part("{}"))

    def close_soon(self, _code: int, _reason: str = "") -> None:
        self.finish()

    # ── output ──────────────────────────────────────────────────────────

    def finish(self) -> None:
        if not self.done.is_set():
            self._push(b"event: complete\ndata:\n\n" if self.mode == SSE else _closing())
            self.done.set()

    def _push(self, chunk: bytes) -> None:
        if len(self._queue) >= self.realtime.settings.ws_queue_size:
            self._queue.clear()
            self.done.set()  # too slow: the response ends; reconnect and resume
            return
        self._queue.append(chunk)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._queue:
                chunk = self._queue.popleft()
                await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
        except Exception:
            self._queue.clear()
            self.done.set()
        finally:
            self._writer = None

    async def drain(self) -> None:
        if self._writer is not None:
            await asyncio.wait([self._writer])

    # ── serving ─────────────────────────────────────────────────────────

    async def start(self) -> None:
        if self.mode == SSE:
            content_type = b"text/event-stream; charset=utf-8"
        else:
            content_type = f'multipart/mixed; boundary="{BOUNDARY}"; subscriptionSpec=1.0'.encode()
        headers = [(b"content-type", content_type), (b"cache-control", b"no-cache")]
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})

    async def serve(self, payload: Any, receive: Any) -> None:
        await self.start()
        await self.refresh_access()
        try:
            sub = await self.realtime.open(self, "1", payload)
        except (ApiError, GraphQLError) as error:
            self.end(None, [error])
            sub = None
        except ErrorList as errors:
            self.end(None, errors.errors)
            sub = None
        if sub is not None:
            self.ops["1"] = sub
        self.realtime.connections.add(self)
        try:
            await _until_done_or_gone(self.done, receive)
        finally:
            self.realtime.release(self)
            if sub is not None:
                await self.realtime.hub.remove(sub)
            with contextlib.suppress(Exception):
                await self.drain()
                await self._send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_done_or_gone(done: asyncio.Event, receive: Any) -> None:
    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    waiters = [asyncio.ensure_future(done.wait()), asyncio.ensure_future(gone())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _part(body: str) -> bytes:
    return (
        f"\r\n--{BOUNDARY}\r\nContent-Type: application/json; charset=utf-8\r\n\r\n{body}"
    ).encode()


def _closing() -> bytes:
    return f"\r\n--{BOUNDARY}--\r\n".encode()
