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


class Encoded(bytes):
    """A message's bytes that remember the message they encode.

    The in-process broker hands the publisher's bytes object to every handler, so
    `decode` there returns the message itself instead of parsing it again per
    message (a relayed envelope's announcement was parsed once per delivery: 2-3%
    of the relay server's CPU, bench/messaging.py). Over Redis the bytes travel
    and are parsed as before. Receivers share the one dict: they only read it.
    """

    message: dict[str, Any]


def encode(message: dict[str, Any]) -> bytes:
    data = Encoded(json.dumps(message, separators=(",", ":")).encode())
    data.message = message
    return data


def decode(data: bytes) -> dict[str, Any]:
    if type(data) is Encoded:
        return data.message
    value = json.loads(data)
    return value if isinstance(value, dict) else {}


async def announce_revoked(broker: Any, family_id: str) -> None:
    """Close every open socket of `family_id`, in every process (sign-out, reuse)."""
    await broker.publish(REVOKED, encode({"family_id": family_id}))
