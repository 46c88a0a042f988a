"""The realtime side of one server process: sockets, the hub, limits, revocation.

`Realtime` is built with the app (server/app.py) and started in its lifespan. It
accepts websockets on every `/…/graphql` path (the platform is the path's, as
for queries), keeps one keep-alive timer for all sockets, counts connections per
user (per process), listens on the broker for revoked token families (sign-out,
refresh-token reuse: `subscriptions.topics.announce_revoked`) and closes those
sockets with 4403 wherever they are, and on shutdown closes every socket with
1001 before the server stops (see `close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any

from datasources.realtime import blocked_either_way
from datasources.registry import Loaders
from resolvers.context import Context, Viewer
from resolvers.errors import BadUserInput
from server.observability import SCOPE_REQUEST_ID
from server.persisted import PersistedQueries
from server.runtime import Runtime
from subscriptions import http, topics
from subscriptions.broker import Listening, Payload
from subscriptions.connection import (
    CLOSE_FORBIDDEN,
    CLOSE_GOING_AWAY,
    CLOSE_NO_PROTOCOL,
    PROTOCOLS,
    Connection,
)
from subscriptions.documents import Preparer
from subscriptions.fields import LIVE_FIELDS
from subscriptions.hub import Hub, Sub
from subscriptions.operations import SocketOperations
from subscriptions.presence import Presence
from subscriptions.serving import TEXT_FRAMES
from subscriptions.statuses import Statuses

log = logging.getLogger("entativa.realtime")


class Realtime:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.broker = runtime.stores.broker
        self.hub = Hub(self.broker, runtime.schema._schema, self.context)
        self.preparer = Preparer(runtime.schema._schema, runtime.settings)
        self.operations = SocketOperations(runtime.schema, self.preparer)
        self.persisted = PersistedQueries(runtime.settings, runtime.stores.cache)
        online = 3 * self.tick_seconds  # a mark outlives two missed heartbeats
        self.presence = Presence(runtime.stores.cache, self.broker, online_seconds=online)
        self.statuses = Statuses(self.presence)
        self.connections: set[Any] = set()
        self._per_user: dict[tuple[str, int], int] = defaultdict(int)
        self._counted: set[Connection] = set()  # signed-in sockets in _per_user
        self._revoked: Listening | None = None
        self._pinger: asyncio.Task[None] | None = None
        self.closing = False
        self._all_gone = asyncio.Event()  # set when the last connection is forgotten

    async def start(self) -> None:
        if self._revoked is None:
            self._revoked = await self.broker.subscribe([topics.REVOKED], self._on_revoked)
        if self._pinger is None:
            self._pinger = asyncio.create_task(self._ping_forever(), name="realtime-ping")

    # ── per request ─────────────────────────────────────────────────────

    def context(self, platform: str, viewer: Viewer | None, request_id: str) -> Context:
        """A fresh context (fresh DataLoaders: data as of now) for one execution."""
        runtime = self.runtime
        return Context(
            platform=platform,
            viewer=viewer,
            settings=runtime.settings,
            stores=runtime.stores,
            loaders=Loaders(runtime.stores, platform),
            auth=runtime.auth,
            request_id=request_id,
        )

    async def blocked_of(self, platform: str, user_id: int) -> frozenset[int]:
        return await blocked_either_way(self.runtime.stores.db, user_id)

    # ── websockets ──────────────────────────────────────────────────────

    async def serve_websocket(self, scope: Any, receive: Any, send: Any, platform: str) -> None:
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return
        offered = scope.get("subprotocols") or []
        protocol = next((p for p in PROTOCOLS if p in offered), None)
        if protocol is None or self.closing:
            await send({"type": "websocket.accept"})
            code = CLOSE_NO_PROTOCOL if protocol is None else CLOSE_GOING_AWAY
            await send(
                {"type": "websocket.close", "code": code, "reason": "Subprotocol not acceptable"}
            )
            return
        await send({"type": "websocket.accept", "subprotocol": protocol})
        request_id = scope.get(SCOPE_REQUEST_ID)
        frames = (scope.get("extensions") or {}).get(TEXT_FRAMES)
        connection = Connection(self, platform, protocol, receive, send, request_id, frames)
        self.connections.add(connection)
        await connection.run()

    # ── HTTP streams ────────────────────────────────────────────────────

    async def serve_http(
        self, scope: Any, receive: Any, send: Any, platform: str, viewer: Viewer | None
    ) -> tuple[bool, Any]:
        """Stream a subscription asked for as SSE or multipart; (False, receive) for
        anything else, with what was read of the request put back."""
        mode = http.wanted_mode(scope)
        if mode is None or scope["method"] not in ("GET", "POST"):
            return False, receive
        payload, messages = await http.read_request(scope, receive)
        replay = http.replaying(messages, receive)
        try:
            payload = await self.persisted.resolve_payload(payload)
            kind = self.preparer.prepare(payload).kind
        except Exception:  # invalid: the normal view answers with its errors
            return False, replay
        if kind != "subscription":
            return False, replay
        stream = http.HttpStream(self, platform, viewer, mode, send, scope.get(SCOPE_REQUEST_ID))
        await stream.serve(payload, receive)
        return True, replay

    # ── connections ─────────────────────────────────────────────────────

    def admit(self, connection: Connection) -> bool:
        """Count a signed-in connection against its user's limit; False when full."""
        viewer = connection.viewer
        if viewer is None:
            return True
        key = (viewer.platform, viewer.user_id)
        if self._per_user[key] >= self.settings.max_connections_per_user:
            connection.viewer = None  # not counted, so `forget` must not uncount it
            return False
        self._per_user[key] += 1
        self._counted.add(connection)
        return True

    async def connected(self, connection: Connection) -> None:
        """A signed-in socket was acknowledged: its user is online (and those who may
        see their presence are told, when it is their first socket here)."""
        if connection.viewer is not None:
            user_id = connection.viewer.user_id
            if await self.presence.connected(connection.platform, user_id):
                await self.statuses.announce_connection(connection.platform, user_id)

    def release(self, peer: Any) -> None:
        """`peer` (a socket or an HTTP stream) is gone from this process."""
        self.connections.discard(peer)
        if not self.connections:
            self._all_gone.set()

    async def forget(self, connection: Connection) -> None:
        self.release(connection)
        viewer = connection.viewer
        if viewer is not None and connection in self._counted:
            self._counted.discard(connection)
            key = (viewer.platform, viewer.user_id)
            self._per_user[key] -= 1
            if self._per_user[key] <= 0:
                del self._per_user[key]
            if connection.acked:
                with contextlib.suppress(Exception):  # a cache outage must not leak subs
                    if await self.presence.disconnected(connection.platform, viewer.user_id):
                        await self.statuses.announce_connection(connection.platform, viewer.user_id)
        for sub in list(connection.ops.values()):
            if sub is not None:
                await self.hub.remove(sub)
        connection.ops.clear()

    async def open(self, peer: Any, op_id: str, payload: Any) -> Sub | None:
        """Start an operation: a subscription joins the hub (returned); a query or
        mutation is executed and answered now (None)."""
        payload = await self.persisted.resolve_payload(payload)  # APQ, trusted documents
        prepared = self.preparer.prepare(payload)
        context = self.context(peer.platform, peer.viewer, peer.request_id)
        if prepared.kind != "subscription":
            result = await self.operations.execute(prepared, context)
            body: dict[str, Any] = {"data": result.data}
            if result.errors:
                body["errors"] = [e.formatted for e in result.errors]
            peer.answer(op_id, _json(body))
            return None
        field = LIVE_FIELDS.get(prepared.root_field)
        if field is None:
            raise BadUserInput(f"{prepared.root_field} is not live on this server yet")
        await field.authorize(context, prepared.arguments)
        subject = tuple(field.topics(peer.platform, prepared.arguments))
        mine = (topics.access(peer.platform, peer.viewer.user_id),) if peer.viewer else ()
        sub = Sub(peer, op_id, prepared, field, subject + mine)
        await self.hub.add(sub)
        return sub

    # ── process-wide ────────────────────────────────────────────────────

    def _on_revoked(self, _topic: str, data: Payload) -> None:
        family = topics.decode(data).get("family_id")
        for connection in list(self.connections):
            viewer = connection.viewer
            if viewer is not None and viewer.family_id == family:
                connection.close_soon(CLOSE_FORBIDDEN, "session revoked")

    @property
    def tick_seconds(self) -> float:
        """Keep-alive and presence heartbeat period (heartbeats go on without pings)."""
        return self.settings.ws_ping_seconds or 15.0

    async def _ping_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            if self.settings.ws_ping_seconds > 0:
                for connection in list(self.connections):
                    connection.ping()
            try:
                await self.presence.heartbeat_local()
            except Exception:
                log.warning("presence heartbeat failed", exc_info=True)

    async def close(self, grace: float = 2.0) -> None:
        """Close every socket with 1001 (going away), then stop listening.

        Called before uvicorn's own shutdown (server/serving.py), which would
        otherwise close them with 1012; the lifespan's shutdown calls it again
        (idempotent) for servers started some other way.
        """
        self.closing = True
        for connection in list(self.connections):
            connection.close_soon(CLOSE_GOING_AWAY, "server shutting down")
        if self.connections:
            self._all_gone.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._all_gone.wait()
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None
        if self._revoked is not None:
            with contextlib.suppress(Exception):
                await self._revoked.close()
            self._revoked = None
        await self.hub.close()


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))
