"""Take templates: create one, list them by use, the takes made from one.

A template is an ordered list of 1–20 timed slots (each > 0 ms, at most 10
minutes in total) that takes follow; `useCount` counts the takes made from it
(exact: incremented in the transaction that inserts the take).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime

from datasources.posts.takes_store import NewTemplate, TakePage, TakeRecord, TemplateRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.ids import decode_id, split_id
from resolvers.pagination import page_size
from resolvers.posts import take_cursors
from resolvers.posts import take_policy as policy
from resolvers.posts.take_cursors import Listing
from resolvers.posts.takes import MAX_DURATION_MS, keyset_takes, visible_take

MAX_SLOTS = 20
MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_HINT = 200


@dataclass(frozen=True)
class SlotInput:
    duration_ms: int
    hint: str | None


async def template_by_global_id(context: Context, global_id: str) -> TemplateRecord | None:
    parts = split_id(global_id)
    if parts is None or parts[0] != "TakeTemplate" or not parts[1].isdigit():
        return None
    found = await context.loaders.takes.template.load(int(parts[1]))
    return found if await policy.can_see_template(context, found) else None


async def template_of(context: Context, take: TakeRecord) -> TemplateRecord | None:
    """Take.template: the template the take follows (null when hidden or deleted)."""
    if take.template_id is None:
        return None
    found = await context.loaders.takes.template.load(take.template_id)
    return found if await policy.can_see_template(context, found) else None


async def source_take(context: Context, template: TemplateRecord) -> TakeRecord | None:
    return await visible_take(context, template.source_take_id)


async def create_template(
    context: Context,
    name: str,
    description: str | None,
    source_take_id: str | None,
    slots: Sequence[SlotInput],
) -> TemplateRecord:
    viewer = context.require_viewer()
    clean_name = name.strip()
    if not clean_name or len(clean_name) > MAX_NAME:
        raise BadUserInput(f"name is 1 to {MAX_NAME} characters", field="name")
    clean_description = (description or "").strip() or None
    if clean_description and len(clean_description) > MAX_DESCRIPTION:
        raise BadUserInput(
            f"description is at most {MAX_DESCRIPTION} characters", field="description"
        )
    clean_slots = _slots(slots)
    source_pk = None
    if source_take_id is not None:
        source_pk = decode_id(source_take_id, "Take", "sourceTakeId")
        await policy.require_take(context, await context.loaders.takes.by_id.load(source_pk))
    created = await context.stores.takes.create_template(
        NewTemplate(
            platform=context.platform,
            creator_id=viewer.user_id,
            name=clean_name,
            description=clean_description,
            source_take_id=source_pk,
            slots=clean_slots,
        )
    )
    context.loaders.takes.template.prime(created.id, created)
    return created


def _slots(slots: Sequence[SlotInput]) -> tuple[tuple[int, str | None], ...]:
    if not 1 <= len(slots) <= MAX_SLOTS:
        raise BadUserInput(f"give 1 to {MAX_SLOTS} slots", field="slots")
    clean: list[tuple[int, str | None]] = []
    for slot in slots:
        if slot.duration_ms <= 0:
            raise BadUserInput("every slot lasts more than 0 ms", field="durationMs")
        hint = (slot.hint or "").strip() or None
        if hint and len(hint) > MAX_HINT:
            raise BadUserInput(f"a hint is at most {MAX_HINT} characters", field="hint")
        clean.append((slot.duration_ms, hint))
    if sum(d for d, _ in clean) > MAX_DURATION_MS:
        raise BadUserInput("the slots total more than 10 minutes", field="slots")
    return tuple(clean)


async def templates(
    context: Context, first: int | None, after: str | None
) -> Listing[TemplateRecord]:
    """Query.takeTemplates: most used first (then newest), blocked creators hidden."""
    limit = page_size(first, context.settings.max_page_size)
    position = take_cursors.count_id(after)
    items, has_next, total = await context.stores.takes.templates_page(
        context.platform, context.viewer_id, position, limit
    )
    for item in items:
        context.loaders.takes.template.prime(item.id, item)
    return Listing(
        items=[(take_cursors.encode(t.use_count, t.id), t) for t in items],
        has_next=has_next,
        has_previous=position is not None,
        total_count=total,
    )


async def template_takes(
    context: Context, template: TemplateRecord, first: int | None, after: str | None
) -> Listing[TakeRecord]:
    """TakeTemplate.takes: the visible takes made from it, newest first."""

    def read(position: tuple[datetime, int] | None, limit: int) -> Awaitable[tuple[TakePage, int]]:
        return context.stores.takes.template_takes(
            context.platform, template.id, context.viewer_id, position, limit
        )

    return await keyset_takes(context, first, after, read)
