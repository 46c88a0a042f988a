"""The MLS header parser (resolvers/messaging/mls_wire.py) against real MLS messages.

The messages come from mls-rs (the `agentvault-mls-rs-uniffi` bindings of AWS
Labs' mls-rs, an RFC 9420 implementation): key packages, commits (PublicMessage),
Welcomes, proposals and application messages (PrivateMessage), across epochs
and with group ids long enough to need a 2-byte length prefix. Handcrafted bytes
cover what the library never emits (4-byte lengths, external senders, bad input).

(`rfc9420` 1.3.0, the pure-Python MLS package, was tried and is not a dependency: its session byte
API — `interop.wire.encode_handshake` / `encode_application` — emits the bare
PublicMessage / PrivateMessage body without the MLSMessage envelope's `version`
and `wire_format`, so what it produces is not an RFC 9420 §6 MLSMessage.)
"""

from __future__ import annotations

import os

import pytest

from resolvers.messaging import mls_wire
from resolvers.messaging.mls_wire import (
    ContentType,
    GroupInfoHeader,
    GroupMessageHeader,
    KeyPackageHeader,
    MalformedMlsMessage,
    WelcomeHeader,
    WireFormat,
    decode_varint,
    encode_varint,
)

mls = pytest.importorskip("mls_rs_uniffi", reason="mls-rs bindings not installed")

CURVE25519_AES128 = 1  # MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519


def client(name: str) -> object:
    keypair = mls.generate_signature_keypair(mls.CipherSuite.CURVE25519_AES128)
    return mls.Client(name.encode(), keypair, mls.client_config_default())


@pytest.fixture
def group_of_two() -> dict[str, object]:
    """Alice creates a group with a long id, adds Bob (epoch 0 → 1), Bob joins."""
    alice, bob = client("alice"), client("bob")
    group_id = os.urandom(100)  # > 63 bytes: a 2-byte length prefix
    group = alice.create_group(group_id)  # type: ignore[attr-defined]
    key_package = bob.generate_key_package_message()  # type: ignore[attr-defined]
    added = group.add_members([key_package])
    group.process_incoming_message(added.commit_message)
    joined = bob.join_group(None, added.welcome_message)  # type: ignore[attr-defined]
    return {
        "group_id": group_id,
        "alice": group,
        "bob": joined.group,
        "bob_client": bob,
        "key_package": key_package.to_bytes(),
        "add_commit": added.commit_message.to_bytes(),
        "welcome": added.welcome_message.to_bytes(),
    }


def test_real_commit_is_a_public_message_of_its_epoch(group_of_two: dict) -> None:
    header = mls_wire.parse_group_message(group_of_two["add_commit"])
    assert header == GroupMessageHeader(
        WireFormat.PUBLIC_MESSAGE, group_of_two["group_id"], 0, ContentType.COMMIT
    )


def test_real_application_message_is_private_and_in_the_new_epoch(group_of_two: dict) -> None:
    message = group_of_two["alice"].encrypt_application_message(b"hello bob").to_bytes()
    header = mls_wire.parse_group_message(message)
    assert header == GroupMessageHeader(
        WireFormat.PRIVATE_MESSAGE, group_of_two["group_id"], 1, ContentType.APPLICATION
    )
    # the plaintext is not in the bytes the server reads: it is really encrypted
    assert b"hello bob" not in message
    received = group_of_two["bob"].process_incoming_message(mls.Message.from_bytes(message))
    assert received.data == b"hello bob"


def test_real_commit_of_a_later_epoch_and_a_remove(group_of_two: dict) -> None:
    bob = group_of_two["bob"]
    update = bob.commit()  # an empty commit (path update) in epoch 1
    assert mls_wire.parse_group_message(update.commit_message.to_bytes()).epoch == 1
    bob.process_incoming_message(update.commit_message)
    alice = group_of_two["alice"]
    alice.process_incoming_message(update.commit_message)
    identity = group_of_two["bob_client"].signing_identity()
    removal = alice.remove_members([identity]).commit_message.to_bytes()
    header = mls_wire.parse_group_message(removal)
    assert (header.epoch, header.content_type) == (2, ContentType.COMMIT)
    assert header.group_id == group_of_two["group_id"]


def test_real_proposal(group_of_two: dict) -> None:
    carol = client("carol")
    proposals = group_of_two["alice"].propose_add_members(
        [carol.generate_key_package_message()]  # type: ignore[attr-defined]
    )
    header = mls_wire.parse_group_message(proposals[0].to_bytes())
    assert header.content_type is ContentType.PROPOSAL
    assert header.epoch == 1


def test_real_welcome_key_package_and_group_info(group_of_two: dict) -> None:
    assert mls_wire.parse(group_of_two["welcome"]) == WelcomeHeader(CURVE25519_AES128)
    assert mls_wire.parse(group_of_two["key_package"]) == KeyPackageHeader(CURVE25519_AES128)
    with pytest.raises(MalformedMlsMessage):
        mls_wire.parse_group_message(group_of_two["welcome"])
    with pytest.raises(MalformedMlsMessage):
        mls_wire.parse_welcome(group_of_two["add_commit"])


def test_every_truncation_of_a_real_header_is_malformed(group_of_two: dict) -> None:
    commit = group_of_two["add_commit"]
    header_size = 2 + 2 + 2 + 100 + 8 + 1 + 4 + 1 + 1  # … content_type
    for size in range(header_size):
        with pytest.raises(MalformedMlsMessage):
            mls_wire.parse(commit[:size])
    assert mls_wire.parse(commit[:header_size]) == mls_wire.parse(commit)


# ── variable-length integers (RFC 9420 §2.1.2; examples after RFC 9000 §A.1) ──


@pytest.mark.parametrize(
    ("encoded", "value"),
    [("25", 37), ("3f", 63), ("4040", 64), ("7bbd", 15293), ("80004000", 16384),
     ("9d7f3e7d", 494878333), ("bfffffff", (1 << 30) - 1)],
)  # fmt: skip
def test_varint_round_trip(encoded: str, value: int) -> None:
    data = bytes.fromhex(encoded)
    assert decode_varint(data) == (value, len(data))
    assert encode_varint(value) == data


@pytest.mark.parametrize(
    "encoded",
    ["4025", "8000003f", "80003fff", "c2197c5eff14e88c", "40", "9d7f3e", ""],
)
def test_varint_non_minimal_invalid_or_truncated(encoded: str) -> None:
    """MLS requires the minimal encoding and has no 8-byte form (prefix 11)."""
    with pytest.raises(MalformedMlsMessage):
        decode_varint(bytes.fromhex(encoded))


def private_message(group_id: bytes, epoch: int, content_type: int) -> bytes:
    return (
        b"\x00\x01\x00\x02"
        + encode_varint(len(group_id))
        + group_id
        + epoch.to_bytes(8, "big")
        + bytes([content_type])
        + b"\x00\x00"
        + b"ciphertext"
    )


def test_handcrafted_private_message_with_a_4_byte_length() -> None:
    group_id = bytes(20000)
    header = mls_wire.parse_group_message(private_message(group_id, 2**40 + 7, 1))
    assert header == GroupMessageHeader(
        WireFormat.PRIVATE_MESSAGE, group_id, 2**40 + 7, ContentType.APPLICATION
    )


def test_handcrafted_public_message_from_an_external_sender() -> None:
    message = (
        bytes.fromhex("00010001") + b"\x03abc" + (5).to_bytes(8, "big")
        + b"\x02" + (9).to_bytes(4, "big") + b"\x02ad" + b"\x02" + b"rest"
    )  # fmt: skip
    assert mls_wire.parse(message) == GroupMessageHeader(
        WireFormat.PUBLIC_MESSAGE, b"abc", 5, ContentType.PROPOSAL
    )
    new_member_commit = bytes.fromhex("00010001") + b"\x01g" + bytes(8) + b"\x04" + b"\x00\x03"
    assert mls_wire.parse(new_member_commit).content_type is ContentType.COMMIT  # type: ignore[union-attr]


def test_handcrafted_group_info() -> None:
    """mls-rs's bindings do not hand out GroupInfo; its GroupContext opens the same way."""
    group_info = (
        bytes.fromhex("00010004" "0001" "0001") + encode_varint(70) + bytes(range(70))
        + (3).to_bytes(8, "big") + b"\x20" + bytes(32)
    )  # fmt: skip
    assert mls_wire.parse(group_info) == GroupInfoHeader(CURVE25519_AES128, bytes(range(70)), 3)
    with pytest.raises(MalformedMlsMessage, match="group context version"):
        mls_wire.parse(bytes.fromhex("0001000400020001") + b"\x00" + bytes(8))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated version"),
        (b"\x00\x02\x00\x02", "version"),
        (b"\x00\x01\x00\x06", "wire format"),
        (b"\x00\x01\x00\x00", "wire format"),
        (private_message(b"g", 1, 4), "content type"),
        (private_message(b"g", 1, 0), "content type"),
        (bytes.fromhex("00010001") + b"\x01g" + bytes(8) + b"\x07", "sender type"),
        (b"\x00\x01\x00\x02\x05abc", "truncated group_id"),
        (b"\x00\x01\x00\x02\x40\x01g", "non-minimal"),
    ],
)
def test_malformed_headers(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedMlsMessage, match=reason):
        mls_wire.parse(data)
