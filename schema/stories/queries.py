"""Root query fields of the stories subgraph (closeFriends: schema/stories/close_friends.py)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.errors import NotFound
from resolvers.ids import decode_id
from resolvers.stories import policy
from resolvers.stories import stories as story_resolvers
from schema.stories.types import Story, StoryTrayItem


@strawberry.type
class StoriesQuery:
    @strawberry.field(description="null with a NOT_FOUND error when unknown, expired or hidden")
    async def story(self, info: Info, id: strawberry.ID) -> Story | None:
        record = await policy.visible_story(info.context, decode_id(id, "Story"))
        if record is None:
            raise NotFound("story")
        return Story(record=record)

    @strawberry.field(description="users with active stories the viewer may see, unseen first")
    async def story_tray(self, info: Info) -> list[StoryTrayItem]:
        return [StoryTrayItem(item=item) for item in await story_resolvers.story_tray(info.context)]
