"""The `envelopes(deviceId, afterSequence)` subscription over real websockets: the
device's queue replayed after the cursor, then live, every envelope exactly once
and in order, including envelopes sent while the subscription starts; only the
device's own user may subscribe. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from datasources.messaging.queue import (
    EnvelopeRecord,
    announce,
    device_topic,
    envelope_from_message,
)
from resolvers.ids import decode_id
from subscriptions.broker import RedisBroker
from subscriptions.messaging import VIEWER_ARGUMENT, Envelopes
from subscriptions.topics import decode, encode
from tests.conftest import GraphQLClient, create_users
from tests.realtime_support import LEGACY, TRANSPORT, Socket, http_client, live_server, open_socket
from tests.services import REDIS_URL
from tests.test_messaging_relay import add_devices, addressed, envelope, send
from tests.test_realtime_broker import Inbox, redis_broker

ENVELOPES = """
subscription($d: Int!, $after: Int) {
  envelopes(deviceId: $d, afterSequence: $after) { id sequence type senderId content expiresAt }
}
"""
ACK = "mutation($d: Int!, $ids: [ID!]!) { acknowledgeEnvelopes(deviceId: $d, ids: $ids) }"


@pytest.fixture
async def server(app: Any) -> AsyncIterator[tuple[str, GraphQLClient]]:
    async with live_server(app) as address, http_client(address) as gql:
        yield address, gql


async def received(sock: Socket, count: int, op_id: str = "e") -> list[dict[str, Any]]:
    got = []
    for _ in range(count):
        payload = await sock.next(op_id)
        assert "errors" not in payload, payload
        got.append(payload["data"]["envelopes"])
    return got


def contents(envelopes: list[dict[str, Any]]) -> list[bytes]:
    return [base64.b64decode(e["content"]) for e in envelopes]


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_replay_after_the_cursor_then_live(
    app: Any, server: tuple[str, GraphQLClient], protocol: str
) -> None:
    address, gql = server
    ada, bob = await create_users(app, ["ada", "bob"])
    await add_devices(app, ada, 1)
    await add_devices(app, bob, 2)
    for i in range(1, 4):
        (await send(gql, ada, addressed(ada, 1, bob, 2, f"m{i}".encode()), f"m{i}")).ok()

    sock = await open_socket(address, bob.token, protocol)
    await sock.subscribe("e", ENVELOPES, {"d": 1, "after": 1})
    replayed = await received(sock, 2)
    assert [e["sequence"] for e in replayed] == [2, 3]
    assert contents(replayed) == [b"m2", b"m3"]
    assert replayed[0]["senderId"] == ada.id and replayed[0]["type"] == "CIPHERTEXT"

    for i in range(4, 6):
        (await send(gql, ada, addressed(ada, 1, bob, 2, f"m{i}".encode()), f"m{i}")).ok()
    live = await received(sock, 2)
    assert [e["sequence"] for e in live] == [4, 5] and contents(live) == [b"m4", b"m5"]
    assert await sock.silent()

    # From the start of the queue without afterSequence, on another socket.
    other = await open_socket(address, bob.token, protocol)
    await other.subscribe("e", ENVELOPES, {"d": 2})
    assert [e["sequence"] for e in await received(other, 5)] == [1, 2, 3, 4, 5]
    assert await other.silent()
    await sock.close()
    await other.close()


async def test_envelopes_sent_while_subscribing_arrive_once_in_order(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    ada, bob = await create_users(app, ["ada", "bob"])
    await add_devices(app, ada, 1)
    await add_devices(app, bob, 1)
    total = 40

    async def sender() -> None:
        for i in range(total):
            (await send(gql, ada, [envelope(bob, 1, f"{i}".encode())], f"c{i}")).ok()

    sending = asyncio.create_task(sender())
    await asyncio.sleep(0.05)  # some are queued before, some during, some after
    sock = await open_socket(address, bob.token)
    await sock.subscribe("e", ENVELOPES, {"d": 1})
    got = await received(sock, total, "e")
    await sending
    assert [e["sequence"] for e in got] == list(range(1, total + 1))
    assert contents(got) == [f"{i}".encode() for i in range(total)]
    assert await sock.silent()
    await sock.close()


async def test_resuming_skips_acknowledged_and_expired_envelopes(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    ada, bob = await create_users(app, ["ada", "bob"])
    await add_devices(app, ada, 1)
    await add_devices(app, bob, 1)
    stores = app.state.runtime.stores
    start = datetime(2030, 1, 1, tzinfo=UTC)
    stores.clock = lambda: start
    (await send(gql, ada, [envelope(bob, 1, b"short")], "1", expiresInSeconds=5)).ok()
    (await send(gql, ada, [envelope(bob, 1, b"acked")], "2")).ok()
    (await send(gql, ada, [envelope(bob, 1, b"kept")], "3")).ok()
    sock = await open_socket(address, bob.token)
    await sock.subscribe("e", ENVELOPES, {"d": 1})
    first = await received(sock, 3)
    (await gql(ACK, {"d": 1, "ids": [first[1]["id"]]}, token=bob.token)).ok()
    await sock.close()

    stores.clock = lambda: start + timedelta(seconds=10)
    again = await open_socket(address, bob.token)
    await again.subscribe("e", ENVELOPES, {"d": 1})
    assert contents(await received(again, 1)) == [b"kept"]
    (await send(gql, ada, [envelope(bob, 1, b"new")], "4")).ok()
    assert [e["sequence"] for e in await received(again, 1)] == [4]
    assert await again.silent()
    await again.close()


async def test_only_the_devices_own_user_subscribes(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    ada, bob = await create_users(app, ["ada", "bob"])
    await add_devices(app, ada, 1)
    await add_devices(app, bob, 1)
    (await send(gql, ada, [envelope(bob, 1, b"secret")], "1")).ok()

    for token, device_id, code in ((ada.token, 2, "NOT_FOUND"), (None, 1, "UNAUTHENTICATED")):
        sock = await open_socket(address, token)
        await sock.subscribe("e", ENVELOPES, {"d": device_id})
        message = await sock.receive()
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == code
        await sock.close()
    # ada's own device 1 has nothing: bob's queue is not hers
    sock = await open_socket(address, ada.token)
    await sock.subscribe("e", ENVELOPES, {"d": 1})
    assert await sock.silent()
    bad = await open_socket(address, bob.token)
    await bad.subscribe("e", ENVELOPES, {"d": 1, "after": -1})
    message = await bad.receive()
    assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await sock.close()
    await bad.close()


async def test_the_per_subscriber_path_streams_the_same(app: Any, gql: GraphQLClient) -> None:
    """schema.subscribe (strawberry's own handlers) replays then goes live too."""
    from datasources.registry import Loaders
    from resolvers.context import Context, Viewer

    ada, bob = await create_users(app, ["ada", "bob"])
    await add_devices(app, ada, 1)
    await add_devices(app, bob, 1)
    (await send(gql, ada, [envelope(bob, 1, b"one")], "1")).ok()
    runtime = app.state.runtime
    viewer = runtime.auth.read_access_token(bob.token)
    assert isinstance(viewer, Viewer)
    context = Context(
        platform="socialink",
        viewer=viewer,
        settings=runtime.settings,
        stores=runtime.stores,
        loaders=Loaders(runtime.stores, "socialink"),
        auth=runtime.auth,
        request_id="test",
    )
    stream = await runtime.schema.subscribe(
        ENVELOPES, variable_values={"d": 1}, context_value=context
    )
    first = await anext(stream)  # type: ignore[arg-type]
    assert first.data["envelopes"]["sequence"] == 1
    (await send(gql, ada, [envelope(bob, 1, b"two")], "2")).ok()
    second = await asyncio.wait_for(anext(stream), 5)  # type: ignore[arg-type]
    assert base64.b64decode(second.data["envelopes"]["content"]) == b"two"
    await stream.aclose()  # type: ignore[union-attr]


async def test_a_long_backlog_replays_to_a_slow_reader_without_overflowing(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    """More envelopes than a socket's outgoing queue holds (ws_queue_size): the replay
    waits for the socket to drain instead of closing it as too slow."""
    from datasources.messaging.queue import OutgoingEnvelope, Sender, enqueue
    from tests.test_messaging_relay import pk

    address, _ = server
    ada, bob = await create_users(app, ["ada", "bob"])
    await add_devices(app, ada, 1)
    await add_devices(app, bob, 1)
    stores = app.state.runtime.stores
    total = 3 * app.state.runtime.settings.ws_queue_size
    queued = [OutgoingEnvelope(pk(bob.id), 1, "CIPHERTEXT", bytes(32 * 1024)) for _ in range(total)]
    async with stores.db.transaction() as session:
        await enqueue(session, Sender("socialink", pk(ada.id), 1), queued, stores.clock())

    sock = await open_socket(address, bob.token, stalling=True)
    await sock.subscribe("e", ENVELOPES, {"d": 1})
    await asyncio.sleep(1.0)  # not reading: the server's side fills up
    got = await received(sock, total)
    assert [e["sequence"] for e in got] == list(range(1, total + 1))
    assert await sock.silent()
    await sock.close()


async def test_a_live_announcement_carries_the_stored_envelope(
    app: Any, gql: GraphQLClient
) -> None:
    """Live delivery uses the envelope the announcement carries instead of reading it
    back: it must be the committed row, field for field; an announcement of several
    envelopes of one device carries none (the stream reads the queue)."""
    ada, bob = await create_users(app, ["ada", "bob"])
    await add_devices(app, ada, 1)
    await add_devices(app, bob, 1)
    stores = app.state.runtime.stores
    bob_id = decode_id(bob.id, "User")
    heard: list[dict[str, Any]] = []
    topic = device_topic(bob.platform, bob_id, 1)
    listening = await stores.broker.subscribe([topic], lambda _t, data: heard.append(decode(data)))
    try:
        content = bytes(range(256))
        sent = [envelope(bob, 1, content)]
        (await send(gql, ada, sent, "1", expiresInSeconds=60)).ok()
        (message,) = heard
        stored = await stores.envelopes.at_sequence(bob_id, 1, 1, stores.clock())
        assert message["envelope"] == stored  # in this process: the record itself
        from_redis = json.loads(bytes(encode(message)))  # what another process receives
        carried = envelope_from_message(from_redis["envelope"])
        assert carried == stored and carried.content == content
        assert carried.expires_at is not None

        for received in (message, from_redis):
            entry = Envelopes().live_entry({"deviceId": 1, VIEWER_ARGUMENT: bob_id}, received)
            assert entry is not None and entry.record == stored
            elsewhere = Envelopes().live_entry({"deviceId": 2, VIEWER_ARGUMENT: bob_id}, received)
            assert elsewhere is not None and elsewhere.record is None  # not its device's: read

        heard.clear()
        await announce(stores.broker, [stored, replace(stored, id=stored.id + 1, sequence=2)])
        assert heard == [{"sequence": 2}]
    finally:
        await listening.close()


async def test_a_carried_envelope_that_expired_before_delivery_is_not_sent(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    ada, bob = await create_users(app, ["ada", "bob"])
    await add_devices(app, ada, 1)
    await add_devices(app, bob, 1)
    stores = app.state.runtime.stores
    start = datetime(2030, 1, 1, tzinfo=UTC)
    stores.clock = lambda: start
    sock = await open_socket(address, bob.token)
    await sock.subscribe("e", ENVELOPES, {"d": 1})
    (await send(gql, ada, [envelope(bob, 1, b"first")], "1")).ok()
    assert contents(await received(sock, 1)) == [b"first"]  # live from here

    calls = 0

    def clock() -> datetime:  # the send reads it once; delivery is 10 s later
        nonlocal calls
        calls += 1
        return start if calls == 1 else start + timedelta(seconds=10)

    stores.clock = clock
    (await send(gql, ada, [envelope(bob, 1, b"short")], "2", expiresInSeconds=5)).ok()
    (await send(gql, ada, [envelope(bob, 1, b"kept")], "3")).ok()
    got = await received(sock, 1)
    assert contents(got) == [b"kept"] and got[0]["sequence"] == 3
    assert await sock.silent()
    await sock.close()


async def test_envelopes_are_completed_without_building_an_executor(
    app: Any, server: tuple[str, GraphQLClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every field of an Envelope is a plain leaf: the hub completes each delivered
    envelope itself (schema/execution.py PlainSelection), replayed or live, with what
    graphql-core's executor would give (tests/test_execution.py)."""
    from schema.execution import LeanExecutor

    built: list[object] = []
    original = LeanExecutor.build.__func__  # type: ignore[attr-defined]

    def counting(cls: type[LeanExecutor], *args: Any, **kwargs: Any) -> Any:
        built.append(args[2])  # the root value: an event
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(LeanExecutor, "build", classmethod(counting))
    address, gql = server
    ada, bob = await create_users(app, ["ada", "bob"])
    await add_devices(app, ada, 1)
    await add_devices(app, bob, 1)
    (await send(gql, ada, [envelope(bob, 1, b"replayed")], "1")).ok()
    sock = await open_socket(address, bob.token, TRANSPORT)
    await sock.subscribe("e", ENVELOPES, {"d": 1})
    (await send(gql, ada, [envelope(bob, 1, b"live")], "2")).ok()
    delivered = await received(sock, 2)
    assert contents(delivered) == [b"replayed", b"live"]
    assert delivered[1]["senderId"] == ada.id and delivered[1]["expiresAt"] is None
    assert not [root for root in built if type(root).__name__ == "Envelope"]


async def test_an_announcement_from_another_process_carries_the_same_envelope() -> None:
    """Over Redis the announcement's envelope travels as JSON and is the same record
    at the other end, ready for live delivery without a read."""
    first = redis_broker()
    second = RedisBroker(REDIS_URL, prefix=first.prefix)
    now = datetime.now(UTC)
    record = EnvelopeRecord(
        id=3, platform="socialink", recipient_id=2, recipient_device_id=1, sequence=9,
        type="CIPHERTEXT", sender_id=1, sender_device_id=1, conversation_id=4, message_id=5,
        content=bytes(range(256)), server_timestamp=now, expires_at=now + timedelta(days=1),
    )  # fmt: skip
    inbox = Inbox()
    try:
        await second.subscribe([device_topic("socialink", 2, 1)], inbox)
        await announce(first, [record])
        ((_, data),) = await inbox.wait_for(1)
        assert isinstance(data, bytes)
        entry = Envelopes().live_entry({"deviceId": 1, VIEWER_ARGUMENT: 2}, decode(data))
        assert entry is not None and entry.record == record
    finally:
        await first.close()
        await second.close()
