"""Pairwise sessions: X3DH (with an optional ML-KEM step) then the Double Ratchet.

The initiator claims the recipient device's PreKeyBundle, runs X3DH and sends
PREKEY_MESSAGEs carrying the X3DH header until the first reply arrives (the
recipient may read them in any order, or one may be lost); afterwards it sends
CIPHERTEXTs. The responder builds its side from whichever PREKEY_MESSAGE it
reads first and recognizes the others by their ephemeral key.

KEM step: when the bundle has a KEM prekey (ML-KEM-1024, XEdDSA-signed by the
identity key), the initiator encapsulates to it and the session's root secret
is HKDF(X3DH secret || KEM secret): an attacker must break both X25519 and
ML-KEM. This follows PQXDH's idea with the `x3dh` package's output as the
classical half; it is not PQXDH's exact KDF input layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import doubleratchet
import x3dh
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM1024PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from doubleratchet.recommended import (
    HashFunction,
    aead_aes_hmac,
    diffie_hellman_ratchet_curve25519,
    kdf_hkdf,
    kdf_separate_hmacs,
)

from clients.messaging.encoding import (
    MalformedMessage,
    decode_curve,
    encode_curve,
    pack,
    read_u64,
    u64,
    unb64,
    unpack,
)
from clients.messaging.keys import KEM_MLKEM1024, PreKeys, verify

MESSAGE_CHAIN_CONSTANT = b"\x01\x02"
MAX_SKIPPED = 2000  # out-of-order tolerance per chain (and DoS bound)


class _RootChainKdf(kdf_hkdf.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return b"Entativa Root Chain"


class _MessageChainKdf(kdf_separate_hmacs.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256


class _Aead(aead_aes_hmac.AEAD):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return b"Entativa Message Keys"


class _DiffieHellmanRatchet(diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet):
    pass


class Ratchet(doubleratchet.DoubleRatchet):
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: doubleratchet.Header) -> bytes:
        return (
            associated_data
            + header.ratchet_pub
            + u64(header.previous_sending_chain_length)
            + u64(header.sending_chain_length)
        )


_CONFIG: dict[str, Any] = {
    "diffie_hellman_ratchet_class": _DiffieHellmanRatchet,
    "root_chain_kdf": _RootChainKdf,
    "message_chain_kdf": _MessageChainKdf,
    "message_chain_constant": MESSAGE_CHAIN_CONSTANT,
    "dos_protection_threshold": MAX_SKIPPED,
    "max_num_skipped_message_keys": MAX_SKIPPED,
    "aead": _Aead,
}


def encode_ratchet_message(message: doubleratchet.EncryptedMessage) -> bytes:
    header = message.header
    return pack(
        header.ratchet_pub,
        u64(header.previous_sending_chain_length),
        u64(header.sending_chain_length),
        message.ciphertext,
    )


def decode_ratchet_message(data: bytes) -> doubleratchet.EncryptedMessage:
    ratchet_pub, previous, length, ciphertext = unpack(data, 4)
    header = doubleratchet.Header(ratchet_pub, read_u64(previous), read_u64(length))
    return doubleratchet.EncryptedMessage(header=header, ciphertext=ciphertext)


@dataclass(frozen=True)
class PreKeyHeader:
    """What a PREKEY_MESSAGE tells the responder to redo the key agreement."""

    registration_id: int
    identity_key: bytes  # 32 raw bytes
    ephemeral_key: bytes
    signed_prekey: bytes
    one_time_prekey: bytes | None
    kem_key_id: int | None
    kem_ciphertext: bytes | None

    def encode(self) -> bytes:
        return pack(
            u64(self.registration_id),
            encode_curve(self.identity_key),
            self.ephemeral_key,
            self.signed_prekey,
            self.one_time_prekey or b"",
            u64(self.kem_key_id or 0),
            self.kem_ciphertext or b"",
        )

    @classmethod
    def decode(cls, data: bytes) -> PreKeyHeader:
        registration, identity, ephemeral, signed, one_time, kem_id, kem_ct = unpack(data, 7)
        return cls(
            registration_id=read_u64(registration),
            identity_key=decode_curve(identity),
            ephemeral_key=ephemeral,
            signed_prekey=signed,
            one_time_prekey=one_time or None,
            kem_key_id=read_u64(kem_id) or None,
            kem_ciphertext=kem_ct or None,
        )

    def x3dh_header(self) -> x3dh.Header:
        return x3dh.Header(
            identity_key=self.identity_key,
            ephemeral_key=self.ephemeral_key,
            signed_pre_key=self.signed_prekey,
            pre_key=self.one_time_prekey,
        )


def encode_prekey_message(header: PreKeyHeader, message: bytes) -> bytes:
    return pack(header.encode(), message)


def decode_prekey_message(data: bytes) -> tuple[PreKeyHeader, bytes]:
    header, message = unpack(data, 2)
    return PreKeyHeader.decode(header), message


def _combine(classical: bytes, kem_secret: bytes | None) -> bytes:
    if kem_secret is None:
        return classical
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"\x00" * 32, info=b"Entativa PQ X3DH"
    ).derive(classical + kem_secret)


@dataclass
class Session:
    """The Double Ratchet with one remote device, plus what the first messages need."""

    associated_data: bytes
    remote_identity_key: bytes  # 33-byte typed form
    remote_registration_id: int
    ratchet: Ratchet | None = None
    # Until the peer answers, every message carries the X3DH header.
    pending_prekey: PreKeyHeader | None = None
    shared_secret: bytes = b""
    remote_ratchet_key: bytes = b""
    base_keys: set[bytes] = field(default_factory=set)  # ephemeral keys this session came from

    @property
    def envelope_type(self) -> str:
        return "PREKEY_MESSAGE" if self.pending_prekey is not None else "CIPHERTEXT"

    async def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        """(EnvelopeType name, content) of the next message to the remote device."""
        if self.ratchet is None:
            self.ratchet, message = await Ratchet.encrypt_initial_message(
                shared_secret=self.shared_secret,
                recipient_ratchet_pub=self.remote_ratchet_key,
                message=plaintext,
                associated_data=self.associated_data,
                **_CONFIG,
            )
        else:
            message = await self.ratchet.encrypt_message(plaintext, self.associated_data)
        body = encode_ratchet_message(message)
        if self.pending_prekey is not None:
            return "PREKEY_MESSAGE", encode_prekey_message(self.pending_prekey, body)
        return "CIPHERTEXT", body

    async def decrypt(self, body: bytes) -> bytes:
        if self.ratchet is None:
            raise MalformedMessage("no ratchet yet: a CIPHERTEXT before any PREKEY_MESSAGE")
        plaintext = await self.ratchet.decrypt_message(
            decode_ratchet_message(body), self.associated_data
        )
        self.pending_prekey = None  # the peer has the session: plain CIPHERTEXT from now on
        return bytes(plaintext)


async def initiate(keys: PreKeys, registration_id: int, bundle: dict[str, Any]) -> Session:
    """Our side of a session from a claimed PreKeyBundle (the contract's shape).

    Verifies the signed prekey's and KEM prekey's XEdDSA signatures against the
    bundle's identity key (x3dh raises KeyAgreementException on a bad one).
    """
    identity_key = unb64(bundle["identityKey"])
    signed = bundle["signedPreKey"]
    one_time = bundle.get("oneTimePreKey")
    x3dh_bundle = x3dh.Bundle(
        identity_key=decode_curve(identity_key),
        signed_pre_key=decode_curve(unb64(signed["publicKey"])),
        signed_pre_key_sig=unb64(signed["signature"]),
        pre_keys=frozenset([decode_curve(unb64(one_time["publicKey"]))] if one_time else []),
    )
    secret, associated_data, header = await keys.state.get_shared_secret_active(
        x3dh_bundle, require_pre_key=False
    )
    kem_secret, kem_id, kem_ciphertext = _encapsulate(identity_key, bundle.get("kemPreKey"))
    prekey = PreKeyHeader(
        registration_id=registration_id,
        identity_key=header.identity_key,
        ephemeral_key=header.ephemeral_key,
        signed_prekey=header.signed_pre_key,
        one_time_prekey=header.pre_key,
        kem_key_id=kem_id,
        kem_ciphertext=kem_ciphertext,
    )
    return Session(
        associated_data=associated_data,
        remote_identity_key=identity_key,
        remote_registration_id=int(bundle["registrationId"]),
        pending_prekey=prekey,
        shared_secret=_combine(secret, kem_secret),
        remote_ratchet_key=x3dh_bundle.signed_pre_key,
        base_keys={header.ephemeral_key},
    )


def _encapsulate(
    identity_key: bytes, kem: dict[str, Any] | None
) -> tuple[bytes | None, int | None, bytes | None]:
    if kem is None:
        return None, None, None
    public = unb64(kem["publicKey"])
    if not verify(identity_key, public, unb64(kem["signature"])):
        raise x3dh.KeyAgreementException("The signature of the KEM prekey could not be verified.")
    if public[:1] != KEM_MLKEM1024:
        return None, None, None  # a KEM this client does not speak: classical X3DH only
    shared, ciphertext = MLKEM1024PublicKey.from_public_bytes(public[1:]).encapsulate()
    return shared, int(kem["keyId"]), ciphertext


async def respond(keys: PreKeys, content: bytes) -> tuple[Session, bytes]:
    """The responder's session from a PREKEY_MESSAGE, and the first plaintext."""
    header, body = decode_prekey_message(content)
    secret, associated_data, signed_prekey = await keys.state.get_shared_secret_passive(
        header.x3dh_header(), require_pre_key=False
    )
    kem_secret = None
    if header.kem_key_id is not None and header.kem_ciphertext is not None:
        kem_secret = keys.kem_decapsulate(header.kem_key_id, header.kem_ciphertext)
    ratchet, plaintext = await Ratchet.decrypt_initial_message(
        shared_secret=_combine(secret, kem_secret),
        own_ratchet_priv=signed_prekey.priv,
        message=decode_ratchet_message(body),
        associated_data=associated_data,
        **_CONFIG,
    )
    if header.one_time_prekey is not None:
        keys.consume_one_time(header.one_time_prekey)
    session = Session(
        associated_data=associated_data,
        remote_identity_key=encode_curve(header.identity_key),
        remote_registration_id=header.registration_id,
        ratchet=ratchet,
        base_keys={header.ephemeral_key},
    )
    return session, bytes(plaintext)
