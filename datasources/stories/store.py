"""What the stories domain needs from its document store, whatever the store is.

Two implementations keep this contract (tests/test_stories_store.py runs on both):
`relational.RelationalStoryStore` (SQLite/PostgreSQL, the embedded default) and
`mongo.MongoStoryStore` (MongoDB through PyMongo's async API).

Expiry: every read that takes `now` ignores stories whose expires_at <= now, so
an expired story vanishes at once even before it is purged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from datasources.stories.records import NewStory, StoryRecord, ViewRecord


class StoryStore(Protocol):
    async def add_story(self, new: NewStory) -> StoryRecord:
        """Store a story; expires_at = created_at + 24 h."""
        ...

    async def story(self, story_id: int, now: datetime | None) -> StoryRecord | None:
        """One story; None when missing or (given `now`) expired. now=None: expired too
        (highlights keep showing expired stories)."""
        ...

    async def active_stories(
        self, author_ids: Sequence[int], now: datetime
    ) -> list[StoryRecord]:
        """The unexpired stories of these authors, oldest first."""
        ...

    async def active_count(self, author_id: int, now: datetime) -> int:
        """How many unexpired stories the author has (the 100-story limit)."""
        ...

    async def delete_story(self, story_id: int) -> bool:
        """Remove a story and its views; False when there was none."""
        ...

    async def add_viewer(
        self, story_id: int, viewer_id: int, viewed_at: datetime, reaction: str | None
    ) -> bool:
        """Record that viewer saw the story, once: True only for the first view."""
        ...

    async def viewer(self, story_id: int, viewer_id: int) -> ViewRecord | None:
        """The viewer's recorded view of the story, if any."""
        ...

    async def viewer_count(self, story_id: int) -> int:
        """Unique viewers of the story, exact."""
        ...
