"""The broker contract, run on the in-process broker and on Redis pub/sub."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import pytest

from subscriptions.broker import Broker, InProcessBroker, RedisBroker, build_broker
from subscriptions.topics import decode, encode
from tests.services import REDIS_URL, require


def require_redis() -> None:
    where = urlparse(REDIS_URL)
    require("Redis", where.hostname or "127.0.0.1", where.port or 6379)


def redis_broker() -> RedisBroker:
    require_redis()
    return RedisBroker(REDIS_URL, prefix=f"test-rt-{uuid.uuid4().hex[:8]}:")


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Broker, Broker]]:
    """Two handles on one broker: one process (memory) or two connections (Redis)."""
    if request.param == "memory":
        one = InProcessBroker()
        yield one, one
        await one.close()
        return
    first = redis_broker()
    second = RedisBroker(REDIS_URL, prefix=first.prefix)
    yield first, second
    await first.close()
    await second.close()


class Inbox:
    def __init__(self) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.arrived = asyncio.Event()

    def __call__(self, topic: str, message: bytes) -> None:
        self.got.append((topic, message))
        self.arrived.set()

    async def wait_for(self, count: int, within: float = 2.0) -> list[tuple[str, bytes]]:
        async with asyncio.timeout(within):
            while len(self.got) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.got


async def settle() -> None:
    """Long enough for a message that should NOT arrive to have arrived."""
    await asyncio.sleep(0.1)


async def test_a_subscriber_receives_what_is_published_on_its_topic(
    pair: tuple[Broker, Broker],
) -> None:
    publisher, subscriber = pair
    inbox = Inbox()
    await subscriber.subscribe(["post:1"], inbox)
    await publisher.publish("post:1", b"hello")
    await publisher.publish("post:2", b"other topic")
    assert await inbox.wait_for(1) == [("post:1", b"hello")]
    await settle()
    assert inbox.got == [("post:1", b"hello")]


async def test_every_subscriber_of_a_topic_receives_each_message_in_order(
    pair: tuple[Broker, Broker],
) -> None:
    publisher, subscriber = pair
    first, second = Inbox(), Inbox()
    await subscriber.subscribe(["t"], first)
    await subscriber.subscribe(["t", "u"], second)
    for number in range(20):
        await publisher.publish("t", str(number).encode())
    await publisher.publish("u", b"u")
    expected = [("t", str(number).encode()) for number in range(20)]
    assert await first.wait_for(20) == expected
    assert await second.wait_for(21) == [*expected, ("u", b"u")]


async def test_closing_a_subscription_stops_delivery_to_it_only(
    pair: tuple[Broker, Broker],
) -> None:
    publisher, subscriber = pair
    leaving, staying = Inbox(), Inbox()
    gone = await subscriber.subscribe(["t"], leaving)
    await subscriber.subscribe(["t"], staying)
    await gone.close()
    await gone.close()  # idempotent
    await publisher.publish("t", b"after")
    assert await staying.wait_for(1) == [("t", b"after")]
    await settle()
    assert leaving.got == []


async def test_a_topic_can_be_listened_to_again_after_everyone_left(
    pair: tuple[Broker, Broker],
) -> None:
    publisher, subscriber = pair
    first = await subscriber.subscribe(["t"], Inbox())
    await first.close()
    inbox = Inbox()
    await subscriber.subscribe(["t"], inbox)
    await publisher.publish("t", b"again")
    assert await inbox.wait_for(1) == [("t", b"again")]


async def test_a_failing_handler_does_not_stop_the_others(pair: tuple[Broker, Broker]) -> None:
    publisher, subscriber = pair

    def broken(_topic: str, _message: bytes) -> None:
        raise RuntimeError("boom")

    inbox = Inbox()
    await subscriber.subscribe(["t"], broken)
    await subscriber.subscribe(["t"], inbox)
    await publisher.publish("t", b"1")
    await publisher.publish("t", b"2")
    assert [m for _, m in await inbox.wait_for(2)] == [b"1", b"2"]


async def test_binary_messages_arrive_unchanged(pair: tuple[Broker, Broker]) -> None:
    publisher, subscriber = pair
    inbox = Inbox()
    await subscriber.subscribe(["bin"], inbox)
    payload = bytes(range(256)) * 4
    await publisher.publish("bin", payload)
    assert await inbox.wait_for(1) == [("bin", payload)]


async def test_an_encoded_message_arrives_as_itself_here_and_as_its_json_elsewhere(
    pair: tuple[Broker, Broker],
) -> None:
    publisher, subscriber = pair
    inbox = Inbox()
    await subscriber.subscribe(["t"], inbox)
    message = {"sequence": 7, "envelope": {"id": 1, "content": "AAE="}}
    await publisher.publish("t", encode(message))
    ((_, received),) = await inbox.wait_for(1)
    assert decode(received) == message
    if isinstance(publisher, InProcessBroker):
        assert decode(received) is message  # no JSON made, none parsed
    else:
        assert json.loads(bytes(received)) == message


async def test_in_one_process_no_json_is_made_of_a_message() -> None:
    broker, inbox = InProcessBroker(), Inbox()
    await broker.subscribe(["t"], inbox)
    not_json = {"ids": {1, 2}}  # a set: json.dumps would raise
    await broker.publish("t", encode(not_json))
    assert decode((await inbox.wait_for(1))[0][1]) is not_json


def test_the_redis_url_picks_the_broker() -> None:
    assert isinstance(build_broker(""), InProcessBroker)
    assert isinstance(build_broker("redis://127.0.0.1:6379/15"), RedisBroker)
