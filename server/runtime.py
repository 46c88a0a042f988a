"""Everything one process holds for its lifetime: settings, stores, schema, auth."""
from __future__ import annotations

from dataclasses import dataclass

import strawberry

from datasources.registry import Stores, build_stores
from resolvers.context import Viewer
from resolvers.users.sessions import family_revoked
from server.auth import Auth
from server.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    stores: Stores
    schema: strawberry.Schema
    auth: Auth

    async def authenticate(self, token: str, platform: str) -> Viewer | None:
        """The viewer an access token proves on `platform`, or None.

        A valid signature is not enough: the token's family may have been revoked
        (sign-out, refresh-token reuse) before the token expired.
        """
        viewer = self.auth.read_access_token(token)
        if viewer is None or viewer.platform != platform:
            return None
        if await family_revoked(self.stores.cache, viewer.family_id):
            return None
        return viewer

    async def close(self) -> None:
        await self.stores.close()


def build_runtime(settings: Settings, schema: strawberry.Schema) -> Runtime:
    stores = build_stores(
        settings.resolved_database_url,
        echo=settings.sql_echo,
        redis_url=settings.redis_url,
        media_dir=settings.resolved_media_dir,
    )
    auth = Auth(settings, stores.sessions)
    return Runtime(settings=settings, stores=stores, schema=schema, auth=auth)
