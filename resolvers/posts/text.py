"""Hashtags and mentions in captions and comments.

- `#tag`: a `#` not preceded by a word character or another `#`, then letters,
  digits or underscores (Unicode letters and digits: `#café`, `#東京`). Tags
  are case-folded (`#Sunset` and `#SUNSET` are one tag), kept once, in order
  of first appearance.
- `@username`: an `@` not preceded by a word character, `.` or `@` (so an email
  address is no mention), then a username's characters `[a-z0-9._]` (3-30, any
  case). A trailing dot ends the sentence, not the name. Names are case-folded
  and kept once; which of them exist is for the resolver to find out.
"""

from __future__ import annotations

import re

from resolvers.errors import BadUserInput

HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9._]+)")
MAX_TAG_LENGTH = 100
MAX_TAGS = 30
MAX_MENTIONS = 20


def hashtags(text: str | None) -> tuple[str, ...]:
    """The distinct case-folded hashtags of `text`, in order (at most MAX_TAGS)."""
    found: dict[str, None] = {}
    for match in HASHTAG.finditer(text or ""):
        tag = match.group(1).casefold()
        if len(tag) <= MAX_TAG_LENGTH:
            found.setdefault(tag, None)
    return tuple(found)[:MAX_TAGS]


def mentions(text: str | None) -> tuple[str, ...]:
    """The distinct case-folded usernames mentioned in `text`, in order."""
    found: dict[str, None] = {}
    for match in MENTION.finditer(text or ""):
        name = match.group(1).rstrip(".").casefold()
        if 3 <= len(name) <= 30:
            found.setdefault(name, None)
    return tuple(found)[:MAX_MENTIONS]


def optional_text(value: str | None, maximum: int, field: str) -> str | None:
    """Optional text: stripped, None when blank, BAD_USER_INPUT when too long."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > maximum:
        raise BadUserInput(f"{field} is longer than {maximum} characters", field=field)
    return value or None
