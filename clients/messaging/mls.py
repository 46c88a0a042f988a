"""MLS (RFC 9420) groups through `mls_rs_uniffi` (AWS Labs' mls-rs, Rust, via UniFFI).

What the bindings do not expose, this module reads from the wire format
itself: the group id and epoch of a handshake or application message (the same
header the delivery service checks) and the group's roster from the exported
ratchet tree (to name the leaves a removal removes).

Each device is one MLS member whose basic credential is "<user id>/<device id>",
so a removal of a user removes all of that user's leaves.

A commit is built locally and stays pending until the delivery service accepts
it (commitToGroup): then `merge` applies it; on CONFLICT another commit won the
epoch, the client applies that one as it arrives and rebuilds its change.
"""

from __future__ import annotations

from dataclasses import dataclass

import mls_rs_uniffi as mls

from clients.messaging.encoding import MalformedMessage

SUITE = mls.CipherSuite.CURVE25519_AES128
MlsError = mls.Error  # what mls-rs raises for a message it refuses
PUBLIC_MESSAGE = 1
PRIVATE_MESSAGE = 2
WELCOME = 3
COMMIT_CONTENT = 3
APPLICATION_CONTENT = 1


class _Reader:
    """RFC 9420 §2.1.2 TLS presentation: fixed ints and QUIC-style varint vectors."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise MalformedMessage("truncated MLS structure")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def varint(self) -> int:
        first = self.uint(1)
        prefix = first >> 6
        if prefix == 3:
            raise MalformedMessage("invalid MLS varint")
        value = first & 0x3F
        for _ in range((1 << prefix) - 1):
            value = (value << 8) | self.uint(1)
        return value

    def vector(self) -> bytes:
        return self.take(self.varint())

    @property
    def done(self) -> bool:
        return self.offset >= len(self.data)


@dataclass(frozen=True)
class MessageHeader:
    wire_format: int
    group_id: bytes
    epoch: int
    content_type: int


def message_header(data: bytes) -> MessageHeader:
    """group id, epoch and content type of an MLSMessage (public or private)."""
    reader = _Reader(data)
    reader.uint(2)  # protocol version
    wire_format = reader.uint(2)
    if wire_format not in (PUBLIC_MESSAGE, PRIVATE_MESSAGE):
        raise MalformedMessage("not a framed MLS message")
    group_id = reader.vector()
    epoch = reader.uint(8)
    if wire_format == PRIVATE_MESSAGE:
        return MessageHeader(wire_format, group_id, epoch, reader.uint(1))
    sender_type = reader.uint(1)
    if sender_type in (1, 2):  # member: leaf index; external: sender index
        reader.uint(4)
    reader.vector()  # authenticated data
    return MessageHeader(wire_format, group_id, epoch, reader.uint(1))


@dataclass(frozen=True)
class Leaf:
    index: int
    identity: bytes
    signature_key: bytes


def roster(tree: bytes) -> list[Leaf]:
    """The occupied leaves of an exported ratchet tree (RFC 9420 §7.8, §12.4.3.3)."""
    outer = _Reader(tree)
    reader = _Reader(outer.vector())
    leaves: list[Leaf] = []
    node_index = 0
    while not reader.done:
        present = reader.uint(1)
        if present:
            node_type = reader.uint(1)
            if node_type == 1:
                leaves.append(_leaf(reader, node_index // 2))
            else:
                reader.vector()  # encryption key
                reader.vector()  # parent hash
                reader.vector()  # unmerged leaves
        node_index += 1
    return leaves


def _leaf(reader: _Reader, index: int) -> Leaf:
    reader.vector()  # encryption key
    signature_key = reader.vector()
    credential_type = reader.uint(2)
    identity = reader.vector()  # basic: identity; x509: the certificate chain
    if credential_type != 1:
        identity = b""
    for _ in range(5):  # capabilities: versions, suites, extensions, proposals, credentials
        reader.vector()
    source = reader.uint(1)
    if source == 1:
        reader.take(16)  # lifetime
    elif source == 3:
        reader.vector()  # parent hash
    reader.vector()  # extensions
    reader.vector()  # signature
    return Leaf(index, identity, signature_key)


def credential(user_id: str, device_id: int) -> bytes:
    return f"{user_id}/{device_id}".encode()


def user_of(identity: bytes) -> str:
    return identity.decode().rsplit("/", 1)[0]


@dataclass
class Received:
    kind: str  # "application" | "commit" | "removed" | "other"
    data: bytes = b""
    sender: bytes = b""


class Member:
    """One device as an MLS client: its signature key and key packages."""

    def __init__(self, user_id: str, device_id: int) -> None:
        self.identity = credential(user_id, device_id)
        self._keypair = mls.generate_signature_keypair(SUITE)
        self.client = mls.Client(self.identity, self._keypair, mls.client_config_default())

    def key_packages(self, count: int) -> list[bytes]:
        return [self.client.generate_key_package_message().to_bytes() for _ in range(count)]

    def create_group(self, group_id: bytes) -> Group:
        return Group(self, self.client.create_group(group_id), group_id, epoch=0)

    def join(self, welcome: bytes, epoch: int, group_id: bytes) -> Group:
        """Join from a Welcome (the ratchet tree travels in it); `epoch` as the DS says."""
        info = self.client.join_group(None, mls.Message.from_bytes(welcome))
        return Group(self, info.group, group_id, epoch)

    def signing_identity(self, leaf: Leaf) -> mls.SigningIdentity:
        """The SigningIdentity of another member's leaf, for `remove_members`.

        The bindings build one only from a Client; a SigningIdentity is the
        basic credential plus the signature public key, so a Client made with
        the leaf's public key (and our secret key, never used to sign) yields it.
        """
        pair = mls.SignatureKeypair(
            cipher_suite=SUITE,
            public_key=mls.SignaturePublicKey(bytes=leaf.signature_key),
            secret_key=self._keypair.secret_key,
        )
        client = mls.Client(leaf.identity, pair, mls.client_config_default())
        return client.signing_identity()


@dataclass
class Proposal:
    """A commit built locally, pending until the delivery service accepts it."""

    epoch: int
    commit: bytes
    welcome: bytes | None


class Group:
    def __init__(self, member: Member, group: mls.Group, group_id: bytes, epoch: int) -> None:
        self.member = member
        self.group = group
        self.group_id = group_id
        self.epoch = epoch
        self.active = True

    def members(self) -> list[Leaf]:
        return roster(self.group.export_tree().bytes)

    def add(self, key_packages: list[bytes]) -> Proposal:
        output = self.group.add_members([mls.Message.from_bytes(kp) for kp in key_packages])
        return self._proposal(output)

    def remove(self, user_ids: list[str]) -> Proposal:
        """A commit removing every leaf (device) of `user_ids`."""
        wanted = set(user_ids)
        leaves = [leaf for leaf in self.members() if user_of(leaf.identity) in wanted]
        identities = [self.member.signing_identity(leaf) for leaf in leaves]
        return self._proposal(self.group.remove_members(identities))

    def update(self) -> Proposal:
        """An empty commit (key update): what concurrent-commit races use."""
        return self._proposal(self.group.commit())

    def _proposal(self, output: mls.CommitOutput) -> Proposal:
        welcome = output.welcome_message.to_bytes() if output.welcome_message else None
        return Proposal(self.epoch, output.commit_message.to_bytes(), welcome)

    def merge(self, proposal: Proposal) -> None:
        """Apply our own commit once the delivery service accepted it."""
        self.group.process_incoming_message(mls.Message.from_bytes(proposal.commit))
        self.epoch = proposal.epoch + 1

    def encrypt(self, plaintext: bytes) -> bytes:
        return bytes(self.group.encrypt_application_message(plaintext).to_bytes())

    def process(self, data: bytes) -> Received:
        """A commit or application message relayed by the delivery service."""
        header = message_header(data)
        result = self.group.process_incoming_message(mls.Message.from_bytes(data))
        if isinstance(result, mls.ReceivedMessage.APPLICATION_MESSAGE):
            return Received("application", bytes(result.data))
        if isinstance(result, mls.ReceivedMessage.COMMIT):
            self.epoch = header.epoch + 1
            if isinstance(result.effect, mls.CommitEffect.REMOVED):
                self.active = False
                return Received("removed")
            return Received("commit")
        return Received("other")


def epoch_of(data: bytes) -> int:
    return message_header(data).epoch
