"""Plain records of the stories store: what callers get back, never rows or documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# A story is visible for 24 hours after it is created (issue 5); reads filter on it.
STORY_LIFETIME = timedelta(hours=24)
# At most this many active stories per author; callers check it with active_count.
MAX_ACTIVE_STORIES = 100

Sticker = dict[str, Any]  # JSON-able: the same dict is a JSON column value and a sub-document


def to_millis(moment: datetime) -> datetime:
    """Both stores keep time to the millisecond (BSON dates do), so records compare equal."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class NewStory:
    author_id: int
    media_id: int
    audience: str  # "EVERYONE" or "CLOSE_FRIENDS"
    created_at: datetime
    stickers: tuple[Sticker, ...] = ()

    @property
    def expires_at(self) -> datetime:
        return to_millis(self.created_at) + STORY_LIFETIME


@dataclass(frozen=True)
class StoryRecord:
    id: int
    author_id: int
    media_id: int
    audience: str
    created_at: datetime
    expires_at: datetime
    stickers: tuple[Sticker, ...] = field(default=())

    def active(self, now: datetime) -> bool:
        return self.expires_at > now


@dataclass(frozen=True)
class ViewRecord:
    story_id: int
    viewer_id: int
    viewed_at: datetime
    reaction: str | None
