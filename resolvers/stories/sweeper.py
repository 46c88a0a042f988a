"""The stories sweeper: purges expired stories and announces ended countdowns.

Runs every `story_sweep_seconds` (60 by default) in `entativa worker`, or in the
embedded server. Purging: stories that expired and are in no highlight go with
their views, responses and replies, and their media unless used elsewhere
(resolvers/stories/media.py); reads already hide them from the moment they
expire, so the sweep only reclaims space — within 5 minutes at the default
pace. On MongoDB a TTL index on the purge field is the backstop
(datasources/stories/mongo.py). Countdowns: each one whose end came is claimed
once by the store, however many sweepers run, and announced to its subscribers
with a `story.countdown_ended` event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from resolvers.periodic import Periodic
from resolvers.stories.events import new_story_event, publish
from resolvers.stories.media import release_media

if TYPE_CHECKING:
    from datasources.registry import Stores


PURGE_BATCH = 500


@dataclass(frozen=True)
class Sweep:
    purged: int
    media_released: int
    countdowns_ended: int


async def sweep_once(stores: Stores) -> Sweep:
    """One round: purge what expired, announce what ended (as of `stores.clock()`)."""
    now = stores.clock()
    purged = media = 0
    while True:
        batch = await stores.stories.purge_expired(now, PURGE_BATCH)
        purged += len(batch)
        media += await release_media(stores, [story.media_id for story in batch])
        if len(batch) < PURGE_BATCH:
            break
    due = await stores.stories.claim_due_countdowns(now)
    events = [
        new_story_event(
            countdown.platform,
            countdown.author_id,
            "story.countdown_ended",
            countdown.story_id,
            {
                "author_id": countdown.author_id,
                "sticker_index": countdown.sticker_index,
                "title": countdown.title,
                "ends_at": countdown.ends_at.isoformat(),
                "subscriber_ids": list(countdown.subscriber_ids),
            },
        )
        for countdown in due
    ]
    await publish(stores.db, *events)
    return Sweep(purged, media, len(due))


class StorySweeper(Periodic):
    """`sweep_once` every `every_seconds` (resolvers/periodic.py)."""

    name = "story sweep"

    def __init__(self, stores: Stores, every_seconds: float) -> None:
        super().__init__(every_seconds)
        self.stores = stores

    async def run_round(self) -> Sweep | None:
        sweep = await sweep_once(self.stores)
        return sweep if sweep.purged or sweep.countdowns_ended else None
