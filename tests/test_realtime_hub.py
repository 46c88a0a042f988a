"""subscriptions/hub.py and topics.py: a broker message for resumable streams only
reaches their buffers as it is published, unless something is ahead of it; and a
message published in this process is not parsed again by its receivers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, ClassVar

from graphql import GraphQLError, GraphQLSchema

from resolvers.context import Viewer
from subscriptions.broker import InProcessBroker
from subscriptions.documents import Prepared
from subscriptions.hub import Hub, Sub
from subscriptions.live import SKIP
from subscriptions.topics import decode, encode


class Peer:
    platform = "socialink"
    viewer: Viewer | None = None
    blocked: frozenset[int] = frozenset()
    request_id = "test"

    def push_next(self, sub: Sub, payload: str) -> None:
        raise AssertionError("nothing is delivered in these tests")

    def next_prefix(self, op_id: str) -> str:
        return op_id

    def end(self, sub: Sub, errors: list[GraphQLError]) -> None:
        raise AssertionError(f"ended: {errors}")

    async def refresh_access(self) -> None:
        return None


class Delivered:
    """What the streams' tasks took from their buffers, in the order they did."""

    def __init__(self) -> None:
        self.entries: list[int] = []
        self.changed = asyncio.Event()

    def add(self, entry: int) -> None:
        self.entries.append(entry)
        self.changed.set()

    async def until(self, count: int) -> list[int]:
        async with asyncio.timeout(5):
            while len(self.entries) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.entries


class EmptyLog:
    async def read_after(self, cursor: int | None, limit: int) -> Sequence[int]:
        return []


class Queue:
    """A resumable field whose entries are the announced sequences."""

    name: ClassVar[str] = "queue"
    resumable: ClassVar[bool] = True

    def __init__(self, delivered: Delivered | None = None) -> None:
        self.delivered = delivered or Delivered()

    def handles(self, message: dict[str, Any]) -> bool:
        return isinstance(message.get("sequence"), int)

    def hidden_by(self, message: dict[str, Any]) -> Sequence[int]:
        return ()

    def log(self, context: Any, arguments: dict[str, Any]) -> EmptyLog:
        return EmptyLog()

    def after(self, arguments: dict[str, Any]) -> int | None:
        return None

    def cursor_of(self, entry: int) -> int:
        return entry

    def live_entry(self, arguments: dict[str, Any], message: dict[str, Any]) -> int:
        return int(message["sequence"])

    async def root(self, context: Any, entry: int) -> Any:
        self.delivered.add(entry)
        return SKIP  # nothing to send: these peers have no socket


class Comments(Queue):
    """A fan-out field (not resumable) that no message here concerns."""

    name: ClassVar[str] = "comments"
    resumable: ClassVar[bool] = False

    def handles(self, message: dict[str, Any]) -> bool:
        return False


def subscribe(field: Any, topics: tuple[str, ...]) -> Sub:
    prepared = Prepared("", None, None, None, {}, "subscription", field.name, {})  # type: ignore[arg-type]
    return Sub(Peer(), field.name, prepared, field, topics)


async def hub_with(*subs: Sub) -> tuple[Hub, InProcessBroker]:
    broker = InProcessBroker()
    hub = Hub(broker, GraphQLSchema(), lambda *_: None)  # type: ignore[arg-type,return-value]
    for sub in subs:
        await hub.add(sub)
    return hub, broker


def buffered(hub: Hub, sub: Sub) -> list[int]:
    return list(hub._runs[sub].live.entries)


async def test_a_message_for_streams_only_is_in_their_buffer_when_publish_returns() -> None:
    stream = subscribe(Queue(), ("device:1",))
    hub, broker = await hub_with(stream)
    await broker.publish("device:1", encode({"sequence": 1}))
    await broker.publish("device:1", encode({"sequence": 2}))
    assert buffered(hub, stream) == [1, 2]  # no turn of the loop in between
    await hub.close()


async def test_a_message_behind_a_queued_one_waits_its_turn() -> None:
    delivered = Delivered()
    stream = subscribe(Queue(delivered), ("device:1",))
    shared = subscribe(Queue(delivered), ("post:7",))
    comments = subscribe(Comments(), ("post:7",))  # post:7 is not for streams only
    hub, broker = await hub_with(stream, shared, comments)
    await broker.publish("post:7", encode({"sequence": 5}))
    await broker.publish("device:1", encode({"sequence": 1}))
    assert buffered(hub, shared) == buffered(hub, stream) == []  # both in the inbox
    assert sorted(await delivered.until(2)) == [1, 5]  # the hub's task dispatched them
    await hub.close()


def test_a_message_decodes_to_itself_here_and_from_its_bytes_elsewhere() -> None:
    message = {"sequence": 3, "envelope": {"id": 9, "content": "AAE="}}
    data = encode(message)
    assert decode(data) is message  # the in-process broker passes this very object
    assert json.loads(bytes(data)) == message  # what Redis carries
    assert decode(bytes(data)) == message and decode(bytes(data)) is not message
