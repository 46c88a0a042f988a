"""StoryStore on MongoDB through PyMongo's async API (`AsyncMongoClient`).

One document per story (stickers as sub-documents) and one per (story, viewer)
view, whose `_id` is "story:viewer": the unique `_id` is what records a viewer
once under concurrency. A TTL index on `expiresAt` lets MongoDB purge expired
stories; reads still filter on `expiresAt` because the TTL monitor runs only
about once a minute. Story ids are integers from a counter document, like the
relational ids, so global ids look the same on both stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from datasources.stories.records import NewStory, StoryRecord, ViewRecord, to_millis

Document = dict[str, Any]


def _utc(moment: datetime) -> datetime:
    """BSON dates come back naive (UTC) unless the client is tz_aware."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _record(doc: Mapping[str, Any]) -> StoryRecord:
    return StoryRecord(
        id=int(doc["_id"]),
        author_id=int(doc["authorId"]),
        media_id=int(doc["mediaId"]),
        audience=str(doc["audience"]),
        created_at=_utc(doc["createdAt"]),
        expires_at=_utc(doc["expiresAt"]),
        stickers=tuple(dict(sticker) for sticker in doc.get("stickers", [])),
    )


def _view_id(story_id: int, viewer_id: int) -> str:
    return f"{story_id}:{viewer_id}"


class MongoStoryStore:
    """The StoryStore protocol on a MongoDB database; call ensure_indexes() once."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.stories = database["stories"]
        self.views = database["story_views"]
        self.counters = database["counters"]

    async def ensure_indexes(self) -> None:
        # expireAfterSeconds=0: a document goes when the clock passes its expiresAt.
        await self.stories.create_index([("expiresAt", ASCENDING)], expireAfterSeconds=0)
        await self.stories.create_index([("authorId", ASCENDING), ("expiresAt", ASCENDING)])
        await self.views.create_index([("storyId", ASCENDING)])

    async def _next_id(self) -> int:
        counter = await self.counters.find_one_and_update(
            {"_id": "stories"},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert counter is not None  # upsert=True with ReturnDocument.AFTER always returns one
        return int(counter["seq"])

    async def add_story(self, new: NewStory) -> StoryRecord:
        doc: Document = {
            "_id": await self._next_id(),
            "authorId": new.author_id,
            "mediaId": new.media_id,
            "audience": new.audience,
            "stickers": [dict(sticker) for sticker in new.stickers],
            "createdAt": to_millis(new.created_at),
            "expiresAt": new.expires_at,
        }
        await self.stories.insert_one(doc)
        return _record(doc)

    async def story(self, story_id: int, now: datetime | None) -> StoryRecord | None:
        query: Document = {"_id": story_id}
        if now is not None:
            query["expiresAt"] = {"$gt": now}
        doc = await self.stories.find_one(query)
        return None if doc is None else _record(doc)

    async def active_stories(
        self, author_ids: Sequence[int], now: datetime
    ) -> list[StoryRecord]:
        if not author_ids:
            return []
        cursor = self.stories.find(
            {"authorId": {"$in": list(author_ids)}, "expiresAt": {"$gt": now}}
        ).sort([("createdAt", ASCENDING), ("_id", ASCENDING)])
        return [_record(doc) async for doc in cursor]

    async def active_count(self, author_id: int, now: datetime) -> int:
        return await self.stories.count_documents(
            {"authorId": author_id, "expiresAt": {"$gt": now}}
        )

    async def delete_story(self, story_id: int) -> bool:
        result = await self.stories.delete_one({"_id": story_id})
        await self.views.delete_many({"storyId": story_id})
        return result.deleted_count == 1

    async def add_viewer(
        self, story_id: int, viewer_id: int, viewed_at: datetime, reaction: str | None
    ) -> bool:
        if await self.stories.count_documents({"_id": story_id}, limit=1) == 0:
            return False
        try:
            await self.views.insert_one(
                {
                    "_id": _view_id(story_id, viewer_id),
                    "storyId": story_id,
                    "viewerId": viewer_id,
                    "viewedAt": to_millis(viewed_at),
                    "reaction": reaction,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def viewer(self, story_id: int, viewer_id: int) -> ViewRecord | None:
        doc = await self.views.find_one({"_id": _view_id(story_id, viewer_id)})
        if doc is None:
            return None
        return ViewRecord(story_id, viewer_id, _utc(doc["viewedAt"]), doc.get("reaction"))

    async def viewer_count(self, story_id: int) -> int:
        return await self.views.count_documents({"storyId": story_id})
