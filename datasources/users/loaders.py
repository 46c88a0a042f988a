"""Per-request DataLoaders over UserStore: one query per batch, never per item."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from datasources.loading import DataLoader, forget
from datasources.users.graph import NO_RELATIONSHIP, RelationshipRecord
from datasources.users.store import UserRecord, UserStore

# Keeps each batch's IN lists well under SQLite's bound-parameter limit.
MAX_BATCH = 500


class UserLoaders:
    def __init__(self, store: UserStore, platform: str) -> None:
        self.store = store
        self.platform = platform
        self.by_id = DataLoader[int, UserRecord | None](self._load_users, max_batch_size=MAX_BATCH)
        self.friend_count = DataLoader[int, int](self._load_friend_counts, max_batch_size=MAX_BATCH)
        self._relationships: dict[int, DataLoader[int, RelationshipRecord]] = {}

    def relationship(self, viewer_id: int) -> DataLoader[int, RelationshipRecord]:
        """Loader of `viewer_id`'s relationship to users, keyed by the other user's id."""
        loader = self._relationships.get(viewer_id)
        if loader is None:
            graph = self.store.graph  # not self: the loader must not keep its holder alive

            async def load(target_ids: Sequence[int]) -> list[RelationshipRecord]:
                found = await graph.relationships(viewer_id, target_ids)
                return [found.get(pk, NO_RELATIONSHIP) for pk in target_ids]

            loader = DataLoader[int, RelationshipRecord](load, max_batch_size=MAX_BATCH)
            self._relationships[viewer_id] = loader
        return loader

    def prime(self, users: Iterable[UserRecord]) -> None:
        """Cache users another query already returned whole (e.g. a page joined on users)."""
        self.by_id.prime_many({user.id: user for user in users})

    def forget(self, user_id: int, *others: int) -> None:
        """Drop cached rows and relationships after a write that changed them."""
        ids = (user_id, *others)
        loaders: list[DataLoader[int, Any]] = [self.by_id, *self._relationships.values()]
        for loader in loaders:
            forget(loader, ids)

    async def _load_users(self, ids: Sequence[int]) -> list[UserRecord | None]:
        found = await self.store.by_ids(self.platform, ids)
        return [found.get(pk) for pk in ids]

    async def _load_friend_counts(self, ids: Sequence[int]) -> list[int]:
        found = await self.store.graph.friend_counts(ids)
        return [found.get(pk, 0) for pk in ids]
