"""Per-request DataLoaders over TakeStore: one query per batch, never per item."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from datasources.loading import DataLoader, forget
from datasources.posts.takes_store import (
    BehindRecord,
    TakeRecord,
    TakeStore,
    TemplateRecord,
    TrendRecord,
)

# Keeps each batch's IN lists well under SQLite's bound-parameter limit.
MAX_BATCH = 500


class TakeLoaders:
    """Takes, templates, trends, Behind-the-Takes and likes, scoped to one platform."""

    def __init__(self, store: TakeStore, platform: str) -> None:
        self.store = store
        self.platform = platform
        self.by_id = DataLoader[int, TakeRecord | None](self._takes, max_batch_size=MAX_BATCH)
        self.template = DataLoader[int, TemplateRecord | None](
            self._templates, max_batch_size=MAX_BATCH
        )
        self.trend = DataLoader[int, TrendRecord | None](self._trends, max_batch_size=MAX_BATCH)
        self.behind_of_take = DataLoader[int, BehindRecord | None](
            self._behind_of_takes, max_batch_size=MAX_BATCH
        )
        self.behind = DataLoader[int, BehindRecord | None](self._behind, max_batch_size=MAX_BATCH)
        self._liked: dict[int, DataLoader[int, bool]] = {}

    def liked_by(self, user_id: int) -> DataLoader[int, bool]:
        """Loader of whether `user_id` liked each take, keyed by take id."""
        loader = self._liked.get(user_id)
        if loader is None:
            store = self.store  # not self: the loader must not keep its holder alive

            async def load(take_ids: Sequence[int]) -> list[bool]:
                found = await store.liked(user_id, take_ids)
                return [pk in found for pk in take_ids]

            loader = DataLoader[int, bool](load, max_batch_size=MAX_BATCH)
            self._liked[user_id] = loader
        return loader

    def prime(self, takes: Iterable[TakeRecord]) -> None:
        """Cache takes a list query already returned whole."""
        self.by_id.prime_many({take.id: take for take in takes})

    def forget_take(self, take_id: int) -> None:
        """Drop what a write to this take changed (its row and the viewer's like)."""
        loaders: list[DataLoader[int, Any]] = [
            self.by_id,
            self.behind_of_take,
            *self._liked.values(),
        ]
        for loader in loaders:
            forget(loader, [take_id])

    def forget_template(self, template_id: int) -> None:
        forget(self.template, [template_id])

    def forget_trend(self, trend_id: int) -> None:
        forget(self.trend, [trend_id])

    def forget_behind(self, behind_id: int) -> None:
        forget(self.behind, [behind_id])

    async def _takes(self, ids: Sequence[int]) -> list[TakeRecord | None]:
        found = await self.store.takes_by_ids(self.platform, ids)
        return [found.get(pk) for pk in ids]

    async def _templates(self, ids: Sequence[int]) -> list[TemplateRecord | None]:
        found = await self.store.templates_by_ids(self.platform, ids)
        return [found.get(pk) for pk in ids]

    async def _trends(self, ids: Sequence[int]) -> list[TrendRecord | None]:
        found = await self.store.trends_by_ids(self.platform, ids)
        return [found.get(pk) for pk in ids]

    async def _behind_of_takes(self, take_ids: Sequence[int]) -> list[BehindRecord | None]:
        found = await self.store.behind_by_take_ids(self.platform, take_ids)
        return [found.get(pk) for pk in take_ids]

    async def _behind(self, ids: Sequence[int]) -> list[BehindRecord | None]:
        found = await self.store.behind_by_ids(self.platform, ids)
        return [found.get(pk) for pk in ids]
