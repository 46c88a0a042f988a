"""Every table, imported once so Alembic and tests see the whole metadata."""
from datasources.events.tables import OutboxRow
from datasources.media.tables import MediaRow
from datasources.sql import Base
from datasources.users.tables import (
    BlockRow,
    CloseFriendRow,
    FollowRow,
    FriendRequestRow,
    FriendshipRow,
    RefreshTokenRow,
    UserRow,
)

metadata = Base.metadata

__all__ = [
    "BlockRow",
    "CloseFriendRow",
    "FollowRow",
    "FriendRequestRow",
    "FriendshipRow",
    "MediaRow",
    "OutboxRow",
    "RefreshTokenRow",
    "UserRow",
    "metadata",
]
