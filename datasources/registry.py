"""The stores a process uses, picked by settings, and the per-request loaders over them."""
from __future__ import annotations

from dataclasses import dataclass

from datasources.media.loaders import MediaLoaders
from datasources.media.store import MediaStore
from datasources.sql import Database
from datasources.users.loaders import UserLoaders
from datasources.users.store import UserStore


@dataclass
class Stores:
    """Long-lived adapters, one set per process."""

    db: Database
    users: UserStore
    media: MediaStore

    async def close(self) -> None:
        await self.db.dispose()


def build_stores(database_url: str, echo: bool = False) -> Stores:
    db = Database(database_url, echo=echo)
    return Stores(db=db, users=UserStore(db), media=MediaStore(db))


class Loaders:
    """Fresh DataLoaders for one request, scoped to its platform."""

    def __init__(self, stores: Stores, platform: str) -> None:
        self.users = UserLoaders(stores.users, platform)
        self.media = MediaLoaders(stores.media, platform)
