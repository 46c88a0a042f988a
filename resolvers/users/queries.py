"""Reading users, always inside the request's platform."""
from __future__ import annotations

from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.ids import split_id


async def user_by_global_id(context: Context, global_id: str) -> UserRecord | None:
    parts = split_id(global_id)
    if parts is None or parts[0] != "User" or not parts[1].isdigit():
        return None
    return await context.loaders.users.by_id.load(int(parts[1]))


async def viewer(context: Context) -> UserRecord | None:
    if context.viewer is None:
        return None
    return await context.loaders.users.by_id.load(context.viewer.user_id)


async def user_by_username(context: Context, username: str) -> UserRecord | None:
    return await context.stores.users.by_username(context.platform, username)
