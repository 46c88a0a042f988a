"""The cache: fixed-window counters and short-lived marks, in-process or in Redis.

What the domains need is small: count hits in a fixed window (rate limits) and
keep a value for a while (e.g. "this token family is revoked"). Every entry has
a TTL, so nothing here outlives its purpose. `MemoryCache` serves one process
(the embedded default); `RedisCache` is shared by every replica, which is what
makes a rate limit or a revocation hold across processes.
"""
from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

import redis.asyncio as redis


class Window(NamedTuple):
    """A fixed-window counter after a hit: its count and the seconds until it resets."""

    hits: int
    resets_in: float


class Cache(Protocol):
    async def hit(self, key: str, window_seconds: float, amount: int = 1) -> Window:
        """Add `amount` to the counter at `key` (atomically) and return the window.

        The first hit opens a window of `window_seconds`; later hits do not extend
        it (a fixed window, not a sliding one). A negative `amount` gives back a hit.
        """
        ...

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def _milliseconds(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class MemoryCache:
    """One process's cache. Safe under asyncio: no method awaits mid-update.

    TTLs run on the monotonic clock, so a wall-clock change cannot expire or
    revive entries. Expired entries are dropped lazily, oldest first, on writes.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[str, float]] = {}  # key → (value, expires at)
        self._expiries: list[tuple[float, str]] = []  # heap; may hold stale pairs

    def _live(self, key: str, now: float) -> tuple[str, float] | None:
        entry = self._entries.get(key)
        if entry is not None and entry[1] <= now:
            del self._entries[key]
            return None
        return entry

    def _store(self, key: str, value: str, expires_at: float, now: float) -> None:
        self._entries[key] = (value, expires_at)
        heapq.heappush(self._expiries, (expires_at, key))
        while self._expiries and self._expiries[0][0] <= now:
            expired_at, old = heapq.heappop(self._expiries)
            entry = self._entries.get(old)
            if entry is not None and entry[1] == expired_at:
                del self._entries[old]

    async def hit(self, key: str, window_seconds: float, amount: int = 1) -> Window:
        now = self._clock()
        entry = self._live(key, now)
        if entry is None:
            count, expires_at = amount, now + window_seconds
            self._store(key, str(count), expires_at, now)
        else:  # same window: its expiry is already in the heap
            count, expires_at = int(entry[0]) + amount, entry[1]
            self._entries[key] = (str(count), expires_at)
        return Window(count, expires_at - now)

    async def get(self, key: str) -> str | None:
        entry = self._live(key, self._clock())
        return entry[0] if entry else None

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        now = self._clock()
        self._store(key, value, now + ttl_seconds, now)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()
        self._expiries.clear()


# INCRBY and PEXPIRE in one script, so the counter and its window are set
# atomically (no key left without a TTL if the client dies between the two).
# `ttl < 0` covers a new key and a key that somehow lost its TTL.
HIT_SCRIPT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisCache:
    """The shared cache. Keys get `prefix` so several apps can share one Redis."""

    def __init__(self, url: str, prefix: str = "entativa:") -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self._hit = self.client.register_script(HIT_SCRIPT)

    async def hit(self, key: str, window_seconds: float, amount: int = 1) -> Window:
        count, ttl_ms = await self._hit(
            keys=[self.prefix + key], args=[_milliseconds(window_seconds), amount]
        )
        return Window(int(count), int(ttl_ms) / 1000)

    async def get(self, key: str) -> str | None:
        value = await self.client.get(self.prefix + key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        await self.client.set(self.prefix + key, value, px=_milliseconds(ttl_seconds))

    async def delete(self, key: str) -> None:
        await self.client.delete(self.prefix + key)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


def build_cache(redis_url: str) -> Cache:
    """Redis when a URL is configured, else the in-process cache."""
    return RedisCache(redis_url) if redis_url else MemoryCache()
