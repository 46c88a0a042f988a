"""Real messaging keys for tests, and registering a device through the GraphQL API.

A test plays a client: it generates the keys a Signal-style client would (an
XEdDSA-capable Curve25519 identity key, a signed prekey, an ML-KEM-1024
last-resort prekey signed the same way, one-time prekeys), uploads only the
public halves through the API, and keeps the private halves in `DeviceKeys`.

Encodings (what the server stores and serves back byte for byte):
- Curve25519 public keys: 33 bytes, 0x05 then the key (Signal's serialization);
  the server also accepts a 32-byte identity key and serves it 0x05-prefixed.
- KEM public keys: 0x08 then the 1568-byte ML-KEM-1024 key (Signal's Kyber type byte).
- Signatures: XEdDSA by the identity key over the exact public-key bytes uploaded.

Use:
    device = await register_device(gql, alice.token)            # primary, device 1
    other = await register_device(gql, alice.token, identity=device.identity)  # linked
    bundles = await claim_bundles(gql, bob.token, alice.id)
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

import xeddsa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem

CURVE25519_TYPE = b"\x05"
KEM_TYPE = b"\x08"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


@dataclass(frozen=True)
class KeyPair:
    """A Curve25519 key pair: `private` is the 32-byte scalar, `public` 33 bytes (0x05…)."""

    private: bytes
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        private = xeddsa.seed_to_priv(secrets.token_bytes(32))
        return cls(private, CURVE25519_TYPE + xeddsa.priv_to_curve25519_pub(private))

    @property
    def raw_public(self) -> bytes:
        """The 32 bytes without the type byte."""
        return self.public[1:]

    def sign(self, message: bytes) -> bytes:
        """XEdDSA signature of `message` (what the server verifies)."""
        return xeddsa.ed25519_priv_sign(xeddsa.priv_force_sign(self.private, False), message)

    def agree(self, public: bytes) -> bytes:
        """X25519 with a 32- or 33-byte public key."""
        return xeddsa.x25519(self.private, public[-32:])


@dataclass(frozen=True)
class SignedKeyPair:
    key_id: int
    pair: KeyPair
    signature: bytes

    @property
    def public(self) -> bytes:
        return self.pair.public

    def as_input(self) -> dict[str, Any]:
        return {
            "keyId": self.key_id,
            "publicKey": b64(self.public),
            "signature": b64(self.signature),
        }


@dataclass(frozen=True)
class KemKeyPair:
    """An ML-KEM-1024 last-resort prekey; `public` is 0x08 + the 1568-byte key."""

    key_id: int
    private: mlkem.MLKEM1024PrivateKey
    public: bytes
    signature: bytes

    def as_input(self) -> dict[str, Any]:
        return {
            "keyId": self.key_id,
            "publicKey": b64(self.public),
            "signature": b64(self.signature),
        }

    def decapsulate(self, ciphertext: bytes) -> bytes:
        return self.private.decapsulate(ciphertext)


def signed_input(key_id: int, public: bytes, signature: bytes) -> dict[str, Any]:
    return {"keyId": key_id, "publicKey": b64(public), "signature": b64(signature)}


def signed_prekey(identity: KeyPair, key_id: int = 1) -> SignedKeyPair:
    pair = KeyPair.generate()
    return SignedKeyPair(key_id, pair, identity.sign(pair.public))


def kem_prekey(identity: KeyPair, key_id: int = 1) -> KemKeyPair:
    private = mlkem.MLKEM1024PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    public = KEM_TYPE + raw
    return KemKeyPair(key_id, private, public, identity.sign(public))


def one_time_prekeys(count: int, first_id: int = 1) -> dict[int, KeyPair]:
    return {first_id + i: KeyPair.generate() for i in range(count)}


def one_time_inputs(keys: dict[int, KeyPair]) -> list[dict[str, Any]]:
    return [{"keyId": key_id, "publicKey": b64(pair.public)} for key_id, pair in keys.items()]


@dataclass
class DeviceKeys:
    """A registered device as its client knows it: ids and every private key."""

    device_id: int
    registration_id: int
    identity: KeyPair
    signed_prekey: SignedKeyPair
    kem_prekey: KemKeyPair | None
    one_time_prekeys: dict[int, KeyPair] = field(default_factory=dict)
    name: str | None = None

    def one_time(self, key_id: int) -> KeyPair:
        return self.one_time_prekeys[key_id]


def device_input(
    identity: KeyPair,
    registration_id: int,
    spk: SignedKeyPair,
    kem: KemKeyPair | None,
    one_time: dict[int, KeyPair],
    name: str | None = None,
) -> dict[str, Any]:
    """registerMessagingDevice's `input`, for tests that tamper with it."""
    value: dict[str, Any] = {
        "registrationId": registration_id,
        "identityKey": b64(identity.public),
        "signedPreKey": spk.as_input(),
        "oneTimePreKeys": one_time_inputs(one_time),
    }
    if kem is not None:
        value["kemPreKey"] = kem.as_input()
    if name is not None:
        value["name"] = name
    return value


REGISTER = """
mutation($input: RegisterMessagingDeviceInput!) {
  registerMessagingDevice(input: $input) { deviceId registrationId name createdAt lastSeenAt }
}
"""

CLAIM_BUNDLES = """
mutation($userId: ID!) {
  claimPreKeyBundles(userId: $userId) {
    userId deviceId registrationId identityKey
    signedPreKey { keyId publicKey signature }
    oneTimePreKey { keyId publicKey }
    kemPreKey { keyId publicKey signature }
  }
}
"""


async def register_device(
    gql: Any,
    token: str,
    *,
    identity: KeyPair | None = None,
    registration_id: int | None = None,
    one_time_count: int = 10,
    with_kem: bool = True,
    device_name: str | None = None,
    platform: str = "socialink",
) -> DeviceKeys:
    """Register a device of the token's user through the API and return its keys.

    With no `identity`, a new identity key (so: a new primary, device 1, replacing
    any earlier devices); pass the primary's `identity` to link another device.
    `gql` is the `gql` fixture (tests/conftest.py GraphQLClient).
    """
    identity = identity or KeyPair.generate()
    registration_id = registration_id or secrets.randbelow(16383) + 1
    spk = signed_prekey(identity)
    kem = kem_prekey(identity) if with_kem else None
    one_time = one_time_prekeys(one_time_count)
    result = await gql(
        REGISTER,
        {"input": device_input(identity, registration_id, spk, kem, one_time, device_name)},
        token=token,
        platform=platform,
    )
    registered = result.ok()["registerMessagingDevice"]
    return DeviceKeys(
        device_id=registered["deviceId"],
        registration_id=registered["registrationId"],
        identity=identity,
        signed_prekey=spk,
        kem_prekey=kem,
        one_time_prekeys=one_time,
        name=registered["name"],
    )


async def claim_bundles(
    gql: Any, token: str, user_id: str, platform: str = "socialink"
) -> list[dict[str, Any]]:
    """claimPreKeyBundles as returned by the API (raises on an error)."""
    result = await gql(CLAIM_BUNDLES, {"userId": user_id}, token=token, platform=platform)
    bundles: list[dict[str, Any]] = result.ok()["claimPreKeyBundles"]
    return bundles


def verify_bundle(bundle: dict[str, Any]) -> bool:
    """What a client checks before X3DH: the signed prekey's (and KEM prekey's)
    XEdDSA signature by the bundle's identity key."""
    identity = unb64(bundle["identityKey"])
    ed25519 = xeddsa.curve25519_pub_to_ed25519_pub(identity[-32:], False)
    keys = [bundle["signedPreKey"]] + ([bundle["kemPreKey"]] if bundle["kemPreKey"] else [])
    return all(
        xeddsa.ed25519_verify(unb64(k["signature"]), ed25519, unb64(k["publicKey"])) for k in keys
    )
