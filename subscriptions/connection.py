"""One websocket: graphql-transport-ws or the legacy graphql-ws, on raw ASGI.

Why our own protocol handlers instead of strawberry's
(`strawberry.subscriptions.protocols.*`): strawberry runs one async generator and
executes the selection set once per subscriber per event, and writes each result
straight to the socket from that generator. The issue asks for the opposite
shape: an event executed and serialized once for all subscribers of the same
(document, variables, visibility) (subscriptions/hub.py), a bounded outgoing
queue per connection so a stuck client never delays anyone (a full queue closes
it with 1013 "try again later": reconnect and resume), connection and
subscription limits, one keep-alive timer for all sockets, revocation of a token
family closing its sockets in every process, and a 1001 close on shutdown. These
cut across the handler's structure, so we speak the two small protocols
ourselves; queries and mutations sent over a socket are executed under the same
rules as over HTTP (subscriptions/operations.py).

Close codes: 4400 bad message, 4401 subscribe before connection_ack, 4403
invalid/expired/other-platform token or session revoked, 4406 no supported
subprotocol, 4408 no connection_init in time, 4409 duplicate operation id, 4429
too many connections for this user, 1013 outgoing queue overflow (reconnect and
resume), 1001 server going away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError

from resolvers.context import Viewer
from resolvers.errors import ApiError, RateLimited
from server.masking import Origin, client_errors
from subscriptions.documents import ErrorList
from subscriptions.hub import Sub
from subscriptions.inline import Waiting, start

if TYPE_CHECKING:
    from subscriptions.server import Realtime

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
PROTOCOLS = (TRANSPORT_WS, LEGACY_WS)

CLOSE_BAD_MESSAGE = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NO_PROTOCOL = 4406
CLOSE_INIT_TIMEOUT = 4408
CLOSE_DUPLICATE = 4409
CLOSE_TOO_MANY = 4429
CLOSE_OVERFLOW = 1013  # try again later: reconnect and resume from your cursor
CLOSE_GOING_AWAY = 1001
BEARER = "bearer "


class Closed(Exception):
    """The peer went away (or we closed it): stop reading."""


class Connection:
    __slots__ = (
        "_closing",
        "_frames",
        "_queue",
        "_receive",
        "_send",
        "_writer",
        "acked",
        "blocked",
        "ops",
        "platform",
        "protocol",
        "realtime",
        "request_id",
        "viewer",
    )

    def __init__(
        self,
        realtime: Realtime,
        platform: str,
        protocol: str,
        receive: Any,
        send: Any,
        request_id: str | None = None,
        frames: Any = None,
    ):
        self.realtime = realtime
        self.platform = platform
        self.protocol = protocol
        self._receive, self._send = receive, send
        self._frames = frames  # the server's TEXT_FRAMES extension (serving.py), if any
        self.viewer: Viewer | None = None
        self.blocked: frozenset[int] = frozenset()
        self.request_id = request_id or uuid.uuid4().hex  # X-Request-Id of the upgrade
        self.acked = False
        self.ops: dict[str, Sub | None] = {}  # None: a query/mutation in flight
        self._queue: deque[str] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    # ── outgoing ────────────────────────────────────────────────────────

    def push(self, *texts: str) -> None:
        """Queue frames (written together); never waits. A full queue means the
        client cannot keep up: close it (1013) rather than hold memory or anyone else."""
        if self._closing:
            return
        if len(self._queue) + len(texts) > self.realtime.settings.ws_queue_size:
            self._queue.clear()
            self.close_soon(CLOSE_OVERFLOW, "too slow: reconnect and resume")
            return
        self._queue.extend(texts)
        if self._writer is None:
            self._flush()

    def _flush(self) -> None:
        """Send what is queued, right now, while the socket takes it.

        Under our uvicorn protocol (serving.py `FrameWriting`) the frames are handed
        to it, all in one write. Otherwise, or when its transport is full: a send to
        a socket whose transport has room completes without suspending, so it is
        run inline (no task per socket per event: that is most of the fan-out cost
        at thousands of sockets). The first send that would wait (the client is
        slow) is finished by a task, which then drains the rest; meanwhile `push`
        only queues.
        """
        if self._frames is not None and self._queue and self._frames.write_texts(self._queue):
            self._queue.clear()
            return
        while self._queue:
            message = {"type": "websocket.send", "text": self._queue.popleft()}
            try:
                waiting = start(self._send(message))
            except Exception:  # the socket is gone; the reader sees the disconnect
                self._queue.clear()
                return
            if waiting is not None:
                self._writer = asyncio.get_running_loop().create_task(self._write(waiting))
                return

    async def _write(self, waiting: Waiting) -> None:
        try:
            await waiting.finish()
            while self._queue:
                await self._send({"type": "websocket.send", "text": self._queue.popleft()})
        except Exception:  # the socket is gone; the reader sees the disconnect
            self._queue.clear()
        finally:
            self._writer = None

    def send_json(self, message: dict[str, Any]) -> None:
        self.push(json.dumps(message, separators=(",", ":")))

    def send_complete(self, op_id: str) -> None:
        self.push(_complete_frame(op_id))

    @property
    def backlog_full(self) -> bool:
        """Half the outgoing queue is waiting: a replaying stream pauses (resumable.py)."""
        return len(self._queue) >= self.realtime.settings.ws_queue_size // 2

    def push_next(self, sub: Sub, payload: str) -> None:
        self.push(sub.frame_prefix + payload + "}")

    def answer(self, op_id: str, payload: str) -> None:
        """A query's or mutation's result, and its `complete` in the same write."""
        self.push(self.next_prefix(op_id) + payload + "}", _complete_frame(op_id))

    def next_prefix(self, op_id: str) -> str:
        """What precedes a result payload in this protocol's frame for `op_id`."""
        kind = "next" if self.protocol == TRANSPORT_WS else "data"
        return f'{{"id":{json.dumps(op_id)},"type":"{kind}","payload":'

    def end(self, sub: Sub, errors: list[GraphQLError]) -> None:
        if self.ops.get(sub.id) is sub:
            del self.ops[sub.id]
        self._send_errors(sub.id, errors)

    def _send_errors(self, op_id: str, errors: list[GraphQLError]) -> None:
        masked = [
            e.formatted for e in client_errors(errors, Origin(self.request_id, self.platform))
        ]
        if self.protocol == TRANSPORT_WS:
            self.send_json({"id": op_id, "type": "error", "payload": masked})
        else:
            self.send_json({"id": op_id, "type": "error", "payload": masked[0]})
            self.send_complete(op_id)

    def ping(self) -> None:
        """Keep-alive (one timer for all sockets calls this)."""
        if self.acked and not self._writer:
            self.push('{"type":"ping"}' if self.protocol == TRANSPORT_WS else '{"type":"ka"}')

    def close_soon(self, code: int, reason: str = "") -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        if self._writer is not None:
            self._writer.cancel()
        with contextlib.suppress(Exception):
            await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def close(self, code: int, reason: str = "") -> None:
        self._closing = True
        await self._close(code, reason)

    async def refresh_access(self) -> None:
        if self.viewer is not None:
            self.blocked = await self.realtime.blocked_of(self.platform, self.viewer.user_id)

    # ── incoming ────────────────────────────────────────────────────────

    async def run(self) -> None:
        """Read until the peer leaves; then forget every operation."""
        try:
            await self._read()
        except Closed:
            pass
        finally:
            self._closing = True
            await self.realtime.forget(self)

    async def _next(self) -> dict[str, Any]:
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            raise Closed()
        text = message.get("text")
        if text is None and message.get("bytes") is not None:
            text = message["bytes"].decode("utf-8", "replace")
        try:
            value = json.loads(text or "")
        except ValueError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            await self.close(CLOSE_BAD_MESSAGE, "invalid message")
            raise Closed()
        return value

    async def _read(self) -> None:
        try:
            async with asyncio.timeout(self.realtime.settings.ws_init_timeout_seconds):
                first = await self._next()
        except TimeoutError:
            await self.close(CLOSE_INIT_TIMEOUT, "connection initialisation timeout")
            raise Closed() from None
        if first["type"] != "connection_init":
            await self.close(CLOSE_UNAUTHORIZED, "Unauthorized")
            raise Closed()
        await self._init(first.get("payload"))
        while True:
            message = await self._next()
            await self._handle(message)

    async def _init(self, payload: Any) -> None:
        token = _token(payload)
        if token is not None:
            viewer = await self.realtime.runtime.authenticate(token, self.platform)
            if viewer is None:
                await self.close(CLOSE_FORBIDDEN, "Forbidden")
                raise Closed()
            self.viewer = viewer
            if not self.realtime.admit(self):
                await self.close(CLOSE_TOO_MANY, "too many connections for this user")
                raise Closed()
            await self.refresh_access()
        else:
            self.realtime.admit(self)
        self.acked = True
        self.send_json({"type": "connection_ack"})
        await self.realtime.connected(self)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("ping", "pong", "ka"):
            if kind == "ping":
                self.send_json({"type": "pong"})
            return
        if kind == "connection_init":
            await self.close(4429, "Too many initialisation requests")
            raise Closed()
        if kind == "connection_terminate":
            await self.close(1000)
            raise Closed()
        if kind in ("subscribe", "start"):
            await self._subscribe(message)
        elif kind in ("complete", "stop"):
            await self._complete(str(message.get("id")))
        else:
            await self.close(CLOSE_BAD_MESSAGE, f"unknown message type {kind!r}")
            raise Closed()

    async def _subscribe(self, message: dict[str, Any]) -> None:
        op_id = message.get("id")
        if not isinstance(op_id, str) or not op_id:
            await self.close(CLOSE_BAD_MESSAGE, "an operation needs an id")
            raise Closed()
        if op_id in self.ops:
            await self.close(CLOSE_DUPLICATE, f"Subscriber for {op_id} already exists")
            raise Closed()
        if len(self.ops) >= self.realtime.settings.max_subscriptions_per_connection:
            limit = self.realtime.settings.max_subscriptions_per_connection
            too_many = GraphQLError(
                f"at most {limit} operations per connection",
                extensions={"code": RateLimited.code, "limit": limit},
            )
            self._send_errors(op_id, [too_many])
            return
        self.ops[op_id] = None
        try:
            sub = await self.realtime.open(self, op_id, message.get("payload"))
        except (ApiError, GraphQLError) as error:
            self.ops.pop(op_id, None)
            self._send_errors(op_id, [error])
            return
        except ErrorList as errors:
            self.ops.pop(op_id, None)
            self._send_errors(op_id, errors.errors)
            return
        if op_id not in self.ops:  # completed by the client meanwhile
            if sub is not None:
                await self.realtime.hub.remove(sub)
            return
        if sub is None:  # a query or mutation: answered and completed (`answer`)
            self.ops.pop(op_id, None)
            return
        self.ops[op_id] = sub

    async def _complete(self, op_id: str) -> None:
        sub = self.ops.pop(op_id, None)
        if sub is not None:
            await self.realtime.hub.remove(sub)
        if self.protocol == LEGACY_WS:
            self.send_complete(op_id)


def _complete_frame(op_id: str) -> str:
    """`{"id": op_id, "type": "complete"}` as `send_json` writes it, without a dict
    and json.dumps of it per relayed message."""
    return '{"id":' + json.dumps(op_id) + ',"type":"complete"}'


def _token(payload: Any) -> str | None:
    """The access token of `{"authorization": "Bearer …"}` (any key case); None when
    none is given (a signed-out viewer). A malformed value is an invalid token."""
    if not isinstance(payload, dict):
        return None
    value = next(
        (v for k, v in payload.items() if isinstance(k, str) and k.lower() == "authorization"),
        None,
    )
    if value is None:
        return None
    text = str(value)
    if not text.lower().startswith(BEARER):
        return ""
    return text[len(BEARER) :].strip()
