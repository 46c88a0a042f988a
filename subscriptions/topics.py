"""Broker topic names and the small JSON messages carried on them.

A message says what changed, not what a subscriber sees: the hub resolves each
subscription's selection itself (once per distinct document, variables and
visibility), so a message stays the same whoever listens.

- `post:<platform>:<id>`: {"kind": "comment", "comment_id", "author_id",
  "parent_author_id"}, {"kind": "likes"}, {"kind": "access"} (edited or deleted:
  every subscriber's access is checked again).
- `access:<platform>:<user id>`: {"kind": "access"}: a relationship of this user
  changed (block, unfollow…); their subscriptions are checked again.
- `sessions:revoked`: {"family_id"}: close the sockets of this token family.
"""

from __future__ import annotations

import json
from typing import Any

REVOKED = "sessions:revoked"


def post(platform: str, post_id: int) -> str:
    return f"post:{platform}:{post_id}"


def access(platform: str, user_id: int) -> str:
    return f"access:{platform}:{user_id}"


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    return value if isinstance(value, dict) else {}


async def announce_revoked(broker: Any, family_id: str) -> None:
    """Close every open socket of `family_id`, in every process (sign-out, reuse)."""
    await broker.publish(REVOKED, encode({"family_id": family_id}))
