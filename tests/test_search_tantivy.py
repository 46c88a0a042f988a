"""The embedded index shared by processes on one machine (e.g. subgraphs, or serve and
a worker on one data directory): one of them writes, the others search what it wrote."""

from __future__ import annotations

from pathlib import Path

from datasources.search.records import SearchQuery, UserDoc
from datasources.search.tantivy_index import TantivySearchIndex


async def test_one_process_writes_and_the_others_read_its_commits(tmp_path: Path) -> None:
    writer = TantivySearchIndex(tmp_path)
    reader = TantivySearchIndex(tmp_path)  # as another process would open it
    try:
        assert await writer.claim_writer() is True
        assert await reader.claim_writer() is False

        await writer.upsert([UserDoc(1, "socialink", "surf_king", "Surf King")])
        await writer.refresh()
        await reader.refresh()  # follows the commit without writing

        page = await reader.search(SearchQuery(platform="socialink", text="surf"))
        assert [hit.id for hit in page.hits] == ["1"]
    finally:
        await writer.close()
        await reader.close()
