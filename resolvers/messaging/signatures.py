"""Public keys of the key directory and the XEdDSA signatures over them.

An identity key is a Curve25519 public key, sent either as Signal serializes it
(33 bytes: the type byte 0x05, then the key) or as the 32 raw bytes. It is
stored and served in ONE form, the 33-byte 0x05-prefixed one, so every device
of a user and every claimer see the same bytes, and "is this the same identity
key" is a byte comparison.

A signed prekey's (and a KEM prekey's) signature is an XEdDSA signature
(Signal's XEdDSA spec: the Ed25519 key with sign bit 0 derived from the
identity's Curve25519 key) over the EXACT public-key bytes the client uploaded,
whatever their encoding (e.g. 0x05-prefixed EC key, 0x08-prefixed Kyber key).
The server never re-encodes what was signed: a client verifies the same bytes.
"""

from __future__ import annotations

import xeddsa

from resolvers.errors import BadUserInput

CURVE25519_TYPE = 0x05
CURVE25519_SIZE = 32
SIGNATURE_SIZE = 64
MAX_PREKEY_SIZE = 2048  # an EC prekey is 32/33 bytes; a Kyber-1024 key 1569


def normalize_identity_key(raw: bytes, field: str = "identityKey") -> bytes:
    """The 33-byte 0x05-prefixed form of an identity key; BAD_USER_INPUT otherwise."""
    if len(raw) == CURVE25519_SIZE:
        return bytes([CURVE25519_TYPE]) + raw
    if len(raw) == CURVE25519_SIZE + 1 and raw[0] == CURVE25519_TYPE:
        return bytes(raw)
    raise BadUserInput(
        "an identity key is a Curve25519 public key: 32 bytes, or 33 starting with 0x05",
        field=field,
    )


def check_prekey(public_key: bytes, field: str) -> None:
    """A prekey's public bytes are opaque to the server, within a size bound."""
    if not 0 < len(public_key) <= MAX_PREKEY_SIZE:
        raise BadUserInput(f"a prekey's public key is 1 to {MAX_PREKEY_SIZE} bytes", field=field)


def verify(identity_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is the identity key's XEdDSA signature of `message`.

    `identity_key` is normalized (33 bytes). Never raises on bad input: a
    malformed signature is simply not valid.
    """
    if len(signature) != SIGNATURE_SIZE:
        return False
    try:
        ed25519 = xeddsa.curve25519_pub_to_ed25519_pub(identity_key[1:], False)
        return bool(xeddsa.ed25519_verify(signature, ed25519, message))
    except (ValueError, xeddsa.XEdDSAException):
        return False


def require_signed(identity_key: bytes, public_key: bytes, signature: bytes, field: str) -> None:
    """BAD_USER_INPUT unless `signature` signs exactly `public_key` with the identity key."""
    check_prekey(public_key, f"{field}.publicKey")
    if not verify(identity_key, public_key, signature):
        raise BadUserInput(
            "the signature does not verify with the identity key", field=f"{field}.signature"
        )
