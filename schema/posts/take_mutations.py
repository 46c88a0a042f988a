"""Mutations of Takes (posts subgraph)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.posts import takes, templates, trends
from schema.posts.takes import (
    AddBehindTheTakeInput,
    BehindTheTake,
    CreateTakeInput,
    CreateTakeTemplateInput,
    StartTrendInput,
    Take,
    TakeTemplate,
    TakeTrend,
    given,
)


@strawberry.type
class TakesMutation:
    @strawberry.mutation
    async def create_take(self, info: Info, input: CreateTakeInput) -> Take:
        created = await takes.create_take(
            info.context,
            video_media_id=input.video_media_id,
            caption=given(input.caption),
            sound_name=given(input.sound_name),
            template_id=given(input.template_id),
            trend_id=given(input.trend_id),
        )
        return Take(record=created)

    @strawberry.mutation
    async def delete_take(self, info: Info, id: strawberry.ID) -> bool:
        return await takes.delete_take(info.context, id)

    @strawberry.mutation
    async def like_take(self, info: Info, take_id: strawberry.ID) -> Take:
        return Take(record=await takes.like_take(info.context, take_id, like=True))

    @strawberry.mutation
    async def unlike_take(self, info: Info, take_id: strawberry.ID) -> Take:
        return Take(record=await takes.like_take(info.context, take_id, like=False))

    @strawberry.mutation(
        description="counts at most one view per signed-in viewer per hour; "
        "signed-out and own views are not counted"
    )
    async def record_take_view(self, info: Info, take_id: strawberry.ID) -> Take:
        return Take(record=await takes.record_view(info.context, take_id))

    @strawberry.mutation
    async def add_behind_the_take(self, info: Info, input: AddBehindTheTakeInput) -> BehindTheTake:
        steps = [
            takes.StepInput(step.title, given(step.body), given(step.media_id))
            for step in input.steps
        ]
        behind = await takes.add_behind_the_take(info.context, input.take_id, steps, input.tools)
        return BehindTheTake(record=behind)

    @strawberry.mutation
    async def create_take_template(
        self, info: Info, input: CreateTakeTemplateInput
    ) -> TakeTemplate:
        slots = [templates.SlotInput(s.duration_ms, given(s.hint)) for s in input.slots]
        created = await templates.create_template(
            info.context,
            name=input.name,
            description=given(input.description),
            source_take_id=given(input.source_take_id),
            slots=slots,
        )
        return TakeTemplate(record=created)

    @strawberry.mutation
    async def start_trend(self, info: Info, input: StartTrendInput) -> TakeTrend:
        started = await trends.start_trend(info.context, input.take_id, input.name, input.hashtag)
        return TakeTrend(record=started)
