"""Per-request DataLoaders of messaging: conversations and their members.

A conversation's `members`, `readStates` and the viewer's `unreadCount` all come
from its member rows, loaded for a whole page of conversations in one statement
(`members`); the users behind them through `UserLoaders`. A page of
conversations therefore costs a fixed number of statements whatever its size
(tests/test_messaging_relay.py pins it). Calls named by several `node` fields (or
federation `_entities`) of one request are read in one statement too (`call`).
"""

from __future__ import annotations

from collections.abc import Sequence

from datasources.loading import DataLoader
from datasources.messaging.calls import CallRecord, CallStore
from datasources.messaging.conversations import ConversationStore
from datasources.messaging.records import ConversationRecord, MemberRecord

MAX_BATCH = 500


class MessagingLoaders:
    def __init__(self, store: ConversationStore, platform: str, calls: CallStore) -> None:
        self.store = store
        self.platform = platform
        self.calls = calls
        self.conversation = DataLoader[int, ConversationRecord | None](
            self._conversations, max_batch_size=MAX_BATCH
        )
        self.members = DataLoader[int, list[MemberRecord]](self._members, max_batch_size=MAX_BATCH)
        self.call = DataLoader[int, CallRecord | None](self._calls, max_batch_size=MAX_BATCH)

    async def _conversations(self, ids: Sequence[int]) -> list[ConversationRecord | None]:
        found = await self.store.by_ids(self.platform, ids)
        return [found.get(pk) for pk in ids]

    async def _members(self, ids: Sequence[int]) -> list[list[MemberRecord]]:
        found = await self.store.members_of(ids)
        return [found.get(pk, []) for pk in ids]

    async def _calls(self, ids: Sequence[int]) -> list[CallRecord | None]:
        found = await self.calls.by_ids(self.platform, ids)
        return [found.get(pk) for pk in ids]
