"""What only the MongoDB StoryStore has: the TTL index on `purgeAt` that a highlight
clears, its upgrade from the earlier TTL index on `expiresAt`, and the documents of
an earlier version brought up to date. The shared behaviour is in
tests/test_stories_store.py.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from datasources.stories.mongo import PURGE_BACKSTOP, MongoStoryStore
from datasources.stories.records import NewHighlight, NewStory, StoryRecord, to_millis
from tests.services import require

MONGO_HOST, MONGO_PORT = "127.0.0.1", 27017


@pytest.fixture
async def database() -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    require("MongoDB", MONGO_HOST, MONGO_PORT)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://{MONGO_HOST}:{MONGO_PORT}", serverSelectionTimeoutMS=5000
    )
    name = f"entativa_stories_{uuid.uuid4().hex[:12]}"  # tests never see each other's data
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest.fixture
async def store(database: AsyncDatabase[dict[str, Any]]) -> MongoStoryStore:
    mongo = MongoStoryStore(database)
    await mongo.ensure_indexes()
    return mongo


def _now() -> datetime:
    return to_millis(datetime.now(UTC))


def _new(created_at: datetime, author_id: int = 1) -> NewStory:
    return NewStory(
        author_id=author_id,
        platform="VIGNETTE",
        media_id=10,
        audience="EVERYONE",
        created_at=created_at,
    )


def _highlight(story_ids: tuple[int, ...], created_at: datetime) -> NewHighlight:
    return NewHighlight(
        owner_id=1, platform="VIGNETTE", title="Trips", story_ids=story_ids, created_at=created_at
    )


async def _ttl_indexes(database: AsyncDatabase[dict[str, Any]]) -> dict[str, int]:
    """TTL indexes of the stories collection: indexed field → expireAfterSeconds."""
    indexes = await database["stories"].index_information()
    return {
        spec["key"][0][0]: spec["expireAfterSeconds"]
        for spec in indexes.values()
        if "expireAfterSeconds" in spec
    }


async def _purge_at(database: AsyncDatabase[dict[str, Any]], story: StoryRecord) -> Any:
    doc = await database["stories"].find_one({"_id": story.id})
    assert doc is not None
    purge_at = doc.get("purgeAt")
    return None if purge_at is None else purge_at.replace(tzinfo=UTC)


async def test_the_only_ttl_index_is_on_purge_at_with_the_backstop_delay(
    database: AsyncDatabase[dict[str, Any]], store: MongoStoryStore
) -> None:
    assert await _ttl_indexes(database) == {"purgeAt": PURGE_BACKSTOP}
    # Within 5 minutes even without a sweeper: the delay plus mongod's 60 s TTL pass.
    assert PURGE_BACKSTOP + 60 <= 300

    await store.ensure_indexes()  # idempotent: a second start changes nothing

    assert await _ttl_indexes(database) == {"purgeAt": PURGE_BACKSTOP}


async def test_an_earlier_versions_indexes_and_stories_are_upgraded(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    stories = database["stories"]
    # What the earlier version created: a TTL index on expiresAt (which would delete
    # highlighted stories) and stories without purgeAt or highlightIds.
    await stories.create_index([("expiresAt", ASCENDING)], expireAfterSeconds=0)
    await stories.create_index([("purgeAt", ASCENDING)], expireAfterSeconds=3600)
    created_at = _now() - timedelta(hours=30)
    await stories.insert_one(
        {
            "_id": 1,
            "authorId": 1,
            "platform": "VIGNETTE",
            "mediaId": 10,
            "audience": "EVERYONE",
            "stickers": [],
            "createdAt": created_at,
            "expiresAt": created_at + timedelta(hours=24),
        }
    )
    store = MongoStoryStore(database)

    await store.ensure_indexes()

    assert await _ttl_indexes(database) == {"purgeAt": PURGE_BACKSTOP}
    purged = await store.purge_expired(_now())
    assert [story.id for story in purged] == [1]


async def test_a_highlight_clears_purge_at_and_removal_restores_it(
    database: AsyncDatabase[dict[str, Any]], store: MongoStoryStore
) -> None:
    story = await store.add_story(_new(_now() - timedelta(hours=30)))
    assert await _purge_at(database, story) == story.expires_at

    first = await store.create_highlight(_highlight((story.id,), _now()))
    second = await store.create_highlight(_highlight((story.id,), _now()))
    assert await _purge_at(database, story) is None

    await store.remove_from_highlight(first.id, [story.id])
    assert await _purge_at(database, story) is None  # still in the second highlight

    await store.delete_highlight(second.id)
    assert await _purge_at(database, story) == story.expires_at

    await store.add_to_highlight(first.id, [story.id])
    assert await _purge_at(database, story) is None
    assert await store.purge_expired(_now()) == []
    assert await store.story(story.id, None) == story


async def test_the_ttl_backstop_spares_highlighted_stories(
    database: AsyncDatabase[dict[str, Any]], store: MongoStoryStore
) -> None:
    long_ago = _now() - timedelta(hours=30)
    kept = await store.add_story(_new(long_ago))
    dropped = await store.add_story(_new(long_ago))
    fresh = await store.add_story(_new(_now()))
    await store.create_highlight(_highlight((kept.id,), _now()))
    try:
        # SecantusDB's command for an immediate TTL pass (mongod runs one every 60 s).
        await database.client.admin.command({"secantusAdmin.pruneTtl": 1})
    except OperationFailure as error:  # a real mongod has no such command
        pytest.skip(f"the server cannot run a TTL pass on demand: {error}")

    assert await store.story(dropped.id, None) is None
    assert await store.story(kept.id, None) == kept
    assert await store.story(fresh.id, None) == fresh


async def test_concurrent_highlight_edits_never_purge_a_highlighted_story(
    store: MongoStoryStore,
) -> None:
    # No transaction spans a highlight and its stories' purge marks: whatever the
    # interleaving, a story is purged exactly when no highlight shows it.
    expired = _now() - timedelta(hours=30)
    stories = [(await store.add_story(_new(expired))).id for _ in range(6)]
    rng = random.Random(7)
    highlights = [
        (await store.create_highlight(_highlight(tuple(rng.sample(stories, 2)), _now()))).id
        for _ in range(3)
    ]
    edits: list[Awaitable[object]] = []
    for _ in range(40):
        highlight_id, story_ids = rng.choice(highlights), rng.sample(stories, rng.randint(1, 3))
        roll = rng.random()
        if roll < 0.45:
            edits.append(store.add_to_highlight(highlight_id, story_ids))
        elif roll < 0.93:
            edits.append(store.remove_from_highlight(highlight_id, story_ids))
        else:
            edits.append(store.delete_highlight(highlight_id))

    await asyncio.gather(*edits)

    shown = {
        story_id
        for highlight_id in highlights
        if (highlight := await store.highlight(highlight_id)) is not None
        for story_id in highlight.story_ids
    }
    purged = {story.id for story in await store.purge_expired(_now())}
    assert purged == set(stories) - shown
    assert set((await store.stories(sorted(shown), None)).keys()) == shown
