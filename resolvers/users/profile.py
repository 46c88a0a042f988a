"""updateProfile: validate every field first, then one write (bad input changes nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasources.users.store import UNCHANGED, ProfileChanges, UserRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput, Forbidden, NotFound
from resolvers.ids import decode_id

MAX_DISPLAY_NAME = 100
MAX_BIO = 150


@dataclass(frozen=True)
class ProfileInput:
    """As the client sent it; UNCHANGED for a field left out."""

    display_name: Any = UNCHANGED
    bio: Any = UNCHANGED
    avatar_media_id: Any = UNCHANGED
    is_private: Any = UNCHANGED


async def update_profile(context: Context, data: ProfileInput) -> UserRecord:
    """Going public approves pending follow requests (UserStore.update_profile)."""
    viewer = context.require_viewer()
    changes = ProfileChanges(
        display_name=_display_name(data.display_name),
        bio=_bio(data.bio),
        avatar_media_id=await _avatar(context, data.avatar_media_id),
        is_private=_is_private(data.is_private),
    )
    record = await context.stores.users.update_profile(viewer.user_id, changes)
    context.loaders.users.forget(viewer.user_id)
    context.loaders.users.prime([record])
    return record


def _display_name(value: Any) -> Any:
    if value is UNCHANGED:
        return UNCHANGED
    name = (value or "").strip()
    if not 1 <= len(name) <= MAX_DISPLAY_NAME:
        raise BadUserInput(f"displayName must be 1-{MAX_DISPLAY_NAME} characters", "displayName")
    return name


def _bio(value: Any) -> Any:
    """null or blank clears the bio."""
    if value is UNCHANGED:
        return UNCHANGED
    bio = (value or "").strip()
    if len(bio) > MAX_BIO:
        raise BadUserInput(f"bio must be at most {MAX_BIO} characters", "bio")
    return bio or None


async def _avatar(context: Context, value: Any) -> Any:
    """null removes the avatar; otherwise an IMAGE the viewer uploaded on this platform."""
    if value is UNCHANGED or value is None:
        return value
    pk = decode_id(value, "Media", field="avatarMediaId")
    media = await context.loaders.media.by_id.load(pk)  # scoped to the platform
    if media is None:
        raise NotFound("media")
    if media.owner_id != context.viewer_id:
        raise Forbidden("avatarMediaId must be media you uploaded")
    if media.kind != "IMAGE":
        raise BadUserInput("avatarMediaId must be an image", "avatarMediaId")
    return media.id


def _is_private(value: Any) -> Any:
    if value is None:
        raise BadUserInput("isPrivate cannot be null", "isPrivate")
    return value
