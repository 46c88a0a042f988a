"""Every table, imported once so Alembic and tests see the whole metadata."""
from datasources.events.tables import ConsumedEventRow, OutboxRow
from datasources.media.tables import MediaRow
from datasources.messaging.call_tables import CallRow, EncryptedAttachmentRow  # noqa: F401
from datasources.messaging.key_tables import KeyPackageRow, OneTimePreKeyRow  # noqa: F401
from datasources.messaging.tables import (  # noqa: F401
    ConversationMemberRow,
    ConversationRow,
    EnvelopeRow,
    MessageRow,
    MessagingDeviceRow,
    MessagingIdentityRow,
)
from datasources.notifications.tables import (  # noqa: F401
    NotificationActorRow,
    NotificationDeliveryRow,
    NotificationGroupRow,
    NotificationSettingsRow,
    NotificationTypePreferenceRow,
    PushDeviceRow,
)
from datasources.posts.tables import (
    CommentLikeRow,
    CommentRow,
    LocationRow,
    PostHashtagRow,
    PostLikeRow,
    PostMediaRow,
    PostMentionRow,
    PostRow,
    PostSaveRow,
)
from datasources.posts.take_tables import (
    BehindTheTakeRow,
    BehindTheTakeStepRow,
    TakeLikeRow,
    TakeRow,
    TakeTemplateRow,
    TakeTemplateSlotRow,
    TakeTrendRow,
    TakeViewRow,
)
from datasources.search.tables import (  # noqa: F401
    HashtagUseRow,
    SearchHistoryRow,
    SearchQueryDailyRow,
)
from datasources.sql import Base
from datasources.stories.tables import StoryRow, StoryViewRow  # noqa: F401
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
    "CommentLikeRow",
    "CommentRow",
    "LocationRow",
    "PostHashtagRow",
    "PostLikeRow",
    "PostMediaRow",
    "PostMentionRow",
    "PostRow",
    "PostSaveRow",
    "ConsumedEventRow",
    "BehindTheTakeRow",
    "BehindTheTakeStepRow",
    "TakeLikeRow",
    "TakeRow",
    "TakeTemplateRow",
    "TakeTemplateSlotRow",
    "TakeTrendRow",
    "TakeViewRow",
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
