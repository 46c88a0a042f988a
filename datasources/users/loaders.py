"""Per-request DataLoaders over UserStore: one query per batch, never per item."""
from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from datasources.users.store import UserRecord, UserStore


class UserLoaders:
    def __init__(self, store: UserStore, platform: str) -> None:
        self.store = store
        self.platform = platform
        self.by_id = DataLoader[int, UserRecord | None](self._load_users)

    async def _load_users(self, ids: Sequence[int]) -> list[UserRecord | None]:
        found = await self.store.by_ids(self.platform, ids)
        return [found.get(pk) for pk in ids]
