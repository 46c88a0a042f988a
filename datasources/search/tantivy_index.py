"""The embedded search index: Tantivy (the `tantivy` package) in a local directory.

Layout under the directory given to the constructor (./data/search by default):
`CURRENT` names the live generation, a subdirectory `gen-<ns>` holding one Tantivy
index. A rebuild writes a new generation beside it and swaps `CURRENT` with
os.replace (atomic on POSIX), so a crash leaves either the old or the new index live.

What Tantivy (as the Python package exposes it) cannot do, and what is done instead:
- no function scoring: the best CANDIDATES matches by relevance are read with their
  fast fields (popularity, time, owner) and the boosts applied in Python;
- fuzzy term queries score a constant: the ranking formula gives typo matches a
  constant on both engines (see store.py);
- no geo query: `near` is a bounding box on the latitude/longitude fast fields,
  then the exact great-circle distance in Python;
- the snippet generator does not mark fuzzy matches: highlights come from
  ranking.highlight, as on Elasticsearch.

Tantivy calls are synchronous; they run in a worker thread, writes under a lock.
One process writes an index directory at a time (Tantivy's own lock); a swap made
by another process (a reindex command) is followed at the next `refresh()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tantivy

from datasources.search.ranking import (
    CANDIDATES,
    FIELD_BOOSTS,
    MAX_PAGE,
    TEXT_FIELDS,
    TYPO_SCORE,
    BadCursor,
    Flat,
    boost_factor,
    decode_cursor,
    encode_cursor,
    flatten,
    from_source,
    fuzziness,
    haversine_km,
    highlight_doc,
    micros,
    prefix_words,
    query_words,
    suggestion_order,
    suggestion_text,
    tie_breaker,
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

log = logging.getLogger(__name__)
CURRENT = "CURRENT"
# Tantivy's BM25 keeps the (k1 + 1) factor that Lucene (so Elasticsearch) dropped in
# version 8; dividing it out makes the two engines' BM25 agree up to their idf.
TANTIVY_BM25_NUMERATOR = 1.0 + 1.2
WRITER_HEAP = 50_000_000
Occur = tantivy.Occur
Q = tantivy.Query


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for name in ("key", "type", "platform", "visibility"):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    for name in TEXT_FIELDS:  # analysed by ranking.words: the default tokenizer only splits
        builder.add_text_field(name, index_option="freq")
    builder.add_text_field("suggest", index_option="basic")
    for name in ("owner_id", "user_id", "author_id", "like_count", "created_us"):
        builder.add_integer_field(name, indexed=True, fast=True)
    builder.add_integer_field("popularity", fast=True)
    builder.add_integer_field("tie", fast=True)
    builder.add_float_field("lat", indexed=True, fast=True)
    builder.add_float_field("lon", indexed=True, fast=True)
    builder.add_bytes_field("source", stored=True)
    return builder.build()


def _document(flat: Flat) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("key", flat.key)
    doc.add_text("type", flat.type.value)
    doc.add_text("platform", flat.platform)
    doc.add_text("visibility", flat.visibility)
    for name, text in flat.texts.items():
        doc.add_text(name, text)
    if flat.suggest:
        doc.add_text("suggest", flat.suggest)
    for name, value in (
        ("owner_id", flat.owner_id),
        ("user_id", flat.user_id),
        ("author_id", flat.author_id),
        ("like_count", flat.like_count),
        ("created_us", micros(flat.created_at) if flat.created_at else None),
    ):
        if value is not None:
            doc.add_integer(name, value)
    doc.add_integer("popularity", flat.popularity)
    doc.add_integer("tie", tie_breaker(flat.key))
    if flat.latitude is not None and flat.longitude is not None:
        doc.add_float("lat", flat.latitude)
        doc.add_float("lon", flat.longitude)
    doc.add_bytes("source", json.dumps(flat.source, separators=(",", ":")).encode())
    return doc


class _Generation:
    """One Tantivy index directory and its (lazily opened) writer."""

    def __init__(self, path: Path, schema: tantivy.Schema) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.index = tantivy.Index(schema, path=str(path), reuse=True)
        self._writer: tantivy.IndexWriter | None = None
        self.dirty = False

    @property
    def writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self.index.writer(WRITER_HEAP, 1)
        return self._writer

    def upsert(self, flats: Sequence[Flat]) -> None:
        writer = self.writer
        for flat in flats:
            writer.delete_documents_by_term("key", flat.key)
            writer.add_document(_document(flat))
        self.dirty = self.dirty or bool(flats)

    def delete(self, keys: Sequence[str]) -> None:
        writer = self.writer
        for key in keys:
            writer.delete_documents_by_term("key", key)
        self.dirty = self.dirty or bool(keys)

    def commit(self) -> None:
        if self.dirty and self._writer is not None:
            self._writer.commit()
            self.dirty = False
        self.index.reload()

    def close(self) -> None:
        if self._writer is not None:
            if self.dirty:
                self._writer.rollback()
            self._writer.wait_merging_threads()
            self._writer = None


class TantivyRebuild:
    def __init__(self, owner: TantivySearchIndex, generation: _Generation) -> None:
        self._owner = owner
        self.generation = generation

    async def upsert(self, docs: Sequence[SearchDoc]) -> None:
        flats = [flatten(doc) for doc in docs]
        await asyncio.to_thread(self._owner._locked, self.generation.upsert, flats)


class TantivySearchIndex:
    def __init__(self, path: str | os.PathLike[str] = "./data/search") -> None:
        self._root = Path(path)
        self._root.mkdir(parents=True, exist_ok=True)
        self._schema = build_schema()
        self._lock = threading.Lock()
        pointer = self._root / CURRENT
        name = pointer.read_text().strip() if pointer.exists() else ""
        if not name or not (self._root / name).is_dir():
            name = self._new_generation_name()
            (self._root / name).mkdir()
            self._write_pointer(name)
        try:
            self._live = _Generation(self._root / name, self._schema)
        except ValueError:  # written by a version with another schema: start empty
            stale = self._root / name
            log.warning(
                "search index %s has another schema: starting an empty one (reindex to fill it)",
                stale,
            )
            name = self._new_generation_name()
            self._live = _Generation(self._root / name, self._schema)
            self._write_pointer(name)
            shutil.rmtree(stale, ignore_errors=True)
        self._aside: _Generation | None = None

    # ── plumbing ───────────────────────────────────────────────────────
    def _new_generation_name(self) -> str:
        return f"gen-{time.time_ns()}"

    def _write_pointer(self, name: str) -> None:
        temporary = self._root / f"{CURRENT}.tmp"
        with open(temporary, "w") as file:
            file.write(name + "\n")
            file.flush()
            os.fsync(file.fileno())  # the pointer never names a generation not on disk
        os.replace(temporary, self._root / CURRENT)

    def _locked(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            return fn(*args)

    def _targets(self) -> list[_Generation]:
        return [self._live] + ([self._aside] if self._aside is not None else [])

    # ── writes ─────────────────────────────────────────────────────────
    async def upsert(self, docs: Sequence[SearchDoc]) -> None:
        flats = [flatten(doc) for doc in docs]

        def write() -> None:
            for generation in self._targets():
                generation.upsert(flats)

        await asyncio.to_thread(self._locked, write)

    async def delete(self, platform: str, type_: SearchType, ids: Sequence[str | int]) -> None:
        keys = [doc_key(platform, type_, str(doc_id)) for doc_id in ids]

        def write() -> None:
            for generation in self._targets():
                generation.delete(keys)

        await asyncio.to_thread(self._locked, write)

    async def claim_writer(self) -> bool:
        """Open the live index's writer now. False when another process holds it (Tantivy's
        lock file): that process indexes, and this one only searches (its reader follows
        the other's commits)."""

        def claim() -> bool:
            try:
                self._live.writer  # noqa: B018 (the property opens the writer)
            except ValueError as error:
                if "LockBusy" in str(error):
                    return False
                raise
            return True

        return await asyncio.to_thread(self._locked, claim)

    async def refresh(self) -> None:
        def refresh() -> None:
            self._follow_pointer()
            self._live.commit()

        await asyncio.to_thread(self._locked, refresh)

    def _follow_pointer(self) -> None:
        """Pick up a swap made by another process (e.g. `entativa search reindex`).
        What this process wrote while the other one rebuilt went to the old generation
        and is not in the new one: the caller replays those changes (e.g. the events
        since the rebuild began)."""
        pointer = self._root / CURRENT
        try:
            name = pointer.read_text().strip()
        except FileNotFoundError:
            return
        if name == self._live.path.name or not (self._root / name).is_dir():
            return
        old, self._live = self._live, _Generation(self._root / name, self._schema)
        try:
            old.close()
        except (OSError, ValueError):  # its directory may be gone already
            pass

    # ── rebuild aside, then swap ───────────────────────────────────────
    async def begin_rebuild(self) -> TantivyRebuild:
        def begin() -> TantivyRebuild:
            if self._aside is not None:
                raise RuntimeError("a rebuild is already under way")
            self._aside = _Generation(self._root / self._new_generation_name(), self._schema)
            return TantivyRebuild(self, self._aside)

        result: TantivyRebuild = await asyncio.to_thread(self._locked, begin)
        return result

    async def commit_rebuild(self, writer: Any) -> None:
        assert isinstance(writer, TantivyRebuild) and writer.generation is self._aside

        def swap() -> Path:
            new = writer.generation
            new.dirty = True  # commit even when nothing was added: an empty index is valid
            new.commit()
            self._live.commit()  # no write is lost if the swap is undone by hand
            self._write_pointer(new.path.name)
            old, self._live, self._aside = self._live, new, None
            old.close()
            return old.path

        old_path: Path = await asyncio.to_thread(self._locked, swap)
        # Searches that took a searcher on the old index keep their open files.
        await asyncio.to_thread(shutil.rmtree, old_path, True)

    async def abort_rebuild(self, writer: Any) -> None:
        assert isinstance(writer, TantivyRebuild) and writer.generation is self._aside

        def abort() -> Path:
            generation = writer.generation
            generation.close()
            self._aside = None
            return generation.path

        path: Path = await asyncio.to_thread(self._locked, abort)
        await asyncio.to_thread(shutil.rmtree, path, True)

    async def ping(self) -> None:
        """The live index directory is still there (a volume unmounted or wiped is not)."""
        if not self._live.path.is_dir():
            raise FileNotFoundError(f"search index directory {self._live.path} is gone")

    async def close(self) -> None:
        """Commit pending writes; a rebuild still under way is dropped."""

        def close() -> Path | None:
            self._live.commit()
            self._live.close()
            aside, self._aside = self._aside, None
            if aside is not None:
                aside.close()
                return aside.path
            return None

        aside_path = await asyncio.to_thread(self._locked, close)
        if aside_path is not None:
            await asyncio.to_thread(shutil.rmtree, aside_path, True)

    # ── search ─────────────────────────────────────────────────────────
    async def search(self, query: SearchQuery) -> SearchPage:
        page: SearchPage = await asyncio.to_thread(self._search, query)
        return page

    def _text_query(self, terms: list[str]) -> tantivy.Query:
        schema = self._schema
        per_word = []
        for term in terms:
            allowed = fuzziness(term)
            clauses: list[tuple[Any, tantivy.Query]] = []
            loose: list[tuple[Any, tantivy.Query]] = []
            for name in TEXT_FIELDS:
                exact = Q.term_query(schema, name, term, index_option="freq")
                boost = FIELD_BOOSTS[name] / TANTIVY_BM25_NUMERATOR
                clauses.append((Occur.Should, Q.boost_query(exact, boost)))
                loose.append(
                    (
                        Occur.Should,
                        Q.fuzzy_term_query(schema, name, term, allowed, True, False)
                        if allowed
                        else Q.term_query(schema, name, term, index_option="basic"),
                    )
                )
            clauses.append((Occur.Should, Q.const_score_query(Q.boolean_query(loose), TYPO_SCORE)))
            per_word.append((Occur.Should, Q.boolean_query(clauses)))
        return Q.boolean_query(per_word)

    def _filters(self, query: SearchQuery) -> list[tuple[Any, tantivy.Query]]:
        schema = self._schema
        must: list[tantivy.Query] = [Q.term_query(schema, "platform", query.platform)]
        must_not: list[tantivy.Query] = []
        if query.types and query.types != ALL_TYPES:
            must.append(Q.term_set_query(schema, "type", sorted(t.value for t in query.types)))
        if query.since is not None or query.until is not None:
            must.append(
                Q.range_query(
                    schema,
                    "created_us",
                    tantivy.FieldType.Integer,
                    micros(query.since) if query.since else None,
                    micros(query.until) if query.until else None,
                )
            )
        if query.min_likes is not None:
            must.append(
                Q.range_query(schema, "like_count", tantivy.FieldType.Integer, query.min_likes)
            )
        if query.author_id is not None:
            must.append(Q.term_query(schema, "author_id", query.author_id))
        if query.near is not None:
            must.extend(
                self._bounding_box(query.near.latitude, query.near.longitude, query.near.radius_km)
            )
        if query.excluded_author_ids:
            must_not.append(
                Q.term_set_query(schema, "author_id", sorted(query.excluded_author_ids))
            )
        if query.excluded_user_ids:
            must_not.append(Q.term_set_query(schema, "user_id", sorted(query.excluded_user_ids)))
        visible: list[tuple[Any, tantivy.Query]] = [
            (Occur.Should, Q.term_query(schema, "visibility", PUBLIC))
        ]
        for visibility, authors in sorted(query.grants.items()):
            if authors and visibility != PUBLIC:
                granted = Q.boolean_query(
                    [
                        (Occur.Must, Q.term_query(schema, "visibility", visibility)),
                        (Occur.Must, Q.term_set_query(schema, "author_id", sorted(authors))),
                    ]
                )
                visible.append((Occur.Should, granted))
        must.append(Q.boolean_query(visible))
        return [(Occur.Must, Q.const_score_query(q, 0.0)) for q in must] + [
            (Occur.MustNot, q) for q in must_not
        ]

    def _bounding_box(self, lat: float, lon: float, radius_km: float) -> list[tantivy.Query]:
        """A box a little larger than the circle; the exact distance is checked later."""
        dlat = math.degrees(radius_km / 6371.0088) * 1.01 + 1e-6
        boxes = [
            Q.range_query(self._schema, "lat", tantivy.FieldType.Float, lat - dlat, lat + dlat)
        ]
        if abs(lat) + dlat < 89.0:
            dlon = dlat / math.cos(math.radians(abs(lat) + dlat))
            if lon - dlon > -180.0 and lon + dlon < 180.0:  # else: no longitude bound
                boxes.append(
                    Q.range_query(
                        self._schema, "lon", tantivy.FieldType.Float, lon - dlon, lon + dlon
                    )
                )
        else:
            boxes.append(Q.exists_query("lon"))
        return boxes

    def _search(self, query: SearchQuery) -> SearchPage:
        started = time.perf_counter()
        first = max(0, min(query.first, MAX_PAGE))
        after: tuple[float, int] | None = None
        if query.after:
            score, tie, now_us = decode_cursor(query.after)
            if not isinstance(tie, int):
                raise BadCursor("not a cursor of this index")
            after = (score, tie)
        else:
            now_us = micros(query.now or datetime.now(UTC))
        terms = query_words(query.text)
        main = self._text_query(terms) if terms else Q.all_query()
        full = Q.boolean_query([(Occur.Must, main), *self._filters(query)])
        searcher = self._live.index.searcher()
        if terms:
            result = searcher.search(full, CANDIDATES, count=True)
            relevance = [float(score) for score, _ in result.hits]
        else:  # a browse: the newest candidates, relevance 1
            result = searcher.search(full, CANDIDATES, count=True, order_by_field="created_us")
            relevance = [1.0] * len(result.hits)
        addresses = [address for _, address in result.hits]
        popularity = searcher.fast_field_values("popularity", addresses)
        created = searcher.fast_field_values("created_us", addresses)
        owners = searcher.fast_field_values("owner_id", addresses)
        ties = searcher.fast_field_values("tie", addresses)
        keep = list(range(len(addresses)))
        total: int = result.count  # type: ignore[attr-defined]  # (missing from the stubs)
        if query.near is not None:
            near = query.near
            lats = searcher.fast_field_values("lat", addresses)
            lons = searcher.fast_field_values("lon", addresses)
            keep = [
                i
                for i in keep
                if isinstance(lat := lats[i], float)
                and isinstance(lon := lons[i], float)
                and haversine_km(near.latitude, near.longitude, lat, lon) <= near.radius_km
            ]
            if total <= CANDIDATES:
                total = len(keep)
        ranked = sorted(
            (
                (
                    relevance[i]
                    * boost_factor(
                        _int(popularity[i]) or 0,
                        _int(created[i]),
                        _int(owners[i]),
                        now_us,
                        query.boost_author_ids,
                    ),
                    _int(ties[i]) or 0,
                    i,
                )
                for i in keep
            ),
            key=lambda item: (-item[0], item[1]),
        )
        if after is not None:
            ranked = [
                r for r in ranked if r[0] < after[0] or (r[0] == after[0] and r[1] > after[1])
            ]
        page = ranked[:first]
        hits = []
        for score, tie_value, i in page:
            doc = _stored(searcher, addresses[i])
            hits.append(
                SearchHit(
                    type=doc.type,
                    id=doc.doc_id,
                    score=score,
                    highlight=highlight_doc(doc, terms),
                    cursor=encode_cursor(score, tie_value, now_us),
                    doc=doc,
                )
            )
        return SearchPage(
            hits=hits,
            total=total,
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
        result: list[Suggestion] = await asyncio.to_thread(
            self._autocomplete, platform, prefix, types, boost_ids, limit, excluded_user_ids
        )
        return result

    def _autocomplete(
        self,
        platform: str,
        prefix: str,
        types: frozenset[SearchType] | None,
        boost_ids: frozenset[int],
        limit: int,
        excluded_user_ids: frozenset[int],
    ) -> list[Suggestion]:
        tokens = prefix_words(prefix)
        limit = max(0, min(limit, MAX_PAGE))
        if not tokens or limit == 0:
            return []
        schema = self._schema
        *whole, last = tokens
        clauses: list[tuple[Any, tantivy.Query]] = [
            (Occur.Must, Q.term_query(schema, "platform", platform)),
            (
                Occur.Must,
                Q.term_set_query(schema, "type", sorted(t.value for t in types or SUGGEST_TYPES)),
            ),
            (Occur.Must, Q.regex_query(schema, "suggest", _regex_prefix(last))),
        ]
        clauses += [(Occur.Must, Q.term_query(schema, "suggest", word)) for word in whole]
        if excluded_user_ids:
            clauses.append(
                (Occur.MustNot, Q.term_set_query(schema, "user_id", sorted(excluded_user_ids)))
            )
        searcher = self._live.index.searcher()
        found: dict[str, tuple[bool, int, SearchDoc]] = {}

        def collect(query: tantivy.Query, size: int, boosted: bool) -> None:
            result = searcher.search(query, size, count=False, order_by_field="popularity")
            for popularity, address in result.hits:
                doc = _stored(searcher, address)
                key = doc_key(doc.platform, doc.type, doc.doc_id)
                if key not in found:
                    found[key] = (boosted, int(popularity), doc)

        if boost_ids:
            boosted = [
                *clauses,
                (Occur.Must, Q.term_set_query(schema, "owner_id", sorted(boost_ids))),
            ]
            collect(Q.boolean_query(boosted), limit, True)
        collect(Q.boolean_query(clauses), limit * 4, False)
        ordered = sorted(
            (
                suggestion_order(boosted, popularity, suggestion_text(doc, tokens), key),
                doc,
            )
            for key, (boosted, popularity, doc) in found.items()
        )
        return [
            Suggestion(type=doc.type, id=doc.doc_id, text=suggestion_text(doc, tokens), doc=doc)
            for _, doc in ordered[:limit]
        ]


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _stored(searcher: tantivy.Searcher, address: tantivy.DocAddress) -> SearchDoc:
    stored = searcher.doc(address).get_first("source")
    if not isinstance(stored, bytes | str):
        raise RuntimeError("a search document without its source")
    return from_source(json.loads(stored))


def _regex_prefix(word: str) -> str:
    # ranking.words yields letters and digits only: nothing to escape.
    return f"{word}.*"
