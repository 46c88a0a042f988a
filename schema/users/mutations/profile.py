"""updateProfile."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from datasources.users.store import UNCHANGED
from resolvers.users import profile
from schema.users.types import UpdateProfileInput, User


def _given(value: Any) -> Any:
    """strawberry.UNSET (field left out) → the store's UNCHANGED; anything else as sent."""
    return UNCHANGED if value is strawberry.UNSET else value


@strawberry.type
class ProfileMutation:
    @strawberry.mutation(
        description="Turning isPrivate off approves every pending follow request at once."
    )
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> User:
        data = profile.ProfileInput(
            display_name=_given(input.display_name),
            bio=_given(input.bio),
            avatar_media_id=_given(input.avatar_media_id),
            is_private=_given(input.is_private),
        )
        return User(record=await profile.update_profile(info.context, data))
