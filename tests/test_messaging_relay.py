"""The relay through the API: sendMessage's addressing rules, device queues,
conversations, read states, disappearing messages and the purge, on SQLite and
PostgreSQL. (The live `envelopes` stream: tests/test_messaging_relay_live.py.)

Devices are inserted straight into `messaging_devices` (`add_devices`): these
tests are about relaying opaque bytes, not keys (tests/test_messaging_keys.py).
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from datasources.messaging.conversations import direct_key
from datasources.messaging.envelopes import Addressed, Addressing, Outgoing, SendRequest
from datasources.messaging.queue import OutgoingEnvelope, Sender
from datasources.messaging.tables import (
    ConversationRow,
    EnvelopeRow,
    MessageRow,
    MessagingDeviceRow,
)
from resolvers.ids import encode_id, split_id
from resolvers.messaging.sweeper import sweep_once
from tests.conftest import Account, GraphQLClient, create_users
from tests.test_users_sql_count import counted

SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { conversationId serverTimestamp deliveredDeviceCount duplicate }
}
"""
PENDING = """
query($d: Int!, $first: Int, $after: String) {
  pendingEnvelopes(deviceId: $d, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id sequence type senderId senderDeviceId conversationId content
      serverTimestamp expiresAt } }
  }
}
"""
ACK = "mutation($d: Int!, $ids: [ID!]!) { acknowledgeEnvelopes(deviceId: $d, ids: $ids) }"
CONVERSATION_FIELDS = """
  id kind groupId epoch name lastActivityAt unreadCount disappearingAfterSeconds
  members { username } readStates { user { username } readUpTo }
"""
CONVERSATIONS = (
    "query($first: Int, $after: String) { conversations(first: $first, after: $after) {"
    " totalCount pageInfo { hasNextPage endCursor } edges { node {"
    + CONVERSATION_FIELDS
    + "} } } }"
)
CONVERSATION = "query($id: ID!) { conversation(id: $id) {" + CONVERSATION_FIELDS + "} }"
MARK_READ = """
mutation($c: ID!, $upTo: DateTime!) {
  markConversationRead(conversationId: $c, upTo: $upTo) {
    unreadCount readStates { user { username } readUpTo }
  }
}
"""
DISAPPEARING = """
mutation($c: ID!, $s: Int) {
  setDisappearingMessages(conversationId: $c, seconds: $s) { id disappearingAfterSeconds }
}
"""
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
BLOCK = "mutation($u: ID!) { block(userId: $u) { blocking } }"


def pk(global_id: str) -> int:
    parts = split_id(global_id)
    assert parts is not None
    return int(parts[1])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def add_devices(
    app: Any, account: Account, count: int, first_registration: int = 100
) -> None:
    """Devices 1..count of `account`, registration ids first_registration + device id."""
    stores = app.state.runtime.stores
    async with stores.db.transaction() as session:
        for device_id in range(1, count + 1):
            session.add(
                MessagingDeviceRow(
                    user_id=pk(account.id),
                    device_id=device_id,
                    platform=account.platform,
                    registration_id=first_registration + device_id,
                    created_at=stores.clock(),
                    signed_prekey_id=1,
                    signed_prekey=b"\x05" + bytes(32),
                    signed_prekey_signature=bytes(64),
                    last_sequence=0,
                )
            )


def envelope(
    to: Account, device_id: int, content: bytes = b"ciphertext", **extra: Any
) -> dict[str, Any]:
    return {
        "recipientId": to.id,
        "recipientDeviceId": device_id,
        "recipientRegistrationId": extra.pop("registration", 100 + device_id),
        "type": extra.pop("type", "CIPHERTEXT"),
        "content": b64(content),
    }


def addressed(
    sender: Account, sender_devices: int, to: Account, to_devices: int, content: bytes = b"hi"
) -> list[dict[str, Any]]:
    """One envelope per device of `to` and per other device of `sender` (device 1 sends)."""
    return [envelope(to, d, content) for d in range(1, to_devices + 1)] + [
        envelope(sender, d, content) for d in range(2, sender_devices + 1)
    ]


async def send(
    gql: GraphQLClient,
    sender: Account,
    envelopes: list[dict[str, Any]],
    client_id: str = "m1",
    **extra: Any,
) -> Any:
    data = {"clientMessageId": client_id, "senderDeviceId": 1, "envelopes": envelopes, **extra}
    return await gql(SEND, {"input": data}, token=sender.token)


async def rows(app: Any, table: Any) -> int:
    async with app.state.runtime.stores.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def stored(app: Any) -> tuple[int, int, int]:
    return (
        await rows(app, EnvelopeRow),
        await rows(app, MessageRow),
        await rows(app, ConversationRow),
    )


async def pending(gql: GraphQLClient, account: Account, device_id: int, **variables: Any) -> Any:
    result = await gql(PENDING, {"d": device_id, **variables}, token=account.token)
    return result.ok()["pendingEnvelopes"]


async def pair(
    app: Any, ada_devices: int = 2, bob_devices: int = 2
) -> tuple[Account, Account, Account]:
    ada, bob, cyd = await create_users(app, ["ada", "bob", "cyd"])
    await add_devices(app, ada, ada_devices)
    await add_devices(app, bob, bob_devices)
    await add_devices(app, cyd, 1)
    return ada, bob, cyd


# ── sendMessage ──────────────────────────────────────────────────────────


async def test_a_first_message_creates_the_direct_conversation_and_fills_every_queue(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, _ = await pair(app)
    result = (await send(gql, ada, addressed(ada, 2, bob, 2, b"\x00opaque\xff"))).ok()[
        "sendMessage"
    ]
    assert result["duplicate"] is False
    assert result["deliveredDeviceCount"] == 3  # bob's 1 and 2, ada's other device 2
    conversation_id = result["conversationId"]

    for account, device_id in ((bob, 1), (bob, 2), (ada, 2)):
        queue = await pending(gql, account, device_id)
        assert queue["totalCount"] == 1
        node = queue["edges"][0]["node"]
        assert node["sequence"] == 1
        assert node["type"] == "CIPHERTEXT"
        assert base64.b64decode(node["content"]) == b"\x00opaque\xff"
        assert node["senderId"] == ada.id and node["senderDeviceId"] == 1
        assert node["conversationId"] == conversation_id
        assert node["serverTimestamp"] == result["serverTimestamp"]
        assert node["expiresAt"] is None
    assert (await pending(gql, ada, 1))["totalCount"] == 0  # never the sending device

    theirs = (await gql(CONVERSATION, {"id": conversation_id}, token=bob.token)).ok()
    assert theirs["conversation"]["kind"] == "DIRECT"
    assert theirs["conversation"]["unreadCount"] == 1
    assert {m["username"] for m in theirs["conversation"]["members"]} == {"ada", "bob"}
    assert theirs["conversation"]["groupId"] is None and theirs["conversation"]["epoch"] is None
    mine = (await gql(CONVERSATION, {"id": conversation_id}, token=ada.token)).ok()
    assert mine["conversation"]["unreadCount"] == 0

    # The reply (either way round) lands in the same conversation: one per pair.
    back = (await send(gql, bob, addressed(bob, 2, ada, 2), "r1")).ok()["sendMessage"]
    assert back["conversationId"] == conversation_id
    assert (await pending(gql, ada, 1))["edges"][0]["node"]["sequence"] == 1
    assert [e["node"]["sequence"] for e in (await pending(gql, ada, 2))["edges"]] == [1, 2]
    assert await rows(app, ConversationRow) == 1


async def test_missing_and_extra_devices_are_refused_with_the_lists_and_nothing_stored(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, _ = await pair(app, ada_devices=2, bob_devices=3)
    # bob's device 3 and ada's own device 2 forgotten, a device 7 bob does not have
    envelopes = [envelope(bob, 1), envelope(bob, 2), envelope(bob, 7)]
    result = await send(gql, ada, envelopes)
    assert result.codes == ["MISMATCHED_DEVICES"]
    extensions = result.errors[0]["extensions"]
    missing = {d["userId"]: d["deviceIds"] for d in extensions["missingDevices"]}
    assert missing == {bob.id: [3], ada.id: [2]}
    assert extensions["extraDevices"] == [{"userId": bob.id, "deviceIds": [7]}]
    # The sending device itself is not to be addressed either.
    result = await send(gql, ada, addressed(ada, 2, bob, 3) + [envelope(ada, 1)])
    assert result.codes == ["MISMATCHED_DEVICES"]
    assert result.errors[0]["extensions"]["extraDevices"] == [{"userId": ada.id, "deviceIds": [1]}]
    assert await stored(app) == (0, 0, 0)
    # And after fixing the addressing, the same client id goes through.
    assert (await send(gql, ada, addressed(ada, 2, bob, 3))).ok()["sendMessage"][
        "duplicate"
    ] is False


async def test_a_stale_registration_id_is_refused_with_the_stale_devices(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, _ = await pair(app)
    envelopes = [envelope(bob, 1), envelope(bob, 2, registration=999), envelope(ada, 2)]
    result = await send(gql, ada, envelopes)
    assert result.codes == ["STALE_DEVICES"]
    assert result.errors[0]["extensions"]["staleDevices"] == [{"userId": bob.id, "deviceIds": [2]}]
    assert await stored(app) == (0, 0, 0)


async def test_content_over_96_kib_is_payload_too_large(app: Any, gql: GraphQLClient) -> None:
    ada, bob, _ = await pair(app, ada_devices=1, bob_devices=1)
    too_big = await send(gql, ada, [envelope(bob, 1, bytes(96 * 1024 + 1))])
    assert too_big.codes == ["PAYLOAD_TOO_LARGE"]
    assert await stored(app) == (0, 0, 0)
    just_fits = await send(gql, ada, [envelope(bob, 1, bytes(96 * 1024))])
    assert just_fits.ok()["sendMessage"]["deliveredDeviceCount"] == 1


async def test_bad_input_is_refused_and_nothing_stored(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cyd = await pair(app, ada_devices=1, bob_devices=1)
    cases: list[tuple[list[dict[str, Any]], dict[str, Any], str]] = [
        ([envelope(bob, 1)], {"clientMessageId": ""}, "BAD_USER_INPUT"),
        ([envelope(bob, 1)], {"expiresInSeconds": 0}, "BAD_USER_INPUT"),
        ([envelope(bob, 1)], {"senderDeviceId": 5}, "BAD_USER_INPUT"),
        ([envelope(bob, 1), envelope(bob, 1)], {}, "BAD_USER_INPUT"),  # a device twice
        ([envelope(bob, 1), envelope(cyd, 1)], {}, "BAD_USER_INPUT"),  # two users, no conversation
        ([envelope(bob, 1, type="MLS_COMMIT")], {}, "BAD_USER_INPUT"),
        ([{**envelope(bob, 1), "recipientId": "nonsense"}], {}, "BAD_USER_INPUT"),
    ]
    for envelopes, extra, code in cases:
        data = {"clientMessageId": "x", "senderDeviceId": 1, "envelopes": envelopes, **extra}
        result = await gql(SEND, {"input": data}, token=ada.token)
        assert result.codes == [code], (extra, result.errors)
    unknown = encode_id("User", 987654)
    result = await send(gql, ada, [{**envelope(bob, 1), "recipientId": unknown}])
    assert result.codes == ["NOT_FOUND"]
    assert (
        await gql(SEND, {"input": {"clientMessageId": "x", "senderDeviceId": 1, "envelopes": []}})
    ).codes == ["UNAUTHENTICATED"]
    assert await stored(app) == (0, 0, 0)


async def test_a_resend_with_the_same_client_id_is_a_no_op(app: Any, gql: GraphQLClient) -> None:
    ada, bob, _ = await pair(app)
    first = (await send(gql, ada, addressed(ada, 2, bob, 2))).ok()["sendMessage"]
    again = (await send(gql, ada, addressed(ada, 2, bob, 2))).ok()["sendMessage"]
    assert again == {**first, "duplicate": True}
    assert (await pending(gql, bob, 1))["totalCount"] == 1
    # Another sender may use the same client id: ids are the sender's own.
    assert (await send(gql, bob, addressed(bob, 2, ada, 2))).ok()["sendMessage"][
        "duplicate"
    ] is False


async def test_a_resend_naming_the_conversation_is_a_no_op(app: Any, gql: GraphQLClient) -> None:
    ada, bob, _ = await pair(app)
    conversation_id = (await send(gql, ada, addressed(ada, 2, bob, 2))).ok()["sendMessage"][
        "conversationId"
    ]
    first = await send(gql, ada, addressed(ada, 2, bob, 2), "n", conversationId=conversation_id)
    before = await stored(app)
    again = await send(gql, ada, addressed(ada, 2, bob, 2), "n", conversationId=conversation_id)
    assert again.ok()["sendMessage"] == {**first.ok()["sendMessage"], "duplicate": True}
    assert await stored(app) == before
    assert (await pending(gql, bob, 1))["totalCount"] == 2


async def test_a_resend_is_answered_before_the_addressing_rules(
    app: Any, gql: GraphQLClient
) -> None:
    """A client retrying after a lost answer gets it, even if its retry would now
    fail a rule (the rules read with the resend check, in one statement)."""
    ada, bob, cyd = await pair(app)
    first = (await send(gql, ada, addressed(ada, 2, bob, 2))).ok()["sendMessage"]
    before = await stored(app)
    one_device_short = [envelope(bob, 1), envelope(ada, 2)]
    two_users = [*addressed(ada, 2, bob, 2), envelope(cyd, 1)]
    for envelopes in (one_device_short, two_users):
        again = (await send(gql, ada, envelopes)).ok()["sendMessage"]
        assert again == {**first, "duplicate": True}
    assert await stored(app) == before
    assert (await send(gql, ada, one_device_short, "new")).codes == ["MISMATCHED_DEVICES"]
    assert (await send(gql, ada, two_users, "new")).codes == ["BAD_USER_INPUT"]
    assert await stored(app) == before


async def test_concurrent_resends_queue_the_message_once(app: Any, gql: GraphQLClient) -> None:
    ada, bob, _ = await pair(app)
    results = await asyncio.gather(
        *(send(gql, ada, addressed(ada, 2, bob, 2), "same") for _ in range(6))
    )
    sent = [r.ok()["sendMessage"] for r in results]
    assert sorted(s["duplicate"] for s in sent) == [False] + [True] * 5
    assert len({s["conversationId"] for s in sent}) == 1
    assert await stored(app) == (3, 1, 1)
    assert [e["node"]["sequence"] for e in (await pending(gql, bob, 2))["edges"]] == [1]


async def test_concurrent_first_messages_of_a_pair_share_one_conversation(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, _ = await pair(app)
    results = await asyncio.gather(
        *(send(gql, ada, addressed(ada, 2, bob, 2), f"m{i}") for i in range(3)),
        *(send(gql, bob, addressed(bob, 2, ada, 2), f"r{i}") for i in range(3)),
    )
    assert len({r.ok()["sendMessage"]["conversationId"] for r in results}) == 1
    assert await rows(app, ConversationRow) == 1
    assert [e["node"]["sequence"] for e in (await pending(gql, bob, 2))["edges"]] == list(
        range(1, 7)
    )


async def test_messages_to_someone_who_blocked_the_sender_are_dropped_silently(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, _ = await pair(app)
    (await gql(BLOCK, {"u": ada.id}, token=bob.token)).ok()
    result = (await send(gql, ada, addressed(ada, 2, bob, 2))).ok()["sendMessage"]
    assert result["duplicate"] is False and result["deliveredDeviceCount"] == 3  # looks normal
    assert (await pending(gql, bob, 1))["totalCount"] == 0
    assert (await pending(gql, bob, 2))["totalCount"] == 0
    assert (await pending(gql, ada, 2))["totalCount"] == 1  # ada's own copy, as always
    theirs = (await gql(CONVERSATION, {"id": result["conversationId"]}, token=bob.token)).ok()
    assert theirs["conversation"]["unreadCount"] == 0
    mine = (await gql(CONVERSATION, {"id": result["conversationId"]}, token=ada.token)).ok()
    assert mine["conversation"]["id"] == result["conversationId"]


async def test_with_a_conversation_id_only_members_send(app: Any, gql: GraphQLClient) -> None:
    ada, bob, cyd = await pair(app)
    conversation_id = (await send(gql, ada, addressed(ada, 2, bob, 2))).ok()["sendMessage"][
        "conversationId"
    ]
    ok = await send(gql, bob, addressed(bob, 2, ada, 2), "r", conversationId=conversation_id)
    assert ok.ok()["sendMessage"]["conversationId"] == conversation_id
    # cyd is no member: the conversation does not exist for cyd
    before = await stored(app)
    outsider = await send(
        gql, cyd, [envelope(ada, 1), envelope(ada, 2)], "c", conversationId=conversation_id
    )
    assert outsider.codes == ["NOT_FOUND"]
    # With the conversation, every other member's devices are expected.
    partial = await send(gql, ada, [envelope(ada, 2)], "p", conversationId=conversation_id)
    assert partial.codes == ["MISMATCHED_DEVICES"]
    assert await stored(app) == before


# ── queues ───────────────────────────────────────────────────────────────


async def test_pending_envelopes_are_the_devices_own_oldest_first_in_pages(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, cyd = await pair(app, ada_devices=1, bob_devices=1)
    for i in range(5):
        (await send(gql, ada, [envelope(bob, 1, f"m{i}".encode())], f"m{i}")).ok()
    first = await pending(gql, bob, 1, first=2)
    assert first["totalCount"] == 5 and first["pageInfo"]["hasNextPage"] is True
    rest = await pending(gql, bob, 1, first=10, after=first["pageInfo"]["endCursor"])
    contents = [base64.b64decode(e["node"]["content"]) for e in first["edges"] + rest["edges"]]
    assert contents == [f"m{i}".encode() for i in range(5)]
    assert rest["pageInfo"]["hasNextPage"] is False
    # a device id the viewer does not have: NOT_FOUND, even if someone else has it
    assert (await gql(PENDING, {"d": 2}, token=bob.token)).codes == ["NOT_FOUND"]
    assert (await pending(gql, cyd, 1))["totalCount"] == 0  # cyd's own device 1: empty
    assert (await gql(PENDING, {"d": 1})).codes == ["UNAUTHENTICATED"]


async def test_acknowledging_deletes_only_the_devices_own_envelopes(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, cyd = await pair(app, ada_devices=1, bob_devices=2)
    for i in range(3):
        (await send(gql, ada, addressed(ada, 1, bob, 2), f"m{i}")).ok()
    queue = await pending(gql, bob, 1)
    ids = [e["node"]["id"] for e in queue["edges"]]
    # others cannot delete them: cyd (no such envelopes), bob's other device
    assert (await gql(ACK, {"d": 1, "ids": ids}, token=cyd.token)).ok()["acknowledgeEnvelopes"] == 0
    assert (await gql(ACK, {"d": 2, "ids": ids}, token=bob.token)).ok()["acknowledgeEnvelopes"] == 0
    assert (await gql(ACK, {"d": 1, "ids": ["bad"]}, token=bob.token)).codes == ["BAD_USER_INPUT"]
    assert (await pending(gql, bob, 1))["totalCount"] == 3
    acked = await gql(ACK, {"d": 1, "ids": ids[:2]}, token=bob.token)
    assert acked.ok()["acknowledgeEnvelopes"] == 2
    left = await pending(gql, bob, 1)
    assert [e["node"]["id"] for e in left["edges"]] == ids[2:]
    assert (await pending(gql, bob, 2))["totalCount"] == 3  # the other device's copies stay
    again = await gql(ACK, {"d": 1, "ids": ids[:2]}, token=bob.token)
    assert again.ok()["acknowledgeEnvelopes"] == 0


async def test_node_finds_envelopes_and_conversations_for_their_owners_only(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, cyd = await pair(app, ada_devices=1, bob_devices=1)
    sent = (await send(gql, ada, [envelope(bob, 1)])).ok()["sendMessage"]
    envelope_id = (await pending(gql, bob, 1))["edges"][0]["node"]["id"]
    conversation_id = sent["conversationId"]
    assert (await gql(NODE, {"id": envelope_id}, token=bob.token)).ok()["node"] == {
        "__typename": "Envelope",
        "id": envelope_id,
    }
    assert (await gql(NODE, {"id": conversation_id}, token=ada.token)).ok()["node"] == {
        "__typename": "Conversation",
        "id": conversation_id,
    }
    for stranger in (ada, cyd):
        assert (await gql(NODE, {"id": envelope_id}, token=stranger.token)).ok()["node"] is None
    assert (await gql(NODE, {"id": conversation_id}, token=cyd.token)).ok()["node"] is None
    assert (await gql(NODE, {"id": conversation_id})).ok()["node"] is None


# ── conversations ────────────────────────────────────────────────────────


async def test_conversations_are_listed_by_latest_activity_for_members_only(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, cyd = await pair(app, ada_devices=1, bob_devices=1)
    clock = app.state.runtime.stores
    start = datetime(2030, 1, 1, tzinfo=UTC)
    clock.clock = lambda: start
    with_bob = (await send(gql, ada, [envelope(bob, 1)], "1")).ok()["sendMessage"]["conversationId"]
    clock.clock = lambda: start + timedelta(minutes=1)
    with_cyd = (await send(gql, ada, [envelope(cyd, 1)], "2")).ok()["sendMessage"]["conversationId"]
    page = (await gql(CONVERSATIONS, {"first": 1}, token=ada.token)).ok()["conversations"]
    assert page["totalCount"] == 2
    assert [e["node"]["id"] for e in page["edges"]] == [with_cyd]
    rest = await gql(
        CONVERSATIONS, {"first": 5, "after": page["pageInfo"]["endCursor"]}, token=ada.token
    )
    assert [e["node"]["id"] for e in rest.ok()["conversations"]["edges"]] == [with_bob]
    # bob writes in the older one: it moves up
    clock.clock = lambda: start + timedelta(minutes=2)
    (await send(gql, bob, [envelope(ada, 1)], "3")).ok()
    page = (await gql(CONVERSATIONS, {}, token=ada.token)).ok()["conversations"]
    assert [e["node"]["id"] for e in page["edges"]] == [with_bob, with_cyd]
    assert page["edges"][0]["node"]["lastActivityAt"] == "2030-01-01T00:02:00+00:00"
    # bob sees only his; cyd's conversation with ada is invisible to him
    bobs = (await gql(CONVERSATIONS, {}, token=bob.token)).ok()["conversations"]
    assert [e["node"]["id"] for e in bobs["edges"]] == [with_bob]
    hidden = await gql(CONVERSATION, {"id": with_cyd}, token=bob.token)
    assert hidden.codes == ["NOT_FOUND"] and hidden.data == {"conversation": None}
    assert (await gql(CONVERSATION, {"id": with_cyd})).codes == ["UNAUTHENTICATED"]
    unknown = encode_id("Conversation", 424242)
    assert (await gql(CONVERSATION, {"id": unknown}, token=ada.token)).codes == ["NOT_FOUND"]
    assert (await gql(CONVERSATIONS, {})).codes == ["UNAUTHENTICATED"]


async def test_marking_read_sets_read_states_and_the_unread_count(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, cyd = await pair(app, ada_devices=1, bob_devices=1)
    stores = app.state.runtime.stores
    start = datetime(2030, 1, 1, tzinfo=UTC)
    for minute in range(3):
        stores.clock = lambda minute=minute: start + timedelta(minutes=minute)
        sent = (await send(gql, ada, [envelope(bob, 1)], f"m{minute}")).ok()["sendMessage"]
    conversation_id = sent["conversationId"]
    stores.clock = lambda: start + timedelta(minutes=10)
    shown = (await gql(CONVERSATION, {"id": conversation_id}, token=bob.token)).ok()
    assert shown["conversation"]["unreadCount"] == 3
    assert shown["conversation"]["readStates"] == []

    up_to = (start + timedelta(minutes=1)).isoformat()
    marked = await gql(MARK_READ, {"c": conversation_id, "upTo": up_to}, token=bob.token)
    assert marked.ok()["markConversationRead"] == {
        "unreadCount": 1,
        "readStates": [{"user": {"username": "bob"}, "readUpTo": "2030-01-01T00:01:00+00:00"}],
    }
    # never backwards
    earlier = start.isoformat()
    again = await gql(MARK_READ, {"c": conversation_id, "upTo": earlier}, token=bob.token)
    assert again.ok()["markConversationRead"]["unreadCount"] == 1
    # ada sees bob's read state
    seen = (await gql(CONVERSATION, {"id": conversation_id}, token=ada.token)).ok()
    assert seen["conversation"]["readStates"][0]["user"]["username"] == "bob"
    # a non-member cannot mark anything
    outsider = await gql(MARK_READ, {"c": conversation_id, "upTo": up_to}, token=cyd.token)
    assert outsider.codes == ["NOT_FOUND"]
    # reading everything (a future upTo is clamped to now)
    later = (start + timedelta(days=1)).isoformat()
    done = await gql(MARK_READ, {"c": conversation_id, "upTo": later}, token=bob.token)
    assert done.ok()["markConversationRead"]["unreadCount"] == 0
    assert (
        done.ok()["markConversationRead"]["readStates"][0]["readUpTo"]
        == "2030-01-01T00:10:00+00:00"
    )


async def test_disappearing_messages_expire_and_the_sweeper_purges_them(
    app: Any, gql: GraphQLClient
) -> None:
    ada, bob, cyd = await pair(app, ada_devices=1, bob_devices=1)
    stores = app.state.runtime.stores
    start = datetime(2030, 1, 1, tzinfo=UTC)
    stores.clock = lambda: start
    conversation_id = (await send(gql, ada, [envelope(bob, 1)], "plain")).ok()["sendMessage"][
        "conversationId"
    ]
    for bad in (0, 4, 31 * 24 * 3600):
        refused = await gql(DISAPPEARING, {"c": conversation_id, "s": bad}, token=bob.token)
        assert refused.codes == ["BAD_USER_INPUT"]
    outsider = await gql(DISAPPEARING, {"c": conversation_id, "s": 60}, token=cyd.token)
    assert outsider.codes == ["NOT_FOUND"]
    shown = (await gql(CONVERSATION, {"id": conversation_id}, token=ada.token)).ok()
    assert shown["conversation"]["disappearingAfterSeconds"] is None

    timer = await gql(DISAPPEARING, {"c": conversation_id, "s": 60}, token=bob.token)
    assert timer.ok()["setDisappearingMessages"]["disappearingAfterSeconds"] == 60
    (await send(gql, ada, [envelope(bob, 1)], "timed")).ok()
    (await send(gql, ada, [envelope(bob, 1)], "sooner", expiresInSeconds=10)).ok()
    queue = await pending(gql, bob, 1)
    assert [e["node"]["expiresAt"] for e in queue["edges"]] == [
        None,
        "2030-01-01T00:01:00+00:00",
        "2030-01-01T00:00:10+00:00",
    ]

    stores.clock = lambda: start + timedelta(seconds=30)
    assert (await pending(gql, bob, 1))["totalCount"] == 2  # hidden at expiry, unread or not
    assert await sweep_once(stores) == 1
    stores.clock = lambda: start + timedelta(seconds=61)
    assert await sweep_once(stores) == 1
    assert await rows(app, EnvelopeRow) == 1
    # turned off: new messages keep no timer
    off = await gql(DISAPPEARING, {"c": conversation_id, "s": None}, token=ada.token)
    assert off.ok()["setDisappearingMessages"]["disappearingAfterSeconds"] is None

    # undelivered envelopes go after the 30-day retention
    stores.clock = lambda: start + timedelta(days=30, seconds=-1)
    assert await sweep_once(stores) == 0
    stores.clock = lambda: start + timedelta(days=30, seconds=1)
    assert await sweep_once(stores) == 1
    assert await rows(app, EnvelopeRow) == 0


# ── no N+1 ───────────────────────────────────────────────────────────────

CONVERSATIONS_PAGE = """
query($first: Int!) { conversations(first: $first) { totalCount edges { node {
  id unreadCount members { id username } readStates { user { username } readUpTo }
} } } }
"""
# The viewer (auth) is from the token, no statement. The page, its totalCount, every
# member row of the page's conversations (members, read states, unread counts at
# once), and their users: nothing per conversation.
CONVERSATIONS_STATEMENTS = 4


async def test_a_page_of_conversations_costs_the_same_statements_for_3_and_12(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    ada, *others = await create_users(app, ["ada", *[f"u{i}" for i in range(12)]])
    await add_devices(app, ada, 1)
    for other in others:
        await add_devices(app, other, 1)
        (await send(gql, ada, [envelope(other, 1)], f"to-{other.username}")).ok()
        (await send(gql, other, [envelope(ada, 1)], "back")).ok()
    counts = []
    for first in (3, 12):
        count, data = await counted(
            gql, sql_counter, CONVERSATIONS_PAGE, variables={"first": first}, token=ada.token
        )
        edges = data["conversations"]["edges"]
        assert len(edges) == first
        assert all(edge["node"]["unreadCount"] == 1 for edge in edges)
        assert all(len(edge["node"]["members"]) == 2 for edge in edges)
        counts.append(count)
    assert counts == [CONVERSATIONS_STATEMENTS] * 2, sql_counter


async def test_the_server_runs_the_messaging_sweeper(settings: Any) -> None:
    """`serve` (embedded events) sweeps by itself every messaging_sweep_seconds."""
    import httpx

    from server.app import create_app
    from tests.conftest import GraphQLClient as Client

    application = create_app(settings.model_copy(update={"messaging_sweep_seconds": 0.05}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            gql = Client(http)
            ada, bob, _ = await pair(application, ada_devices=1, bob_devices=1)
            (await send(gql, ada, [envelope(bob, 1)], "short", expiresInSeconds=1)).ok()
            (await send(gql, ada, [envelope(bob, 1)], "kept")).ok()
            stores = application.state.runtime.stores
            later = stores.clock() + timedelta(seconds=5)
            stores.clock = lambda: later
            for _ in range(100):
                if await rows(application, EnvelopeRow) == 1:
                    break
                await asyncio.sleep(0.05)
            assert await rows(application, EnvelopeRow) == 1
    await application.state.runtime.close()


async def test_group_conversations_are_not_for_send_message(app: Any, gql: GraphQLClient) -> None:
    """MLS groups take sendGroupMessage (tests/test_messaging_groups.py)."""
    from tests.messaging_realtime_support import conversation

    ada, bob, cyd = await pair(app, ada_devices=1, bob_devices=1)
    group = await conversation(app, [ada, bob, cyd], kind="GROUP")
    before = await stored(app)
    envelopes = [envelope(bob, 1), envelope(cyd, 1)]
    result = await send(gql, ada, envelopes, "g", conversationId=group)
    assert result.codes == ["BAD_USER_INPUT"]
    assert await stored(app) == before
    shown = (await gql(CONVERSATION, {"id": group}, token=cyd.token)).ok()["conversation"]
    assert shown["kind"] == "GROUP" and shown["epoch"] == 0 and shown["groupId"]
    assert {m["username"] for m in shown["members"]} == {"ada", "bob", "cyd"}


# One read for the resend check and every addressing rule (devices, the recipient,
# blocks, the DIRECT conversation), the message, the device's sequence, the envelope,
# the conversation's activity and the recipient's unread count: one transaction.
SEND_STATEMENTS = 6


async def test_a_message_costs_a_fixed_number_of_statements(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    ada, bob = await create_users(app, ["ada", "bob"])
    await add_devices(app, ada, 1)
    await add_devices(app, bob, 1)
    (await send(gql, ada, [envelope(bob, 1)], "first")).ok()  # creates the conversation
    for client_id in ("second", "third"):
        sql_counter.clear()
        (await send(gql, ada, [envelope(bob, 1)], client_id)).ok()
        assert len(sql_counter) == SEND_STATEMENTS, sql_counter
    sql_counter.clear()
    assert (await send(gql, ada, [envelope(bob, 1)], "third")).ok()["sendMessage"]["duplicate"]
    assert len(sql_counter) == 1, sql_counter  # a resend: the resend check only


async def test_concurrent_sends_share_transactions_and_each_gets_its_own_answer(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    """Group commit (datasources/groupcommit.py): sends arriving while others commit
    are written together, with one read for all their rules, yet each is checked
    and answered on its own."""
    accounts = await create_users(app, [f"s{i}" for i in range(8)] + [f"r{i}" for i in range(8)])
    senders, receivers = accounts[:8], accounts[8:]
    for account in accounts:
        await add_devices(app, account, 1)
    for sender, receiver in zip(senders, receivers, strict=True):
        (await send(gql, sender, [envelope(receiver, 1, b"first")], "first")).ok()
    (await gql(BLOCK, {"u": senders[7].id}, token=receivers[7].token)).ok()
    envelopes_before, messages_before, conversations = await stored(app)
    commits: list[object] = []

    def committed(conn: object) -> None:
        commits.append(conn)

    engine = app.state.runtime.stores.db.engine.sync_engine
    event.listen(engine, "commit", committed)
    sql_counter.clear()
    try:
        results = await asyncio.gather(
            *(
                send(gql, senders[i], [envelope(receivers[i], 1, f"to {i}".encode())], "second")
                for i in range(6)
            ),
            send(gql, senders[6], [envelope(receivers[6], 2)], "second"),  # no such device
            send(gql, senders[7], [envelope(receivers[7], 1)], "second"),  # blocked
            send(gql, senders[0], [envelope(receivers[0], 1)], "first"),  # a resend
        )
    finally:
        event.remove(engine, "commit", committed)
    for result in results[:6]:
        assert result.ok()["sendMessage"]["duplicate"] is False
    assert results[6].codes == ["MISMATCHED_DEVICES"]
    assert results[7].ok()["sendMessage"]["duplicate"] is False  # looks delivered
    assert results[8].ok()["sendMessage"]["duplicate"] is True
    assert len(commits) < 8, "the 8 messages written should have shared transactions"
    addressing_reads = [s for s in sql_counter if "'sent'" in s]
    assert len(addressing_reads) == len(commits), "one read per transaction, for all its sends"
    assert await stored(app) == (envelopes_before + 6, messages_before + 7, conversations)
    for i in range(6):
        queue = (await pending(gql, receivers[i], 1))["edges"]
        assert [e["node"]["sequence"] for e in queue] == [1, 2]
        assert base64.b64decode(queue[1]["node"]["content"]) == f"to {i}".encode()
    assert (await pending(gql, receivers[6], 1))["totalCount"] == 1
    assert (await pending(gql, receivers[7], 1))["totalCount"] == 1  # the one before the block


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_on_postgresql_a_batch_of_sends_runs_the_same_sql_whatever_its_size(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    """Lists of devices, envelopes, messages and members are bound as arrays
    (sqlutil.unnested), so a batch of 5 sends runs the very statements a batch of 2
    runs: nothing rendered again per batch, each prepared once by the driver."""
    accounts = await create_users(app, [f"s{i}" for i in range(5)] + [f"r{i}" for i in range(5)])
    senders, receivers = accounts[:5], accounts[5:]
    for account in accounts:
        await add_devices(app, account, 1)
    for sender, receiver in zip(senders, receivers, strict=True):  # the conversations
        (await send(gql, sender, [envelope(receiver, 1)], "first")).ok()
    store = app.state.runtime.stores.envelopes

    async def batch(client_id: str, size: int) -> list[str]:
        sql_counter.clear()
        sent = await asyncio.gather(  # submitted together: one batch of `size`
            *(store.send(direct_request(senders[i], receivers[i], client_id)) for i in range(size))
        )
        assert all(not s.result.duplicate and len(s.records) == 1 for s in sent)
        return list(sql_counter)

    two, five = await batch("second", 2), await batch("third", 5)
    assert five == two
    assert len([s for s in five if s.startswith("INSERT")]) == 2  # messages, envelopes


def direct_request(sender: Account, receiver: Account, client_id: str) -> SendRequest:
    """What sendMessage asks of the store for one envelope to the receiver's device 1."""
    me = Sender(sender.platform, pk(sender.id), 1)
    to = pk(receiver.id)

    def rules(found: Addressing) -> Outgoing:
        assert found.direct is not None  # the conversation exists
        return Outgoing(
            sender=me,
            client_message_id=client_id,
            conversation_id=found.direct[0],
            disappearing_seconds=found.direct[1],
            direct_with=None,
            envelopes=[OutgoingEnvelope(to, 1, "CIPHERTEXT", client_id.encode())],
            unread_for=[to],
            reported_count=1,
            expires_in_seconds=None,
        )

    direct = direct_key(me.user_id, to)
    return SendRequest(me, client_id, Addressed([to], direct, rules), datetime.now(UTC))
