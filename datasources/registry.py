"""The stores a process uses, picked by settings, and the per-request loaders over them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasources.cache import Cache, build_cache
from datasources.media.blobs import BlobStore, LocalBlobStore
from datasources.media.loaders import MediaLoaders
from datasources.media.store import MediaStore
from datasources.sql import Database
from datasources.users.loaders import UserLoaders
from datasources.users.sessions import SessionStore
from datasources.users.store import UserStore


@dataclass
class Stores:
    """Long-lived adapters, one set per process."""

    db: Database
    users: UserStore
    media: MediaStore
    blobs: BlobStore
    sessions: SessionStore
    cache: Cache

    async def close(self) -> None:
        await self.db.dispose()
        await self.cache.close()


def build_stores(
    database_url: str,
    echo: bool = False,
    redis_url: str = "",
    media_dir: Path = Path("data/media"),
) -> Stores:
    db = Database(database_url, echo=echo)
    return Stores(
        db=db,
        users=UserStore(db),
        media=MediaStore(db),
        blobs=LocalBlobStore(media_dir),
        sessions=SessionStore(db),
        cache=build_cache(redis_url),
    )


class Loaders:
    """Fresh DataLoaders for one request, scoped to its platform."""

    def __init__(self, stores: Stores, platform: str) -> None:
        self.users = UserLoaders(stores.users, platform)
        self.media = MediaLoaders(stores.media, platform)
