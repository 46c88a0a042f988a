"""Presence and typing in the cache (in-process and Redis), never a durable store;
and presence driven by real sockets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from datasources.cache import Cache, MemoryCache, RedisCache
from resolvers.ids import decode_id
from subscriptions.broker import InProcessBroker
from subscriptions.presence import TYPING_SECONDS, Presence, typing_topic
from subscriptions.topics import decode
from tests.conftest import create_users
from tests.realtime_support import live_server, open_socket
from tests.services import REDIS_URL
from tests.test_realtime_broker import require_redis


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    require_redis()
    shared = RedisCache(REDIS_URL, prefix=f"test-presence-{uuid.uuid4().hex[:8]}:")
    yield shared
    await shared.close()


async def test_online_while_a_connection_is_open(cache: Cache) -> None:
    presence = Presence(cache)
    assert not await presence.is_online("socialink", 1)
    assert await presence.last_seen("socialink", 1) is None
    assert await presence.connected("socialink", 1) is True  # the first socket
    assert await presence.connected("socialink", 1) is False  # a second device
    assert await presence.is_online("socialink", 1)
    assert not await presence.is_online("vignette", 1)
    assert await presence.disconnected("socialink", 1) is False
    assert await presence.is_online("socialink", 1)  # the other device is still there
    assert await presence.disconnected("socialink", 1) is True  # the last one
    assert not await presence.is_online("socialink", 1)
    assert await presence.last_seen("socialink", 1) is not None


async def test_online_expires_without_heartbeats() -> None:
    clock = Clock()
    presence = Presence(MemoryCache(clock=clock), clock=clock, online_seconds=30)
    await presence.heartbeat("socialink", 7)
    clock.now += 20
    assert await presence.is_online("socialink", 7)
    await presence.heartbeat("socialink", 7)
    clock.now += 20
    assert await presence.is_online("socialink", 7)
    clock.now += 11
    assert not await presence.is_online("socialink", 7)
    seen = await presence.last_seen("socialink", 7)
    assert seen is not None and seen.timestamp() == pytest.approx(1_000_020.0)


async def test_typing_expires_by_itself_after_six_seconds(cache: Cache) -> None:
    clock = Clock()
    broker = InProcessBroker()
    heard: list[dict[str, Any]] = []
    await broker.subscribe(
        [typing_topic("socialink", "c1")], lambda _t, data: heard.append(decode(data))
    )
    presence = Presence(cache, broker, clock=clock)
    await presence.typing("socialink", "c1", 5)
    clock.now += 3
    await presence.typing("socialink", "c1", 6)
    assert await presence.typists("socialink", "c1") == [5, 6]
    assert await presence.typists("socialink", "c2") == []
    clock.now += TYPING_SECONDS - 3 + 0.01
    assert await presence.typists("socialink", "c1") == [6]
    await presence.stopped_typing("socialink", "c1", 6)
    assert await presence.typists("socialink", "c1") == []
    assert [(m["user_id"], m["typing"]) for m in heard] == [(5, True), (6, True), (6, False)]


async def test_a_socket_makes_its_user_online_until_it_closes(app: Any) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    presence = app.state.realtime.presence
    user_id = decode_id(alice.id, "User")
    async with live_server(app) as address:
        sock = await open_socket(address, alice.token)
        anonymous = await open_socket(address, None)
        assert await presence.is_online("socialink", user_id)
        await sock.close()
        await anonymous.close()
        await asyncio.sleep(0.1)
        assert not await presence.is_online("socialink", user_id)
        assert await presence.last_seen("socialink", user_id) is not None
