"""The StoryStore contract: the same tests on the relational store (SQLite and
PostgreSQL) and on MongoDB (a Mongo-wire server at 127.0.0.1:27017; CI starts one).

Time is passed explicitly (`now`), so expiry is tested with a controllable clock.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from datasources.sql import Database
from datasources.stories.mongo import MongoStoryStore
from datasources.stories.records import MAX_ACTIVE_STORIES, NewStory, to_millis
from datasources.stories.relational import RelationalStoryStore
from datasources.stories.store import StoryStore
from tests.services import require

MONGO_HOST, MONGO_PORT = "127.0.0.1", 27017

# The relational cases reuse conftest's database_url (a migrated SQLite copy or the
# truncated PostgreSQL database); the MongoDB case ignores its SQLite copy.
pytestmark = pytest.mark.parametrize(
    ("database_url", "store_kind"),
    [("sqlite", "relational"), ("postgresql", "relational"), ("sqlite", "mongo")],
    indirect=["database_url"],
    ids=["sqlite", "postgresql", "mongo"],
)


@pytest.fixture
async def store(database_url: str, store_kind: str) -> AsyncIterator[StoryStore]:
    if store_kind == "relational":
        db = Database(database_url)
        yield RelationalStoryStore(db)
        await db.dispose()
        return
    require("MongoDB", MONGO_HOST, MONGO_PORT)
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict] = AsyncMongoClient(
        f"mongodb://{MONGO_HOST}:{MONGO_PORT}", serverSelectionTimeoutMS=5000
    )
    name = f"entativa_stories_{uuid.uuid4().hex[:12]}"  # tests never see each other's data
    mongo = MongoStoryStore(client[name])
    await mongo.ensure_indexes()
    yield mongo
    await client.drop_database(name)
    await client.close()


def _now() -> datetime:
    return to_millis(datetime.now(UTC))


def _new(
    author_id: int = 1,
    created_at: datetime | None = None,
    audience: str = "EVERYONE",
    stickers: tuple[dict[str, object], ...] = (),
) -> NewStory:
    return NewStory(
        author_id=author_id,
        media_id=10,
        audience=audience,
        created_at=created_at or _now(),
        stickers=stickers,
    )


async def test_a_story_reads_back_with_its_stickers(store: StoryStore) -> None:
    stickers = (
        {"type": "POLL", "question": "Tea?", "options": ["yes", "no"], "x": 0.5, "y": 0.25},
        {"type": "LINK", "url": "https://example.com", "x": 0.1, "y": 0.9},
    )
    created = await store.add_story(_new(audience="CLOSE_FRIENDS", stickers=stickers))
    now = _now()

    found = await store.story(created.id, now)

    assert found == created
    assert found.stickers == stickers
    assert found.audience == "CLOSE_FRIENDS"
    assert found.expires_at == found.created_at + timedelta(hours=24)
    assert await store.story(created.id + 1000, now) is None


async def test_expired_stories_vanish_from_reads(store: StoryStore) -> None:
    created_at = _now()
    story = await store.add_story(_new(created_at=created_at))
    just_before = created_at + timedelta(hours=24) - timedelta(seconds=1)
    at_expiry = created_at + timedelta(hours=24)

    assert [s.id for s in await store.active_stories([1], just_before)] == [story.id]
    assert await store.story(story.id, at_expiry) is None
    assert await store.active_stories([1], at_expiry) == []
    assert await store.active_count(1, at_expiry) == 0
    # Highlights still read an expired story (now=None).
    assert await store.story(story.id, None) == story


async def test_active_stories_of_several_authors_oldest_first(store: StoryStore) -> None:
    base = _now()
    first = await store.add_story(_new(author_id=1, created_at=base))
    second = await store.add_story(_new(author_id=2, created_at=base + timedelta(seconds=1)))
    await store.add_story(_new(author_id=3, created_at=base))
    old = await store.add_story(_new(author_id=1, created_at=base - timedelta(hours=30)))

    stories = await store.active_stories([1, 2], base + timedelta(seconds=2))

    assert [s.id for s in stories] == [first.id, second.id]
    assert old.id not in {s.id for s in stories}
    assert await store.active_stories([], base) == []


async def test_a_viewer_is_recorded_once_even_concurrently(store: StoryStore) -> None:
    story = await store.add_story(_new())
    seen_at = _now()

    results = await asyncio.gather(
        *(store.add_viewer(story.id, 7, seen_at, "🔥") for _ in range(10))
    )

    assert results.count(True) == 1
    assert await store.viewer_count(story.id) == 1
    view = await store.viewer(story.id, 7)
    assert view is not None and view.viewed_at == seen_at and view.reaction == "🔥"
    assert await store.viewer(story.id, 8) is None
    assert await store.add_viewer(story.id, 7, seen_at, None) is False


async def test_viewer_count_is_exact_with_50_concurrent_viewers(store: StoryStore) -> None:
    story = await store.add_story(_new())
    seen_at = _now()

    results = await asyncio.gather(
        *(store.add_viewer(story.id, viewer, seen_at, None) for viewer in range(100, 150))
    )

    assert all(results)
    assert await store.viewer_count(story.id) == 50


async def test_a_deleted_story_and_its_views_are_gone(store: StoryStore) -> None:
    story = await store.add_story(_new())
    other = await store.add_story(_new())
    await store.add_viewer(story.id, 7, _now(), None)

    assert await store.delete_story(story.id) is True

    assert await store.story(story.id, None) is None
    assert await store.viewer_count(story.id) == 0
    assert await store.delete_story(story.id) is False
    assert await store.add_viewer(story.id, 8, _now(), None) is False
    assert await store.viewer_count(story.id) == 0
    assert await store.story(other.id, _now()) == other


async def test_active_count_tracks_the_100_story_limit(store: StoryStore) -> None:
    base = _now()
    await asyncio.gather(
        *(store.add_story(_new(author_id=5, created_at=base)) for _ in range(MAX_ACTIVE_STORIES))
    )
    await store.add_story(_new(author_id=6, created_at=base))
    await store.add_story(_new(author_id=5, created_at=base - timedelta(hours=25)))

    assert await store.active_count(5, base) == MAX_ACTIVE_STORIES
    assert await store.active_count(6, base) == 1
    assert await store.active_count(5, base + timedelta(hours=24)) == 0
