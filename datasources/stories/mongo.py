"""StoryStore on MongoDB through PyMongo's async API (`AsyncMongoClient`).

Documents (collection: shape):
- `stories`: one per story, `_id` an integer from the `counters` document
  "stories" (so global ids look the same on both stores); stickers are
  sub-documents, `addYoursOrigin` is copied out of them to be indexed, `counters`
  is a sub-document bumped with `$inc` (atomic per document, so exact under
  concurrency), `highlightIds` lists the highlights holding the story and
  `purgeAt` equals `expiresAt` while that list is empty and is unset otherwise.
- `story_views`: one per (story, viewer), `_id` "story:viewer".
- `story_responses`: one per (story, sticker, user), `_id` "story:sticker:user".
- `story_countdowns`: one per COUNTDOWN sticker, `_id` "story:sticker", with
  `claimedAt` null until a sweeper claims it by find_one_and_update.
- `story_replies`, `story_highlights`: integer `_id`s from the counter document.

Exactness comes from unique `_id`s and single-document atomic updates, never from
read-modify-write: a duplicate insert raises DuplicateKeyError and loses nothing.

Purging. The TTL index is on `purgeAt`, the field a highlight clears, so MongoDB
never deletes a highlighted story. A TTL deletion cannot delete the story's media
or its views, responses and replies, so the stories sweeper calls
`purge_expired`, which deletes purgeable stories itself (one find_one_and_delete
each, conditioned on `purgeAt`, so a story highlighted meanwhile survives) and
returns them. The TTL index (expireAfterSeconds=PURGE_BACKSTOP) is the backstop
that still removes stories within five minutes when no sweeper runs; reads filter
on `expiresAt` anyway, so an expired story vanishes at once. What such a TTL
deletion leaves behind (media, views, responses, replies) is unreachable through
this store (every read goes by a story id; a countdown is returned only while its
story exists) until a cleanup job collects it: the backstop is for outages.

No multi-document transactions (a standalone mongod has none). Writes that touch
two collections are ordered so that a concurrent delete leaves nothing behind:
a dependent (view, response, reply, highlight item) is written first and the
story checked after, while deletes remove the story first and dependents after,
so one side always sees the other. A highlight's `storyIds` and its stories'
`highlightIds` are reconciled after every highlight write (`_settle`); stories
are marked before a highlight lists them, so a crash in between keeps a story
longer rather than losing one a highlight shows.

The Mongo-wire server used in tests and CI (SecantusDB's `secantusd-py`, 0.7)
supports everything used here: aggregation $group, find_one_and_update/delete,
pipeline updates, $addToSet/$pull, TTL indexes with collMod and a TTL monitor
(every 60 s, like mongod's). One difference handled below: $group on a missing
field leaves the key out of the group `_id` (mongod gives null), so responses
always store `option` and group keys are read with .get().
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from datasources.stories.records import (
    COUNTERS,
    Cursor,
    DueCountdown,
    HighlightRecord,
    NewHighlight,
    NewReply,
    NewStory,
    ReplyRecord,
    ResponseRecord,
    StoryRecord,
    Tally,
    ViewRecord,
    to_millis,
)

Document = dict[str, Any]

# Seconds after purgeAt at which MongoDB's TTL monitor deletes a story the sweeper
# has not purged: 4 min + the monitor's 60 s period keeps it within 5 minutes.
PURGE_BACKSTOP = 240
_LINK_COUNTER = re.compile(r"link_\d+")
# Reads of a highlight _settle makes at most to see its marks agree with it.
_SETTLE_ROUNDS = 5


def _utc(moment: datetime) -> datetime:
    """BSON dates come back naive (UTC) unless the client is tz_aware."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _record(doc: Mapping[str, Any]) -> StoryRecord:
    return StoryRecord(
        id=int(doc["_id"]),
        author_id=int(doc["authorId"]),
        platform=str(doc["platform"]),
        media_id=int(doc["mediaId"]),
        audience=str(doc["audience"]),
        created_at=_utc(doc["createdAt"]),
        expires_at=_utc(doc["expiresAt"]),
        stickers=tuple(dict(sticker) for sticker in doc.get("stickers", [])),
        caption=doc.get("caption"),
    )


def _response_record(doc: Mapping[str, Any]) -> ResponseRecord:
    return ResponseRecord(
        story_id=int(doc["storyId"]),
        sticker_index=int(doc["stickerIndex"]),
        user_id=int(doc["userId"]),
        kind=str(doc["kind"]),
        created_at=_utc(doc["createdAt"]),
        option=doc.get("option"),
        value=doc.get("value"),
        text=doc.get("text"),
    )


def _reply_record(doc: Mapping[str, Any]) -> ReplyRecord:
    return ReplyRecord(
        id=int(doc["_id"]),
        story_id=int(doc["storyId"]),
        author_id=int(doc["authorId"]),
        body=str(doc["body"]),
        created_at=_utc(doc["createdAt"]),
    )


def _highlight_record(doc: Mapping[str, Any]) -> HighlightRecord:
    cover = doc.get("coverMediaId")
    return HighlightRecord(
        id=int(doc["_id"]),
        owner_id=int(doc["ownerId"]),
        platform=str(doc["platform"]),
        title=str(doc["title"]),
        story_ids=tuple(int(story_id) for story_id in doc.get("storyIds", [])),
        created_at=_utc(doc["createdAt"]),
        cover_media_id=None if cover is None else int(cover),
    )


def _view_id(story_id: int, viewer_id: int) -> str:
    return f"{story_id}:{viewer_id}"


def _response_id(story_id: int, sticker_index: int, user_id: int) -> str:
    return f"{story_id}:{sticker_index}:{user_id}"


def _countdown_id(story_id: int, sticker_index: int) -> str:
    return f"{story_id}:{sticker_index}"


def _ends_at(sticker: Mapping[str, Any]) -> datetime | None:
    """A COUNTDOWN sticker's endsAt (ISO-8601 text) as a UTC datetime, if readable."""
    value = sticker.get("endsAt")
    if isinstance(value, datetime):
        return to_millis(_utc(value))
    if not isinstance(value, str):
        return None
    try:
        return to_millis(_utc(datetime.fromisoformat(value)))
    except ValueError:
        return None


def _after(time_field: str, id_field: str, after: Cursor | None) -> Document:
    """The keyset condition of a newest-first page: strictly after (at, id)."""
    if after is None:
        return {}
    return {
        "$or": [
            {time_field: {"$lt": after.at}},
            {time_field: after.at, id_field: {"$lt": after.id}},
        ]
    }


def _unique(ids: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(int(i) for i in ids))


class MongoStoryStore:
    """The StoryStore protocol on a MongoDB database; call ensure_indexes() once."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._database = database
        self._stories = database["stories"]
        self._views = database["story_views"]
        self._responses = database["story_responses"]
        self._countdowns = database["story_countdowns"]
        self._replies = database["story_replies"]
        self._highlights = database["story_highlights"]
        self._sequences = database["counters"]

    # ── setup ──────────────────────────────────────────────────────────
    async def ping(self) -> None:
        """Raise when the MongoDB server cannot be reached (readiness)."""
        await self._database.command("ping")

    async def ensure_indexes(self) -> None:
        """Create the indexes (idempotent) and bring documents of an earlier version
        up to date: its TTL index on expiresAt is dropped (it would delete
        highlighted stories) and its stories get purgeAt and highlightIds."""
        await self._ensure_purge_ttl()
        await self._stories.create_index([("authorId", ASCENDING), ("expiresAt", ASCENDING)])
        await self._stories.create_index([("addYoursOrigin", ASCENDING)], sparse=True)
        await self._stories.create_index([("mediaId", ASCENDING)])
        await self._views.create_index(
            [("storyId", ASCENDING), ("viewedAt", DESCENDING), ("viewerId", DESCENDING)]
        )
        await self._responses.create_index(
            [
                ("storyId", ASCENDING),
                ("stickerIndex", ASCENDING),
                ("createdAt", DESCENDING),
                ("userId", DESCENDING),
            ]
        )
        await self._responses.create_index([("userId", ASCENDING), ("storyId", ASCENDING)])
        await self._countdowns.create_index(
            [
                ("claimedAt", ASCENDING),
                ("endsAt", ASCENDING),
                ("storyId", ASCENDING),
                ("stickerIndex", ASCENDING),
            ]
        )
        await self._countdowns.create_index([("storyId", ASCENDING)])
        await self._replies.create_index(
            [("storyId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)]
        )
        await self._highlights.create_index(
            [("ownerId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)]
        )
        await self._highlights.create_index([("storyIds", ASCENDING)])
        await self._stories.create_index([("highlightIds", ASCENDING)])
        await self._highlights.create_index([("coverMediaId", ASCENDING)], sparse=True)
        # Stories stored before highlights existed: in none, so purgeable at expiry.
        await self._stories.update_many(
            {"highlightIds": {"$exists": False}},
            [{"$set": {"highlightIds": [], "purgeAt": "$expiresAt"}}],
        )

    async def _ensure_purge_ttl(self) -> None:
        indexes = await self._stories.index_information()
        for name, spec in indexes.items():
            keys = [field for field, _ in spec["key"]]
            if keys == ["expiresAt"] and "expireAfterSeconds" in spec:
                await self._stories.drop_index(name)
            elif keys == ["purgeAt"] and spec.get("expireAfterSeconds") != PURGE_BACKSTOP:
                await self._database.command(
                    {
                        "collMod": self._stories.name,
                        "index": {"name": name, "expireAfterSeconds": PURGE_BACKSTOP},
                    }
                )
        await self._stories.create_index(
            [("purgeAt", ASCENDING)], expireAfterSeconds=PURGE_BACKSTOP
        )

    async def _next_id(self, sequence: str) -> int:
        counter = await self._sequences.find_one_and_update(
            {"_id": sequence},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert counter is not None  # upsert=True with ReturnDocument.AFTER always returns one
        return int(counter["seq"])

    async def _exists(self, story_id: int) -> bool:
        return await self._stories.count_documents({"_id": story_id}, limit=1) == 1

    async def _existing(self, story_ids: Sequence[int]) -> set[int]:
        cursor = self._stories.find({"_id": {"$in": list(story_ids)}}, {"_id": 1})
        return {int(doc["_id"]) async for doc in cursor}

    # ── stories ────────────────────────────────────────────────────────
    async def add_story(self, new: NewStory) -> StoryRecord:
        story_id = await self._next_id("stories")
        doc: Document = {
            "_id": story_id,
            "authorId": new.author_id,
            "platform": new.platform,
            "mediaId": new.media_id,
            "audience": new.audience,
            "caption": new.caption,
            "stickers": [dict(sticker) for sticker in new.stickers],
            "createdAt": to_millis(new.created_at),
            "expiresAt": new.expires_at,
            "purgeAt": new.expires_at,
            "highlightIds": [],
            "counters": {},
        }
        origin = new.add_yours_origin_id
        if origin is not None:
            doc["addYoursOrigin"] = origin
        await self._stories.insert_one(doc)
        countdowns = [
            {
                "_id": _countdown_id(story_id, index),
                "storyId": story_id,
                "stickerIndex": index,
                "authorId": new.author_id,
                "platform": new.platform,
                "title": str(sticker.get("title") or ""),
                "endsAt": ends_at,
                "claimedAt": None,
            }
            for index, sticker in enumerate(new.stickers)
            if sticker.get("type") == "COUNTDOWN" and (ends_at := _ends_at(sticker)) is not None
        ]
        if countdowns:
            await self._countdowns.insert_many(countdowns)
        return _record(doc)

    async def story(self, story_id: int, now: datetime | None) -> StoryRecord | None:
        query: Document = {"_id": story_id}
        if now is not None:
            query["expiresAt"] = {"$gt": now}
        doc = await self._stories.find_one(query)
        return None if doc is None else _record(doc)

    async def stories(
        self, story_ids: Sequence[int], now: datetime | None
    ) -> dict[int, StoryRecord]:
        if not story_ids:
            return {}
        query: Document = {"_id": {"$in": _unique(story_ids)}}
        if now is not None:
            query["expiresAt"] = {"$gt": now}
        return {int(doc["_id"]): _record(doc) async for doc in self._stories.find(query)}

    async def active_stories(self, author_ids: Sequence[int], now: datetime) -> list[StoryRecord]:
        if not author_ids:
            return []
        cursor = self._stories.find(
            {"authorId": {"$in": list(author_ids)}, "expiresAt": {"$gt": now}}
        ).sort([("createdAt", ASCENDING), ("_id", ASCENDING)])
        return [_record(doc) async for doc in cursor]

    async def active_count(self, author_id: int, now: datetime) -> int:
        return await self._stories.count_documents(
            {"authorId": author_id, "expiresAt": {"$gt": now}}
        )

    async def delete_story(self, story_id: int) -> bool:
        doc = await self._stories.find_one_and_delete({"_id": story_id}, {"_id": 1})
        await self._delete_dependents([story_id])
        await self._highlights.update_many(
            {"storyIds": story_id}, {"$pull": {"storyIds": story_id}}
        )
        return doc is not None

    async def _delete_dependents(self, story_ids: list[int]) -> None:
        """Views, responses, countdowns and replies of stories already deleted
        (counters live in the story document and went with it)."""
        query = {"storyId": {"$in": story_ids}}
        await asyncio.gather(
            self._views.delete_many(query),
            self._responses.delete_many(query),
            self._countdowns.delete_many(query),
            self._replies.delete_many(query),
        )

    async def add_yours_counts(self, origin_ids: Sequence[int]) -> dict[int, int]:
        if not origin_ids:
            return {}
        return await self._count_by(
            self._stories, {"addYoursOrigin": {"$in": list(origin_ids)}}, "$addYoursOrigin"
        )

    async def _count_by(
        self, collection: AsyncCollection[Document], match: Document, key: str
    ) -> dict[int, int]:
        cursor = await collection.aggregate(
            [{"$match": match}, {"$group": {"_id": key, "n": {"$sum": 1}}}]
        )
        return {int(doc["_id"]): int(doc["n"]) async for doc in cursor}

    # ── views ──────────────────────────────────────────────────────────
    async def add_viewer(
        self, story_id: int, viewer_id: int, viewed_at: datetime, reaction: str | None
    ) -> bool:
        view_id = _view_id(story_id, viewer_id)
        try:
            await self._views.insert_one(
                {
                    "_id": view_id,
                    "storyId": story_id,
                    "viewerId": viewer_id,
                    "viewedAt": to_millis(viewed_at),
                    "reaction": reaction,
                }
            )
        except DuplicateKeyError:
            return False
        # Checked after the insert: a delete_story that removed the story before this
        # check is seen here; one that removed it after deletes this view itself.
        if not await self._exists(story_id):
            await self._views.delete_one({"_id": view_id})
            return False
        return True

    async def viewer(self, story_id: int, viewer_id: int) -> ViewRecord | None:
        doc = await self._views.find_one({"_id": _view_id(story_id, viewer_id)})
        if doc is None:
            return None
        return ViewRecord(story_id, viewer_id, _utc(doc["viewedAt"]), doc.get("reaction"))

    async def viewer_count(self, story_id: int) -> int:
        return await self._views.count_documents({"storyId": story_id})

    async def viewer_counts(self, story_ids: Sequence[int]) -> dict[int, int]:
        if not story_ids:
            return {}
        return await self._count_by(self._views, {"storyId": {"$in": list(story_ids)}}, "$storyId")

    async def viewers(self, story_id: int, first: int, after: Cursor | None) -> list[ViewRecord]:
        if first <= 0:
            return []
        query: Document = {"storyId": story_id, **_after("viewedAt", "viewerId", after)}
        cursor = (
            self._views.find(query)
            .sort([("viewedAt", DESCENDING), ("viewerId", DESCENDING)])
            .limit(first)
        )
        return [
            ViewRecord(story_id, int(doc["viewerId"]), _utc(doc["viewedAt"]), doc.get("reaction"))
            async for doc in cursor
        ]

    async def seen(self, viewer_id: int, story_ids: Sequence[int]) -> set[int]:
        if not story_ids:
            return set()
        ids = [_view_id(story_id, viewer_id) for story_id in story_ids]
        cursor = self._views.find({"_id": {"$in": ids}}, {"storyId": 1})
        return {int(doc["storyId"]) async for doc in cursor}

    # ── counters (insights, link taps) ─────────────────────────────────
    async def bump(self, story_id: int, counter: str) -> None:
        # The name becomes a field path: only known names, never a caller's "$x.y".
        if counter not in COUNTERS and not _LINK_COUNTER.fullmatch(counter):
            raise ValueError(f"unknown story counter {counter!r}")
        await self._stories.update_one({"_id": story_id}, {"$inc": {f"counters.{counter}": 1}})

    async def counters(self, story_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        if not story_ids:
            return {}
        cursor = self._stories.find({"_id": {"$in": _unique(story_ids)}}, {"counters": 1})
        result: dict[int, dict[str, int]] = {}
        async for doc in cursor:
            values = {name: int(n) for name, n in (doc.get("counters") or {}).items() if n}
            if values:
                result[int(doc["_id"])] = values
        return result

    # ── sticker responses ──────────────────────────────────────────────
    async def add_response(self, response: ResponseRecord) -> bool:
        response_id = _response_id(response.story_id, response.sticker_index, response.user_id)
        try:
            await self._responses.insert_one(
                {
                    "_id": response_id,
                    "storyId": response.story_id,
                    "stickerIndex": response.sticker_index,
                    "userId": response.user_id,
                    "kind": response.kind,
                    "createdAt": to_millis(response.created_at),
                    "option": response.option,
                    "value": response.value,
                    "text": response.text,
                }
            )
        except DuplicateKeyError:
            return False
        if not await self._exists(response.story_id):  # as in add_viewer
            await self._responses.delete_one({"_id": response_id})
            return False
        return True

    async def remove_response(self, story_id: int, sticker_index: int, user_id: int) -> bool:
        result = await self._responses.delete_one(
            {"_id": _response_id(story_id, sticker_index, user_id)}
        )
        return result.deleted_count == 1

    async def tallies(self, story_ids: Sequence[int]) -> dict[int, dict[int, Tally]]:
        if not story_ids:
            return {}
        cursor = await self._responses.aggregate(
            [
                {"$match": {"storyId": {"$in": list(story_ids)}}},
                {
                    "$group": {
                        "_id": {"s": "$storyId", "i": "$stickerIndex", "o": "$option"},
                        "n": {"$sum": 1},
                        "v": {"$sum": "$value"},  # $sum skips nulls
                    }
                },
            ]
        )
        groups = [doc async for doc in cursor]
        sums: dict[int, dict[int, tuple[dict[int, int], int, float]]] = {}
        for group in groups:
            key = group["_id"]
            per_story = sums.setdefault(int(key["s"]), {})
            options, count, value_sum = per_story.get(int(key["i"]), ({}, 0, 0.0))
            option = key.get("o")
            if option is not None:
                options[int(option)] = options.get(int(option), 0) + int(group["n"])
            per_story[int(key["i"])] = (
                options,
                count + int(group["n"]),
                value_sum + float(group["v"] or 0),
            )
        return {
            story_id: {
                index: Tally(
                    option_counts=dict(sorted(options.items())), count=count, value_sum=total
                )
                for index, (options, count, total) in per_story.items()
            }
            for story_id, per_story in sums.items()
        }

    async def responses_of(
        self, user_id: int, story_ids: Sequence[int]
    ) -> dict[tuple[int, int], ResponseRecord]:
        if not story_ids:
            return {}
        cursor = self._responses.find({"userId": user_id, "storyId": {"$in": list(story_ids)}})
        records = [_response_record(doc) async for doc in cursor]
        return {(record.story_id, record.sticker_index): record for record in records}

    async def responses(
        self, story_id: int, sticker_index: int, first: int, after: Cursor | None
    ) -> list[ResponseRecord]:
        if first <= 0:
            return []
        query: Document = {
            "storyId": story_id,
            "stickerIndex": sticker_index,
            **_after("createdAt", "userId", after),
        }
        cursor = (
            self._responses.find(query)
            .sort([("createdAt", DESCENDING), ("userId", DESCENDING)])
            .limit(first)
        )
        return [_response_record(doc) async for doc in cursor]

    async def claim_due_countdowns(self, now: datetime, limit: int = 100) -> list[DueCountdown]:
        claimed: list[Document] = []
        # One find_one_and_update per countdown: each flips claimedAt from null to
        # now atomically, so a concurrent sweeper can never claim the same one.
        while len(claimed) < limit:
            doc = await self._countdowns.find_one_and_update(
                {"claimedAt": None, "endsAt": {"$lte": now}},
                {"$set": {"claimedAt": now}},
                sort=[("endsAt", ASCENDING), ("storyId", ASCENDING), ("stickerIndex", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                break
            claimed.append(doc)
        if not claimed:
            return []
        # A countdown whose story was deleted between the two writes of add_story or
        # delete_story may outlive it; it is claimed (so never again) but not returned.
        alive = await self._existing([int(doc["storyId"]) for doc in claimed])
        claimed = [doc for doc in claimed if int(doc["storyId"]) in alive]
        subscribers: dict[tuple[int, int], list[int]] = {}
        if claimed:
            cursor = self._responses.find(
                {
                    "storyId": {"$in": sorted(alive)},
                    "kind": "COUNTDOWN",
                },
                {"storyId": 1, "stickerIndex": 1, "userId": 1},
            ).sort([("createdAt", ASCENDING), ("userId", ASCENDING)])
            async for response in cursor:
                key = (int(response["storyId"]), int(response["stickerIndex"]))
                subscribers.setdefault(key, []).append(int(response["userId"]))
        return [
            DueCountdown(
                story_id=int(doc["storyId"]),
                sticker_index=int(doc["stickerIndex"]),
                author_id=int(doc["authorId"]),
                platform=str(doc["platform"]),
                title=str(doc["title"]),
                ends_at=_utc(doc["endsAt"]),
                subscriber_ids=tuple(
                    subscribers.get((int(doc["storyId"]), int(doc["stickerIndex"])), ())
                ),
            )
            for doc in claimed
        ]

    # ── replies ────────────────────────────────────────────────────────
    async def add_reply(self, new: NewReply) -> ReplyRecord | None:
        if not await self._exists(new.story_id):
            return None
        doc: Document = {
            "_id": await self._next_id("story_replies"),
            "storyId": new.story_id,
            "authorId": new.author_id,
            "body": new.body,
            "createdAt": to_millis(new.created_at),
        }
        await self._replies.insert_one(doc)
        if not await self._exists(new.story_id):  # deleted meanwhile: as in add_viewer
            await self._replies.delete_one({"_id": doc["_id"]})
            return None
        return _reply_record(doc)

    async def reply(self, reply_id: int) -> ReplyRecord | None:
        doc = await self._replies.find_one({"_id": reply_id})
        return None if doc is None else _reply_record(doc)

    async def replies(self, story_id: int, first: int, after: Cursor | None) -> list[ReplyRecord]:
        if first <= 0:
            return []
        query: Document = {"storyId": story_id, **_after("createdAt", "_id", after)}
        cursor = (
            self._replies.find(query)
            .sort([("createdAt", DESCENDING), ("_id", DESCENDING)])
            .limit(first)
        )
        return [_reply_record(doc) async for doc in cursor]

    async def reply_counts(self, story_ids: Sequence[int]) -> dict[int, int]:
        if not story_ids:
            return {}
        return await self._count_by(
            self._replies, {"storyId": {"$in": list(story_ids)}}, "$storyId"
        )

    # ── highlights ─────────────────────────────────────────────────────
    # A highlight's `storyIds` is what it shows; each story's `highlightIds` (and
    # so its purgeAt) must agree with it. There is no transaction across the two,
    # so every highlight write ends with _settle, which writes the marks from the
    # highlight as read and then reads it again, until the two reads agree: a
    # concurrent write to the same highlight is seen by one of the two settles.
    async def _hold(self, highlight_id: int, story_ids: list[int]) -> None:
        """Mark the stories as in the highlight: never purged, by sweeper or TTL."""
        await self._stories.update_many(
            {"_id": {"$in": story_ids}},
            {"$addToSet": {"highlightIds": highlight_id}, "$unset": {"purgeAt": ""}},
        )

    async def _release(self, highlight_id: int, story_ids: list[int]) -> None:
        """Unmark the stories; those in no highlight any more are purgeable again
        from their expiry. The second update's filter is evaluated atomically per
        document, so a story another highlight just marked keeps purgeAt unset."""
        await self._stories.update_many(
            {"_id": {"$in": story_ids}}, {"$pull": {"highlightIds": highlight_id}}
        )
        await self._stories.update_many(
            {"_id": {"$in": story_ids}, "highlightIds": {"$size": 0}},
            [{"$set": {"purgeAt": "$expiresAt"}}],
        )

    async def _listed(self, highlight_id: int, story_ids: list[int]) -> set[int] | None:
        """Which of these stories the highlight lists; None when it does not exist."""
        doc = await self._highlights.find_one({"_id": highlight_id}, {"storyIds": 1})
        if doc is None:
            return None
        return set(story_ids) & {int(story_id) for story_id in doc.get("storyIds", [])}

    async def _settle(self, highlight_id: int, story_ids: list[int]) -> None:
        if not story_ids:
            return
        listed = await self._listed(highlight_id, story_ids)
        for _ in range(_SETTLE_ROUNDS):
            held = sorted(listed or ())
            unheld = sorted(set(story_ids) - set(held))
            if held:
                await self._hold(highlight_id, held)
            if unheld:
                await self._release(highlight_id, unheld)
            again = await self._listed(highlight_id, story_ids)
            if again == listed:
                break
            listed = again
        # A story deleted before it was listed was not pulled by delete_story.
        gone = set(listed or ()) - await self._existing(sorted(listed or ()))
        if gone:
            await self._highlights.update_one(
                {"_id": highlight_id}, {"$pull": {"storyIds": {"$in": sorted(gone)}}}
            )

    async def create_highlight(self, new: NewHighlight) -> HighlightRecord:
        highlight_id = await self._next_id("story_highlights")
        wanted = _unique(new.story_ids)
        existing = await self._existing(wanted) if wanted else set()
        story_ids = [story_id for story_id in wanted if story_id in existing]
        # Marked before they are listed: a sweeper must not purge one in between.
        if story_ids:
            await self._hold(highlight_id, story_ids)
        doc: Document = {
            "_id": highlight_id,
            "ownerId": new.owner_id,
            "platform": new.platform,
            "title": new.title,
            "storyIds": story_ids,
            "createdAt": to_millis(new.created_at),
            "coverMediaId": new.cover_media_id,
        }
        await self._highlights.insert_one(doc)
        if not story_ids:
            return _highlight_record(doc)
        await self._settle(highlight_id, story_ids)
        return await self.highlight(highlight_id) or _highlight_record(doc)

    async def highlight(self, highlight_id: int) -> HighlightRecord | None:
        doc = await self._highlights.find_one({"_id": highlight_id})
        return None if doc is None else _highlight_record(doc)

    async def highlights_of(self, owner_ids: Sequence[int]) -> dict[int, list[HighlightRecord]]:
        if not owner_ids:
            return {}
        cursor = self._highlights.find({"ownerId": {"$in": list(owner_ids)}}).sort(
            [("createdAt", DESCENDING), ("_id", DESCENDING)]
        )
        result: dict[int, list[HighlightRecord]] = {}
        async for doc in cursor:
            record = _highlight_record(doc)
            result.setdefault(record.owner_id, []).append(record)
        return result

    async def add_to_highlight(
        self, highlight_id: int, story_ids: Sequence[int]
    ) -> HighlightRecord | None:
        wanted = _unique(story_ids)
        while True:
            current = await self._highlights.find_one({"_id": highlight_id})
            if current is None:
                return None
            listed = {int(story_id) for story_id in current.get("storyIds", [])}
            fresh = [story_id for story_id in wanted if story_id not in listed]
            existing = await self._existing(fresh) if fresh else set()
            fresh = [story_id for story_id in fresh if story_id in existing]
            if not fresh:
                return _highlight_record(current)
            await self._hold(highlight_id, fresh)  # before listed, as in create_highlight
            # Appended only if none of them got in meanwhile (else read again), so
            # a story is listed once and in the order given.
            pushed = await self._highlights.update_one(
                {"_id": highlight_id, "storyIds": {"$nin": fresh}},
                {"$push": {"storyIds": {"$each": fresh}}},
            )
            if pushed.modified_count == 1:
                await self._settle(highlight_id, fresh)
                return await self.highlight(highlight_id)
            if not await self._highlights.count_documents({"_id": highlight_id}, limit=1):
                await self._settle(highlight_id, fresh)  # deleted meanwhile: unmark them
                return None

    async def remove_from_highlight(
        self, highlight_id: int, story_ids: Sequence[int]
    ) -> HighlightRecord | None:
        ids = _unique(story_ids)
        doc = await self._highlights.find_one_and_update(
            {"_id": highlight_id},
            {"$pull": {"storyIds": {"$in": ids}}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        await self._settle(highlight_id, ids)
        return _highlight_record(doc)

    async def delete_highlight(self, highlight_id: int) -> bool:
        doc = await self._highlights.find_one_and_delete({"_id": highlight_id})
        if doc is None:
            return False
        marked = self._stories.find({"highlightIds": highlight_id}, {"_id": 1})
        await self._settle(highlight_id, [int(story["_id"]) async for story in marked])
        return True

    # ── expiry ─────────────────────────────────────────────────────────
    async def purge_expired(self, now: datetime, limit: int = 500) -> list[StoryRecord]:
        if limit <= 0:
            return []
        candidates = (
            self._stories.find({"purgeAt": {"$lte": now}}, {"_id": 1})
            .sort([("purgeAt", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        ids = [int(doc["_id"]) async for doc in candidates]
        # Deleted one by one on the same condition: a story a highlight took since
        # the find (purgeAt unset) survives, and one deleted by someone else is not
        # returned (its media are not ours to delete twice).
        deleted = await asyncio.gather(
            *(
                self._stories.find_one_and_delete({"_id": story_id, "purgeAt": {"$lte": now}})
                for story_id in ids
            )
        )
        purged = [_record(doc) for doc in deleted if doc is not None]
        if purged:
            purged_ids = [story.id for story in purged]
            await self._delete_dependents(purged_ids)
            # None is in a highlight unless a race left one listed: never show it.
            await self._highlights.update_many(
                {"storyIds": {"$in": purged_ids}}, {"$pull": {"storyIds": {"$in": purged_ids}}}
            )
        return purged

    async def media_in_use(self, media_ids: Sequence[int]) -> set[int]:
        if not media_ids:
            return set()
        wanted = list(media_ids)
        in_stories, covers = await asyncio.gather(
            self._stories.distinct("mediaId", {"mediaId": {"$in": wanted}}),
            self._highlights.distinct("coverMediaId", {"coverMediaId": {"$in": wanted}}),
        )
        return {int(media_id) for media_id in [*in_stories, *covers] if media_id is not None}
