"""The MLS wire-format header of what the delivery service relays (RFC 9420 §6).

The server never decrypts an MLS message, but it must route it: which group,
which epoch, and whether it is a commit, a proposal or an application message.
Those fields sit in the clear at the start of every `MLSMessage`:

    struct {
        ProtocolVersion version = mls10;           // uint16, 1
        WireFormat wire_format;                    // uint16
        select (wire_format) {
            case mls_public_message:  PublicMessage;   // FramedContent first
            case mls_private_message: PrivateMessage;
            case mls_welcome:         Welcome;
            case mls_group_info:      GroupInfo;
            case mls_key_package:     KeyPackage;
        };
    } MLSMessage;

    PublicMessage.content (FramedContent): group_id<V>, epoch (uint64),
        sender (Sender), authenticated_data<V>, content_type (uint8), ...
    PrivateMessage: group_id<V>, epoch (uint64), content_type (uint8),
        authenticated_data<V>, encrypted_sender_data<V>, ciphertext<V>
    Welcome: cipher_suite (uint16), secrets<V>, encrypted_group_info<V>
    GroupInfo: GroupContext { version, cipher_suite, group_id<V>, epoch, ... }
    KeyPackage: version, cipher_suite, init_key<V>, leaf_node, ...

`<V>` vectors carry a variable-length integer length prefix (RFC 9420 §2.1.2,
the QUIC encoding of RFC 9000 §16 without its 8-byte form): the two top bits of
the first byte give the size (00: 1 byte, 01: 2, 10: 4; 11 is invalid), the
rest is the big-endian value, and the minimal size MUST be used.

Only the header is read; everything after it stays opaque. Anything malformed
is a `MalformedMlsMessage` (the resolvers turn it into BAD_USER_INPUT).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

MLS10 = 1


class WireFormat(IntEnum):
    PUBLIC_MESSAGE = 1
    PRIVATE_MESSAGE = 2
    WELCOME = 3
    GROUP_INFO = 4
    KEY_PACKAGE = 5


class ContentType(IntEnum):
    APPLICATION = 1
    PROPOSAL = 2
    COMMIT = 3


class SenderType(IntEnum):
    MEMBER = 1
    EXTERNAL = 2
    NEW_MEMBER_PROPOSAL = 3
    NEW_MEMBER_COMMIT = 4


class MalformedMlsMessage(ValueError):
    """The bytes are not an MLS 1.0 message whose header this server can read."""


@dataclass(frozen=True)
class GroupMessageHeader:
    """The routing header of a PublicMessage or PrivateMessage."""

    wire_format: WireFormat
    group_id: bytes
    epoch: int
    content_type: ContentType


@dataclass(frozen=True)
class WelcomeHeader:
    cipher_suite: int


@dataclass(frozen=True)
class GroupInfoHeader:
    cipher_suite: int
    group_id: bytes
    epoch: int


@dataclass(frozen=True)
class KeyPackageHeader:
    cipher_suite: int


Header = GroupMessageHeader | WelcomeHeader | GroupInfoHeader | KeyPackageHeader


class _Reader:
    """A cursor over bytes with the TLS-presentation primitives MLS uses."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise MalformedMlsMessage(f"truncated {what}")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def varint(self, what: str) -> int:
        value, size = decode_varint(self.data, self.offset, what)
        self.offset += size
        return value

    def vector(self, what: str) -> bytes:
        return self.take(self.varint(f"{what} length"), what)


def decode_varint(data: bytes, offset: int = 0, what: str = "varint") -> tuple[int, int]:
    """(value, encoded size) of the variable-length integer at `offset` (RFC 9420 §2.1.2)."""
    if offset >= len(data):
        raise MalformedMlsMessage(f"truncated {what}")
    prefix = data[offset] >> 6
    if prefix == 3:
        raise MalformedMlsMessage(f"invalid variable-length integer prefix in {what}")
    size = 1 << prefix
    if offset + size > len(data):
        raise MalformedMlsMessage(f"truncated {what}")
    value = int.from_bytes(data[offset : offset + size], "big") & ((1 << (8 * size - 2)) - 1)
    if size > 1 and value < 1 << (8 * (size // 2) - 2):
        raise MalformedMlsMessage(f"non-minimal variable-length integer in {what}")
    return value, size


def encode_varint(value: int) -> bytes:
    """The minimal variable-length encoding of `value` (tests and clients build with it)."""
    if value < 0 or value >= 1 << 30:
        raise ValueError("MLS variable-length integers hold 0..2^30-1")
    if value < 1 << 6:
        return value.to_bytes(1, "big")
    if value < 1 << 14:
        return (value | 0x4000).to_bytes(2, "big")
    return (value | 0x8000_0000).to_bytes(4, "big")


def parse(data: bytes) -> Header:
    """The header of an `MLSMessage` of any of the five wire formats."""
    reader = _Reader(data)
    version = reader.uint(2, "version")
    if version != MLS10:
        raise MalformedMlsMessage(f"unsupported MLS protocol version {version}")
    raw_format = reader.uint(2, "wire_format")
    try:
        wire_format = WireFormat(raw_format)
    except ValueError:
        raise MalformedMlsMessage(f"unknown wire format {raw_format}") from None
    if wire_format is WireFormat.PUBLIC_MESSAGE:
        return _public_message(reader)
    if wire_format is WireFormat.PRIVATE_MESSAGE:
        return _private_message(reader)
    if wire_format is WireFormat.WELCOME:
        return WelcomeHeader(cipher_suite=reader.uint(2, "cipher_suite"))
    if wire_format is WireFormat.GROUP_INFO:
        return _group_info(reader)
    return _key_package(reader)


def parse_group_message(data: bytes) -> GroupMessageHeader:
    """The header of a PublicMessage or PrivateMessage; anything else is malformed here."""
    header = parse(data)
    if not isinstance(header, GroupMessageHeader):
        raise MalformedMlsMessage("expected an MLS PublicMessage or PrivateMessage")
    return header


def parse_welcome(data: bytes) -> WelcomeHeader:
    header = parse(data)
    if not isinstance(header, WelcomeHeader):
        raise MalformedMlsMessage("expected an MLS Welcome")
    return header


def _content_type(reader: _Reader) -> ContentType:
    raw = reader.uint(1, "content_type")
    try:
        return ContentType(raw)
    except ValueError:
        raise MalformedMlsMessage(f"unknown content type {raw}") from None


def _public_message(reader: _Reader) -> GroupMessageHeader:
    group_id = reader.vector("group_id")
    epoch = reader.uint(8, "epoch")
    _sender(reader)
    reader.vector("authenticated_data")
    return GroupMessageHeader(WireFormat.PUBLIC_MESSAGE, group_id, epoch, _content_type(reader))


def _private_message(reader: _Reader) -> GroupMessageHeader:
    group_id = reader.vector("group_id")
    epoch = reader.uint(8, "epoch")
    content_type = _content_type(reader)
    return GroupMessageHeader(WireFormat.PRIVATE_MESSAGE, group_id, epoch, content_type)


def _sender(reader: _Reader) -> None:
    """Skip a Sender: member and external senders carry a uint32 index."""
    raw = reader.uint(1, "sender_type")
    try:
        sender_type = SenderType(raw)
    except ValueError:
        raise MalformedMlsMessage(f"unknown sender type {raw}") from None
    if sender_type in (SenderType.MEMBER, SenderType.EXTERNAL):
        reader.uint(4, "sender index")


def _group_info(reader: _Reader) -> GroupInfoHeader:
    version = reader.uint(2, "group context version")
    if version != MLS10:
        raise MalformedMlsMessage(f"unsupported group context version {version}")
    cipher_suite = reader.uint(2, "cipher_suite")
    group_id = reader.vector("group_id")
    return GroupInfoHeader(cipher_suite, group_id, reader.uint(8, "epoch"))


def _key_package(reader: _Reader) -> KeyPackageHeader:
    version = reader.uint(2, "key package version")
    if version != MLS10:
        raise MalformedMlsMessage(f"unsupported key package version {version}")
    return KeyPackageHeader(cipher_suite=reader.uint(2, "cipher_suite"))
