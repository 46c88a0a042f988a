"""Calls: startCall delivers the OFFER to the callees' devices, sendCallSignal relays the
rest among the members' devices, an unanswered call ends after its ring time, and
nothing but the call row is ever stored. Over real websockets (callSignals)."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from datasources.messaging.call_tables import CallRow
from resolvers.messaging.calls import MAX_SIGNAL_BYTES, ring_key, sweep_ringing
from tests.conftest import Account, GraphQLClient, create_users
from tests.messaging_realtime_support import census, conversation, pk
from tests.messaging_support import register_device
from tests.realtime_support import (
    Socket,
    http_client,
    live_server,
    open_socket,
    subscriptions_live,
)
from tests.stories_support import Clock

CALL_FIELDS = "id kind conversationId caller { username } startedAt endedAt"
START = f"mutation($i: StartCallInput!) {{ startCall(input: $i) {{ {CALL_FIELDS} }} }}"
SIGNAL = "mutation($i: CallSignalInput!) { sendCallSignal(input: $i) }"
NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on Call {{ {CALL_FIELDS} }} }} }}"
SIGNALS = """
subscription($d: Int!) {
  callSignals(deviceId: $d) { callId type fromUser { username } fromDeviceId payload at }
}
"""
BLOCK = "mutation($id: ID!) { block(userId: $id) { blocking } }"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
async def server(app: Any) -> AsyncIterator[tuple[str, GraphQLClient]]:
    async with live_server(app) as address, http_client(address) as client:
        yield address, client


async def _listen(address: str, account: Account, device_id: int) -> Socket:
    socket = await open_socket(address, account.token)
    await socket.subscribe("s", SIGNALS, {"d": device_id})
    return socket


async def _calls(app: Any) -> list[CallRow]:
    async with app.state.runtime.stores.db.session() as session:
        return list(await session.scalars(select(CallRow)))


def _start(chat: str, device: int, offer: bytes, kind: str = "VIDEO") -> dict[str, Any]:
    return {
        "i": {"conversationId": chat, "kind": kind, "senderDeviceId": device, "offer": b64(offer)}
    }


def _signal(call: str, device: int, kind: str, payload: bytes | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"callId": call, "senderDeviceId": device, "type": kind}
    if payload is not None:
        body["payload"] = b64(payload)
    return {"i": body}


async def test_a_call_from_offer_to_hangup(app: Any, server: tuple[str, GraphQLClient]) -> None:
    address, gql = server
    ada, bob, eve = await create_users(app, ["ada", "bob", "eve"])
    ada1 = await register_device(gql, ada.token)
    bob1 = await register_device(gql, bob.token)
    bob2 = await register_device(gql, bob.token, identity=bob1.identity)
    eve1 = await register_device(gql, eve.token)
    chat = await conversation(app, [ada, bob])
    at_ada = await _listen(address, ada, ada1.device_id)
    at_bob1 = await _listen(address, bob, bob1.device_id)
    at_bob2 = await _listen(address, bob, bob2.device_id)
    at_eve = await _listen(address, eve, eve1.device_id)
    await subscriptions_live(app, 4)
    before = await census(app)

    offer = os.urandom(300)  # opaque: the server relays whatever bytes it gets
    call = (await gql(START, _start(chat, ada1.device_id, offer), token=ada.token)).ok()[
        "startCall"
    ]
    assert call["kind"] == "VIDEO"
    assert call["conversationId"] == chat
    assert call["caller"] == {"username": "ada"}
    assert call["endedAt"] is None
    for socket in (at_bob1, at_bob2):  # every device of the callee
        got = (await socket.next("s"))["data"]["callSignals"]
        assert got["callId"] == call["id"]
        assert got["type"] == "OFFER"
        assert got["fromUser"] == {"username": "ada"}
        assert got["fromDeviceId"] == ada1.device_id
        assert base64.b64decode(got["payload"]) == offer
    assert await at_ada.silent(0.2)  # not back to the caller

    answer = os.urandom(200)
    signal = _signal(call["id"], bob2.device_id, "ANSWER", answer)
    assert (await gql(SIGNAL, signal, token=bob.token)).ok() == {"sendCallSignal": True}
    got = (await at_ada.next("s"))["data"]["callSignals"]
    assert (got["type"], got["fromDeviceId"]) == ("ANSWER", bob2.device_id)
    assert base64.b64decode(got["payload"]) == answer
    # bob's other device learns it was answered elsewhere (stops ringing)
    assert (await at_bob1.next("s"))["data"]["callSignals"]["type"] == "ANSWER"
    assert await at_bob2.silent(0.2)  # never echoed to the sender

    candidate = os.urandom(80)
    ice = _signal(call["id"], ada1.device_id, "ICE_CANDIDATE", candidate)
    (await gql(SIGNAL, ice, token=ada.token)).ok()
    for socket in (at_bob1, at_bob2):
        got = (await socket.next("s"))["data"]["callSignals"]
        assert got["type"] == "ICE_CANDIDATE"
        assert base64.b64decode(got["payload"]) == candidate

    (await gql(SIGNAL, _signal(call["id"], bob2.device_id, "HANGUP"), token=bob.token)).ok()
    hangup = (await at_ada.next("s"))["data"]["callSignals"]
    assert (hangup["type"], hangup["payload"]) == ("HANGUP", None)
    ended = (await gql(NODE, {"id": call["id"]}, token=ada.token)).ok()["node"]
    assert ended["endedAt"] is not None
    late = await gql(SIGNAL, ice, token=ada.token)
    assert late.codes == ["CONFLICT"]
    assert await at_eve.silent(0.2)  # not a member: nothing at all

    # Only the call row remains: no signal, no payload in any table.
    after = await census(app)
    assert after.pop("messaging_calls") == before.pop("messaging_calls") + 1
    assert after == before
    (row,) = await _calls(app)
    stored = [getattr(row, column.key) for column in CallRow.__table__.columns]
    assert all(not isinstance(value, bytes) for value in stored)
    for socket in (at_ada, at_bob1, at_bob2, at_eve):
        await socket.close()


async def test_calls_named_together_are_read_in_one_statement(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    """Several `node` fields naming calls batch through the call loader: reading three
    calls costs the statements reading one does, and each still shows its own call."""
    ada, *others = await create_users(app, ["ada", "bob", "cyd", "dan"])
    ada1 = await register_device(gql, ada.token)
    calls = []
    for other in others:
        await register_device(gql, other.token)
        chat = await conversation(app, [ada, other])
        started = (await gql(START, _start(chat, ada1.device_id, b"offer"), token=ada.token)).ok()
        calls.append(started["startCall"])

    async def statements_reading(some: list[dict[str, Any]]) -> int:
        fields = " ".join(
            f'c{n}: node(id: "{call["id"]}") {{ ... on Call {{ {CALL_FIELDS} }} }}'
            for n, call in enumerate(some)
        )
        sql_counter.clear()
        shown = (await gql(f"{{ {fields} }}", token=ada.token)).ok()
        assert [shown[f"c{n}"] for n in range(len(some))] == some
        return len(sql_counter)

    assert await statements_reading(calls) == await statements_reading(calls[:1])


async def test_outsiders_and_bad_input_change_nothing(app: Any, gql: GraphQLClient) -> None:
    ada, bob, eve = await create_users(app, ["ada", "bob", "eve"])
    ada1 = await register_device(gql, ada.token)
    await register_device(gql, bob.token)
    eve1 = await register_device(gql, eve.token)
    chat = await conversation(app, [ada, bob])

    outsider = await gql(START, _start(chat, eve1.device_id, b"offer"), token=eve.token)
    assert outsider.codes == ["NOT_FOUND"]
    signed_out = await gql(START, _start(chat, ada1.device_id, b"offer"))
    assert signed_out.codes == ["UNAUTHENTICATED"]
    not_mine = await gql(START, _start(chat, 9, b"offer"), token=ada.token)
    assert not_mine.codes == ["BAD_USER_INPUT"]
    huge = await gql(
        START, _start(chat, ada1.device_id, b"x" * (MAX_SIGNAL_BYTES + 1)), token=ada.token
    )
    assert huge.codes == ["PAYLOAD_TOO_LARGE"]
    empty = await gql(START, _start(chat, ada1.device_id, b""), token=ada.token)
    assert empty.codes == ["BAD_USER_INPUT"]
    bad_id = await gql(START, _start("nope", ada1.device_id, b"offer"), token=ada.token)
    assert bad_id.codes == ["BAD_USER_INPUT"]
    assert await _calls(app) == []  # nothing stored by any of them

    call = (await gql(START, _start(chat, ada1.device_id, b"offer"), token=ada.token)).ok()
    call_id = call["startCall"]["id"]
    eve_signal = _signal(call_id, eve1.device_id, "ANSWER", b"sdp")
    assert (await gql(SIGNAL, eve_signal, token=eve.token)).codes == ["NOT_FOUND"]
    assert (await gql(NODE, {"id": call_id}, token=eve.token)).ok() == {"node": None}
    assert (await gql(NODE, {"id": call_id})).ok() == {"node": None}
    offer_again = _signal(call_id, ada1.device_id, "OFFER", b"sdp")
    assert (await gql(SIGNAL, offer_again, token=ada.token)).codes == ["BAD_USER_INPUT"]
    no_payload = _signal(call_id, ada1.device_id, "ANSWER")
    assert (await gql(SIGNAL, no_payload, token=ada.token)).codes == ["BAD_USER_INPUT"]
    (row,) = await _calls(app)
    assert row.answered_at is None and row.ended_at is None  # refused signals changed nothing


async def test_call_signals_of_own_devices_only(
    app: Any, server: tuple[str, GraphQLClient]
) -> None:
    address, gql = server
    ada, bob = await create_users(app, ["ada", "bob"])
    await register_device(gql, ada.token)
    theirs = await open_socket(address, bob.token)
    await theirs.subscribe("s", SIGNALS, {"d": 1})  # ada's device id, bob has none
    refused = await theirs.receive()
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "NOT_FOUND"
    anonymous = await open_socket(address, None)
    await anonymous.subscribe("s", SIGNALS, {"d": 1})
    refused = await anonymous.receive()
    assert refused["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await theirs.close()
    await anonymous.close()


async def test_an_unanswered_call_rings_out(app: Any, server: tuple[str, GraphQLClient]) -> None:
    address, gql = server
    app.state.runtime.settings.call_ring_seconds = 0.5  # 60 s in production
    ada, bob = await create_users(app, ["ada", "bob"])
    ada1 = await register_device(gql, ada.token)
    bob1 = await register_device(gql, bob.token)
    chat = await conversation(app, [ada, bob])
    at_ada = await _listen(address, ada, ada1.device_id)
    at_bob = await _listen(address, bob, bob1.device_id)
    await subscriptions_live(app, 2)

    call = (await gql(START, _start(chat, ada1.device_id, b"offer"), token=ada.token)).ok()[
        "startCall"
    ]
    assert (await at_bob.next("s"))["data"]["callSignals"]["type"] == "OFFER"
    for socket in (at_bob, at_ada):  # both sides stop ringing
        assert (await socket.next("s", within=5))["data"]["callSignals"]["type"] == "HANGUP"
    (row,) = await _calls(app)
    assert row.ended_at == row.started_at + timedelta(seconds=0.5)
    shown = (await gql(NODE, {"id": call["id"]}, token=bob.token)).ok()["node"]
    assert datetime.fromisoformat(shown["endedAt"]) == row.ended_at
    late = _signal(call["id"], bob1.device_id, "ANSWER", b"sdp")
    assert (await gql(SIGNAL, late, token=bob.token)).codes == ["CONFLICT"]
    await at_ada.close()
    await at_bob.close()


async def test_ring_timeout_on_the_clock_and_the_sweep(app: Any, gql: GraphQLClient) -> None:
    stores = app.state.runtime.stores
    clock = Clock()
    stores.clock = clock
    ada, bob = await create_users(app, ["ada", "bob"])
    ada1 = await register_device(gql, ada.token)
    await register_device(gql, bob.token)
    chat = await conversation(app, [ada, bob])
    call = (await gql(START, _start(chat, ada1.device_id, b"offer"), token=ada.token)).ok()[
        "startCall"
    ]
    stores.timers.disarm(ring_key(pk(call["id"])))  # as if its process had died
    clock.move(seconds=59)
    assert (await gql(NODE, {"id": call["id"]}, token=ada.token)).ok()["node"]["endedAt"] is None
    assert await sweep_ringing(stores, 60) == 0
    clock.move(seconds=2)
    started = datetime.fromisoformat(call["startedAt"])
    shown = (await gql(NODE, {"id": call["id"]}, token=ada.token)).ok()["node"]
    assert datetime.fromisoformat(shown["endedAt"]) == started + timedelta(seconds=60)
    assert await sweep_ringing(stores, 60) == 1
    assert await sweep_ringing(stores, 60) == 0  # once only
    (row,) = await _calls(app)
    assert row.ended_at == started + timedelta(seconds=60)


async def test_an_answered_call_does_not_ring_out(app: Any, gql: GraphQLClient) -> None:
    stores = app.state.runtime.stores
    clock = Clock()
    stores.clock = clock
    ada, bob = await create_users(app, ["ada", "bob"])
    ada1 = await register_device(gql, ada.token)
    bob1 = await register_device(gql, bob.token)
    chat = await conversation(app, [ada, bob])
    call = (await gql(START, _start(chat, ada1.device_id, b"offer"), token=ada.token)).ok()[
        "startCall"
    ]
    answer = _signal(call["id"], bob1.device_id, "ANSWER", b"sdp")
    (await gql(SIGNAL, answer, token=bob.token)).ok()
    assert not stores.timers.armed(ring_key(pk(call["id"])))
    clock.move(minutes=10)
    assert await sweep_ringing(stores, 60) == 0
    shown = (await gql(NODE, {"id": call["id"]}, token=ada.token)).ok()["node"]
    assert shown["endedAt"] is None  # a call in progress


async def test_a_blocked_callee_gets_no_offer(app: Any, server: tuple[str, GraphQLClient]) -> None:
    address, gql = server
    ada, bob = await create_users(app, ["ada", "bob"])
    ada1 = await register_device(gql, ada.token)
    bob1 = await register_device(gql, bob.token)
    chat = await conversation(app, [ada, bob])
    (await gql(BLOCK, {"id": ada.id}, token=bob.token)).ok()
    at_bob = await _listen(address, bob, bob1.device_id)
    await subscriptions_live(app, 1)
    result = await gql(START, _start(chat, ada1.device_id, b"offer"), token=ada.token)
    assert result.ok()["startCall"]["caller"] == {"username": "ada"}  # the caller is not told
    assert await at_bob.silent(0.3)
    await at_bob.close()


async def test_group_calls_end_with_the_caller_only(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    ada1 = await register_device(gql, ada.token)
    bob1 = await register_device(gql, bob.token)
    await register_device(gql, cyd.token)
    group = await conversation(app, [ada, bob, cyd], kind="GROUP")
    call = (
        await gql(START, _start(group, ada1.device_id, b"offer", "AUDIO"), token=ada.token)
    ).ok()
    call_id = call["startCall"]["id"]
    (await gql(SIGNAL, _signal(call_id, bob1.device_id, "REJECT"), token=bob.token)).ok()
    shown = (await gql(NODE, {"id": call_id}, token=ada.token)).ok()["node"]
    assert (shown["kind"], shown["endedAt"]) == ("AUDIO", None)  # cyd may still answer
    (await gql(SIGNAL, _signal(call_id, ada1.device_id, "HANGUP"), token=ada.token)).ok()
    shown = (await gql(NODE, {"id": call_id}, token=bob.token)).ok()["node"]
    assert shown["endedAt"] is not None
