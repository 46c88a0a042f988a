"""Notification types and the channels each one goes to unless the user chose.

Shared by the consumer (is IN_APP on for this recipient?) and the preference
resolvers (what `notificationPreferences` shows for a type never changed).

Defaults: everything in-app and as a push; email only for what asks the user to
act or names them (requests and mentions), so a popular account's inbox is not
flooded with likes. A user's own choice for a type replaces its default.
"""

from __future__ import annotations

TYPES: tuple[str, ...] = (
    "FOLLOW",
    "FOLLOW_REQUEST",
    "FOLLOW_ACCEPTED",
    "FRIEND_REQUEST",
    "FRIEND_ACCEPTED",
    "POST_LIKE",
    "POST_COMMENT",
    "COMMENT_REPLY",
    "COMMENT_LIKE",
    "MENTION",
    "POST_SHARE",
    "TAKE_LIKE",
    "TAKE_COMMENT",
    "TREND_JOINED",
    "TEMPLATE_USED",
    "STORY_MENTION",
    "STORY_REPLY",
    "STICKER_RESPONSE",
    "COUNTDOWN_ENDED",
)
CHANNELS: tuple[str, ...] = ("IN_APP", "PUSH", "EMAIL")

_EMAILED = frozenset({"FOLLOW_REQUEST", "FRIEND_REQUEST", "MENTION", "STORY_MENTION"})

DEFAULT_CHANNELS: dict[str, frozenset[str]] = {
    type_: frozenset({"IN_APP", "PUSH", "EMAIL"} if type_ in _EMAILED else {"IN_APP", "PUSH"})
    for type_ in TYPES
}


def ordered(channels: frozenset[str]) -> list[str]:
    """Channels in the contract's order (IN_APP, PUSH, EMAIL)."""
    return [channel for channel in CHANNELS if channel in channels]


def encode(channels: frozenset[str]) -> str:
    return ",".join(ordered(channels))


def decode(text: str) -> frozenset[str]:
    return frozenset(part for part in text.split(",") if part in CHANNELS)
