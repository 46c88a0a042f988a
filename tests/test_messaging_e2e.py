"""The reference client (clients/messaging) end to end through the real API.

Every test plays real clients: keys generated and kept client-side, X3DH from
bundles claimed through claimPreKeyBundles, the Double Ratchet, MLS groups
committed through the delivery service, envelopes read from the queue or the
live `envelopes` subscription over websockets. Runs on SQLite and PostgreSQL
(the `app` fixture).

- sessions and the ratchet both ways, from a claimed bundle;
- multi-device fan-out, and the client recovering from MISMATCHED_DEVICES;
- an MLS group: adds with Welcome, application messages, removal, and two
  concurrent commits of which exactly one wins (the other gets CONFLICT,
  applies the winner and commits again);
- the server never holds a plaintext: after a conversation, every row of every
  table, every cache entry and every file the app wrote are searched;
- 1,000 messages while the receiver's socket drops and resumes with
  afterSequence at random points: each arrives exactly once, in order.
"""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text

from clients.messaging import Api, Device, GraphQLError, Identity
from clients.messaging.attachments import Pointer
from server.settings import RateLimit, RateLimits, Settings
from tests.conftest import Account, create_users
from tests.realtime_support import live_server

PREKEY_STATUS = "query($d: Int!) { preKeyStatus(deviceId: $d) { oneTimePreKeyCount } }"
SEND_GROUP = """
mutation($input: GroupMessageInput!) { sendGroupMessage(input: $input) { duplicate } }
"""
CONVERSATION = """
query($id: ID!) { conversation(id: $id) { id kind epoch members { id } unreadCount } }
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest settings with a writes bucket for a client sending 1,000 messages
    in seconds (the limits themselves are tests/test_rate_limits.py's)."""
    writes = RateLimit(per_minute=100_000, burst=5_000)
    return settings.model_copy(update={"rate_limits": RateLimits(writes=writes)})


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process (no websockets needed)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def new_device(
    http: httpx.AsyncClient, account: Account, identity: Identity | None = None
) -> Device:
    """A device of `account` registered through the API (linked when `identity` is given)."""
    device = Device.create(account.id, identity, api=Api(http, account.token))
    await device.register()
    return device


async def read_all(device: Device) -> list[Any]:
    """Open and acknowledge everything queued for `device`."""
    envelopes = await device.pending()
    opened = [await device.open(envelope) for envelope in envelopes]
    await device.acknowledge(envelopes)
    return opened


async def test_session_from_a_claimed_bundle_then_the_ratchet_both_ways(
    app: Any, http: httpx.AsyncClient
) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    alice = await new_device(http, ada)
    bobby = await new_device(http, bob)
    before = await bobby.request(PREKEY_STATUS, {"d": bobby.device_id})

    sent = await alice.send([bob.id], b"hi bob, this is ada")
    assert sent["deliveredDeviceCount"] == 1 and sent["duplicate"] is False
    after = await bobby.request(PREKEY_STATUS, {"d": bobby.device_id})
    consumed = before["preKeyStatus"]["oneTimePreKeyCount"]
    assert after["preKeyStatus"]["oneTimePreKeyCount"] == consumed - 1  # the claim took one

    (first,) = await read_all(bobby)
    assert first.envelope["type"] == "PREKEY_MESSAGE"
    assert first.sender == alice.address
    assert first.plaintext == b"hi bob, this is ada"
    assert first.conversation_id == sent["conversationId"]

    for turn in range(6):
        speaker, listener, to = (bobby, alice, ada) if turn % 2 == 0 else (alice, bobby, bob)
        text_ = f"turn {turn}".encode()
        await speaker.send([to.id], text_, conversation_id=sent["conversationId"])
        (got,) = await read_all(listener)
        assert got.plaintext == text_
        assert got.envelope["type"] == "CIPHERTEXT"  # Bob answers; Ada has his reply
    assert await bobby.pending() == []  # acknowledged envelopes are gone

    # Resending the same clientMessageId is a no-op: nothing is queued twice.
    again = await alice.send([bob.id], b"once", client_message_id="m-1")
    twice = await alice.send([bob.id], b"once", client_message_id="m-1")
    assert twice["duplicate"] is True and again["duplicate"] is False
    assert [m.plaintext for m in await read_all(bobby)] == [b"once"]

    conversation = await alice.request(CONVERSATION, {"id": sent["conversationId"]})
    assert conversation["conversation"]["kind"] == "DIRECT"


async def test_fan_out_to_every_device_and_the_senders_others(
    app: Any, http: httpx.AsyncClient
) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    ada1 = await new_device(http, ada)
    ada2 = await new_device(http, ada, ada1.identity)
    bob1 = await new_device(http, bob)
    bob2 = await new_device(http, bob, bob1.identity)
    assert (ada2.device_id, bob2.device_id) == (2, 2)

    sent = await ada1.send([bob.id], b"to all of us")
    assert sent["deliveredDeviceCount"] == 3
    for device in (ada2, bob1, bob2):
        (got,) = await read_all(device)
        assert got.plaintext == b"to all of us" and got.sender == ada1.address
    assert await ada1.pending() == []  # not to the sending device itself

    # Bob links a third device: Ada's client is told (MISMATCHED_DEVICES), claims
    # its bundle and re-encrypts; the new device reads the message.
    bob3 = await new_device(http, bob, bob1.identity)
    sent = await ada1.send([bob.id], b"after bob's new phone")
    assert sent["deliveredDeviceCount"] == 4
    for device in (ada2, bob1, bob2, bob3):
        (got,) = await read_all(device)
        assert got.plaintext == b"after bob's new phone"

    # Bob reinstalls: a new identity key on his primary removes his other devices.
    # Ada's client is told (MISMATCHED_DEVICES / STALE_DEVICES), claims again and
    # re-encrypts; the reinstalled device reads it under a new session.
    fresh = await new_device(http, bob)
    assert fresh.device_id == 1
    sent = await ada1.send([bob.id], b"after bob's reinstall")
    assert sent["deliveredDeviceCount"] == 2  # Bob's new primary and Ada's tablet
    (got,) = await read_all(fresh)
    assert got.plaintext == b"after bob's reinstall" and got.envelope["type"] == "PREKEY_MESSAGE"
    assert [m.plaintext for m in await read_all(ada2)] == [b"after bob's reinstall"]
    assert sorted(ada1.devices[bob.id]) == [1]

    # Addressing that leaves a device out is refused, and nothing is queued.
    envelopes = await ada1.encrypt_for([(bob.id, 1)], b"partial")
    with pytest.raises(GraphQLError) as refused:
        await ada1.request(
            """mutation($input: SendMessageInput!) { sendMessage(input: $input) { duplicate } }""",
            {"input": {"clientMessageId": "p", "senderDeviceId": 1, "envelopes": envelopes}},
        )
    assert refused.value.code == "MISMATCHED_DEVICES"
    assert refused.value.extensions["missingDevices"] == [{"userId": ada.id, "deviceIds": [2]}]
    for device in (ada2, fresh):
        assert await device.pending() == []


async def test_mls_group_adds_removes_conflicts_and_messages(
    app: Any, http: httpx.AsyncClient
) -> None:
    ada, bob, cyd, dan = await create_users(app, ["ada", "bob", "cyd", "dan"])
    a = await new_device(http, ada)
    b = await new_device(http, bob)
    b2 = await new_device(http, bob, b.identity)
    c = await new_device(http, cyd)
    d = await new_device(http, dan)
    for device in (b, b2, c, d):
        assert await device.publish_key_packages(3) == 3

    group = await a.create_group("trip")
    welcomed = await a.add_members(group, [bob.id, cyd.id])
    assert welcomed["epoch"] == 1
    assert {m["id"] for m in welcomed["members"]} == {ada.id, bob.id, cyd.id}
    for device in (b, b2, c):
        (welcome,) = await read_all(device)
        assert welcome.kind == "welcome" and device.groups[group].epoch == 1
    assert await d.pending() == []  # not a member: no Welcome

    await a.send_group(group, b"hello group")
    await b2.send_group(group, b"hello from bob's tablet")
    assert [m.plaintext for m in await read_all(b)] == [b"hello group", b"hello from bob's tablet"]
    assert [m.plaintext for m in await read_all(c)] == [b"hello group", b"hello from bob's tablet"]
    assert [m.plaintext for m in await read_all(b2)] == [b"hello group"]
    assert [m.plaintext for m in await read_all(a)] == [b"hello from bob's tablet"]

    # Two members commit for the same epoch at once: exactly one wins.
    results = await asyncio.gather(
        b.add_members(group, [dan.id]), c.update_keys(group), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, GraphQLError)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert losers[0].code == "CONFLICT"
    assert winners[0]["epoch"] == 2
    loser = b if isinstance(results[0], GraphQLError) else c
    for device in (a, b, b2, c):
        await read_all(device)  # the winning commit (and dan's Welcome if it won)
        assert device.groups[group].epoch == 2
    # A Welcome reaches Dan only once its commit was accepted: the loser's never.
    dan_queue = [e["type"] for e in await d.pending()]
    assert dan_queue == ([] if loser is b else ["MLS_WELCOME"])
    # The loser applied the winner and commits its change again.
    if loser is b:
        await b.add_members(group, [dan.id])
    else:
        await c.update_keys(group)
    for device in (a, b, b2, c, d):
        await read_all(device)
    assert all(device.groups[group].epoch == 3 for device in (a, b, b2, c, d))

    await d.send_group(group, b"dan joined")
    for device in (a, b, b2, c):
        assert [m.plaintext for m in await read_all(device)] == [b"dan joined"]

    # Cyd is removed: her devices learn it from the commit and receive nothing after.
    late = a.groups[group].encrypt(b"written before the removal")  # for epoch 3
    removed = await a.remove_members(group, [cyd.id])
    assert removed["epoch"] == 4
    assert {m["id"] for m in removed["members"]} == {ada.id, bob.id, dan.id}
    (removal,) = await read_all(c)
    assert removal.kind == "removed" and not c.groups[group].active
    for device in (b, b2, d):
        await read_all(device)
    await b.send_group(group, b"without cyd")
    assert await c.pending() == []
    for device in (a, b2, d):
        assert [m.plaintext for m in await read_all(device)] == [b"without cyd"]

    # A message of an epoch a commit closed is CONFLICT, and nobody receives it.
    with pytest.raises(GraphQLError) as old:
        await a.request(
            SEND_GROUP,
            {
                "input": {
                    "conversationId": group,
                    "senderDeviceId": a.device_id,
                    "epoch": 3,
                    "clientMessageId": "late",
                    "ciphertext": base64.b64encode(late).decode(),
                }
            },
        )
    assert old.value.code == "CONFLICT"
    for device in (b, b2, c, d):
        assert await device.pending() == []


# ── the server never holds a plaintext ────────────────────────────────────


async def _every_stored_value(app: Any, settings: Any) -> list[tuple[str, bytes]]:
    """(where, bytes) of every value in every store the app wrote to."""
    found: list[tuple[str, bytes]] = []
    engine = app.state.runtime.stores.db.engine
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "messaging_envelopes" in tables
        for table in tables:
            result = await conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result.all():
                for column, value in zip(columns, row, strict=True):
                    found.append((f"{table}.{column}", _as_bytes(value)))
    cache = app.state.runtime.stores.cache
    for key, (value, _expires) in getattr(cache, "_entries", {}).items():
        found.append((f"cache {key}", key.encode() + b"\n" + value.encode()))
    for root in {Path(settings.data_dir), Path(settings.resolved_media_dir)}:
        if root.exists():
            for path in root.rglob("*"):
                if path.is_file() and not path.name.startswith("entativa.db"):
                    found.append((f"file {path}", path.read_bytes()))
    return found


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


async def test_no_store_holds_a_plaintext(app: Any, http: httpx.AsyncClient, settings: Any) -> None:
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    a = await new_device(http, ada)
    a2 = await new_device(http, ada, a.identity)
    b = await new_device(http, bob)
    c = await new_device(http, cyd)
    marker = uuid.uuid4().hex
    plaintexts = [f"{marker} secret {i}: meet at the old mill".encode() for i in range(12)]

    direct = None
    for i, plaintext in enumerate(plaintexts[:8]):
        speaker, to = (a, bob) if i % 2 == 0 else (b, ada)
        sent = await speaker.send([to.id], plaintext, conversation_id=direct)
        direct = sent["conversationId"]
        for device in (a, a2, b):
            await read_all(device)
    await c.publish_key_packages(1)
    await b.publish_key_packages(1)
    group = await a.create_group(f"{marker} group name is metadata")
    await a.add_members(group, [bob.id, cyd.id])
    for device in (b, c):
        await read_all(device)
    for plaintext in plaintexts[8:]:
        await a.send_group(group, plaintext)  # left unread in the queues on purpose
    # One more direct message left unread too.
    await b.send([ada.id], plaintexts[0] + b" (again)")
    # An attachment: encrypted before upload, its key only inside a message.
    photo = marker.encode() + b" the photo of the map " * 200
    pointer = await a.upload_attachment(photo)
    await a.send([bob.id], b"see attachment: " + pointer.encode(), conversation_id=direct)
    (note,) = [m for m in await read_all(b) if m.kind == "direct"]
    assert await b.download_attachment(Pointer.decode(note.plaintext.split(b": ", 1)[1])) == photo
    plaintexts.append(photo[:200])
    key_text = pointer.key.encode()

    stored = await _every_stored_value(app, settings)
    assert any(b"MLS" in v or len(v) > 100 for _, v in stored)  # ciphertext is there
    assert any(where.startswith("messaging_envelopes.content") for where, _ in stored)
    for plaintext in plaintexts:
        needles = [plaintext, plaintext[len(marker) :], base64.b64encode(plaintext)]
        for where, value in stored:
            for needle in needles:
                assert needle not in value, f"plaintext found in {where}"
    assert not any(key_text in value for _, value in stored)  # the attachment key neither
    assert any(where.startswith("file ") for where, _ in stored)  # the ciphertext file
    # The scan does see what the server legitimately keeps (it reads real data).
    assert any(marker.encode() in v for where, v in stored if "conversations" in where)


# ── 1,000 messages across disconnects ────────────────────────────────────


async def test_a_thousand_messages_arrive_once_in_order_across_reconnects(app: Any) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    async with (
        live_server(app) as address,
        httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as http,
    ):
        alice = await new_device(http, ada)
        bobby = await new_device(http, bob)
        await alice.send([bob.id], b"hello")
        (first,) = await read_all(bobby)
        await bobby.send([ada.id], b"hi")  # Ada's next messages need no X3DH header
        await read_all(alice)
        url = f"ws://{address}/socialink/graphql"
        total = 1000
        expected = [f"message {i:04d}".encode() for i in range(total)]

        async def sender() -> None:
            for plaintext in expected:
                await alice.send([bob.id], plaintext)

        sending = asyncio.create_task(sender())
        rng = random.Random(1000)
        received: list[bytes] = []
        sequences: list[int] = []
        last: int | None = first.sequence
        reconnects = 0
        while len(received) < total:
            if sending.done() and sending.exception():
                raise AssertionError("sending failed") from sending.exception()
            subscription = await bobby.subscribe(url, after_sequence=last)
            try:
                for _ in range(rng.randint(1, 120)):
                    if len(received) == total:
                        break
                    data = await subscription.next(within=30)
                    message = await bobby.open(data["envelopes"])
                    sequences.append(message.sequence)
                    received.append(message.plaintext)
                    last = message.sequence
            finally:
                if rng.random() < 0.5:
                    await subscription.close()  # a clean close mid-stream
                else:
                    subscription.ws.transport.abort()  # the network drops: no close frame
            reconnects += 1
        await sending
        assert reconnects > 10
        assert received == expected  # each exactly once, in order, decrypted
        assert sequences == list(range(sequences[0], sequences[0] + total))
