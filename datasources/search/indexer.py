"""Domain events → the search index and `hashtag_uses`: the consumer group `search`.

Each event names what changed; the indexer re-reads that subject's current rows
(documents.py) and writes the index from them, so a late, repeated or reordered
event converges on the current state (a post.created handled after the post's
deletion indexes nothing). What each event touches:

- user.created / user.profile_updated: the user's document; user.followed,
  user.unfollowed, user.follow_request_answered: the followee's (its follower
  count ranks it); user.blocked: the followees of the follows it cut;
- post.created / post.edited / post.deleted, take.created / take.deleted: the
  subject's document, its `hashtag_uses` rows, the documents of the tags whose
  use count changed (a tag nobody uses any more leaves the index) and the
  post's place;
- post.liked / post.unliked, take.liked / take.unliked: the like count.

Blocks and privacy are not in the documents: they change without touching the
content and are applied per viewer at query time (resolvers/search/search.py).
The indexer reads through an engine of its own (registry.py), like the relay, so
its statements never take a request's pooled connections nor count in them.

Order of effects: `handle` (EventConsumer's) claims the event and calls `apply`
in one transaction; `apply` writes `hashtag_uses` there, then the index, before
the claim commits: a failure rolls the claim back and the event comes again; a
commit that fails after the index write is harmless, as every index write is an
idempotent upsert or delete by id.

Refreshing is batched: the first write after a refresh schedules the next one
FLUSH_DELAY later, so a burst of events costs one refresh (a Tantivy commit
fsyncs: ~100 ms on a small VM, too slow per event) and a deleted post still
leaves the results well within a second. Elasticsearch acknowledges a write
durably (its translog); Tantivy loses what was not committed when the process
dies, so on the embedded index every refresh also writes a checkpoint file (the
newest event time it covers) and a restarted indexer replays the outbox from
that checkpoint (minus REPLAY_MARGIN), re-reading each subject: nothing
acknowledged is lost as long as the outbox keeps its rows (7 days by default).

One process indexes an embedded index (Tantivy's writer lock): with Kafka and
several `entativa worker` processes, use Elasticsearch, or run the `search`
group in one of them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.bus import EventBus
from datasources.events.consumers import EventConsumer
from datasources.events.model import Event
from datasources.events.tables import OutboxRow
from datasources.events.transactions import transaction
from datasources.search import documents
from datasources.search.records import HashtagDoc, SearchDoc, SearchType, utc
from datasources.search.store import SearchIndex
from datasources.sql import Database

log = logging.getLogger("entativa.search")
FLUSH_DELAY = 0.1  # seconds a refresh waits for more writes to share it
REPLAY_MARGIN = timedelta(minutes=1)  # transactions that were open at the checkpoint

USER_EVENTS = frozenset({"user.created", "user.profile_updated"})
# Follower counts rank accounts: these change them (a block cuts follows both ways).
FOLLOW_EVENTS = frozenset(
    {"user.followed", "user.unfollowed", "user.follow_request_answered", "user.blocked"}
)
CONTENT_EVENTS = frozenset(
    {"post.created", "post.edited", "post.deleted", "take.created", "take.deleted"}
)
LIKE_EVENTS = frozenset({"post.liked", "post.unliked", "take.liked", "take.unliked"})


class SearchIndexer(EventConsumer):
    name = "search"
    domains = ("users", "posts")
    types = USER_EVENTS | FOLLOW_EVENTS | CONTENT_EVENTS | LIKE_EVENTS

    def __init__(
        self,
        db: Database,
        index: SearchIndex,
        checkpoint: Path | None = None,
        owns_db: bool = False,
    ) -> None:
        """`checkpoint`: the file recording how far the index is durable (an embedded
        index; None for Elasticsearch, whose writes are durable when acknowledged).
        `owns_db`: `db` is the indexer's own engine (as the relay has), so its reads
        never compete with requests for pooled connections nor count in a request's
        statements; `close` disposes it."""
        super().__init__(db)
        self.owns_db = owns_db
        self.index = index
        self.checkpoint = checkpoint
        self._flush: asyncio.Task[None] | None = None
        self._newest: datetime | None = None  # newest event written since the last flush

    async def subscribe(self, bus: EventBus) -> None:
        claim = getattr(self.index, "claim_writer", None)
        if claim is not None and not await claim():
            # An embedded index has one writer: processes sharing its directory (e.g.
            # subgraphs on one machine) leave the indexing to the one that got it.
            log.warning("search index: another process writes this index; this one only searches")
            return
        await self.recover()
        await super().subscribe(bus)

    async def apply(self, session: AsyncSession, event: Event) -> None:
        upserts, deletes = await changes(session, event)
        await write(self.index, event.platform, upserts, deletes)
        if upserts or deletes:
            if self._newest is None or event.time > self._newest:
                self._newest = event.time
            if self._flush is None or self._flush.done():
                self._flush = asyncio.create_task(self._refresh_soon())

    async def close(self) -> None:
        await self.settled()
        if self.owns_db:
            await self.db.dispose()

    async def settled(self) -> None:
        """Wait until every write so far is searchable (tests, shutdown)."""
        while self._flush is not None and not self._flush.done():
            await asyncio.shield(self._flush)

    async def _refresh_soon(self) -> None:
        await asyncio.sleep(FLUSH_DELAY)
        covered, self._newest = self._newest, None
        try:
            await self.index.refresh()
        except Exception:  # the writes stay pending in the index: the next flush retries
            log.exception("search index refresh failed")
            if covered is not None:
                self._newest = max(covered, self._newest) if self._newest else covered
            return
        if self.checkpoint is not None and covered is not None:
            await asyncio.to_thread(_write_checkpoint, self.checkpoint, covered)

    async def recover(self) -> int:
        """Replay the outbox from the checkpoint: what a crash may have cost the
        embedded index (nothing to do without a checkpoint file)."""
        if self.checkpoint is None or not self.checkpoint.exists():
            return 0
        try:
            since = datetime.fromisoformat(self.checkpoint.read_text().strip())
        except ValueError:
            return 0
        replayed = await replay_since(self.db, self.index, since - REPLAY_MARGIN)
        if replayed:
            log.info("search index: replayed %d events since %s", replayed, since.isoformat())
        return replayed


def _write_checkpoint(path: Path, moment: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(moment.isoformat() + "\n")
    os.replace(temporary, path)


async def write(
    index: SearchIndex,
    platform: str,
    upserts: list[SearchDoc],
    deletes: dict[SearchType, list[str | int]],
) -> None:
    if upserts:
        await index.upsert(upserts)
    for type_, ids in deletes.items():
        await index.delete(platform, type_, ids)


async def replay_since(db: Database, index: SearchIndex, since: datetime) -> int:
    """Apply the indexed events of the outbox created since `since` to `index` and
    refresh it: each subject's current rows are re-read, so replaying is idempotent
    (after a crash, after a rebuild swapped in by reindex.py)."""
    async with db.session() as session:
        payloads = list(
            await session.scalars(
                select(OutboxRow.payload)
                .where(OutboxRow.created_at >= since)
                .order_by(OutboxRow.id)
            )
        )
    seen: set[tuple[str, str, int]] = set()
    applied = 0
    for payload in reversed(payloads):  # one replay per subject and type: state is re-read
        try:
            event = Event.from_json(payload)
        except (ValueError, KeyError):
            continue
        key = (event.platform, event.type, event.subject_id)
        if event.type not in SearchIndexer.types or key in seen:
            continue
        seen.add(key)
        async with transaction(db) as session:
            upserts, deletes = await changes(session, event)
        await write(index, event.platform, upserts, deletes)
        applied += 1
    if applied:
        await index.refresh()
    return applied


async def changes(
    session: AsyncSession, event: Event
) -> tuple[list[SearchDoc], dict[SearchType, list[str | int]]]:
    """The documents to upsert and the ids to delete because of `event` (writing
    `hashtag_uses` in `session` on the way). Also used to replay events after a
    rebuild (reindex.py)."""
    kind, platform = event.type, event.platform
    upserts: list[SearchDoc] = []
    deletes: dict[SearchType, list[str | int]] = {}
    if kind in USER_EVENTS or kind in FOLLOW_EVENTS:
        user_ids = _users_of(event)
        found = await documents.users(session, user_ids)
        upserts += [found[pk] for pk in user_ids if pk in found and found[pk].platform == platform]
        return upserts, deletes
    subject_type = documents.POST if kind.startswith("post.") else documents.TAKE
    type_ = SearchType.POST if subject_type == documents.POST else SearchType.TAKE
    pk = event.subject_id
    reader = documents.posts if type_ is SearchType.POST else documents.takes
    doc = (await reader(session, [pk])).get(pk)
    if doc is not None and doc.platform != platform:
        doc = None
    if doc is None:
        deletes[type_] = [pk]
    else:
        upserts.append(doc)
    if kind in LIKE_EVENTS:
        return upserts, deletes
    tags = doc.hashtags if doc is not None else ()
    used_at = doc.created_at if kind.endswith(".created") and doc else utc(event.time)
    changed = await documents.sync_hashtag_uses(session, platform, subject_type, pk, tags, used_at)
    counts = await documents.hashtags(session, platform, changed)
    for tag in sorted(changed):
        if tag in counts:
            upserts.append(HashtagDoc(name=tag, platform=platform, usage_count=counts[tag]))
        else:
            deletes.setdefault(SearchType.HASHTAG, []).append(tag)
    if type_ is SearchType.POST and doc is not None:
        place = await documents.post_location(session, pk)
        if place is not None:
            upserts.append(place)
    return upserts, deletes


def _users_of(event: Event) -> list[int]:
    """The accounts whose document an account event changes."""
    data = event.data
    if event.type == "user.blocked":
        pairs = data.get("unfollowed") or []
        ids = {int(p["followee_id"]) for p in pairs if isinstance(p, dict) and "followee_id" in p}
        return sorted(ids)
    if event.type in FOLLOW_EVENTS:
        return [int(data.get("followee_id") or event.subject_id)]
    return [event.subject_id]
