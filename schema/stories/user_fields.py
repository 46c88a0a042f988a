"""User.stories and User.highlights: what the stories domain contributes to User.

A mixin (never registered on its own): `schema.users.types.User` inherits it,
and schema/domains.py lists it under the stories domain's `contributes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from resolvers.stories import highlights as highlight_resolvers
from resolvers.stories import stories as story_resolvers

if TYPE_CHECKING:
    from datasources.users.store import UserRecord
    from schema.stories.types import Story, StoryHighlight


@strawberry.type
class UserStoriesFields:
    if TYPE_CHECKING:
        record: UserRecord

    @strawberry.field(description="active (unexpired) stories the viewer may see")
    async def stories(
        self, info: Info
    ) -> list[Annotated[Story, strawberry.lazy("schema.stories.types")]]:
        from schema.stories.types import Story

        found = await story_resolvers.user_stories(info.context, self.record)
        return [Story(record=story) for story in found]

    @strawberry.field
    async def highlights(
        self, info: Info
    ) -> list[Annotated[StoryHighlight, strawberry.lazy("schema.stories.types")]]:
        from schema.stories.types import StoryHighlight

        found = await highlight_resolvers.user_highlights(info.context, self.record)
        return [StoryHighlight(record=highlight) for highlight in found]
