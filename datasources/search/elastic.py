"""The search index on Elasticsearch (or an OpenSearch-API server) through the
official `elasticsearch` client's AsyncElasticsearch.

One physical index per generation, `<name>-<ns>`, behind the alias `<name>` that
every read and write uses; a rebuild creates the next generation, fills it, and one
`_aliases` call moves the alias (atomic for readers), then the old one is deleted.

Scoring is done by the engine with nested function_score queries that compute the
formula of store.py (relevance × (1 + 0.25·ln1p(popularity)) × (1 + 0.5·exp-decay)
× follow). Texts are analysed in Python (ranking.words) and indexed with a
whitespace+lowercase analyzer so both engines see the same words; highlights come
from ranking.highlight (the same marks as Tantivy, HTML-escaped) rather than the
engine's highlighter, which would mark the analysed copy, not the original text.

Pages are cut in Python from the best CANDIDATES (score, key) pairs, as on Tantivy,
not with search_after: osmem-server prints scores rounded to float32 but compares
search_after values with its unrounded scores, so a cursor made from a printed score
skips or repeats the hits that share it. The pairs are read without sources, and the
page's documents are then fetched with one mget.

OpenSearch-compatible servers: the 8.x/9.x client sends
`application/vnd.elasticsearch+json; compatible-with=N`, which OpenSearch (and
osmem-server, the test server) refuse with 406. `opensearch_compatible=True` makes
the client send plain `application/json` (PlainJsonNode below; Elasticsearch itself
accepts both) and accept answers without the `X-Elastic-Product: Elasticsearch`
header, which the client otherwise requires and OpenSearch does not send.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from elastic_transport import AiohttpHttpNode, HttpHeaders
from elastic_transport._node import NodeApiResponse
from elastic_transport.client_utils import DEFAULT
from elasticsearch import AsyncElasticsearch, NotFoundError

from datasources.search.ranking import (
    CANDIDATES,
    FIELD_BOOSTS,
    FOLLOWED_BOOST,
    MAX_PAGE,
    POPULARITY_WEIGHT,
    RECENCY_HALF_LIFE,
    RECENCY_WEIGHT,
    TEXT_FIELDS,
    TYPO_SCORE,
    BadCursor,
    Flat,
    decode_cursor,
    encode_cursor,
    flatten,
    from_source,
    fuzziness,
    highlight_doc,
    micros,
    prefix_words,
    query_words,
    suggestion_order,
    suggestion_text,
)
from datasources.search.records import (
    ALL_TYPES,
    PUBLIC,
    SUGGEST_TYPES,
    SearchDoc,
    SearchHit,
    SearchPage,
    SearchQuery,
    SearchType,
    Suggestion,
    doc_key,
)

_COMPAT = "vnd.elasticsearch+"
_PRODUCT = "x-elastic-product"


class PlainJsonNode(AiohttpHttpNode):
    """For OpenSearch-API servers: sends `application/json` where the client asks for
    its compatibility media type, and vouches for the product on 2xx answers that lack
    `X-Elastic-Product` (OpenSearch does not send it; the client refuses such servers)."""

    async def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: Any = DEFAULT,
    ) -> NodeApiResponse:
        if headers is not None:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value and _COMPAT in value:
                    headers[name] = value.split(";", 1)[0].replace(_COMPAT, "")
        response = await super().perform_request(
            method, target, body=body, headers=headers, request_timeout=request_timeout
        )
        if _PRODUCT not in response.meta.headers:
            vouched = HttpHeaders(response.meta.headers)
            vouched[_PRODUCT] = "Elasticsearch"
            response = NodeApiResponse(replace(response.meta, headers=vouched), response.body)
        return response


SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,
    "analysis": {
        "analyzer": {
            "words": {"type": "custom", "tokenizer": "whitespace", "filter": ["lowercase"]}
        }
    },
}
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "key": {"type": "keyword"},
        "type": {"type": "keyword"},
        "platform": {"type": "keyword"},
        "visibility": {"type": "keyword"},
        **{name: {"type": "text", "analyzer": "words"} for name in TEXT_FIELDS},
        "suggest": {"type": "text", "analyzer": "words", "index_options": "docs", "norms": False},
        "owner_id": {"type": "long"},
        "user_id": {"type": "long"},
        "author_id": {"type": "long"},
        "like_count": {"type": "long"},
        "popularity": {"type": "long"},
        "created_at": {"type": "date", "format": "strict_date_optional_time||epoch_millis"},
        "geo": {"type": "geo_point"},
        "source": {"type": "object", "enabled": False},
    },
}


def _body(flat: Flat) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": flat.key,
        "type": flat.type.value,
        "platform": flat.platform,
        "visibility": flat.visibility,
        **flat.texts,
        "popularity": flat.popularity,
        "source": flat.source,
    }
    if flat.suggest:
        body["suggest"] = flat.suggest
    for name in ("owner_id", "user_id", "author_id", "like_count"):
        value = getattr(flat, name)
        if value is not None:
            body[name] = value
    if flat.created_at is not None:
        body["created_at"] = flat.created_at.isoformat()
    if flat.latitude is not None and flat.longitude is not None:
        body["geo"] = {"lat": flat.latitude, "lon": flat.longitude}
    return body


def _iso(moment_us: int) -> str:
    return datetime.fromtimestamp(moment_us / 1e6, UTC).isoformat()


class ElasticRebuild:
    def __init__(self, owner: ElasticSearchIndex, index: str) -> None:
        self._owner = owner
        self.index = index

    async def upsert(self, docs: Sequence[SearchDoc]) -> None:
        await self._owner._bulk_index([self.index], [flatten(doc) for doc in docs])


class ElasticSearchIndex:
    def __init__(
        self,
        hosts: str | list[str] = "http://127.0.0.1:9200",
        name: str = "entativa-search",
        *,
        opensearch_compatible: bool = False,
        client: AsyncElasticsearch | None = None,
        **client_options: Any,
    ) -> None:
        if client is None:
            if opensearch_compatible:
                client_options.setdefault("node_class", PlainJsonNode)
            client = AsyncElasticsearch(hosts, **client_options)
        self._es = client
        self.alias = name
        self._ready = False
        self._aside: str | None = None  # the physical index a rebuild fills

    # ── plumbing ───────────────────────────────────────────────────────
    def _new_index_name(self) -> str:
        return f"{self.alias}-{time.time_ns()}"

    async def _create(self, index: str) -> None:
        await self._es.indices.create(index=index, settings=SETTINGS, mappings=MAPPINGS)

    async def _physical(self) -> list[str]:
        try:
            found = await self._es.indices.get_alias(name=self.alias)
        except NotFoundError:
            return []
        return sorted(found.body)

    async def ensure_index(self) -> None:
        """Create the first generation and its alias when there is none. Reads and
        writes go through the alias, so another process's swap is seen at once."""
        if self._ready:
            return
        if not await self._physical():
            index = self._new_index_name()
            await self._create(index)
            await self._es.indices.update_aliases(
                actions=[{"add": {"index": index, "alias": self.alias}}]
            )
        self._ready = True

    async def _bulk_index(self, indices: list[str], flats: Sequence[Flat]) -> None:
        if not flats:
            return
        operations: list[dict[str, Any]] = []
        for index in indices:
            for flat in flats:
                operations.append({"index": {"_index": index, "_id": flat.key}})
                operations.append(_body(flat))
        await self._check(await self._es.bulk(operations=operations))

    @staticmethod
    async def _check(response: Any) -> None:
        if not response.body.get("errors"):
            return
        for item in response.body["items"]:
            ((action, outcome),) = item.items()
            if outcome.get("status", 200) >= 300 and not (
                action == "delete" and outcome.get("status") == 404
            ):
                raise RuntimeError(f"search index bulk {action} failed: {outcome}")

    async def _write_targets(self) -> list[str]:
        await self.ensure_index()
        return [self.alias] + ([self._aside] if self._aside else [])

    # ── writes ─────────────────────────────────────────────────────────
    async def upsert(self, docs: Sequence[SearchDoc]) -> None:
        await self._bulk_index(await self._write_targets(), [flatten(doc) for doc in docs])

    async def delete(self, platform: str, type_: SearchType, ids: Sequence[str | int]) -> None:
        if not ids:
            return
        operations = [
            {"delete": {"_index": index, "_id": doc_key(platform, type_, str(doc_id))}}
            for index in await self._write_targets()
            for doc_id in ids
        ]
        await self._check(await self._es.bulk(operations=operations))

    async def refresh(self) -> None:
        await self.ensure_index()
        await self._es.indices.refresh(index=self.alias)

    # ── rebuild aside, then swap ───────────────────────────────────────
    async def begin_rebuild(self) -> ElasticRebuild:
        if self._aside is not None:
            raise RuntimeError("a rebuild is already under way")
        await self.ensure_index()
        self._aside = self._new_index_name()
        await self._create(self._aside)
        return ElasticRebuild(self, self._aside)

    async def commit_rebuild(self, writer: Any) -> None:
        assert isinstance(writer, ElasticRebuild) and writer.index == self._aside
        old, new = await self._physical(), writer.index
        await self._es.indices.refresh(index=new)
        await self._es.indices.update_aliases(
            actions=[{"remove": {"index": index, "alias": self.alias}} for index in old]
            + [{"add": {"index": new, "alias": self.alias}}]
        )
        self._aside = None
        if old:
            await self._es.indices.delete(index=",".join(old), ignore_unavailable=True)

    async def abort_rebuild(self, writer: Any) -> None:
        assert isinstance(writer, ElasticRebuild) and writer.index == self._aside
        self._aside = None
        await self._es.indices.delete(index=writer.index, ignore_unavailable=True)

    async def drop(self) -> None:
        """Delete every generation of this index (tests, teardown)."""
        await self._es.indices.delete(index=f"{self.alias}-*", ignore_unavailable=True)
        self._ready, self._aside = False, None

    async def ping(self) -> None:
        await self._es.info()  # raises ConnectionError (ping() would only say False)

    async def close(self) -> None:
        await self._es.close()

    # ── search ─────────────────────────────────────────────────────────
    @staticmethod
    def _text_query(terms: list[str]) -> dict[str, Any]:
        per_word = []
        for term in terms:
            allowed = fuzziness(term)
            exact = [
                {"term": {name: {"value": term, "boost": FIELD_BOOSTS[name]}}}
                for name in TEXT_FIELDS
            ]
            loose = [
                {
                    "fuzzy": {
                        name: {
                            "value": term,
                            "fuzziness": allowed,
                            "transpositions": True,
                            "prefix_length": 0,
                        }
                    }
                }
                if allowed
                else {"term": {name: term}}
                for name in TEXT_FIELDS
            ]
            typo = {"constant_score": {"filter": {"bool": {"should": loose}}, "boost": TYPO_SCORE}}
            per_word.append({"bool": {"should": [*exact, typo]}})
        return {"bool": {"should": per_word, "minimum_should_match": 1}}

    @staticmethod
    def _filters(query: SearchQuery) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        must: list[dict[str, Any]] = [{"term": {"platform": query.platform}}]
        must_not: list[dict[str, Any]] = []
        if query.types and query.types != ALL_TYPES:
            must.append({"terms": {"type": sorted(t.value for t in query.types)}})
        if query.since is not None or query.until is not None:
            bounds = {}
            if query.since is not None:
                bounds["gte"] = _iso(micros(query.since))
            if query.until is not None:
                bounds["lte"] = _iso(micros(query.until))
            must.append({"range": {"created_at": bounds}})
        if query.min_likes is not None:
            must.append({"range": {"like_count": {"gte": query.min_likes}}})
        if query.author_id is not None:
            must.append({"term": {"author_id": query.author_id}})
        if query.near is not None:
            near = query.near
            must.append(
                {
                    "geo_distance": {
                        "distance": f"{near.radius_km}km",
                        "distance_type": "arc",
                        "geo": {"lat": near.latitude, "lon": near.longitude},
                    }
                }
            )
        if query.excluded_author_ids:
            must_not.append({"terms": {"author_id": sorted(query.excluded_author_ids)}})
        if query.excluded_user_ids:
            must_not.append({"terms": {"user_id": sorted(query.excluded_user_ids)}})
        visible: list[dict[str, Any]] = [{"term": {"visibility": PUBLIC}}]
        for visibility, authors in sorted(query.grants.items()):
            if authors and visibility != PUBLIC:
                visible.append(
                    {
                        "bool": {
                            "filter": [
                                {"term": {"visibility": visibility}},
                                {"terms": {"author_id": sorted(authors)}},
                            ]
                        }
                    }
                )
        must.append({"bool": {"should": visible, "minimum_should_match": 1}})
        return must, must_not

    @staticmethod
    def _ranked(base: dict[str, Any], now_us: int, followed: frozenset[int]) -> dict[str, Any]:
        popularity = {
            "function_score": {
                "query": base,
                "functions": [
                    {"weight": 1},
                    {
                        "field_value_factor": {
                            "field": "popularity",
                            "modifier": "ln1p",
                            "missing": 0,
                        },
                        "weight": POPULARITY_WEIGHT,
                    },
                ],
                "score_mode": "sum",
                "boost_mode": "multiply",
            }
        }
        half_life_s = int(RECENCY_HALF_LIFE.total_seconds())
        recency = {
            "function_score": {
                "query": popularity,
                "functions": [
                    {"weight": 1},
                    {
                        "filter": {"exists": {"field": "created_at"}},
                        "exp": {
                            "created_at": {
                                "origin": _iso(now_us),
                                "scale": f"{half_life_s}s",
                                "decay": 0.5,
                            }
                        },
                        "weight": RECENCY_WEIGHT,
                    },
                ],
                "score_mode": "sum",
                "boost_mode": "multiply",
            }
        }
        if not followed:
            return recency
        return {
            "function_score": {
                "query": recency,
                "functions": [
                    {"filter": {"terms": {"owner_id": sorted(followed)}}, "weight": FOLLOWED_BOOST}
                ],
                "score_mode": "multiply",
                "boost_mode": "multiply",
            }
        }

    async def search(self, query: SearchQuery) -> SearchPage:
        started = time.perf_counter()
        first = max(0, min(query.first, MAX_PAGE))
        after: tuple[float, str] | None = None
        if query.after:
            score, tie, now_us = decode_cursor(query.after)
            if not isinstance(tie, str):
                raise BadCursor("not a cursor of this index")
            after = (score, tie)
        else:
            now_us = micros(query.now or datetime.now(UTC))
        terms = query_words(query.text)
        must, must_not = self._filters(query)
        await self.ensure_index()
        base = {
            "bool": {
                "must": [self._text_query(terms) if terms else {"match_all": {}}],
                "filter": must,
                "must_not": must_not,
            }
        }
        # The ranked window of (score, key) pairs; the cursor is applied here, on the
        # scores as the server printed them (see the module docstring: search_after).
        response = await self._es.search(
            index=self.alias,
            query=self._ranked(base, now_us, query.boost_author_ids),
            sort=[{"_score": "desc"}, {"key": "asc"}],
            size=CANDIDATES,
            track_total_hits=True,
            source=False,
        )
        ranked = [
            (float(item["sort"][0]), str(item["sort"][1])) for item in response.body["hits"]["hits"]
        ]
        if after is not None:
            ranked = [
                r for r in ranked if r[0] < after[0] or (r[0] == after[0] and r[1] > after[1])
            ]
        page = ranked[:first]
        sources: dict[str, Any] = {}
        if page:
            found = await self._es.mget(
                index=self.alias, ids=[key for _, key in page], source_includes=["source"]
            )
            sources = {
                d["_id"]: d["_source"]["source"] for d in found.body["docs"] if d.get("found")
            }
        hits = []
        for score, key in page:
            if key not in sources:  # deleted between the two requests
                continue
            doc = from_source(sources[key])
            hits.append(
                SearchHit(
                    type=doc.type,
                    id=doc.doc_id,
                    score=score,
                    highlight=highlight_doc(doc, terms),
                    cursor=encode_cursor(score, key, now_us),
                    doc=doc,
                )
            )
        return SearchPage(
            hits=hits,
            total=int(response.body["hits"]["total"]["value"]),
            took_ms=(time.perf_counter() - started) * 1000,
            has_next_page=len(ranked) > first,
        )

    # ── autocomplete ───────────────────────────────────────────────────
    async def autocomplete(
        self,
        platform: str,
        prefix: str,
        types: frozenset[SearchType] | None = None,
        boost_ids: frozenset[int] = frozenset(),
        limit: int = 8,
        excluded_user_ids: frozenset[int] = frozenset(),
    ) -> list[Suggestion]:
        tokens = prefix_words(prefix)
        limit = max(0, min(limit, MAX_PAGE))
        if not tokens or limit == 0:
            return []
        *whole, last = tokens
        await self.ensure_index()
        filters: list[dict[str, Any]] = [
            {"term": {"platform": platform}},
            {"terms": {"type": sorted(t.value for t in types or SUGGEST_TYPES)}},
            {"prefix": {"suggest": last}},
            *({"term": {"suggest": word}} for word in whole),
        ]
        should: list[dict[str, Any]] = []
        if boost_ids:
            should.append(
                {
                    "constant_score": {
                        "filter": {"terms": {"owner_id": sorted(boost_ids)}},
                        "boost": 1,
                    }
                }
            )
        must_not = [{"terms": {"user_id": sorted(excluded_user_ids)}}] if excluded_user_ids else []
        response = await self._es.search(
            index=self.alias,
            query={"bool": {"filter": filters, "should": should, "must_not": must_not}},
            sort=[{"_score": "desc"}, {"popularity": "desc"}, {"key": "asc"}],
            size=limit * 4,
            source_includes=["source", "popularity"],
        )
        ranked = []
        for item in response.body["hits"]["hits"]:
            doc = from_source(item["_source"]["source"])
            text = suggestion_text(doc, tokens)
            boosted = bool(item["sort"][0] and item["sort"][0] > 0)
            key = doc_key(doc.platform, doc.type, doc.doc_id)
            ranked.append(
                (suggestion_order(boosted, item["_source"]["popularity"], text, key), doc, text)
            )
        ranked.sort(key=lambda entry: entry[0])
        return [
            Suggestion(type=doc.type, id=doc.doc_id, text=text, doc=doc)
            for _, doc, text in ranked[:limit]
        ]
