"""What search needs from its index, whatever the engine.

Two implementations keep this contract (tests/test_search_index.py runs on both):
`tantivy_index.TantivySearchIndex` (embedded, an index directory on local disk, the
default) and `elastic.ElasticSearchIndex` (Elasticsearch, or an OpenSearch-API
server, through the official `elasticsearch` client).

Ranking, the same formula on both engines:

    score = relevance × popularity × recency × follow
    relevance  = Σ over the distinct query words w of
                   Σ over text fields f of boost_f × BM25_f(w)       (exact word)
                 + TYPO_SCORE if w matches a word of the document within its
                   typo allowance (exact included)
                 (1.0 for a query without words: a filtered browse)
    popularity = 1 + 0.25 × ln(1 + likes | followers | uses)
    recency    = 1 + 0.5 × 0.5^(|now − created_at| / 14 days)   (posts and takes;
                 1 for documents without a time)
    follow     = 1.5 when the viewer follows the account (a user hit) or the
                 author (a post or take), else 1

BM25 is each engine's (k1 = 1.2, b = 0.75 on both; Tantivy's scores are divided by
its extra (k1 + 1) factor). Its idf still differs a little: Elasticsearch counts the
documents that have the field, Tantivy every document. Field
boosts: username 3, display name 2, bio 1, caption 1, hashtags 2, place 1.5,
hashtag name 3 (ranking.FIELD_BOOSTS). Words match as analysed by
`ranking.words` (lower-case runs of letters and digits).

Typo tolerance: a query word of 4+ characters matches words one edit away, 8+ two
edits (insertion, deletion, substitution, transposition); below 4 only exact words.
A typo-only match contributes TYPO_SCORE, not BM25, because Tantivy's fuzzy query
scores a constant; Elasticsearch is asked for the same (constant_score(fuzzy)).

Engine differences that remain: Elasticsearch scores in float32 and applies the
formula to every match (function_score); Tantivy takes the best CANDIDATES (1000)
matches by relevance (the newest ones for a query without words) and applies the
boosts in Python, so a document outside them cannot be lifted into the results by
its boosts alone. Geo radius uses the great-circle distance on both.

Pages: results are ordered by (score desc, a unique tie-breaker) and cut in Python
from the best CANDIDATES of that order on both engines (elastic.py says why not
search_after), so pagination reaches the first 1000 results. The cursor holds the
last score, its tie-breaker and the `now` of the first page, so the recency decay
does not move between pages and no hit repeats or is skipped while the index does
not change. `total` counts every match.

Writes become searchable after `refresh()` (the consumer calls it after a batch).
Reindexing without downtime: `begin_rebuild()` makes an empty index aside; the
caller fills it through the returned writer while searches keep reading the live
index (and live upserts/deletes go to both); `commit_rebuild()` swaps it in
atomically (Elasticsearch: one alias update; Tantivy: a pointer file replaced with
os.replace) and drops the old one; `abort_rebuild()` drops the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from datasources.search.records import SearchDoc, SearchPage, SearchQuery, SearchType, Suggestion


class RebuildWriter(Protocol):
    async def upsert(self, docs: Sequence[SearchDoc]) -> None:
        """Add documents to the index being built (not searchable before the swap)."""
        ...


class SearchIndex(Protocol):
    async def upsert(self, docs: Sequence[SearchDoc]) -> None:
        """Insert or replace documents (by platform, type and id) in one batch."""
        ...

    async def delete(self, platform: str, type_: SearchType, ids: Sequence[str | int]) -> None:
        """Remove documents; ids that are not indexed are ignored. Hashtag ids are names."""
        ...

    async def refresh(self) -> None:
        """Make every write so far visible to searches."""
        ...

    async def search(self, query: SearchQuery) -> SearchPage:
        """One page of ranked hits (see the module docstring); raises
        ranking.BadCursor for a cursor it did not issue."""
        ...

    async def autocomplete(
        self,
        platform: str,
        prefix: str,
        types: frozenset[SearchType] | None = None,
        boost_ids: frozenset[int] = frozenset(),
        limit: int = 8,
        excluded_user_ids: frozenset[int] = frozenset(),
    ) -> list[Suggestion]:
        """Users (username, display name), hashtags and locations whose name has a
        word starting with the prefix's last word (earlier words must match whole
        words). Order: accounts in boost_ids (those the viewer follows) first, then
        by popularity (followers, uses), then shorter text, then id."""
        ...

    async def begin_rebuild(self) -> RebuildWriter:
        """Start building a new index aside (one rebuild at a time)."""
        ...

    async def commit_rebuild(self, writer: RebuildWriter) -> None:
        """Make the rebuilt index the live one, atomically, and drop the old one."""
        ...

    async def abort_rebuild(self, writer: RebuildWriter) -> None:
        """Drop the index being built; the live one is untouched."""
        ...

    async def ping(self) -> None:
        """Raise when the index cannot be used (server down, directory gone): readiness."""
        ...

    async def close(self) -> None: ...
