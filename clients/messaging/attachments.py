"""Encrypted attachments: the client encrypts, the server keeps opaque bytes.

A file is sealed with a fresh AES-256-GCM key before upload; the server stores
the ciphertext under an unguessable id. The pointer (id, url, key, digest)
travels only inside an end-to-end encrypted message, so the server never
holds the key. The recipient downloads, checks the digest and opens it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clients.messaging.encoding import b64, unb64


@dataclass(frozen=True)
class Pointer:
    """What a message carries to let its recipients fetch and open an attachment."""

    id: str
    url: str
    key: str  # base64 of the 32-byte AES key
    digest: str  # hex SHA-256 of the ciphertext as uploaded

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Pointer:
        return cls(**json.loads(data))


def seal(plaintext: bytes) -> tuple[bytes, bytes]:
    """(ciphertext = nonce || AES-256-GCM output, key)."""
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, None), key


def open_sealed(ciphertext: bytes, pointer: Pointer) -> bytes:
    if hashlib.sha256(ciphertext).hexdigest() != pointer.digest:
        raise ValueError("attachment digest does not match")
    return AESGCM(unb64(pointer.key)).decrypt(ciphertext[:12], ciphertext[12:], None)


def pointer_for(attachment_id: str, url: str, ciphertext: bytes, key: bytes) -> Pointer:
    return Pointer(attachment_id, url, b64(key), hashlib.sha256(ciphertext).hexdigest())
