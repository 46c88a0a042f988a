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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from subscriptions.broker import Payload

REVOKED = "sessions:revoked"


def post(platform: str, post_id: int) -> str:
    return f"post:{platform}:{post_id}"


def access(platform: str, user_id: int) -> str:
    return f"access:{platform}:{user_id}"


class Encoded:
    """A message for the broker, made into JSON bytes only when a broker asks.

    The in-process broker hands this very object to every handler, so `decode`
    there returns the message itself: no JSON is made and parsed again per
    message (for a relayed envelope's announcement, that was 5% of the relay
    server's CPU, bench/messaging.py). A broker between processes (Redis) sends
    `bytes(encoded)` and its receivers parse them. Receivers share the one dict:
    they only read it.

    So a message may also hold an object that has a JSON form of its own
    (`to_json()`, e.g. a queued envelope's record): receivers in this process get
    the object, and those elsewhere its JSON form (each receiver reads both).
    """

    __slots__ = ("message",)

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message

    def __bytes__(self) -> bytes:
        return json.dumps(self.message, separators=(",", ":"), default=_to_json).encode()


def _to_json(value: Any) -> Any:
    to_json = getattr(value, "to_json", None)
    if to_json is None:
        raise TypeError(f"{type(value).__name__} has no JSON form (to_json)")
    return to_json()


def encode(message: dict[str, Any]) -> Encoded:
    return Encoded(message)


def decode(data: Payload) -> dict[str, Any]:
    if type(data) is Encoded:
        return data.message
    value = json.loads(bytes(data))
    return value if isinstance(value, dict) else {}


async def announce_revoked(broker: Any, family_id: str) -> None:
    """Close every open socket of `family_id`, in every process (sign-out, reuse)."""
    await broker.publish(REVOKED, encode({"family_id": family_id}))
