"""`entativa search reindex`: rebuild the whole search index from the relational
store without downtime.

1. `hashtag_uses` is brought in line with the posts' and takes' `hashtags`
   columns (rows from before the indexer existed, subjects deleted meanwhile).
2. A new index is built aside (`begin_rebuild`), kind by kind in key order,
   while searches keep reading the live one; then `commit_rebuild` swaps it in
   atomically (store.py).
3. Writes the event indexer made while the rebuild ran may have reached only the
   old index (another process's indexer does not know about the new one), so the
   indexed events of the outbox since the rebuild began (with a margin for
   transactions still open then) are replayed into the new live index: each
   re-reads its subject's current rows, so replaying is idempotent.

On the embedded index a serving process follows the swap at its next refresh
(the indexer's, or at most a second after a search: resolvers/search/search.py).
A write its indexer made to the old generation after this command replayed the
outbox and before it followed the swap is rolled back with the old generation: a
window of about a second, closed by the next event of that subject or another
reindex. Elasticsearch has no such window (one alias; writes land on it).

Progress goes to `progress` as lines (the command prints them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from datasources.search import documents
from datasources.search.indexer import replay_since
from datasources.search.records import SearchType
from datasources.search.store import SearchIndex
from datasources.sql import Database, utcnow

BATCH = 1000
BAR_WIDTH = 30
PROGRESS_SECONDS = 0.5  # a progress line at most this often per kind
REPLAY_MARGIN = timedelta(minutes=1)  # transactions open when the rebuild began


def bar(done: int, total: int) -> str:
    filled = BAR_WIDTH if total == 0 else BAR_WIDTH * done // total
    percent = 100 if total == 0 else 100 * done // total
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} ({percent}%)"


async def reindex(
    db: Database,
    index: SearchIndex,
    progress: Callable[[str], None] = lambda _line: None,
    batch: int = BATCH,
) -> dict[SearchType, int]:
    """Rebuild `index` from `db`; returns the documents indexed per kind."""
    started, clock = utcnow(), time.monotonic()
    fixed = await documents.backfill_hashtag_uses(db, batch)
    if fixed:
        progress(f"hashtag uses brought up to date for {fixed} posts and takes")
    totals = {kind: await documents.count(db, kind) for kind in documents.KINDS}
    done: dict[SearchType, int] = dict.fromkeys(documents.KINDS, 0)
    writer = await index.begin_rebuild()
    try:
        for kind in documents.KINDS:
            total, label = totals[kind], f"{kind.value.lower():<9}"
            last_shown = time.monotonic()
            async for docs in documents.batches(db, kind, batch):
                await writer.upsert(docs)
                done[kind] += len(docs)
                now = time.monotonic()
                if now - last_shown >= PROGRESS_SECONDS and done[kind] < total:
                    progress(f"{label} {bar(done[kind], total)}")
                    last_shown = now
            progress(f"{label} {bar(done[kind], done[kind])} done")
        await index.commit_rebuild(writer)
    except BaseException:
        await index.abort_rebuild(writer)
        raise
    replayed = await replay_since(db, index, started - REPLAY_MARGIN)
    seconds = time.monotonic() - clock
    progress(
        f"swapped in the new index: {sum(done.values())} documents, "
        f"{replayed} changes replayed, {seconds:.1f}s"
    )
    return done
