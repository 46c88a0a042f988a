"""Per-request DataLoaders over MediaStore."""
from __future__ import annotations

from collections.abc import Sequence

from datasources.loading import DataLoader
from datasources.media.store import MediaRecord, MediaStore


class MediaLoaders:
    def __init__(self, store: MediaStore, platform: str) -> None:
        self.store = store
        self.platform = platform
        self.by_id = DataLoader[int, MediaRecord | None](self._load_media)

    async def _load_media(self, ids: Sequence[int]) -> list[MediaRecord | None]:
        found = await self.store.by_ids(self.platform, ids)
        return [found.get(pk) for pk in ids]
