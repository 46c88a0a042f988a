"""Presence and typing: ephemeral state kept in the cache only, never in a durable store.

Presence. A user is online while one of their sockets is open (the realtime
layer calls `connected`/`disconnected`, and `heartbeat` on every keep-alive
tick) or while their app heartbeats some other way (`heartbeat`). Each call
refreshes a mark that expires `ONLINE_SECONDS` later, so a process that dies
without saying goodbye cannot leave anyone online for long. `disconnected`
clears the mark when this process holds no other socket of the user; another
process still holding one sets it again at its next heartbeat (so a user with
sockets in two processes may read offline for at most one keep-alive period).
`lastSeenAt` is the last time any of that happened, kept for `LAST_SEEN_DAYS`.

Typing. `typing` marks a user as typing in a conversation for `TYPING_SECONDS`
(6 s): it ends by itself unless the client sends it again, and `stopped_typing`
ends it at once. Changes are published on the broker (topic `typing:<platform>:
<conversation>`) for the messaging subscription to fan out.

With the in-process cache this is one process's view; with Redis it is shared.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from datasources.cache import Cache
from subscriptions.broker import Broker
from subscriptions.topics import encode

ONLINE_SECONDS = 45.0
LAST_SEEN_DAYS = 30
TYPING_SECONDS = 6.0


def typing_topic(platform: str, conversation_id: str) -> str:
    return f"typing:{platform}:{conversation_id}"


class Presence:
    def __init__(
        self,
        cache: Cache,
        broker: Broker | None = None,
        clock: Callable[[], float] = time.time,
        online_seconds: float = ONLINE_SECONDS,
    ) -> None:
        self.cache = cache
        self.broker = broker
        self.clock = clock
        self.online_seconds = online_seconds
        self._local: Counter[tuple[str, int]] = Counter()  # this process's open sockets

    # ── presence ────────────────────────────────────────────────────────

    async def connected(self, platform: str, user_id: int) -> bool:
        """Count a socket of the user's; True when it is their first one here."""
        key = (platform, user_id)
        self._local[key] += 1
        await self.heartbeat(platform, user_id)
        return self._local[key] == 1

    async def disconnected(self, platform: str, user_id: int) -> bool:
        """Uncount a socket of the user's; True when it was their last one here."""
        key = (platform, user_id)
        self._local[key] -= 1
        await self._seen(platform, user_id)
        if self._local[key] > 0:
            return False
        del self._local[key]
        await self.cache.delete(_online(platform, user_id))
        return True

    async def heartbeat(self, platform: str, user_id: int) -> None:
        await self.cache.set(_online(platform, user_id), "1", self.online_seconds)
        await self._seen(platform, user_id)

    async def heartbeat_local(self) -> None:
        """Refresh every user with a socket open here (the keep-alive timer calls it)."""
        for platform, user_id in list(self._local):
            await self.heartbeat(platform, user_id)

    async def is_online(self, platform: str, user_id: int) -> bool:
        return await self.cache.get(_online(platform, user_id)) is not None

    async def last_seen(self, platform: str, user_id: int) -> datetime | None:
        value = await self.cache.get(_last_seen(platform, user_id))
        return None if value is None else datetime.fromtimestamp(float(value), UTC)

    async def _seen(self, platform: str, user_id: int) -> None:
        ttl = LAST_SEEN_DAYS * 86400
        await self.cache.set(_last_seen(platform, user_id), repr(self.clock()), ttl)

    # ── typing ──────────────────────────────────────────────────────────

    async def typing(self, platform: str, conversation_id: str, user_id: int) -> None:
        """`user_id` is typing now; it ends by itself after TYPING_SECONDS."""
        await self._set_typing(platform, conversation_id, user_id, True)

    async def stopped_typing(self, platform: str, conversation_id: str, user_id: int) -> None:
        await self._set_typing(platform, conversation_id, user_id, False)

    async def typists(self, platform: str, conversation_id: str) -> list[int]:
        """Who is typing in the conversation now, in user id order."""
        return sorted(_live(await self._typing_map(platform, conversation_id), self.clock()))

    async def _typing_map(self, platform: str, conversation_id: str) -> dict[int, float]:
        raw = await self.cache.get(_typing(platform, conversation_id))
        return {int(k): float(v) for k, v in json.loads(raw).items()} if raw else {}

    async def _set_typing(
        self, platform: str, conversation_id: str, user_id: int, on: bool
    ) -> None:
        # Read-modify-write of one small key: a concurrent update may be lost, which
        # costs one indicator until that user's next keystroke (clients repeat it).
        now = self.clock()
        entries = _live(await self._typing_map(platform, conversation_id), now)
        if on:
            entries[user_id] = now + TYPING_SECONDS
        else:
            entries.pop(user_id, None)
        key = _typing(platform, conversation_id)
        if entries:
            await self.cache.set(key, json.dumps(entries), TYPING_SECONDS)
        else:
            await self.cache.delete(key)
        if self.broker is not None:
            message = {"kind": "typing", "user_id": user_id, "typing": on}
            await self.broker.publish(typing_topic(platform, conversation_id), encode(message))


def _live(entries: dict[int, float], now: float) -> dict[int, float]:
    return {uid: until for uid, until in entries.items() if until > now}


def _online(platform: str, user_id: int) -> str:
    return f"online:{platform}:{user_id}"


def _last_seen(platform: str, user_id: int) -> str:
    return f"last-seen:{platform}:{user_id}"


def _typing(platform: str, conversation_id: str) -> str:
    return f"typing:{platform}:{conversation_id}"
