"""Per-request DataLoaders of notifications: a page's actors in one statement.

A group's subject loads through its owner's loaders (posts, takes, stories,
users: each batched already) and its actors' users through `UserLoaders`, so a
page of groups costs a fixed number of statements whatever its size
(tests/test_notifications_api.py pins it).
"""

from __future__ import annotations

from collections.abc import Sequence

from datasources.loading import DataLoader
from datasources.notifications.records import GroupRecord
from datasources.notifications.store import NotificationStore

MAX_BATCH = 500
MAX_ACTORS = 20
"""Most recent actors read per group: `actors(limit)` takes at most this many."""


class NotificationLoaders:
    def __init__(self, store: NotificationStore, platform: str) -> None:
        self.store = store
        self.platform = platform
        self.actor_ids = DataLoader[int, list[int]](self._actor_ids, max_batch_size=MAX_BATCH)
        self.group = DataLoader[int, GroupRecord | None](self._groups, max_batch_size=MAX_BATCH)

    async def _actor_ids(self, group_ids: Sequence[int]) -> list[list[int]]:
        found = await self.store.actor_ids(group_ids, MAX_ACTORS)
        return [found.get(group_id, []) for group_id in group_ids]

    async def _groups(self, ids: Sequence[int]) -> list[GroupRecord | None]:
        found = await self.store.groups(self.platform, ids)
        return [found.get(pk) for pk in ids]
