"""The SearchIndex contract: the same tests on the embedded Tantivy index and on
Elasticsearch (an OpenSearch-API server at 127.0.0.1:9200; CI starts osmem-server).

Every test gets a fresh index (a temporary directory, or a uniquely named alias) and
passes the clock (`now`) explicitly, so recency decay does not depend on the day.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tantivy

from datasources.search.elastic import ElasticSearchIndex
from datasources.search.ranking import BadCursor
from datasources.search.records import (
    GeoFilter,
    HashtagDoc,
    LocationDoc,
    PostDoc,
    SearchDoc,
    SearchPage,
    SearchQuery,
    SearchType,
    TakeDoc,
    UserDoc,
)
from datasources.search.store import SearchIndex
from datasources.search.tantivy_index import TantivySearchIndex
from tests.services import require

ES_HOST, ES_PORT = "127.0.0.1", 9200
P = "vignette"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture(params=["tantivy", "elasticsearch"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchIndex]:
    if request.param == "tantivy":
        embedded = TantivySearchIndex(tmp_path / "search")
        yield embedded
        await embedded.close()
        return
    require("Elasticsearch", ES_HOST, ES_PORT)
    elastic = ElasticSearchIndex(
        f"http://{ES_HOST}:{ES_PORT}",
        f"entativa-test-{uuid.uuid4().hex[:12]}",
        opensearch_compatible=True,
    )
    yield elastic
    await elastic.drop()
    await elastic.close()


async def put(index: SearchIndex, *docs: SearchDoc) -> None:
    await index.upsert(list(docs))
    await index.refresh()


def post(
    id: int,
    caption: str,
    *,
    author: int = 1,
    days_ago: float = 1,
    likes: int = 0,
    where: tuple[str, float, float] | None = None,
    visibility: str = "PUBLIC",
    hashtags: tuple[str, ...] = (),
) -> PostDoc:
    return PostDoc(
        id=id,
        platform=P,
        author_id=author,
        caption=caption,
        created_at=NOW - timedelta(days=days_ago),
        hashtags=hashtags,
        location_name=where[0] if where else None,
        latitude=where[1] if where else None,
        longitude=where[2] if where else None,
        like_count=likes,
        visibility=visibility,
    )


async def find(index: SearchIndex, text: str = "", **filters: object) -> SearchPage:
    return await index.search(SearchQuery(platform=P, text=text, now=NOW, **filters))  # type: ignore[arg-type]


def ids(page: SearchPage) -> list[tuple[str, str]]:
    return [(hit.type.value, hit.id) for hit in page.hits]


async def test_bm25_orders_by_relevance(index: SearchIndex) -> None:
    await put(
        index,
        post(1, "a long caption about the old city with one beach mention far down the text"),
        post(2, "beach beach volleyball"),
        post(3, "mountains and lakes"),
        post(4, "sunset on the beach"),
    )
    page = await find(index, "beach")
    assert ids(page) == [("POST", "2"), ("POST", "4"), ("POST", "1")]
    assert page.total == 3
    assert page.hits[0].score > page.hits[1].score > page.hits[2].score > 0
    # A document with both words ranks above documents with one.
    assert ids(await find(index, "sunset beach"))[0] == ("POST", "4")


async def test_typo_tolerance_by_word_length(index: SearchIndex) -> None:
    await put(index, post(1, "beach"), post(2, "photography"), post(3, "cat"), post(4, "lisbon"))
    assert ids(await find(index, "beech")) == [("POST", "1")]  # 5 letters: one edit
    assert ids(await find(index, "bech")) == [("POST", "1")]  # 4 letters: one edit
    assert ids(await find(index, "baech")) == [("POST", "1")]  # a transposition is one edit
    assert ids(await find(index, "bxxch")) == []  # two edits at 5 letters: no
    assert ids(await find(index, "lisbxx")) == []  # two edits at 6 letters: no
    assert ids(await find(index, "photografy")) == [("POST", "2")]  # 8+ letters: two edits
    assert ids(await find(index, "phxtxgrxphy")) == []  # three edits: no
    assert ids(await find(index, "cst")) == []  # below 4 letters: exact only
    assert ids(await find(index, "cat")) == [("POST", "3")]
    # The exact word outranks its typo.
    await put(index, post(5, "beech"))
    assert ids(await find(index, "beech"))[0] == ("POST", "5")


async def test_highlight_marks_matches_with_em(index: SearchIndex) -> None:
    await put(
        index,
        post(1, "Sunset over the Beach & <b>bar</b>"),
        UserDoc(2, P, "surf_king", "Surf King", "beach life"),
    )
    page = await find(index, "beach", types=frozenset({SearchType.POST}))
    assert page.hits[0].highlight == "Sunset over the <em>Beach</em> &amp; &lt;b&gt;bar&lt;/b&gt;"
    typo = await find(index, "beech", types=frozenset({SearchType.POST}))
    assert typo.hits[0].highlight == "Sunset over the <em>Beach</em> &amp; &lt;b&gt;bar&lt;/b&gt;"
    user = await find(index, "surf", types=frozenset({SearchType.USER}))
    assert user.hits[0].highlight == "<em>surf</em>_king"
    assert (await find(index, "")).hits[0].highlight is None


async def test_types_filter(index: SearchIndex) -> None:
    await put(
        index,
        UserDoc(1, P, "sandy", "Beach Lover"),
        post(2, "beach day", author=1),
        TakeDoc(3, P, 1, "beach take", NOW),
        HashtagDoc("beach", P, 4),
        LocationDoc(5, P, "Beach Bar", 38.7, -9.1),
        HashtagDoc("beach", "socialink", 9),  # another platform: never seen here
    )
    everything = await find(index, "beach")
    assert sorted(ids(everything)) == [
        ("HASHTAG", "beach"),
        ("LOCATION", "5"),
        ("POST", "2"),
        ("TAKE", "3"),
        ("USER", "1"),
    ]
    assert ids(await find(index, "beach", types=frozenset({SearchType.USER}))) == [("USER", "1")]
    places = await find(index, "beach", types=frozenset({SearchType.HASHTAG, SearchType.LOCATION}))
    assert sorted(ids(places)) == [("HASHTAG", "beach"), ("LOCATION", "5")]


async def test_since_until(index: SearchIndex) -> None:
    await put(
        index,
        post(1, "beach", days_ago=10),
        post(2, "beach", days_ago=5),
        post(3, "beach", days_ago=1),
        UserDoc(4, P, "beach"),
    )
    window = await find(
        index, "beach", since=NOW - timedelta(days=6), until=NOW - timedelta(days=2)
    )
    assert ids(window) == [("POST", "2")]
    assert sorted(ids(await find(index, "beach", since=NOW - timedelta(days=6)))) == [
        ("POST", "2"),
        ("POST", "3"),
    ]
    assert ids(await find(index, "beach", until=NOW - timedelta(days=9))) == [("POST", "1")]


async def test_near_radius_in_km(index: SearchIndex) -> None:
    lat, lon = 38.7223, -9.1393  # Lisbon
    km = 1 / 111.195  # degrees of latitude per km
    await put(
        index,
        LocationDoc(1, P, "Lisbon", lat, lon),
        post(2, "view", where=("Graça", lat + 9 * km, lon)),  # 9 km north
        post(3, "view", where=("Loures", lat + 11 * km, lon)),  # 11 km north
        post(4, "view"),  # no coordinates
        UserDoc(5, P, "view"),
    )
    near = GeoFilter(lat, lon, 10.0)
    assert sorted(ids(await find(index, near=near))) == [("LOCATION", "1"), ("POST", "2")]
    assert ids(await find(index, "view", near=near)) == [("POST", "2")]
    wider = await find(index, "view", near=GeoFilter(lat, lon, 12.0))
    assert sorted(ids(wider)) == [("POST", "2"), ("POST", "3")]
    assert wider.total == 2


async def test_min_likes_and_author(index: SearchIndex) -> None:
    await put(
        index,
        post(1, "beach", author=1, likes=3),
        post(2, "beach", author=2, likes=10),
        post(3, "beach", author=2, likes=50),
        UserDoc(2, P, "beach"),
    )
    assert sorted(ids(await find(index, "beach", min_likes=10))) == [("POST", "2"), ("POST", "3")]
    assert sorted(ids(await find(index, "beach", author_id=2))) == [("POST", "2"), ("POST", "3")]
    assert ids(await find(index, "beach", author_id=2, min_likes=20)) == [("POST", "3")]


async def test_excluded_and_invisible_content_never_returned(index: SearchIndex) -> None:
    await put(
        index,
        post(1, "beach beach beach", author=7, likes=1000),  # the best match, by a blocked author
        UserDoc(7, P, "beach_blocked"),
        post(2, "beach", author=2),
        post(3, "beach", author=3, visibility="FOLLOWERS"),
        post(4, "beach", author=4, visibility="PRIVATE"),
        post(5, "beach", author=5, visibility="FRIENDS"),
    )
    blocked = frozenset({7})
    seen: list[tuple[str, str]] = []
    after = None
    while True:  # every page, not just the first
        page = await index.search(
            SearchQuery(
                P,
                "beach",
                excluded_author_ids=blocked,
                excluded_user_ids=blocked,
                first=1,
                after=after,
                now=NOW,
            )
        )
        seen += ids(page)
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert seen == [("POST", "2")]
    granted = await find(
        index,
        "beach",
        excluded_author_ids=blocked,
        excluded_user_ids=blocked,
        grants={"FOLLOWERS": frozenset({3, 4}), "FRIENDS": frozenset({6})},
    )
    assert sorted(ids(granted)) == [("POST", "2"), ("POST", "3")]
    # Without exclusions the blocked author's post and account are found.
    assert ("POST", "1") in ids(await find(index, "beach"))
    assert ("USER", "7") in ids(await find(index, "beach"))


async def test_followed_author_boost_changes_order(index: SearchIndex) -> None:
    await put(
        index,
        post(1, "sunset beach", author=1, likes=3),
        post(2, "sunset beach", author=2, likes=0),
        UserDoc(11, P, "sam", "Sam Beach", follower_count=3),
        UserDoc(12, P, "sue", "Sue Beach", follower_count=0),
    )
    assert ids(await find(index, "beach", types=frozenset({SearchType.POST}))) == [
        ("POST", "1"),
        ("POST", "2"),
    ]
    followed = await find(
        index, "beach", types=frozenset({SearchType.POST}), boost_author_ids=frozenset({2})
    )
    assert ids(followed) == [("POST", "2"), ("POST", "1")]
    users = frozenset({SearchType.USER})
    assert ids(await find(index, "beach", types=users)) == [("USER", "11"), ("USER", "12")]
    boosted = await find(index, "beach", types=users, boost_author_ids=frozenset({12}))
    assert ids(boosted) == [("USER", "12"), ("USER", "11")]


async def test_recency_and_popularity_boosts(index: SearchIndex) -> None:
    await put(index, post(1, "beach", days_ago=60), post(2, "beach", days_ago=0.5))
    assert ids(await find(index, "beach")) == [("POST", "2"), ("POST", "1")]
    await put(index, post(1, "beach", days_ago=60, likes=500))
    assert ids(await find(index, "beach")) == [("POST", "1"), ("POST", "2")]


async def test_cursor_pagination_without_duplicates(index: SearchIndex) -> None:
    docs: list[SearchDoc] = [post(i, "beach", likes=i % 3, author=i) for i in range(1, 24)]
    docs += [post(100, "beach beach"), UserDoc(200, P, "beach")]
    await put(index, *docs)
    seen: list[tuple[str, str]] = []
    scores: list[float] = []
    after = None
    pages = 0
    while True:
        page = await index.search(SearchQuery(P, "beach", first=7, after=after))
        assert page.total == 25
        seen += ids(page)
        scores += [hit.score for hit in page.hits]
        pages += 1
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert pages == 4
    assert len(seen) == len(set(seen)) == 25
    assert scores == sorted(scores, reverse=True)
    everything = await index.search(SearchQuery(P, "beach", first=100))
    assert ids(everything) == seen


async def test_bad_cursor_is_refused(index: SearchIndex) -> None:
    with pytest.raises(BadCursor):
        await index.search(SearchQuery(P, "beach", after="not-a-cursor"))


async def test_delete_and_edit_visible_after_refresh(index: SearchIndex) -> None:
    await put(index, post(1, "beach"), post(2, "beach"), HashtagDoc("beach", P, 3))
    assert len((await find(index, "beach")).hits) == 3
    await index.delete(P, SearchType.POST, [1, 999])
    await index.delete(P, SearchType.HASHTAG, ["beach"])
    await index.refresh()
    page = await find(index, "beach")
    assert ids(page) == [("POST", "2")] and page.total == 1
    await put(index, post(2, "mountain"))  # an edit replaces the document
    assert ids(await find(index, "beach")) == []
    assert ids(await find(index, "mountain")) == [("POST", "2")]


async def test_autocomplete_by_prefix_followed_first(index: SearchIndex) -> None:
    await put(
        index,
        UserDoc(1, P, "alice", "Alice Smith", follower_count=5),
        UserDoc(2, P, "alina", follower_count=100),
        UserDoc(3, P, "albert", follower_count=50),
        UserDoc(4, P, "bob", "Al Bundy", follower_count=1),
        UserDoc(5, "socialink", "alfred", follower_count=1000),  # another platform
        HashtagDoc("alps", P, 10),
        LocationDoc(6, P, "Alexandria", 31.2, 29.9),
        post(7, "all about alps"),  # posts are not suggested
    )
    suggestions = await index.autocomplete(P, "Al", boost_ids=frozenset({3}), limit=5)
    assert [(s.type.value, s.id, s.text) for s in suggestions] == [
        ("USER", "3", "albert"),
        ("USER", "2", "alina"),
        ("HASHTAG", "alps", "alps"),
        ("USER", "1", "alice"),
        ("USER", "4", "Al Bundy"),
    ]
    users = await index.autocomplete(P, "al", types=frozenset({SearchType.USER}), limit=2)
    assert [s.id for s in users] == ["2", "3"]
    assert [s.text for s in await index.autocomplete(P, "alice sm")] == ["Alice Smith"]
    assert [s.text for s in await index.autocomplete(P, "alex")] == ["Alexandria"]
    hidden = await index.autocomplete(
        P, "ali", types=frozenset({SearchType.USER}), excluded_user_ids=frozenset({2})
    )
    assert [s.id for s in hidden] == ["1"]
    assert await index.autocomplete(P, "  ") == []


async def test_rebuild_serves_old_index_until_swap(index: SearchIndex) -> None:
    await put(index, post(1, "old beach"))
    writer = await index.begin_rebuild()
    await writer.upsert([post(2, "rebuilt beach")])
    assert ids(await find(index, "beach")) == [("POST", "1")]
    await put(index, post(3, "live beach"))  # written during the rebuild: kept by the swap
    assert sorted(ids(await find(index, "beach"))) == [("POST", "1"), ("POST", "3")]
    with pytest.raises(RuntimeError):
        await index.begin_rebuild()
    await index.commit_rebuild(writer)
    assert sorted(ids(await find(index, "beach"))) == [("POST", "2"), ("POST", "3")]
    await index.upsert([post(4, "after beach")])
    await index.refresh()
    assert sorted(ids(await find(index, "beach"))) == [("POST", "2"), ("POST", "3"), ("POST", "4")]
    # An aborted rebuild leaves the live index as it was.
    aborted = await index.begin_rebuild()
    await aborted.upsert([post(5, "never beach")])
    await index.abort_rebuild(aborted)
    assert ("POST", "5") not in ids(await find(index, "beach"))


async def test_tantivy_swap_survives_reopen(tmp_path: Path) -> None:
    first = TantivySearchIndex(tmp_path)
    await put(first, post(1, "old beach"))
    writer = await first.begin_rebuild()
    await writer.upsert([post(2, "new beach")])
    await first.commit_rebuild(writer)
    await first.close()
    reopened = TantivySearchIndex(tmp_path)
    assert ids(await find(reopened, "beach")) == [("POST", "2")]
    generations = [path for path in tmp_path.glob("gen-*")]  # noqa: ASYNC240 (a test)
    assert len(generations) == 1
    await reopened.close()


async def test_opensearch_compatible_client_speaks_plain_json() -> None:
    """An OpenSearch-like server refuses the client's compatibility media type (406) and
    sends no X-Elastic-Product header; `opensearch_compatible=True` copes with both."""
    seen: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = next(
            (
                int(line.split(":")[1])
                for line in head.split("\r\n")
                if line.startswith("content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        seen.append(head)
        refused = "vnd.elasticsearch" in head
        body = b'{"error":"media type"}' if refused else b'{"version":{"number":"2.19.0"}}'
        status = b"406 Not Acceptable" if refused else b"200 OK"
        writer.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        plain = ElasticSearchIndex(f"http://127.0.0.1:{port}", "x", opensearch_compatible=True)
        info = await plain._es.info()
        assert info["version"]["number"] == "2.19.0"
        assert "application/json" in seen[-1] and "vnd.elasticsearch" not in seen[-1]
        await plain.close()
        strict = ElasticSearchIndex(f"http://127.0.0.1:{port}", "x", max_retries=0)
        with pytest.raises(Exception, match="406|media type"):
            await strict._es.info()
        await strict.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_tantivy_follows_a_swap_made_by_another_process(tmp_path: Path) -> None:
    server = TantivySearchIndex(tmp_path)
    await put(server, post(1, "old beach"))
    reindexer = TantivySearchIndex(tmp_path)  # e.g. `entativa search reindex`
    writer = await reindexer.begin_rebuild()
    await writer.upsert([post(1, "old beach"), post(2, "new beach")])
    await reindexer.commit_rebuild(writer)
    await reindexer.close()
    assert ids(await find(server, "beach")) == [("POST", "1")]  # until its next refresh
    await server.refresh()
    assert sorted(ids(await find(server, "beach"))) == [("POST", "1"), ("POST", "2")]
    await put(server, post(3, "later beach"))  # and it writes to the new generation
    assert len((await find(server, "beach")).hits) == 3
    await server.close()


async def test_tantivy_index_of_another_schema_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "gen-1").mkdir()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("something_else")
    tantivy.Index(builder.build(), path=str(tmp_path / "gen-1"))
    (tmp_path / "CURRENT").write_text("gen-1\n")
    index = TantivySearchIndex(tmp_path)
    assert ids(await find(index, "beach")) == []
    await put(index, post(1, "beach"))
    assert ids(await find(index, "beach")) == [("POST", "1")]
    assert not (tmp_path / "gen-1").exists()
    await index.close()


async def test_long_queries_and_odd_input(index: SearchIndex) -> None:
    await put(index, post(1, "beach"), HashtagDoc("beach", P, 1))
    long_query = " ".join(f"word{i}" for i in range(200)) + " beach"
    assert ids(await find(index, long_query)) == []  # only the first 16 words count
    assert sorted(ids(await find(index, "#Beach!!"))) == [("HASHTAG", "beach"), ("POST", "1")]
    assert ids(await find(index, "beach", first=0)) == []
    assert (await find(index, "beach", first=0)).has_next_page
