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

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resolvers.stories.events import new_story_event, publish
from resolvers.stories.media import release_media

if TYPE_CHECKING:
    from datasources.registry import Stores

log = logging.getLogger(__name__)

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


class StorySweeper:
    """`sweep_once` every `every_seconds` until stopped; a failed round is logged and
    the next one tries again."""

    def __init__(self, stores: Stores, every_seconds: float) -> None:
        self.stores = stores
        self.every_seconds = every_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.every_seconds > 0:
            self._task = asyncio.create_task(self._run(), name="story-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                sweep = await sweep_once(self.stores)
                if sweep.purged or sweep.countdowns_ended:
                    log.info("story sweep: %s", sweep)
            except Exception:  # a store hiccup: try again next round
                log.exception("story sweep failed; retrying in %.0fs", self.every_seconds)
            await asyncio.sleep(self.every_seconds)
