"""A device's key material: the user's identity key and the device's prekeys.

X3DH itself is the `x3dh` package (Signal's spec, XEdDSA signatures through
`xeddsa`); this module keeps what it does not: key ids for the server's key
directory, the KEM last-resort prekey, and the upload payloads in the
contract's shapes (RegisterMessagingDeviceInput, UploadPreKeysInput).

One identity key per user, shared by all its devices (a linked device receives
it from the primary, as Signal's provisioning does); every device has its own
signed prekey, one-time prekeys and KEM prekey. Public keys are uploaded in
the 33-byte typed form, and each signature covers exactly those uploaded bytes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import x3dh
import xeddsa
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM1024PrivateKey
from x3dh.identity_key_pair import IdentityKeyPairPriv

from clients.messaging.encoding import b64, decode_curve, encode_curve

# Type byte of the KEM public key as uploaded (Signal's Kyber-1024 byte), then ML-KEM-1024.
KEM_MLKEM1024 = b"\x08"
X3DH_INFO = b"Entativa X3DH"


class X3DHState(x3dh.BaseState):
    """The `x3dh` state with Signal's public-key encoding (0x05 || key)."""

    @staticmethod
    def _encode_public_key(key_format: x3dh.IdentityKeyFormat, pub: bytes) -> bytes:
        return encode_curve(pub)


@dataclass(frozen=True)
class Identity:
    """A user's long-term Curve25519 identity key pair (XEdDSA signs with it)."""

    private_key: bytes

    @classmethod
    def generate(cls) -> Identity:
        return cls(xeddsa.seed_to_priv(secrets.token_bytes(32)))

    @property
    def public_key(self) -> bytes:
        """The 33-byte typed form the server stores as the user's identity key."""
        return encode_curve(xeddsa.priv_to_curve25519_pub(self.private_key))

    def sign(self, message: bytes) -> bytes:
        """An XEdDSA signature (verifiable with the Curve25519 public key)."""
        signing_key = xeddsa.priv_force_sign(self.private_key, False)
        return bytes(xeddsa.ed25519_priv_sign(signing_key, message))


def verify(identity_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is the XEdDSA signature of `message` by `identity_key`."""
    ed_public = xeddsa.curve25519_pub_to_ed25519_pub(decode_curve(identity_key), False)
    return bool(xeddsa.ed25519_verify(signature, ed_public, message))


@dataclass
class KemPreKey:
    key_id: int
    private_key: MLKEM1024PrivateKey
    signature: bytes

    @property
    def public_key(self) -> bytes:
        return KEM_MLKEM1024 + self.private_key.public_key().public_bytes_raw()


@dataclass
class PreKeys:
    """One device's X3DH state plus the ids the key directory knows its keys by."""

    identity: Identity
    state: X3DHState
    signed_prekey_id: int = 1
    one_time_ids: dict[bytes, int] = field(default_factory=dict)  # raw public key → key id
    next_one_time_id: int = 1
    kem: KemPreKey | None = None

    @classmethod
    def create(cls, identity: Identity, one_time: int = 10, kem: bool = True) -> PreKeys:
        state = X3DHState.create(
            x3dh.IdentityKeyFormat.CURVE_25519,
            x3dh.HashFunction.SHA_256,
            X3DH_INFO,
            IdentityKeyPairPriv(identity.private_key),
        )
        keys = cls(identity, state)
        keys.generate_one_time(one_time)
        if kem:
            keys.kem = keys._new_kem(1)
        return keys

    def _new_kem(self, key_id: int) -> KemPreKey:
        private = MLKEM1024PrivateKey.generate()
        public = KEM_MLKEM1024 + private.public_key().public_bytes_raw()
        return KemPreKey(key_id, private, self.identity.sign(public))

    def generate_one_time(self, count: int) -> list[tuple[int, bytes]]:
        """`count` new one-time prekeys: (key id, raw public key) each."""
        before = set(self.state.bundle.pre_keys)
        self.state.generate_pre_keys(count)
        fresh = sorted(set(self.state.bundle.pre_keys) - before)
        made = []
        for public in fresh:
            self.one_time_ids[public] = self.next_one_time_id
            made.append((self.next_one_time_id, public))
            self.next_one_time_id += 1
        return made

    def rotate_signed_prekey(self) -> None:
        self.state.rotate_signed_pre_key()
        self.signed_prekey_id += 1

    def signed_prekey_input(self) -> dict[str, Any]:
        bundle = self.state.bundle
        return {
            "keyId": self.signed_prekey_id,
            "publicKey": b64(encode_curve(bundle.signed_pre_key)),
            "signature": b64(bundle.signed_pre_key_sig),
        }

    def kem_prekey_input(self) -> dict[str, Any] | None:
        if self.kem is None:
            return None
        return {
            "keyId": self.kem.key_id,
            "publicKey": b64(self.kem.public_key),
            "signature": b64(self.kem.signature),
        }

    def one_time_inputs(self, keys: list[tuple[int, bytes]] | None = None) -> list[dict[str, Any]]:
        chosen = (
            keys
            if keys is not None
            else sorted(((key_id, public) for public, key_id in self.one_time_ids.items()))
        )
        return [{"keyId": key_id, "publicKey": b64(encode_curve(pub))} for key_id, pub in chosen]

    def registration_input(self, registration_id: int, name: str | None) -> dict[str, Any]:
        """RegisterMessagingDeviceInput for this device."""
        return {
            "name": name,
            "registrationId": registration_id,
            "identityKey": b64(self.identity.public_key),
            "signedPreKey": self.signed_prekey_input(),
            "oneTimePreKeys": self.one_time_inputs(),
            "kemPreKey": self.kem_prekey_input(),
        }

    def consume_one_time(self, public: bytes) -> None:
        """A one-time prekey is used once: forget it after the session it made."""
        self.state.delete_pre_key(public)
        self.one_time_ids.pop(public, None)

    def kem_decapsulate(self, key_id: int, ciphertext: bytes) -> bytes:
        """The KEM shared secret; the last-resort KEM key is kept (never deleted)."""
        if self.kem is None or self.kem.key_id != key_id:
            raise x3dh.KeyAgreementException("unknown KEM prekey")
        return self.kem.private_key.decapsulate(ciphertext)


def new_registration_id() -> int:
    """Signal's registration id range: 1..16383."""
    return secrets.randbelow(16383) + 1
