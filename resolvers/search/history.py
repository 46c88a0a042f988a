"""searchHistory and clearSearchHistory: the signed-in viewer's own queries.

Private to the viewer: there is no way to name another user, and signed out both
fields are UNAUTHENTICATED. Searches are recorded by resolvers/search/search.py
(first pages only, so paging through results is one search).
"""

from __future__ import annotations

from datasources.search.history import HISTORY_LIMIT, HistoryEntry
from resolvers.context import Context
from resolvers.errors import BadUserInput


async def history(context: Context, limit: int | None) -> list[HistoryEntry]:
    viewer = context.require_viewer()
    size = 20 if limit is None else limit
    if not 1 <= size <= HISTORY_LIMIT:
        raise BadUserInput(f"limit must be between 1 and {HISTORY_LIMIT}", field="limit")
    return await context.stores.search_log.history(viewer.user_id, size)


async def clear(context: Context) -> bool:
    viewer = context.require_viewer()
    await context.stores.search_log.clear(viewer.user_id)
    return True
