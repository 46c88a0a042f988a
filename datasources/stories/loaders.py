"""Per-request DataLoaders over the StoryStore: one store call per batch, never per item.

Loaders hold what the store holds, scoped to one platform and blind to policy:
resolvers/stories/policy.py decides what a viewer may see of it. `by_id` returns
stories whether expired or not (highlights show expired ones); callers that want
only active stories check `StoryRecord.active(now)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from datasources.loading import DataLoader, forget, weakly_bound
from datasources.stories.records import HighlightRecord, ResponseRecord, StoryRecord, Tally
from datasources.stories.store import StoryStore

MAX_BATCH = 500

K = TypeVar("K")
V = TypeVar("V")


def _loader(
    fetch: Callable[[Sequence[K]], Awaitable[dict[K, V]]], missing: Any
) -> DataLoader[K, Any]:
    """A loader answering each key from one dict-returning batch call."""

    fetch = weakly_bound(fetch)  # often a method of the StoryLoaders holding the loader

    async def load(keys: Sequence[K]) -> list[Any]:
        found = await fetch(keys)
        return [found.get(key, missing) for key in keys]

    return DataLoader[K, Any](load, max_batch_size=MAX_BATCH)


class StoryLoaders:
    """Stories, their views, responses, replies, counters and highlights, on one platform."""

    def __init__(self, store: StoryStore, platform: str, now: Callable[[], datetime]) -> None:
        self.store = store
        self.platform = platform
        self.now = now
        self.by_id: DataLoader[int, StoryRecord | None] = _loader(self._stories, None)
        self.active_of_author: DataLoader[int, list[StoryRecord]] = _loader(
            self._active_of_authors, []
        )
        self.viewer_count: DataLoader[int, int] = _loader(store.viewer_counts, 0)
        self.reply_count: DataLoader[int, int] = _loader(store.reply_counts, 0)
        self.counters: DataLoader[int, dict[str, int]] = _loader(store.counters, {})
        self.tallies: DataLoader[int, dict[int, Tally]] = _loader(store.tallies, {})
        self.add_yours_count: DataLoader[int, int] = _loader(store.add_yours_counts, 0)
        self.highlights_of: DataLoader[int, list[HighlightRecord]] = _loader(
            self._highlights_of, []
        )
        self._seen: dict[int, DataLoader[int, bool]] = {}
        self._responses: dict[int, DataLoader[int, dict[int, ResponseRecord]]] = {}

    def seen_by(self, viewer_id: int) -> DataLoader[int, bool]:
        """Whether `viewer_id` has seen each story, keyed by story id."""
        loader = self._seen.get(viewer_id)
        if loader is None:
            store = self.store  # not self: the loader must not keep its holder alive

            async def load(story_ids: Sequence[int]) -> list[bool]:
                seen = await store.seen(viewer_id, story_ids)
                return [pk in seen for pk in story_ids]

            loader = self._seen[viewer_id] = DataLoader[int, bool](load, max_batch_size=MAX_BATCH)
        return loader

    def responses_of(self, user_id: int) -> DataLoader[int, dict[int, ResponseRecord]]:
        """`user_id`'s own sticker responses per story: {sticker index: response}."""
        loader = self._responses.get(user_id)
        if loader is None:
            store = self.store  # not self: the loader must not keep its holder alive

            async def load(story_ids: Sequence[int]) -> list[dict[int, ResponseRecord]]:
                found = await store.responses_of(user_id, story_ids)
                by_story: dict[int, dict[int, ResponseRecord]] = {pk: {} for pk in story_ids}
                for (story_id, index), response in found.items():
                    by_story.setdefault(story_id, {})[index] = response
                return [by_story[pk] for pk in story_ids]

            loader = self._responses[user_id] = DataLoader[int, dict[int, ResponseRecord]](
                load, max_batch_size=MAX_BATCH
            )
        return loader

    def prime(self, stories: Iterable[StoryRecord]) -> None:
        self.by_id.prime_many({story.id: story for story in stories})

    def forget_story(self, story_id: int) -> None:
        """Drop what a write to this story changed, so the mutation's answer is fresh."""
        loaders: list[DataLoader[int, Any]] = [
            self.by_id,
            self.viewer_count,
            self.reply_count,
            self.counters,
            self.tallies,
            self.add_yours_count,
            *self._seen.values(),
            *self._responses.values(),
        ]
        for loader in loaders:
            forget(loader, [story_id])

    def forget_owner(self, owner_id: int) -> None:
        forget(self.highlights_of, [owner_id])
        forget(self.active_of_author, [owner_id])

    async def _stories(self, ids: Sequence[int]) -> dict[int, StoryRecord]:
        found = await self.store.stories(ids, None)
        return {pk: story for pk, story in found.items() if story.platform == self.platform}

    async def _active_of_authors(self, author_ids: Sequence[int]) -> dict[int, list[StoryRecord]]:
        stories = await self.store.active_stories(author_ids, self.now())
        self.prime(stories)
        by_author: dict[int, list[StoryRecord]] = {}
        for story in stories:
            if story.platform == self.platform:
                by_author.setdefault(story.author_id, []).append(story)
        return by_author

    async def _highlights_of(self, owner_ids: Sequence[int]) -> dict[int, list[HighlightRecord]]:
        found = await self.store.highlights_of(owner_ids)
        return {
            owner: [h for h in highlights if h.platform == self.platform]
            for owner, highlights in found.items()
        }
