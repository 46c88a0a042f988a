"""Stickers: the inputs of createStory turned into stored sticker dicts, and the
responses of respondToSticker checked against the sticker they answer.

A stored sticker is a plain dict (the story document keeps it as is): "type",
"x", "y", "width", "height", "rotation", and per type

    POLL       question, options            QUIZ      question, options, correctOption
    QUESTION   prompt                       COUNTDOWN title, endsAt (ISO-8601 UTC text)
    SLIDER     question, emoji              MENTION   userId (int)
    LINK       url, label (str | None)      LOCATION  name, latitude, longitude
    HASHTAG    hashtag (no '#', case-folded)
    ADD_YOURS  prompt, originStoryId (int | None)

The rules (any break: BAD_USER_INPUT, field `stickers[i]`, the message starting
with `stickers[i]: ` so a client can point at the sticker):

- At most MAX_STICKERS stickers on a story.
- Placement: x, y, width, height finite and within 0..1 of the frame (width and
  height above 0: a sticker of no size cannot be seen or tapped). x, y are the
  client's anchor (the contract does not say corner or centre), so x + width may
  exceed 1. Rotation: any finite number of degrees, stored normalized into
  -180..180 (370 → 10), so equal turns compare equal.
- Texts (poll and quiz questions, question prompts, countdown titles, slider
  questions, add-yours prompts) are trimmed, then 1..MAX_TEXT characters.
- Poll and quiz: MIN_OPTIONS..MAX_OPTIONS options, each trimmed to
  1..MAX_OPTION characters, no two alike ignoring case (a vote must say which).
  A quiz's correctOption is an index into its options, from 0.
- Countdown: endsAt carries its UTC offset (a bare local time is ambiguous),
  is after `now` and at most MAX_COUNTDOWN ahead.
- Slider: exactly one emoji, as Unicode lists them (a ZWJ family, a skin tone,
  a flag, a keycap are one emoji); the `emoji` package holds that list.
- Mention: a User id of someone on this platform with no block either way with
  the viewer; the same error whether the user does not exist or a block hides
  them, so a mention cannot probe for blocks. Mentioning yourself is allowed.
- Link: http or https with a host, no credentials (`https://bank.com@evil.example`
  reads as bank.com but goes to evil.example), at most MAX_URL characters.
  The label is optional, trimmed, at most MAX_LABEL characters (blank: none).
- Location: the rule of a post's location (name 1..100 characters, latitude
  -90..90, longitude -180..180).
- Hashtag: the rule of a trend's hashtag (resolvers/posts/trends.py): a leading
  '#' optional, letters, digits and underscores, case-folded, up to 100.
- Add yours: a prompt; originStoryId, when given, a Story id (whether that story
  exists and may be answered is the caller's check).

Checks that need no read run first, in sticker order; the mentioned users are
then loaded in one batch (and their relationships in another).

The inputs arrive as schema/stories/inputs.py built them and are read by
attribute only (resolvers do not import the schema layer); a field the client
left out is strawberry's UNSET, the one thing taken from the library here.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import emoji
from strawberry import UNSET

from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.ids import split_id
from resolvers.posts.policy import relationship
from resolvers.posts.posts import MAX_LOCATION_NAME
from resolvers.posts.trends import normalize_hashtag

MAX_STICKERS = 10
MAX_TEXT = 300
MIN_OPTIONS = 2
MAX_OPTIONS = 4
MAX_OPTION = 50
MAX_LABEL = 50
MAX_URL = 2048
MAX_COUNTDOWN = timedelta(days=365)

STICKER_TYPES = (
    "POLL",
    "QUIZ",
    "QUESTION",
    "COUNTDOWN",
    "SLIDER",
    "MENTION",
    "LINK",
    "LOCATION",
    "HASHTAG",
    "ADD_YOURS",
)
# StickerInput member → stored type.
_MEMBERS = {
    "poll": "POLL",
    "quiz": "QUIZ",
    "question": "QUESTION",
    "countdown": "COUNTDOWN",
    "slider": "SLIDER",
    "mention": "MENTION",
    "link": "LINK",
    "location": "LOCATION",
    "hashtag": "HASHTAG",
    "add_yours": "ADD_YOURS",
}
# StickerResponseInput member → the sticker type it answers.
_RESPONSES = {
    "poll_option": "POLL",
    "quiz_answer": "QUIZ",
    "question_text": "QUESTION",
    "slider_value": "SLIDER",
    "countdown_subscribe": "COUNTDOWN",
    "link_tap": "LINK",
}


class _Invalid(ValueError):
    """A broken sticker rule; `stored_stickers` adds the sticker's index."""


def _at(index: int, message: str) -> BadUserInput:
    return BadUserInput(f"stickers[{index}]: {message}", field=f"stickers[{index}]")


# ── createStory ──────────────────────────────────────────────────────────


async def stored_stickers(
    context: Context, placed: Sequence[Any], now: datetime
) -> tuple[dict[str, Any], ...]:
    """The stored form of a story's stickers (`PlacedStickerInput`s), or BAD_USER_INPUT.

    `now` (aware, UTC) bounds countdowns; pass the story's creation time."""
    if len(placed) > MAX_STICKERS:
        raise BadUserInput(f"a story has at most {MAX_STICKERS} stickers", field="stickers")
    stored: list[dict[str, Any]] = []
    for index, item in enumerate(placed):
        try:
            stored.append({**_placement(item.placement), **_sticker(item.sticker, now)})
        except _Invalid as exc:
            raise _at(index, str(exc)) from None
    await _check_mentions(context, stored)
    return tuple(stored)


def _placement(placement: Any) -> dict[str, float]:
    x, y = placement.x, placement.y
    width = _given(placement.width, 0.3)
    height = _given(placement.height, 0.1)
    rotation = _given(placement.rotation, 0.0)
    for name, value in (("x", x), ("y", y)):
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise _Invalid(f"placement {name} must be between 0 and 1")
    for name, value in (("width", width), ("height", height)):
        if not (math.isfinite(value) and 0 < value <= 1):
            raise _Invalid(f"placement {name} must be more than 0 and at most 1")
    if not math.isfinite(rotation):
        raise _Invalid("placement rotation must be a finite number of degrees")
    return {
        "x": float(x),
        "y": float(y),
        "width": float(width),
        "height": float(height),
        # remainder() maps any turn into -180..180; + 0.0 turns -0.0 into 0.0.
        "rotation": math.remainder(float(rotation), 360.0) + 0.0,
    }


def _sticker(sticker: Any, now: datetime) -> dict[str, Any]:
    chosen = [(name, value) for name, value in _members(sticker, _MEMBERS) if value is not None]
    if len(chosen) != 1:
        raise _Invalid("a sticker sets exactly one of " + ", ".join(_camel(n) for n in _MEMBERS))
    member, value = chosen[0]
    kind = _MEMBERS[member]
    return {"type": kind, **_CONVERTERS[kind](value, now)}


def _poll(value: Any, now: datetime) -> dict[str, Any]:
    return {"question": _text(value.question, "poll question"), "options": _options(value, "poll")}


def _quiz(value: Any, now: datetime) -> dict[str, Any]:
    options = _options(value, "quiz")
    correct = value.correct_option
    if not 0 <= correct < len(options):
        raise _Invalid(f"quiz correctOption must be an option index, 0 to {len(options) - 1}")
    return {
        "question": _text(value.question, "quiz question"),
        "options": options,
        "correctOption": correct,
    }


def _question(value: Any, now: datetime) -> dict[str, Any]:
    return {"prompt": _text(value.prompt, "question prompt")}


def _countdown(value: Any, now: datetime) -> dict[str, Any]:
    ends_at: datetime = value.ends_at
    if ends_at.tzinfo is None or ends_at.utcoffset() is None:
        raise _Invalid("countdown endsAt needs a UTC offset (e.g. 2030-01-01T12:00:00Z)")
    if ends_at <= now:
        raise _Invalid("countdown endsAt must be in the future")
    if ends_at > now + MAX_COUNTDOWN:
        raise _Invalid(f"countdown endsAt must be at most {MAX_COUNTDOWN.days} days ahead")
    return {
        "title": _text(value.title, "countdown title"),
        "endsAt": ends_at.astimezone(UTC).isoformat(),
    }


def _slider(value: Any, now: datetime) -> dict[str, Any]:
    question = _text(value.question, "slider question")
    face = value.emoji.strip()
    if not emoji.is_emoji(face):
        raise _Invalid("slider emoji must be exactly one emoji")
    return {"question": question, "emoji": face}


def _mention(value: Any, now: datetime) -> dict[str, Any]:
    parts = split_id(value.user_id)
    if parts is None or parts[0] != "User" or not parts[1].isdigit():
        raise _Invalid("mention userId is not a valid User id")
    return {"userId": int(parts[1])}


def _link(value: Any, now: datetime) -> dict[str, Any]:
    url = value.url.strip()
    if not url or len(url) > MAX_URL or any(c.isspace() or not c.isprintable() for c in url):
        raise _Invalid(f"link url must be 1 to {MAX_URL} characters, without spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise _Invalid("link url is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _Invalid("link url must start with http:// or https://")
    if not parts.hostname:
        raise _Invalid("link url needs a host")
    if parts.username is not None or parts.password is not None:
        raise _Invalid("link url must not carry a user name or password")
    label = (_given(value.label, None) or "").strip() or None  # blank: no label
    if label is not None and len(label) > MAX_LABEL:
        raise _Invalid(f"link label must be at most {MAX_LABEL} characters")
    return {"url": url, "label": label}


def _location(value: Any, now: datetime) -> dict[str, Any]:
    place = value.location
    name = place.name.strip()
    if not 1 <= len(name) <= MAX_LOCATION_NAME:
        raise _Invalid(f"location name must be 1 to {MAX_LOCATION_NAME} characters")
    lat, lon = place.latitude, place.longitude
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise _Invalid("location latitude must be between -90 and 90")
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise _Invalid("location longitude must be between -180 and 180")
    return {"name": name, "latitude": float(lat), "longitude": float(lon)}


def _hashtag(value: Any, now: datetime) -> dict[str, Any]:
    try:
        return {"hashtag": normalize_hashtag(value.hashtag)}
    except BadUserInput as exc:
        raise _Invalid(exc.message) from None


def _add_yours(value: Any, now: datetime) -> dict[str, Any]:
    prompt = _text(value.prompt, "addYours prompt")
    origin = _given(value.origin_story_id, None)
    if origin is None:
        return {"prompt": prompt, "originStoryId": None}
    parts = split_id(origin)
    if parts is None or parts[0] != "Story" or not parts[1].isdigit():
        raise _Invalid("addYours originStoryId is not a valid Story id")
    return {"prompt": prompt, "originStoryId": int(parts[1])}


_CONVERTERS = {
    "POLL": _poll,
    "QUIZ": _quiz,
    "QUESTION": _question,
    "COUNTDOWN": _countdown,
    "SLIDER": _slider,
    "MENTION": _mention,
    "LINK": _link,
    "LOCATION": _location,
    "HASHTAG": _hashtag,
    "ADD_YOURS": _add_yours,
}


def _text(value: str, what: str) -> str:
    text = value.strip()
    if not 1 <= len(text) <= MAX_TEXT:
        raise _Invalid(f"{what} must be 1 to {MAX_TEXT} characters")
    return text


def _options(value: Any, what: str) -> list[str]:
    options = [option.strip() for option in value.options]
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise _Invalid(f"{what} needs {MIN_OPTIONS} to {MAX_OPTIONS} options")
    for number, option in enumerate(options):
        if not 1 <= len(option) <= MAX_OPTION:
            raise _Invalid(f"{what} options[{number}] must be 1 to {MAX_OPTION} characters")
    if len({option.casefold() for option in options}) != len(options):
        raise _Invalid(f"{what} options must differ from each other")
    return options


async def _check_mentions(context: Context, stored: list[dict[str, Any]]) -> None:
    """Each mentioned user exists on this platform with no block either way."""
    wanted = [(i, s["userId"]) for i, s in enumerate(stored) if s["type"] == "MENTION"]
    if not wanted:
        return
    ids = [user_id for _, user_id in wanted]
    users = await context.loaders.users.by_id.load_many(ids)  # platform-scoped
    relationships = await asyncio.gather(*(relationship(context, user_id) for user_id in ids))
    for (index, _), user, rel in zip(wanted, users, relationships, strict=True):
        if user is None or rel.blocking or rel.blocked_by:
            raise _at(index, "mention userId: user not found")


# ── respondToSticker ─────────────────────────────────────────────────────


@dataclass(frozen=True)
class ParsedResponse:
    """One checked response. `kind` is the sticker type it answers; `option` is the
    poll option or quiz answer index, `value` the slider value, `text` the answer
    to a question, `subscribe` a countdown (un)subscription; a LINK tap has none."""

    kind: str
    option: int | None = None
    value: float | None = None
    text: str | None = None
    subscribe: bool | None = None


def parse_response(sticker: dict[str, Any], response: Any) -> ParsedResponse:
    """`response` (a `StickerResponseInput`) checked against the stored `sticker`;
    BAD_USER_INPUT (field `response`) when it does not fit."""
    kind = sticker["type"]
    chosen = [(name, value) for name, value in _members(response, _RESPONSES) if value is not None]
    if len(chosen) != 1:
        raise _bad("a response sets exactly one of " + ", ".join(_camel(n) for n in _RESPONSES))
    member, value = chosen[0]
    name = _camel(member)
    if kind not in _RESPONSES.values():
        raise _bad(f"a {kind} sticker takes no response")
    if _RESPONSES[member] != kind:
        raise _bad(f"{name} does not answer a {kind} sticker")
    if kind in ("POLL", "QUIZ"):
        count = len(sticker["options"])
        if not 0 <= value < count:
            raise _bad(f"{name} must be an option index, 0 to {count - 1}")
        return ParsedResponse(kind, option=value)
    if kind == "QUESTION":
        text = value.strip()
        if not 1 <= len(text) <= MAX_TEXT:
            raise _bad(f"{name} must be 1 to {MAX_TEXT} characters")
        return ParsedResponse(kind, text=text)
    if kind == "SLIDER":
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise _bad(f"{name} must be between 0 and 1")
        return ParsedResponse(kind, value=float(value))
    if kind == "COUNTDOWN":
        return ParsedResponse(kind, subscribe=bool(value))
    if value is not True:  # LINK
        raise _bad(f"{name} must be true")
    return ParsedResponse(kind)


def _bad(message: str) -> BadUserInput:
    return BadUserInput(message, field="response")


# ── helpers ──────────────────────────────────────────────────────────────


def _members(value: Any, names: dict[str, str]) -> list[tuple[str, Any]]:
    """The (name, value) of each member of a @oneOf input; UNSET reads as None."""
    return [(name, _given(getattr(value, name, None), None)) for name in names]


def _given(value: Any, default: Any) -> Any:
    """An optional input field: `default` when left out (UNSET) or given as null."""
    if value is None or value is UNSET:
        return default
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
