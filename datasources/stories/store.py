"""What the stories domain needs from its document store, whatever the store is.

Two implementations keep this contract (tests/test_stories_store.py runs on both):
`relational.RelationalStoryStore` (SQLite/PostgreSQL, the embedded default) and
`mongo.MongoStoryStore` (MongoDB through PyMongo's async API).

Rules every implementation keeps:
- Expiry: every read that takes `now` ignores stories whose expires_at <= now, so
  an expired story vanishes at once even before it is purged. now=None reads
  expired stories too (highlights keep showing them).
- Exactness: one view per (story, viewer) and one response per (story, sticker,
  user) are enforced by a unique key, and counts are counted from what is stored
  (or incremented atomically), so no concurrent writer is ever lost.
- Purging: a story that expired and is in no highlight is removed with its views,
  responses, replies and counters by `purge_expired` (the relational sweeper;
  MongoDB also has a TTL index on the purge field that a highlight clears).
- Pages are newest first with a keyset `Cursor` (time, id) of the last item seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from datasources.stories.records import (
    Cursor,
    DueCountdown,
    HighlightRecord,
    NewHighlight,
    NewReply,
    NewStory,
    ReplyRecord,
    ResponseRecord,
    StoryRecord,
    Tally,
    ViewRecord,
)


class StoryStore(Protocol):
    # ── stories ────────────────────────────────────────────────────────
    async def add_story(self, new: NewStory) -> StoryRecord:
        """Store a story; expires_at = created_at + 24 h. COUNTDOWN stickers are
        registered for `claim_due_countdowns`."""
        ...

    async def story(self, story_id: int, now: datetime | None) -> StoryRecord | None:
        """One story; None when missing or (given `now`) expired."""
        ...

    async def stories(
        self, story_ids: Sequence[int], now: datetime | None
    ) -> dict[int, StoryRecord]:
        """The stories among these ids that exist (and, given `now`, are active)."""
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
        """Remove a story with its views, responses, replies and counters, and take it
        out of every highlight; False when there was none."""
        ...

    async def add_yours_counts(self, origin_ids: Sequence[int]) -> dict[int, int]:
        """Per origin story: how many stored stories carry an ADD_YOURS sticker
        pointing at it (origins without any are absent)."""
        ...

    # ── views ──────────────────────────────────────────────────────────
    async def add_viewer(
        self, story_id: int, viewer_id: int, viewed_at: datetime, reaction: str | None
    ) -> bool:
        """Record that viewer saw the story, once: True only for the first view;
        False too when the story does not exist."""
        ...

    async def viewer(self, story_id: int, viewer_id: int) -> ViewRecord | None:
        """The viewer's recorded view of the story, if any."""
        ...

    async def viewer_count(self, story_id: int) -> int:
        """Unique viewers of the story, exact."""
        ...

    async def viewer_counts(self, story_ids: Sequence[int]) -> dict[int, int]:
        """Unique viewers per story (stories without views are absent)."""
        ...

    async def viewers(
        self, story_id: int, first: int, after: Cursor | None
    ) -> list[ViewRecord]:
        """Up to `first` views of the story, most recent first, after the cursor
        (at=viewed_at, id=viewer_id of the last one seen)."""
        ...

    async def seen(self, viewer_id: int, story_ids: Sequence[int]) -> set[int]:
        """Which of these stories the viewer has seen."""
        ...

    # ── counters (insights, link taps) ─────────────────────────────────
    async def bump(self, story_id: int, counter: str) -> None:
        """Add one to a named counter of the story (records.COUNTERS or
        records.link_taps_counter(i)), atomically; nothing when the story is gone."""
        ...

    async def counters(self, story_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """The non-zero counters per story (stories without any are absent)."""
        ...

    # ── sticker responses ──────────────────────────────────────────────
    async def add_response(self, response: ResponseRecord) -> bool:
        """Store the user's response to the sticker: False (nothing stored) when the
        user already has one for that sticker or the story does not exist."""
        ...

    async def remove_response(self, story_id: int, sticker_index: int, user_id: int) -> bool:
        """Delete the user's response (a countdown unsubscribe); False when none."""
        ...

    async def tallies(self, story_ids: Sequence[int]) -> dict[int, dict[int, Tally]]:
        """Per story, per sticker index: the exact aggregates of its responses
        (stickers without responses are absent)."""
        ...

    async def responses_of(
        self, user_id: int, story_ids: Sequence[int]
    ) -> dict[tuple[int, int], ResponseRecord]:
        """The user's own responses on these stories, by (story_id, sticker_index)."""
        ...

    async def responses(
        self, story_id: int, sticker_index: int, first: int, after: Cursor | None
    ) -> list[ResponseRecord]:
        """Up to `first` responses to one sticker, most recent first, after the cursor
        (at=created_at, id=user_id of the last one seen)."""
        ...

    async def claim_due_countdowns(self, now: datetime, limit: int = 100) -> list[DueCountdown]:
        """Countdown stickers whose endsAt <= now, each returned once ever (claimed
        atomically, so two sweepers never both announce one), with their subscribers.
        Countdowns of deleted or purged stories are never returned."""
        ...

    # ── replies ────────────────────────────────────────────────────────
    async def add_reply(self, new: NewReply) -> ReplyRecord | None:
        """Store a reply to the story; None when the story does not exist."""
        ...

    async def reply(self, reply_id: int) -> ReplyRecord | None:
        ...

    async def replies(
        self, story_id: int, first: int, after: Cursor | None
    ) -> list[ReplyRecord]:
        """Up to `first` replies, most recent first, after the cursor (at, id)."""
        ...

    async def reply_counts(self, story_ids: Sequence[int]) -> dict[int, int]:
        """Replies per story (stories without replies are absent)."""
        ...

    # ── highlights ─────────────────────────────────────────────────────
    async def create_highlight(self, new: NewHighlight) -> HighlightRecord:
        """Store a highlight; its stories are no longer purged when they expire."""
        ...

    async def highlight(self, highlight_id: int) -> HighlightRecord | None:
        ...

    async def highlights_of(self, owner_ids: Sequence[int]) -> dict[int, list[HighlightRecord]]:
        """Per owner, their highlights newest first (owners without any are absent)."""
        ...

    async def add_to_highlight(
        self, highlight_id: int, story_ids: Sequence[int]
    ) -> HighlightRecord | None:
        """Append the stories not already in it (in the given order); None when the
        highlight does not exist."""
        ...

    async def remove_from_highlight(
        self, highlight_id: int, story_ids: Sequence[int]
    ) -> HighlightRecord | None:
        """Take the stories out; an expired story left in no highlight becomes
        purgeable again. None when the highlight does not exist."""
        ...

    async def delete_highlight(self, highlight_id: int) -> bool:
        """Remove the highlight (not its stories, which become purgeable when expired
        and in no other highlight); False when there was none."""
        ...

    # ── expiry ─────────────────────────────────────────────────────────
    async def purge_expired(self, now: datetime, limit: int = 500) -> list[StoryRecord]:
        """Delete up to `limit` stories with expires_at <= now that are in no
        highlight, as delete_story does, and return them (their media may go too)."""
        ...

    async def media_in_use(self, media_ids: Sequence[int]) -> set[int]:
        """Which of these media a stored story or a highlight cover still uses."""
        ...
