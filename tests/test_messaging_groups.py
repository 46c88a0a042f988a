"""MLS groups through the API, on SQLite and PostgreSQL, with real MLS clients.

The clients are mls-rs (the `agentvault-mls-rs-uniffi` bindings): key packages
are published and claimed through the key directory, commits, Welcomes and
application messages are the library's own bytes, and members decrypt what
the server queued for them. Where a test needs many commits for one epoch it
builds their header by hand (RFC 9420 §6): the server reads no further.

Rules: resolvers/messaging/groups.py. A device reads its queue through
pendingEnvelopes (`queued`), as its client would.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from datasources.messaging.tables import (
    ConversationMemberRow,
    ConversationRow,
    EnvelopeRow,
    MessageRow,
    MessagingDeviceRow,
)
from datasources.sql import utcnow
from datasources.users.tables import UserRow
from resolvers.ids import encode_id, split_id
from resolvers.messaging import mls_wire
from resolvers.messaging.mls_wire import encode_varint
from tests.conftest import Account, GraphQLClient, create_users
from tests.messaging_support import DeviceKeys, register_device

mls = pytest.importorskip("mls_rs_uniffi", reason="mls-rs bindings not installed")

CREATE = """
mutation($input: CreateGroupInput!) {
  createGroup(input: $input) { id kind groupId epoch name members { id } }
}
"""
COMMIT = """
mutation($input: CommitInput!) {
  commitToGroup(input: $input) { id epoch members { id } }
}
"""
SEND = """
mutation($input: GroupMessageInput!) {
  sendGroupMessage(input: $input) {
    conversationId serverTimestamp deliveredDeviceCount duplicate
  }
}
"""
LEAVE = "mutation($id: ID!) { leaveGroup(conversationId: $id) }"
PUBLISH = """
mutation($deviceId: Int!, $packages: [Base64!]!) {
  publishKeyPackages(deviceId: $deviceId, keyPackages: $packages)
}
"""
CLAIM = """
mutation($userIds: [ID!]!) { claimKeyPackages(userIds: $userIds) { userId deviceId keyPackage } }
"""
BLOCK = "mutation($id: ID!) { block(userId: $id) { blocking } }"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pk(account: Account) -> int:
    parts = split_id(account.id)
    assert parts is not None
    return int(parts[1])


@dataclass
class Member:
    """A user with one registered device and an MLS client for it."""

    account: Account
    device_id: int
    client: Any
    keys: DeviceKeys
    group: Any = None


def mls_client(name: str) -> Any:
    keypair = mls.generate_signature_keypair(mls.CipherSuite.CURVE25519_AES128)
    return mls.Client(name.encode(), keypair, mls.client_config_default())


async def member(gql: GraphQLClient, account: Account) -> Member:
    device = await register_device(gql, account.token, with_kem=False, one_time_count=1)
    return Member(account, device.device_id, mls_client(account.username), device)


PENDING = """
query($deviceId: Int!) {
  pendingEnvelopes(deviceId: $deviceId) {
    totalCount
    edges { node { sequence type senderDeviceId content conversationId } }
  }
}
"""


async def queued(gql: GraphQLClient, who: Member, device_id: int | None = None) -> list[Any]:
    """What one of the member's devices fetches from its queue, in order:
    (type, content, sender device), through pendingEnvelopes."""
    result = await gql(PENDING, {"deviceId": device_id or who.device_id}, token=who.account.token)
    nodes = [edge["node"] for edge in result.ok()["pendingEnvelopes"]["edges"]]
    assert [n["sequence"] for n in nodes] == sorted(n["sequence"] for n in nodes)
    return [(n["type"], base64.b64decode(n["content"]), n["senderDeviceId"]) for n in nodes]


async def count(app: Any, table: Any) -> int:
    async with app.state.runtime.stores.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def member_ids(app: Any, conversation: str) -> set[int]:
    parts = split_id(conversation)
    assert parts is not None
    async with app.state.runtime.stores.db.session() as session:
        rows = await session.scalars(
            select(ConversationMemberRow.user_id).where(
                ConversationMemberRow.conversation_id == int(parts[1])
            )
        )
        return set(rows)


async def commit(
    gql: GraphQLClient,
    by: Member,
    conversation: str,
    epoch: int,
    commit_bytes: bytes,
    welcome: bytes | None = None,
    added: list[Member] | None = None,
    removed: list[Member] | None = None,
    device_id: int | None = None,
) -> Any:
    variables: dict[str, Any] = {
        "conversationId": conversation,
        "senderDeviceId": device_id or by.device_id,
        "epoch": epoch,
        "commit": b64(commit_bytes),
        "addedMemberIds": [m.account.id for m in added or []],
        "removedMemberIds": [m.account.id for m in removed or []],
    }
    if welcome is not None:
        variables["welcome"] = b64(welcome)
    return await gql(COMMIT, {"input": variables}, token=by.account.token)


async def send(
    gql: GraphQLClient,
    by: Member,
    conversation: str,
    epoch: int,
    ciphertext: bytes,
    client_message_id: str,
    device_id: int | None = None,
) -> Any:
    variables = {
        "conversationId": conversation,
        "senderDeviceId": device_id or by.device_id,
        "epoch": epoch,
        "ciphertext": b64(ciphertext),
        "clientMessageId": client_message_id,
    }
    return await gql(SEND, {"input": variables}, token=by.account.token)


def handmade_commit(group_id: bytes, epoch: int, padding: int = 0, content_type: int = 3) -> bytes:
    """A PublicMessage header of a commit (member sender 0), then opaque bytes."""
    return (
        b"\x00\x01\x00\x01" + encode_varint(len(group_id)) + group_id + epoch.to_bytes(8, "big")
        + b"\x01" + bytes(4) + b"\x00" + bytes([content_type]) + os.urandom(16) + bytes(padding)
    )  # fmt: skip


CONVERSATION = """
query($id: ID!) { conversation(id: $id) { kind epoch unreadCount members { id } } }
"""


async def seen_by(gql: GraphQLClient, who: Member, conversation: str) -> Any:
    """The conversation as `who` sees it."""
    result = await gql(CONVERSATION, {"id": conversation}, token=who.account.token)
    return result.ok()["conversation"]


@dataclass
class Group:
    conversation: str
    group_id: bytes
    alice: Member
    bob: Member
    carol: Member


async def key_packages(gql: GraphQLClient, claimer: Member, *members: Member) -> list[Any]:
    """Each member publishes a key package of its device; the claimer claims them."""
    for m in members:
        package = m.client.generate_key_package_message().to_bytes()
        result = await gql(
            PUBLISH, {"deviceId": m.device_id, "packages": [b64(package)]}, token=m.account.token
        )
        assert result.ok()["publishKeyPackages"] == 1
    result = await gql(
        CLAIM, {"userIds": [m.account.id for m in members]}, token=claimer.account.token
    )
    claimed = result.ok()["claimKeyPackages"]
    assert len(claimed) == len(members)
    return [mls.Message.from_bytes(base64.b64decode(c["keyPackage"])) for c in claimed]


async def join_from_queue(gql: GraphQLClient, m: Member) -> None:
    """The member's device takes the Welcome from its queue and joins the group."""
    welcomes = [content for kind, content, _ in await queued(gql, m) if kind == "MLS_WELCOME"]
    assert len(welcomes) == 1
    m.group = m.client.join_group(None, mls.Message.from_bytes(welcomes[-1])).group


@pytest.fixture
async def group(app: Any, gql: GraphQLClient) -> Group:
    """Alice creates a group with Bob and Carol; her first commit (epoch 0) adds
    their devices to the MLS group and carries their Welcome; they join."""
    alice_account, bob_account, carol_account = await create_users(app, ["alice", "bob", "carol"])
    alice, bob, carol = [await member(gql, a) for a in (alice_account, bob_account, carol_account)]
    group_id = os.urandom(32)
    created = await gql(
        CREATE,
        {
            "input": {
                "groupId": b64(group_id),
                "name": "  Weekend  ",
                "memberIds": [bob.account.id, carol.account.id, alice.account.id],
            }
        },
        token=alice.account.token,
    )
    shown = created.ok()["createGroup"]
    assert (shown["kind"], shown["epoch"], shown["name"]) == ("GROUP", 0, "Weekend")
    assert base64.b64decode(shown["groupId"]) == group_id
    assert {u["id"] for u in shown["members"]} == {m.account.id for m in (alice, bob, carol)}
    conversation = shown["id"]

    alice.group = alice.client.create_group(group_id)
    packages = await key_packages(gql, alice, bob, carol)
    output = alice.group.add_members(packages)
    result = await commit(
        gql,
        alice,
        conversation,
        0,
        output.commit_message.to_bytes(),
        output.welcome_message.to_bytes(),
        added=[bob, carol],
    )
    assert result.ok()["commitToGroup"]["epoch"] == 1
    alice.group.process_incoming_message(output.commit_message)  # apply her own commit
    for m in (bob, carol):
        assert [kind for kind, _, _ in await queued(gql, m)] == ["MLS_WELCOME"]
        await join_from_queue(gql, m)
    assert await queued(gql, alice) == []  # an epoch-0 commit reaches no one
    return Group(conversation, group_id, alice, bob, carol)


# ── createGroup ──────────────────────────────────────────────────────────


async def test_application_message_reaches_every_member_device_but_the_senders(
    app: Any, gql: GraphQLClient, group: Group
) -> None:
    alice, bob, carol = group.alice, group.bob, group.carol
    second = await register_device(
        gql, alice.account.token, identity=alice.keys.identity, with_kem=False, one_time_count=1
    )
    assert second.device_id == 2
    ciphertext = alice.group.encrypt_application_message(b"dinner at 8?").to_bytes()
    assert b"dinner at 8?" not in ciphertext
    result = await send(gql, alice, group.conversation, 1, ciphertext, "m-1")
    sent = result.ok()["sendGroupMessage"]
    assert sent["deliveredDeviceCount"] == 3  # bob, carol, alice's second device
    assert (sent["duplicate"], sent["conversationId"]) == (False, group.conversation)
    for m in (bob, carol):
        envelopes = await queued(gql, m)
        assert envelopes[-1] == ("MLS_APPLICATION", ciphertext, alice.device_id)
        received = m.group.process_incoming_message(mls.Message.from_bytes(envelopes[-1][1]))
        assert received.data == b"dinner at 8?"
    assert await queued(gql, alice, second.device_id) == [
        ("MLS_APPLICATION", ciphertext, alice.device_id)
    ]
    assert await queued(gql, alice) == []
    assert (await seen_by(gql, bob, group.conversation))["unreadCount"] == 1
    assert (await seen_by(gql, alice, group.conversation))["unreadCount"] == 0

    again = (await send(gql, alice, group.conversation, 1, ciphertext, "m-1")).ok()
    assert again["sendGroupMessage"]["duplicate"] is True
    assert again["sendGroupMessage"]["deliveredDeviceCount"] == 3
    assert len(await queued(gql, bob)) == 2  # the Welcome and the one message
    assert await count(app, MessageRow) == 1


async def test_create_group_rules(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    (stranger,) = await create_users(app, ["stranger"], platform="vignette")
    await gql(BLOCK, {"id": alice.id}, token=bob.token)  # bob blocks alice

    async def create(members: list[str], group_id: bytes = b"g1", **extra: Any) -> Any:
        variables = {"groupId": b64(group_id), "memberIds": members, **extra}
        return await gql(CREATE, {"input": variables}, token=alice.token)

    # a block either way, or a user of another platform: not found (a block is not revealed)
    assert (await create([carol.id, bob.id])).codes == ["NOT_FOUND"]
    assert (await create([stranger.id])).codes == ["NOT_FOUND"]
    assert (await create([encode_id("User", 999999)])).codes == ["NOT_FOUND"]
    assert (await gql(CREATE, {"input": {"groupId": b64(b"g"), "memberIds": [alice.id]}},
                      token=bob.token)).codes == ["NOT_FOUND"]  # fmt: skip
    assert (await create(["not-an-id"])).codes == ["BAD_USER_INPUT"]
    assert (await create([], group_id=b"")).codes == ["BAD_USER_INPUT"]
    assert (await create([], group_id=bytes(257))).codes == ["BAD_USER_INPUT"]
    assert (await create([], name="x" * 101)).codes == ["BAD_USER_INPUT"]
    many = [encode_id("User", 10_000 + i) for i in range(1500)]  # + the creator: 1,501
    result = await create(many)
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.errors[0]["extensions"]["field"] == "memberIds"
    signed_out = await gql(CREATE, {"input": {"groupId": b64(b"g1"), "memberIds": []}})
    assert signed_out.codes == ["UNAUTHENTICATED"]
    assert await count(app, ConversationRow) == 0
    assert await count(app, ConversationMemberRow) == 0

    created = (await create([carol.id])).ok()["createGroup"]
    assert created["name"] is None and created["epoch"] == 0
    assert (await create([carol.id])).codes == ["CONFLICT"]  # the same MLS group id
    # another platform is another tenant: the same group id is free there
    other = await gql(
        CREATE, {"input": {"groupId": b64(b"g1")}}, token=stranger.token, platform="vignette"
    )
    assert other.ok()["createGroup"]["members"] == [{"id": stranger.id}]
    assert await count(app, ConversationRow) == 2


# ── commitToGroup ────────────────────────────────────────────────────────


async def test_removed_member_gets_the_removal_and_nothing_after(
    app: Any, gql: GraphQLClient, group: Group
) -> None:
    alice, bob, carol = group.alice, group.bob, group.carol
    identity = carol.client.signing_identity()
    output = alice.group.remove_members([identity])
    removal = output.commit_message.to_bytes()
    result = await commit(gql, alice, group.conversation, 1, removal, removed=[carol])
    shown = result.ok()["commitToGroup"]
    assert shown["epoch"] == 2
    assert {u["id"] for u in shown["members"]} == {alice.account.id, bob.account.id}
    alice.group.process_incoming_message(output.commit_message)
    for m in (bob, carol):
        envelopes = await queued(gql, m)
        assert envelopes[-1] == ("MLS_COMMIT", removal, alice.device_id)
        m.group.process_incoming_message(mls.Message.from_bytes(removal))
    assert await queued(gql, alice) == []  # never back to the sending device

    ciphertext = alice.group.encrypt_application_message(b"just us now").to_bytes()
    sent = (await send(gql, alice, group.conversation, 2, ciphertext, "after")).ok()
    assert sent["sendGroupMessage"]["deliveredDeviceCount"] == 1
    assert (await queued(gql, bob))[-1][1] == ciphertext
    assert (await queued(gql, carol))[-1][1] == removal  # nothing after the removal
    # carol is out: the group no longer exists for her
    assert (await send(gql, carol, group.conversation, 2, ciphertext, "x")).codes == ["NOT_FOUND"]
    commit_bytes = handmade_commit(group.group_id, 2)
    assert (await commit(gql, carol, group.conversation, 2, commit_bytes)).codes == ["NOT_FOUND"]
    hidden = await gql(CONVERSATION, {"id": group.conversation}, token=carol.account.token)
    assert hidden.codes == ["NOT_FOUND"]
    leave = await gql(LEAVE, {"id": group.conversation}, token=carol.account.token)
    assert leave.codes == ["NOT_FOUND"]


async def test_concurrent_commits_for_one_epoch_exactly_one_wins(
    app: Any, gql: GraphQLClient, group: Group
) -> None:
    alice, bob, carol = group.alice, group.bob, group.carol
    (dave_account,) = await create_users(app, ["dave"])
    dave = await member(gql, dave_account)
    # Real commits, all made in epoch 1: alice adds dave, bob and carol update.
    (package,) = await key_packages(gql, alice, dave)
    adding = alice.group.add_members([package])
    contenders = [
        commit(
            gql,
            alice,
            group.conversation,
            1,
            adding.commit_message.to_bytes(),
            adding.welcome_message.to_bytes(),
            added=[dave],
        ),
        commit(gql, bob, group.conversation, 1, bob.group.commit().commit_message.to_bytes()),
        commit(gql, carol, group.conversation, 1, carol.group.commit().commit_message.to_bytes()),
    ]
    results = await asyncio.gather(*contenders)
    winners = [i for i, r in enumerate(results) if not r.errors]
    assert len(winners) == 1, [r.codes for r in results]
    assert sorted(c for r in results for c in r.codes) == ["CONFLICT", "CONFLICT"]
    assert results[winners[0]].data["commitToGroup"]["epoch"] == 2
    alice_won = winners[0] == 0
    # The Welcome reaches dave only if its commit was accepted; so does membership.
    assert [k for k, _, _ in await queued(gql, dave)] == (["MLS_WELCOME"] if alice_won else [])
    assert (pk(dave.account) in await member_ids(app, group.conversation)) is alice_won
    # Every other member device got the winner's commit, and only it.
    winner = (alice, bob, carol)[winners[0]]
    for m in (alice, bob, carol):
        commits = [e for e in await queued(gql, m) if e[0] == "MLS_COMMIT"]
        assert commits == ([] if m is winner else [commits[0]])
        if m is not winner:
            assert commits[0][2] == winner.device_id

    # More rounds of four contenders each (handmade headers), one winner per epoch.
    for epoch in range(2, 6):
        members = (alice, bob, carol, alice)
        rounds = await asyncio.gather(
            *(
                commit(gql, m, group.conversation, epoch, handmade_commit(group.group_id, epoch))
                for m in members
            )
        )
        codes = sorted(c for r in rounds for c in r.codes)
        assert codes == ["CONFLICT"] * 3, codes
    assert (await seen_by(gql, alice, group.conversation))["epoch"] == 6


async def test_stale_commit_is_a_conflict_and_its_welcome_never_arrives(
    app: Any, gql: GraphQLClient, group: Group
) -> None:
    alice = group.alice
    (dave_account,) = await create_users(app, ["dave"])
    dave = await member(gql, dave_account)
    before = await count(app, EnvelopeRow)
    stale = await commit(
        gql,
        alice,
        group.conversation,
        0,
        handmade_commit(group.group_id, 0),
        b"\x00\x01\x00\x03\x00\x01\x00\x00",  # a Welcome (empty secrets and group info)
        added=[dave],
    )
    assert stale.codes == ["CONFLICT"]
    assert stale.errors[0]["extensions"]["field"] == "epoch"
    assert await queued(gql, dave) == []
    assert pk(dave.account) not in await member_ids(app, group.conversation)
    assert await count(app, EnvelopeRow) == before


async def test_commit_header_must_match_what_is_declared(
    app: Any, gql: GraphQLClient, group: Group
) -> None:
    alice, bob = group.alice, group.bob
    (dave_account,) = await create_users(app, ["dave"])
    dave = await member(gql, dave_account)
    before = await count(app, EnvelopeRow)
    other_group = mls_client("eve").create_group(os.urandom(32)).commit().commit_message.to_bytes()
    application = alice.group.encrypt_application_message(b"hi").to_bytes()
    welcome = b"\x00\x01\x00\x03\x00\x01\x00\x00"
    good = handmade_commit(group.group_id, 1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"commit_bytes": other_group}, "commit"),  # another MLS group
        ({"commit_bytes": handmade_commit(group.group_id, 0)}, "commit"),  # made in epoch 0
        ({"commit_bytes": application}, "commit"),  # not a commit
        ({"commit_bytes": b"\x00\x01\x00\x01\x05ab"}, "commit"),  # truncated
        ({"commit_bytes": b"not mls at all"}, "commit"),
        ({"commit_bytes": good, "welcome": good, "added": [dave]}, "welcome"),
        ({"commit_bytes": good, "added": [dave]}, "welcome"),  # adds need a Welcome
        ({"commit_bytes": good, "welcome": welcome}, "addedMemberIds"),  # and vice versa
        ({"commit_bytes": good, "removed": [alice]}, "removedMemberIds"),  # leaveGroup
        ({"commit_bytes": good, "added": [dave], "removed": [dave], "welcome": welcome},
         "removedMemberIds"),
        ({"commit_bytes": good, "device_id": 9}, "senderDeviceId"),  # not alice's device
    ]  # fmt: skip
    for arguments, field_name in cases:
        result = await commit(gql, alice, group.conversation, 1, **arguments)
        assert result.codes == ["BAD_USER_INPUT"], (arguments, result.errors)
        assert result.errors[0]["extensions"]["field"] == field_name
    # a member cannot add someone blocking them (nor be told it is a block)
    await gql(BLOCK, {"id": bob.account.id}, token=dave.account.token)
    blocked = await commit(gql, bob, group.conversation, 1, good, welcome, added=[dave])
    assert blocked.codes == ["NOT_FOUND"]
    # an outsider does not see the group at all
    outsider = await commit(gql, dave, group.conversation, 1, good)
    assert outsider.codes == ["NOT_FOUND"]
    assert await count(app, EnvelopeRow) == before
    assert await member_ids(app, group.conversation) == {
        pk(m.account) for m in (group.alice, group.bob, group.carol)
    }
    assert (await seen_by(gql, alice, group.conversation))["epoch"] == 1


async def test_handshake_messages_up_to_one_mebibyte(
    app: Any, gql: GraphQLClient, group: Group
) -> None:
    alice, bob = group.alice, group.bob
    header = len(handmade_commit(group.group_id, 1))
    too_big = handmade_commit(group.group_id, 1, padding=2**20 - header + 1)
    assert len(too_big) == 2**20 + 1
    result = await commit(gql, alice, group.conversation, 1, too_big)
    assert result.codes == ["PAYLOAD_TOO_LARGE"]
    assert result.errors[0]["extensions"]["limitBytes"] == 2**20
    welcome = b"\x00\x01\x00\x03" + bytes(2**20)
    (dave_account,) = await create_users(app, ["dave"])
    dave = await member(gql, dave_account)
    big_welcome = await commit(
        gql, alice, group.conversation, 1, handmade_commit(group.group_id, 1), welcome, [dave]
    )
    assert big_welcome.codes == ["PAYLOAD_TOO_LARGE"]
    assert await count(app, EnvelopeRow) == 2  # the two Welcomes of the fixture
    exactly = handmade_commit(group.group_id, 1, padding=2**20 - header)
    assert (await commit(gql, alice, group.conversation, 1, exactly)).ok()
    assert (await queued(gql, bob))[-1][1] == exactly


async def test_welcome_reaches_every_device_of_the_added_users_only(
    app: Any, gql: GraphQLClient, group: Group
) -> None:
    alice, bob, carol = group.alice, group.bob, group.carol
    (dave_account,) = await create_users(app, ["dave"])
    dave = await member(gql, dave_account)
    dave_second = await register_device(
        gql, dave.account.token, identity=dave.keys.identity, with_kem=False, one_time_count=1
    )
    welcome = b"\x00\x01\x00\x03\x00\x01" + os.urandom(40)
    adding = handmade_commit(group.group_id, 1)
    assert (await commit(gql, alice, group.conversation, 1, adding, welcome, [dave])).ok()
    for device_id in (dave.device_id, dave_second.device_id):
        assert await queued(gql, dave, device_id) == [("MLS_WELCOME", welcome, alice.device_id)]
    for m in (bob, carol):
        assert [k for k, _, _ in await queued(gql, m)] == ["MLS_WELCOME", "MLS_COMMIT"]
    assert await queued(gql, alice) == []
    # a member's new device is added the same way: it takes the Welcome, the
    # member's devices already in the group take the commit (each gets both)
    bob_second = await register_device(
        gql, bob.account.token, identity=bob.keys.identity, with_kem=False, one_time_count=1
    )
    again = handmade_commit(group.group_id, 2)
    welcome_2 = b"\x00\x01\x00\x03\x00\x01" + os.urandom(40)
    assert (await commit(gql, carol, group.conversation, 2, again, welcome_2, [bob])).ok()
    assert (await queued(gql, bob))[-2:] == [
        ("MLS_COMMIT", again, carol.device_id),
        ("MLS_WELCOME", welcome_2, carol.device_id),
    ]
    assert [k for k, _, _ in await queued(gql, bob, bob_second.device_id)] == [
        "MLS_COMMIT",
        "MLS_WELCOME",
    ]
    assert [k for k, _, _ in await queued(gql, dave, dave_second.device_id)] == [
        "MLS_WELCOME",
        "MLS_COMMIT",
    ]
    assert len(await member_ids(app, group.conversation)) == 4


# ── sendGroupMessage ─────────────────────────────────────────────────────


async def test_group_message_rules(app: Any, gql: GraphQLClient, group: Group) -> None:
    alice, bob, carol = group.alice, group.bob, group.carol
    ciphertext = alice.group.encrypt_application_message(b"epoch one").to_bytes()
    # bob commits: the group moves to epoch 2; alice's message of epoch 1 is stale
    update = bob.group.commit().commit_message
    assert (await commit(gql, bob, group.conversation, 1, update.to_bytes())).ok()
    bob.group.process_incoming_message(update)
    before = await count(app, EnvelopeRow)
    stale = await send(gql, alice, group.conversation, 1, ciphertext, "stale")
    assert stale.codes == ["CONFLICT"]
    cases = [
        (ciphertext, 2, "ciphertext"),  # its header says epoch 1, declared 2
        (handmade_commit(group.group_id, 2), 2, "ciphertext"),  # a commit is no message
        (handmade_commit(group.group_id, 2, content_type=1), 2, "ciphertext"),  # not private
        (b"\x00\x01\x00\x02\x01g" + (2).to_bytes(8, "big") + b"\x01", 2, "ciphertext"),
        (b"garbage", 2, "ciphertext"),
        (ciphertext, -1, "epoch"),
    ]
    for data, epoch, field_name in cases:
        result = await send(gql, alice, group.conversation, epoch, data, f"bad-{field_name}")
        assert result.codes == ["BAD_USER_INPUT"], (data[:8], result.errors)
        assert result.errors[0]["extensions"]["field"] == field_name
    not_mine = await send(gql, alice, group.conversation, 2, ciphertext, "d", device_id=7)
    assert not_mine.codes == ["BAD_USER_INPUT"]
    too_big = await send(gql, alice, group.conversation, 2, bytes(96 * 1024 + 1), "big")
    assert too_big.codes == ["PAYLOAD_TOO_LARGE"]
    (outsider_account,) = await create_users(app, ["outsider"])
    outsider = await member(gql, outsider_account)
    assert (await send(gql, outsider, group.conversation, 2, ciphertext, "o")).codes == [
        "NOT_FOUND"
    ]
    assert await count(app, EnvelopeRow) == before
    assert await count(app, MessageRow) == 0
    # after processing bob's commit alice's fresh message goes through
    alice.group.process_incoming_message(update)
    carol.group.process_incoming_message(update)
    fresh = alice.group.encrypt_application_message(b"epoch two").to_bytes()
    assert (await send(gql, alice, group.conversation, 2, fresh, "fresh")).ok()
    received = carol.group.process_incoming_message(
        mls.Message.from_bytes((await queued(gql, carol))[-1][1])
    )
    assert received.data == b"epoch two"


async def test_members_who_block_the_sender_do_not_receive(
    app: Any, gql: GraphQLClient, group: Group
) -> None:
    alice, bob, carol = group.alice, group.bob, group.carol
    await gql(BLOCK, {"id": alice.account.id}, token=carol.account.token)
    ciphertext = alice.group.encrypt_application_message(b"hello").to_bytes()
    sent = (await send(gql, alice, group.conversation, 1, ciphertext, "b1")).ok()
    assert sent["sendGroupMessage"]["deliveredDeviceCount"] == 1
    assert (await queued(gql, bob))[-1][0] == "MLS_APPLICATION"
    assert [k for k, _, _ in await queued(gql, carol)] == ["MLS_WELCOME"]
    # handshake messages still reach her: the group state must stay in step
    update = alice.group.commit().commit_message.to_bytes()
    assert (await commit(gql, alice, group.conversation, 1, update)).ok()
    assert (await queued(gql, carol))[-1][1] == update


async def test_no_message_is_queued_after_the_commit_closing_its_epoch(
    app: Any, gql: GraphQLClient, group: Group
) -> None:
    """Messages and commits race; in every queue each epoch's messages come before
    the commit that ends the epoch, and a message that lost the race is CONFLICT."""
    alice, bob, carol = group.alice, group.bob, group.carol
    gid = group.group_id
    for epoch in range(1, 7):
        header = b"\x00\x01\x00\x02" + encode_varint(len(gid)) + gid + epoch.to_bytes(8, "big")
        message = header + b"\x01" + os.urandom(8)
        sent, committed = await asyncio.gather(
            send(gql, alice, group.conversation, epoch, message, f"r{epoch}"),
            commit(gql, bob, group.conversation, epoch, handmade_commit(gid, epoch)),
        )
        assert committed.ok()
        assert sent.codes in ([], ["CONFLICT"])
    order = [(kind, mls_wire.parse_group_message(content).epoch)
             for kind, content, _ in (await queued(gql, carol))[1:]]  # fmt: skip
    for position, (kind, epoch) in enumerate(order):
        if kind == "MLS_APPLICATION":
            closing = order.index(("MLS_COMMIT", epoch))
            assert position < closing, order


# ── leaveGroup ───────────────────────────────────────────────────────────


async def test_leave_group(app: Any, gql: GraphQLClient, group: Group) -> None:
    alice, bob = group.alice, group.bob
    left = await gql(LEAVE, {"id": group.conversation}, token=bob.account.token)
    assert left.ok()["leaveGroup"] is True
    assert pk(bob.account) not in await member_ids(app, group.conversation)
    again = await gql(LEAVE, {"id": group.conversation}, token=bob.account.token)
    assert again.codes == ["NOT_FOUND"]
    ciphertext = alice.group.encrypt_application_message(b"bye bob").to_bytes()
    assert (await send(gql, alice, group.conversation, 1, ciphertext, "l1")).ok()
    assert [k for k, _, _ in await queued(gql, bob)] == ["MLS_WELCOME"]
    # the others then remove bob's leaf; naming him though he left is fine
    identity = bob.client.signing_identity()
    removal = alice.group.remove_members([identity]).commit_message.to_bytes()
    result = await commit(gql, alice, group.conversation, 1, removal, removed=[bob])
    assert result.ok()["commitToGroup"]["epoch"] == 2
    assert [k for k, _, _ in await queued(gql, bob)] == ["MLS_WELCOME"]
    assert (await queued(gql, group.carol))[-1] == ("MLS_COMMIT", removal, alice.device_id)
    bad = await gql(LEAVE, {"id": "nope"}, token=alice.account.token)
    assert bad.codes == ["BAD_USER_INPUT"]
    assert (await gql(LEAVE, {"id": group.conversation})).codes == ["UNAUTHENTICATED"]


async def test_group_operations_refuse_a_direct_conversation(app: Any, gql: GraphQLClient) -> None:
    ada_account, bob_account = await create_users(app, ["ada", "bob"])
    ada, bob = await member(gql, ada_account), await member(gql, bob_account)
    envelope = {
        "recipientId": bob.account.id,
        "recipientDeviceId": bob.device_id,
        "recipientRegistrationId": bob.keys.registration_id,
        "type": "CIPHERTEXT",
        "content": b64(b"opaque"),
    }
    sent = await gql(
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) { conversationId } }",
        {"input": {"clientMessageId": "d1", "senderDeviceId": ada.device_id,
                   "envelopes": [envelope]}},
        token=ada.account.token,
    )  # fmt: skip
    direct = sent.ok()["sendMessage"]["conversationId"]
    before = await count(app, EnvelopeRow)
    header = b"\x00\x01\x00\x02\x01g" + bytes(8) + b"\x01"
    for result in (
        await send(gql, ada, direct, 0, header, "g1"),
        await commit(gql, ada, direct, 0, handmade_commit(b"g", 0)),
        await gql(LEAVE, {"id": direct}, token=ada.account.token),
    ):
        assert result.codes == ["BAD_USER_INPUT"]
        assert result.errors[0]["extensions"]["field"] == "conversationId"
    assert await count(app, EnvelopeRow) == before
    assert (await seen_by(gql, ada, direct))["kind"] == "DIRECT"


# ── 1,500 members ────────────────────────────────────────────────────────


async def many_users_with_a_device(app: Any, count_: int) -> list[str]:
    """`count_` users of socialink with one device each, inserted in bulk; their ids."""
    now = utcnow()
    async with app.state.runtime.stores.db.transaction() as session:
        ids = (
            (
                await session.execute(
                    insert(UserRow).returning(UserRow.id, sort_by_parameter_order=True),
                    [
                        {
                            "platform": "socialink",
                            "username": f"member{i}",
                            "username_key": f"member{i}",
                            "email": f"member{i}@example.com",
                            "email_key": f"member{i}@example.com",
                            "password_hash": "-",
                            "display_name": f"Member {i}",
                            "created_at": now,
                        }
                        for i in range(count_)
                    ],
                )
            )
            .scalars()
            .all()
        )
        await session.execute(
            insert(MessagingDeviceRow),
            [
                {
                    "user_id": user_id,
                    "device_id": 1,
                    "platform": "socialink",
                    "registration_id": 1,
                    "created_at": now,
                    "signed_prekey_id": 1,
                    "signed_prekey": bytes(33),
                    "signed_prekey_signature": bytes(64),
                    "last_sequence": 0,
                }
                for user_id in ids
            ],
        )
    return [encode_id("User", user_id) for user_id in ids]


async def test_a_group_of_1500_members(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    (owner_account,) = await create_users(app, ["owner"])
    owner = await member(gql, owner_account)
    others = await many_users_with_a_device(app, 1500)
    group_id = b"big-group"
    result = await gql(
        CREATE, {"input": {"groupId": b64(group_id), "memberIds": others[:1499]}},
        token=owner.account.token,
    )  # fmt: skip
    conversation = result.ok()["createGroup"]["id"]
    assert len(result.data["createGroup"]["members"]) == 1500
    # one more would make 1,501: refused, nothing changes
    variables = {
        "conversationId": conversation,
        "senderDeviceId": owner.device_id,
        "epoch": 0,
        "commit": b64(handmade_commit(group_id, 0)),
        "welcome": b64(b"\x00\x01\x00\x03\x00\x01\x00\x00"),
        "addedMemberIds": [others[1499]],
    }
    too_many = await gql(COMMIT, {"input": variables}, token=owner.account.token)
    assert too_many.codes == ["BAD_USER_INPUT"]
    assert too_many.errors[0]["extensions"]["field"] == "addedMemberIds"
    assert await count(app, EnvelopeRow) == 0
    # an application message fans out to all 1,499 other devices, batched
    message = b"\x00\x01\x00\x02" + encode_varint(len(group_id)) + group_id + bytes(8) + b"\x01"
    sql_counter.clear()
    started = time.perf_counter()
    sent = await send(gql, owner, conversation, 0, message + os.urandom(200), "big-1")
    elapsed = time.perf_counter() - started
    # batched: a fixed handful of statements, not one per member or device (the
    # envelope INSERT itself is queue.enqueue's executemany: batched on PostgreSQL)
    others_sql = [s for s in sql_counter if not s.startswith("INSERT INTO messaging_envelopes")]
    assert len(others_sql) < 30, others_sql
    if app.state.runtime.stores.db.engine.dialect.name == "postgresql":
        # every list (members, blockers, devices, envelopes) is one array parameter:
        # no statement's SQL grows with the group (sqlutil.among, sqlutil.unnested)
        assert max(len(s) for s in sql_counter) < 2000, max(sql_counter, key=len)[:300]
    assert sent.ok()["sendGroupMessage"]["deliveredDeviceCount"] == 1499
    assert await count(app, EnvelopeRow) == 1499
    assert elapsed < 10, elapsed
