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
from datasources.stories.records import (
    IMPRESSIONS,
    MAX_ACTIVE_STORIES,
    STICKER_TAPS,
    Cursor,
    NewHighlight,
    NewReply,
    NewStory,
    ResponseRecord,
    link_taps_counter,
    to_millis,
)
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
    media_id: int = 10,
    caption: str | None = None,
    platform: str = "vignette",
) -> NewStory:
    return NewStory(
        author_id=author_id,
        platform=platform,
        media_id=media_id,
        audience=audience,
        created_at=created_at or _now(),
        stickers=stickers,
        caption=caption,
    )


async def test_a_story_reads_back_with_its_stickers(store: StoryStore) -> None:
    stickers = (
        {"type": "POLL", "question": "Tea?", "options": ["yes", "no"], "x": 0.5, "y": 0.25},
        {"type": "LINK", "url": "https://example.com", "x": 0.1, "y": 0.9},
    )
    created = await store.add_story(
        _new(
            audience="CLOSE_FRIENDS", stickers=stickers, caption="morning ☕", platform="socialink"
        )
    )
    now = _now()

    found = await store.story(created.id, now)

    assert found == created
    assert found.stickers == stickers
    assert found.audience == "CLOSE_FRIENDS"
    assert found.caption == "morning ☕" and found.platform == "socialink"
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


# ── batch reads ────────────────────────────────────────────────────────


async def test_batch_reads_skip_expired_stories_unless_now_is_none(store: StoryStore) -> None:
    now = _now()
    active = await store.add_story(_new(created_at=now - timedelta(hours=1)))
    expired = await store.add_story(_new(created_at=now - timedelta(hours=25)))
    missing = active.id + expired.id + 1000

    assert await store.stories([active.id, expired.id, missing], now) == {active.id: active}
    assert await store.stories([active.id, expired.id, missing], None) == {
        active.id: active,
        expired.id: expired,
    }
    assert await store.stories([], now) == {}


async def test_add_yours_counts_the_stories_answering_each_origin(store: StoryStore) -> None:
    now = _now()
    origin = await store.add_story(_new(stickers=({"type": "ADD_YOURS", "prompt": "Pets?"},)))
    other = await store.add_story(_new())
    quiet = await store.add_story(_new())

    def answer(origin_id: int) -> tuple[dict[str, object], ...]:
        return ({"type": "ADD_YOURS", "prompt": "Pets?", "originStoryId": origin_id},)

    answers = [
        await store.add_story(_new(author_id=author, stickers=answer(origin.id), created_at=now))
        for author in (2, 3, 4)
    ]
    await store.add_story(_new(author_id=5, stickers=answer(other.id)))

    assert answers[0].add_yours_origin_id == origin.id
    assert origin.add_yours_origin_id is None
    assert await store.add_yours_counts([origin.id, other.id, quiet.id]) == {
        origin.id: 3,
        other.id: 1,
    }
    assert await store.add_yours_counts([]) == {}


# ── views ──────────────────────────────────────────────────────────────


async def test_viewers_page_newest_first_with_a_cursor(store: StoryStore) -> None:
    story = await store.add_story(_new())
    unseen = await store.add_story(_new())
    base = _now()
    # Viewers 20 and 21 saw it at the same moment: the id breaks the tie.
    moments = {20: base, 21: base, 22: base + timedelta(seconds=1), 23: base - timedelta(seconds=5)}
    for viewer, at in moments.items():
        await store.add_viewer(story.id, viewer, at, None)

    pages: list[list[int]] = []
    after: Cursor | None = None
    while page := await store.viewers(story.id, 3 if not pages else 2, after):
        pages.append([view.viewer_id for view in page])
        after = Cursor(page[-1].viewed_at, page[-1].viewer_id)

    assert pages == [[22, 21, 20], [23]]
    assert await store.viewer_counts([story.id, unseen.id]) == {story.id: 4}
    assert await store.viewers(unseen.id, 10, None) == []


async def test_seen_tells_which_stories_a_viewer_saw(store: StoryStore) -> None:
    first, second, third = [await store.add_story(_new()) for _ in range(3)]
    await store.add_viewer(first.id, 7, _now(), None)
    await store.add_viewer(third.id, 7, _now(), "😂")
    await store.add_viewer(second.id, 8, _now(), None)

    assert await store.seen(7, [first.id, second.id, third.id]) == {first.id, third.id}
    assert await store.seen(9, [first.id, second.id, third.id]) == set()
    assert await store.seen(7, []) == set()


# ── counters ───────────────────────────────────────────────────────────


async def test_counters_are_exact_with_50_concurrent_bumps(store: StoryStore) -> None:
    story = await store.add_story(_new())
    untouched = await store.add_story(_new())
    link = link_taps_counter(1)

    await asyncio.gather(
        *(store.bump(story.id, IMPRESSIONS) for _ in range(50)),
        *(store.bump(story.id, link) for _ in range(3)),
    )
    await store.bump(story.id, STICKER_TAPS)

    assert await store.counters([story.id, untouched.id]) == {
        story.id: {IMPRESSIONS: 50, link: 3, STICKER_TAPS: 1}
    }


async def test_bumping_a_story_that_is_gone_counts_nothing(store: StoryStore) -> None:
    story = await store.add_story(_new())
    await store.bump(story.id, IMPRESSIONS)
    await store.delete_story(story.id)

    await store.bump(story.id, IMPRESSIONS)
    await store.bump(story.id + 1000, IMPRESSIONS)

    assert await store.counters([story.id, story.id + 1000]) == {}


# ── sticker responses ──────────────────────────────────────────────────


def _vote(story_id: int, user_id: int, option: int, at: datetime, index: int = 0) -> ResponseRecord:
    return ResponseRecord(story_id, index, user_id, "POLL", at, option=option)


async def test_a_response_is_stored_once_even_with_concurrent_duplicates(
    store: StoryStore,
) -> None:
    story = await store.add_story(_new())
    at = _now()

    results = await asyncio.gather(
        *(store.add_response(_vote(story.id, 7, option % 2, at)) for option in range(10))
    )

    assert results.count(True) == 1
    kept = (await store.responses_of(7, [story.id]))[(story.id, 0)]
    assert kept.user_id == 7 and kept.kind == "POLL" and kept.created_at == at
    assert (await store.tallies([story.id]))[story.id][0].count == 1
    # Another sticker of the same story is another response.
    assert await store.add_response(_vote(story.id, 7, 1, at, index=1)) is True
    assert await store.add_response(_vote(story.id + 1000, 7, 1, at)) is False


async def test_1000_concurrent_poll_voters_are_tallied_exactly(store: StoryStore) -> None:
    story = await store.add_story(
        _new(stickers=({"type": "POLL", "question": "Best?", "options": ["a", "b", "c"]},))
    )
    at = _now()

    results = await asyncio.gather(
        *(store.add_response(_vote(story.id, user, user % 3, at)) for user in range(1000))
    )

    assert all(results)
    tally = (await store.tallies([story.id]))[story.id][0]
    assert tally.option_counts == {0: 334, 1: 333, 2: 333}
    assert sum(tally.option_counts.values()) == tally.count == 1000


async def test_slider_question_and_countdown_tallies(store: StoryStore) -> None:
    story = await store.add_story(_new())
    quiet = await store.add_story(_new())
    at = _now()
    for user, value in enumerate((0.25, 0.5, 0.75, 1.0)):
        await store.add_response(ResponseRecord(story.id, 0, user, "SLIDER", at, value=value))
    await store.add_response(ResponseRecord(story.id, 1, 7, "QUESTION", at, text="Why?"))
    await store.add_response(ResponseRecord(story.id, 2, 7, "COUNTDOWN", at))
    await store.add_response(ResponseRecord(story.id, 2, 8, "COUNTDOWN", at))

    tallies = await store.tallies([story.id, quiet.id])

    assert set(tallies) == {story.id}
    slider = tallies[story.id][0]
    assert slider.count == 4 and slider.value_sum == pytest.approx(2.5)
    assert slider.option_counts == {}
    assert tallies[story.id][1].count == 1
    assert tallies[story.id][2].count == 2
    assert await store.tallies([]) == {}


async def test_responses_of_a_user_by_story_and_sticker(store: StoryStore) -> None:
    first, second, third = [await store.add_story(_new()) for _ in range(3)]
    at = _now()
    vote = _vote(first.id, 7, 2, at)
    answer = ResponseRecord(second.id, 3, 7, "QUESTION", at, text="Tea")
    slide = ResponseRecord(second.id, 4, 7, "SLIDER", at, value=0.5)
    for response in (vote, answer, slide, _vote(first.id, 8, 1, at), _vote(third.id, 8, 0, at)):
        await store.add_response(response)

    mine = await store.responses_of(7, [first.id, second.id, third.id])

    assert mine == {(first.id, 0): vote, (second.id, 3): answer, (second.id, 4): slide}
    assert await store.responses_of(7, []) == {}


async def test_responses_page_newest_first_with_a_cursor(store: StoryStore) -> None:
    story = await store.add_story(_new())
    base = _now()
    moments = {30: base, 31: base, 32: base + timedelta(seconds=2), 33: base - timedelta(seconds=2)}
    for user, at in moments.items():
        text = f"answer {user}"
        await store.add_response(ResponseRecord(story.id, 1, user, "QUESTION", at, text=text))
    await store.add_response(ResponseRecord(story.id, 0, 99, "QUESTION", base, text="other"))

    pages: list[list[int]] = []
    after: Cursor | None = None
    while page := await store.responses(story.id, 1, 2, after):
        pages.append([response.user_id for response in page])
        after = Cursor(page[-1].created_at, page[-1].user_id)

    assert pages == [[32, 31], [30, 33]]
    first = (await store.responses(story.id, 1, 1, None))[0]
    assert first.text == "answer 32" and first.kind == "QUESTION"


async def test_removing_a_response_lets_the_user_respond_again(store: StoryStore) -> None:
    story = await store.add_story(_new())
    at = _now()
    await store.add_response(ResponseRecord(story.id, 0, 7, "COUNTDOWN", at))
    await store.add_response(ResponseRecord(story.id, 0, 8, "COUNTDOWN", at))

    assert await store.remove_response(story.id, 0, 7) is True
    assert await store.remove_response(story.id, 0, 7) is False
    assert (await store.tallies([story.id]))[story.id][0].count == 1
    assert await store.responses_of(7, [story.id]) == {}
    assert await store.add_response(ResponseRecord(story.id, 0, 7, "COUNTDOWN", at)) is True


# ── countdowns ─────────────────────────────────────────────────────────


def _countdown(title: str, ends_at: datetime) -> dict[str, object]:
    # Clients send ISO-8601 with a Z, as JavaScript's toISOString() does.
    return {
        "type": "COUNTDOWN",
        "title": title,
        "endsAt": ends_at.isoformat().replace("+00:00", "Z"),
    }


async def test_a_due_countdown_is_claimed_once_with_its_subscribers(store: StoryStore) -> None:
    base = _now()
    ends = base + timedelta(hours=1)
    story = await store.add_story(
        _new(
            author_id=4,
            created_at=base,
            platform="socialink",
            stickers=({"type": "POLL", "options": ["a", "b"]}, _countdown("Launch", ends)),
        )
    )
    later = await store.add_story(
        _new(
            author_id=5, created_at=base, stickers=(_countdown("Later", ends + timedelta(hours=1)),)
        )
    )
    for user in (7, 8, 9):
        await store.add_response(ResponseRecord(story.id, 1, user, "COUNTDOWN", base))
    await store.remove_response(story.id, 1, 8)  # unsubscribed
    await store.add_response(_vote(story.id, 10, 0, base))  # a poll voter is no subscriber

    assert await store.claim_due_countdowns(ends - timedelta(seconds=1)) == []
    claims = await asyncio.gather(
        store.claim_due_countdowns(ends + timedelta(minutes=1)),
        store.claim_due_countdowns(ends + timedelta(minutes=1)),
    )

    claimed = claims[0] + claims[1]
    assert len(claimed) == 1
    due = claimed[0]
    assert (due.story_id, due.sticker_index, due.author_id) == (story.id, 1, 4)
    assert (due.platform, due.title, due.ends_at) == ("socialink", "Launch", ends)
    assert sorted(due.subscriber_ids) == [7, 9]
    assert await store.claim_due_countdowns(ends + timedelta(minutes=2)) == []
    # The later one comes when its time comes, once.
    [next_due] = await store.claim_due_countdowns(ends + timedelta(hours=2))
    assert (next_due.story_id, next_due.title, next_due.subscriber_ids) == (later.id, "Later", ())
    assert await store.claim_due_countdowns(ends + timedelta(hours=3)) == []


async def test_many_countdowns_are_each_claimed_once_by_two_concurrent_claimers(
    store: StoryStore,
) -> None:
    base = _now()
    stories = [
        await store.add_story(
            _new(created_at=base, stickers=(_countdown(f"c{i}", base + timedelta(minutes=i)),))
        )
        for i in range(12)
    ]

    rounds = [
        await asyncio.gather(
            store.claim_due_countdowns(base + timedelta(hours=1), limit=5),
            store.claim_due_countdowns(base + timedelta(hours=1), limit=5),
        )
        for _ in range(3)
    ]

    claimed = [due.story_id for pair in rounds for batch in pair for due in batch]
    assert sorted(claimed) == sorted(story.id for story in stories)


async def test_countdowns_of_deleted_or_purged_stories_are_never_claimed(
    store: StoryStore,
) -> None:
    base = _now()
    deleted = await store.add_story(
        _new(created_at=base, stickers=(_countdown("Gone", base + timedelta(minutes=5)),))
    )
    await store.add_response(ResponseRecord(deleted.id, 0, 7, "COUNTDOWN", base))
    # Expired six hours ago; its countdown ends an hour ago.
    purged = await store.add_story(
        _new(
            created_at=base - timedelta(hours=30),
            stickers=(_countdown("Old", base - timedelta(hours=1)),),
        )
    )
    await store.delete_story(deleted.id)
    assert [s.id for s in await store.purge_expired(base)] == [purged.id]

    assert await store.claim_due_countdowns(base + timedelta(hours=1)) == []


# ── replies ────────────────────────────────────────────────────────────


async def test_replies_add_read_page_and_count(store: StoryStore) -> None:
    story = await store.add_story(_new())
    quiet = await store.add_story(_new())
    base = _now()
    first = await store.add_reply(NewReply(story.id, 7, "nice", base))
    second = await store.add_reply(NewReply(story.id, 8, "wow", base + timedelta(seconds=1)))
    third = await store.add_reply(NewReply(story.id, 9, "same time", base + timedelta(seconds=1)))
    assert first is not None and second is not None and third is not None

    assert await store.reply(first.id) == first
    assert (first.story_id, first.author_id, first.body, first.created_at) == (
        story.id,
        7,
        "nice",
        base,
    )
    newest = sorted([second, third], key=lambda reply: reply.id, reverse=True)
    page = await store.replies(story.id, 2, None)
    assert page == newest
    rest = await store.replies(story.id, 2, Cursor(page[-1].created_at, page[-1].id))
    assert rest == [first]
    assert await store.reply_counts([story.id, quiet.id]) == {story.id: 3}
    assert await store.add_reply(NewReply(story.id + 1000, 7, "hello?", base)) is None
    assert await store.reply(first.id + 1000) is None


# ── highlights ─────────────────────────────────────────────────────────


def _highlight(
    owner_id: int, story_ids: tuple[int, ...], at: datetime, cover: int | None = None
) -> NewHighlight:
    return NewHighlight(owner_id, "vignette", "Trips", story_ids, at, cover_media_id=cover)


async def test_highlights_create_read_and_list_newest_first(store: StoryStore) -> None:
    base = _now()
    a, b = [await store.add_story(_new()) for _ in range(2)]
    older = await store.create_highlight(_highlight(1, (b.id, a.id), base, cover=42))
    newer = await store.create_highlight(_highlight(1, (a.id,), base + timedelta(seconds=1)))
    theirs = await store.create_highlight(_highlight(2, (), base))

    assert older.story_ids == (b.id, a.id)
    assert (older.owner_id, older.platform, older.title) == (1, "vignette", "Trips")
    assert (older.cover_media_id, older.created_at) == (42, base)
    assert await store.highlight(older.id) == older
    assert await store.highlight(older.id + 1000) is None
    assert await store.highlights_of([1, 2, 3]) == {1: [newer, older], 2: [theirs]}
    assert await store.highlights_of([]) == {}


async def test_adding_to_a_highlight_appends_new_stories_in_order(store: StoryStore) -> None:
    a, b, c, d = [await store.add_story(_new()) for _ in range(4)]
    highlight = await store.create_highlight(_highlight(1, (a.id, b.id), _now()))

    updated = await store.add_to_highlight(highlight.id, [c.id, b.id, d.id, a.id, c.id])

    assert updated is not None and updated.story_ids == (a.id, b.id, c.id, d.id)
    assert await store.highlight(highlight.id) == updated
    assert await store.add_to_highlight(highlight.id + 1000, [a.id]) is None


async def test_removing_from_and_deleting_highlights(store: StoryStore) -> None:
    a, b, c = [await store.add_story(_new()) for _ in range(3)]
    highlight = await store.create_highlight(_highlight(1, (a.id, b.id, c.id), _now()))

    updated = await store.remove_from_highlight(highlight.id, [b.id])

    assert updated is not None and updated.story_ids == (a.id, c.id)
    assert await store.remove_from_highlight(highlight.id + 1000, [a.id]) is None
    assert await store.delete_highlight(highlight.id) is True
    assert await store.delete_highlight(highlight.id) is False
    assert await store.highlight(highlight.id) is None
    assert await store.highlights_of([1]) == {}
    # The stories stay.
    assert set(await store.stories([a.id, b.id, c.id], None)) == {a.id, b.id, c.id}


async def test_a_deleted_story_leaves_its_highlights_and_takes_its_interactions(
    store: StoryStore,
) -> None:
    story = await store.add_story(_new())
    kept = await store.add_story(_new())
    highlight = await store.create_highlight(_highlight(1, (story.id, kept.id), _now()))
    at = _now()
    await store.add_response(_vote(story.id, 7, 0, at))
    reply = await store.add_reply(NewReply(story.id, 7, "hi", at))
    await store.bump(story.id, IMPRESSIONS)
    assert reply is not None

    assert await store.delete_story(story.id) is True

    found = await store.highlight(highlight.id)
    assert found is not None and found.story_ids == (kept.id,)
    assert await store.tallies([story.id]) == {}
    assert await store.responses_of(7, [story.id]) == {}
    assert await store.reply(reply.id) is None
    assert await store.reply_counts([story.id]) == {}
    assert await store.counters([story.id]) == {}


# ── expiry ─────────────────────────────────────────────────────────────


async def test_purge_removes_expired_stories_with_everything_attached(store: StoryStore) -> None:
    now = _now()
    expired = await store.add_story(_new(created_at=now - timedelta(hours=25)))
    active = await store.add_story(_new(created_at=now - timedelta(hours=1)))
    at = now - timedelta(hours=24, minutes=30)
    await store.add_viewer(expired.id, 7, at, None)
    await store.add_response(_vote(expired.id, 7, 1, at))
    reply = await store.add_reply(NewReply(expired.id, 7, "late", at))
    await store.bump(expired.id, IMPRESSIONS)
    await store.add_viewer(active.id, 7, now, None)
    assert reply is not None

    purged = await store.purge_expired(now)

    assert purged == [expired]
    assert await store.story(expired.id, None) is None
    assert await store.viewer_count(expired.id) == 0
    assert await store.tallies([expired.id]) == {}
    assert await store.reply(reply.id) is None
    assert await store.counters([expired.id]) == {}
    assert await store.story(active.id, now) == active
    assert await store.viewer_count(active.id) == 1
    assert await store.purge_expired(now) == []


async def test_purge_keeps_highlighted_stories_until_no_highlight_holds_them(
    store: StoryStore,
) -> None:
    now = _now()
    old = now - timedelta(hours=30)
    in_one, in_two, in_deleted = [await store.add_story(_new(created_at=old)) for _ in range(3)]
    first = await store.create_highlight(_highlight(1, (in_one.id, in_two.id), old))
    second = await store.create_highlight(_highlight(1, (in_two.id,), old))
    doomed = await store.create_highlight(_highlight(1, (in_deleted.id,), old))

    assert await store.purge_expired(now) == []
    assert await store.story(in_one.id, None) == in_one  # a highlight still shows it
    assert await store.story(in_one.id, now) is None  # but it is no active story

    await store.remove_from_highlight(first.id, [in_one.id, in_two.id])
    await store.delete_highlight(doomed.id)
    purged = await store.purge_expired(now)

    # in_two is still in the second highlight.
    assert sorted(s.id for s in purged) == sorted([in_one.id, in_deleted.id])
    assert await store.story(in_two.id, None) == in_two
    await store.delete_highlight(second.id)
    assert [s.id for s in await store.purge_expired(now)] == [in_two.id]


async def test_purge_takes_at_most_limit_stories_per_call(store: StoryStore) -> None:
    now = _now()
    expired = [
        await store.add_story(_new(created_at=now - timedelta(hours=25 + i))) for i in range(3)
    ]

    first = await store.purge_expired(now, limit=2)
    second = await store.purge_expired(now, limit=2)

    assert len(first) == 2 and len(second) == 1
    assert sorted(s.id for s in first + second) == sorted(s.id for s in expired)


async def test_media_in_use_by_stories_and_highlight_covers(store: StoryStore) -> None:
    now = _now()
    kept = await store.add_story(_new(media_id=10))
    gone = await store.add_story(_new(media_id=11))
    await store.create_highlight(_highlight(1, (kept.id,), now, cover=20))

    assert await store.media_in_use([10, 11, 20, 99]) == {10, 11, 20}
    await store.delete_story(gone.id)
    assert await store.media_in_use([10, 11, 20, 99]) == {10, 20}
    assert await store.media_in_use([]) == set()
