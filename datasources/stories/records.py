"""Plain records of the stories store: what callers get back, never rows or documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# A story is visible for 24 hours after it is created (issue 5); reads filter on it.
STORY_LIFETIME = timedelta(hours=24)
# At most this many active stories per author; callers check it with active_count.
MAX_ACTIVE_STORIES = 100

# A sticker as stored: a JSON-able dict (a JSON column value, a sub-document) with
# "type" (POLL, QUIZ, QUESTION, COUNTDOWN, SLIDER, MENTION, LINK, LOCATION, HASHTAG,
# ADD_YOURS), the placement (x, y, width, height, rotation) and the type's fields
# (e.g. POLL: question, options; COUNTDOWN: title, endsAt as ISO-8601 text;
# ADD_YOURS: prompt, originStoryId or None). A sticker is addressed by its index.
Sticker = dict[str, Any]

# Kinds of sticker responses. One per (story, sticker, user) for every kind: a
# COUNTDOWN response is a subscription (deleted to unsubscribe); link taps are
# counters, not responses (see StoryStore.bump).
RESPONSE_KINDS = ("POLL", "QUIZ", "QUESTION", "SLIDER", "COUNTDOWN")

# Counters kept per story (StoryStore.bump): insights and per-link-sticker taps.
IMPRESSIONS = "impressions"
FORWARD_TAPS = "forward"
BACK_TAPS = "back"
EXITS = "exits"
STICKER_TAPS = "sticker_taps"
COUNTERS = (IMPRESSIONS, FORWARD_TAPS, BACK_TAPS, EXITS, STICKER_TAPS)


def link_taps_counter(sticker_index: int) -> str:
    """The counter of taps on the link sticker at `sticker_index` of a story."""
    return f"link_{sticker_index}"


def to_millis(moment: datetime) -> datetime:
    """Both stores keep time to the millisecond (BSON dates do), so records compare equal."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def add_yours_origin(stickers: tuple[Sticker, ...]) -> int | None:
    """The origin story an ADD_YOURS sticker of these stickers answers, if any."""
    for sticker in stickers:
        if sticker.get("type") == "ADD_YOURS" and sticker.get("originStoryId") is not None:
            return int(sticker["originStoryId"])
    return None


@dataclass(frozen=True)
class NewStory:
    author_id: int
    platform: str
    media_id: int
    audience: str  # "EVERYONE" or "CLOSE_FRIENDS"
    created_at: datetime
    stickers: tuple[Sticker, ...] = ()
    caption: str | None = None

    @property
    def expires_at(self) -> datetime:
        return to_millis(self.created_at) + STORY_LIFETIME

    @property
    def add_yours_origin_id(self) -> int | None:
        return add_yours_origin(self.stickers)


@dataclass(frozen=True)
class StoryRecord:
    id: int
    author_id: int
    platform: str
    media_id: int
    audience: str
    created_at: datetime
    expires_at: datetime
    stickers: tuple[Sticker, ...] = field(default=())
    caption: str | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at > now

    @property
    def add_yours_origin_id(self) -> int | None:
        return add_yours_origin(self.stickers)


@dataclass(frozen=True)
class ViewRecord:
    story_id: int
    viewer_id: int
    viewed_at: datetime
    reaction: str | None


@dataclass(frozen=True)
class ResponseRecord:
    """One user's response to one sticker. `option` is the poll/quiz option index,
    `value` the slider value (0..1), `text` the question answer; COUNTDOWN carries none."""

    story_id: int
    sticker_index: int
    user_id: int
    kind: str  # one of RESPONSE_KINDS
    created_at: datetime
    option: int | None = None
    value: float | None = None
    text: str | None = None


@dataclass(frozen=True)
class Tally:
    """Aggregates of one sticker's responses, exact (counted from stored responses).

    option_counts: responses per option index (poll votes, quiz answers).
    count: all responses (slider responses, question answers, countdown subscribers).
    value_sum: the sum of slider values (average = value_sum / count).
    """

    option_counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    value_sum: float = 0.0


@dataclass(frozen=True)
class NewReply:
    story_id: int
    author_id: int
    body: str
    created_at: datetime


@dataclass(frozen=True)
class ReplyRecord:
    id: int
    story_id: int
    author_id: int
    body: str
    created_at: datetime


@dataclass(frozen=True)
class NewHighlight:
    owner_id: int
    platform: str
    title: str
    story_ids: tuple[int, ...]
    created_at: datetime
    cover_media_id: int | None = None


@dataclass(frozen=True)
class HighlightRecord:
    id: int
    owner_id: int
    platform: str
    title: str
    story_ids: tuple[int, ...]  # in the order they were added
    created_at: datetime
    cover_media_id: int | None = None


@dataclass(frozen=True)
class DueCountdown:
    """A countdown sticker whose end has come, claimed once (its end is announced once)."""

    story_id: int
    sticker_index: int
    author_id: int
    platform: str
    title: str
    ends_at: datetime
    subscriber_ids: tuple[int, ...]


@dataclass(frozen=True)
class Cursor:
    """A keyset position in a newest-first list: (time, id) of the last item seen."""

    at: datetime
    id: int
