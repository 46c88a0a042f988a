"""The cache: fixed-window counters and short-lived marks, in-process or in Redis.

What the domains need is small: count hits in a fixed window (rate limits) and
keep a value for a while (e.g. "this token family is revoked"). Every entry has
a TTL, so nothing here outlives its purpose. `MemoryCache` serves one process
(the embedded default); `RedisCache` is shared by every replica, which is what
makes a rate limit or a revocation hold across processes.
"""
from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple, Protocol, TypeVar

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("entativa.cache")

T = TypeVar("T")

UNREACHABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
"""What a Redis call raises when the server is down or cut off (not a bad command)."""


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

    def remaining(self, key: str) -> tuple[str, float] | None:
        """The value at `key` and the seconds it has left, or None."""
        now = self._clock()
        entry = self._live(key, now)
        return None if entry is None else (entry[0], entry[1] - now)

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
    """The shared cache. Keys get `prefix` so several apps can share one Redis.

    Redis down must not take the API down with it (issue 9: queries and mutations
    keep working through a Redis restart). While Redis does not answer, each call
    is served by an in-process `fallback` (so rate limits and marks still hold in
    this process) and `degraded` is true (callers that need a shared answer, e.g.
    the revocation check in server/runtime.py, then ask the database). Marks set or
    deleted meanwhile are written to Redis when it answers again, so a sign-out
    during the outage holds in every process afterwards. `ping` still fails, so
    readiness shows the outage.
    """

    PENDING_LIMIT = 100_000  # marks kept for replay; beyond, the oldest are dropped
    RETRY_SECONDS = 1.0  # while degraded, Redis is tried again at most this often

    def __init__(self, url: str, prefix: str = "entativa:") -> None:
        self.client = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=5.0
        )
        self.prefix = prefix
        self._hit = self.client.register_script(HIT_SCRIPT)
        self.fallback = MemoryCache()
        self.degraded = False
        self._retry_at = 0.0
        self._pending: dict[str, bool] = {}  # key → set (True) or deleted (False) meanwhile

    def lost(self, error: BaseException) -> None:
        """Note that Redis did not answer: calls go to the fallback until it does."""
        if not self.degraded:
            log.warning(
                "Redis unreachable (%r): the cache runs in this process until it answers",
                error,
            )
        self.degraded = True
        self._retry_at = time.monotonic() + self.RETRY_SECONDS

    def skipping(self) -> bool:
        """Whether to go straight to the fallback: Redis failed less than
        RETRY_SECONDS ago (a request does not wait on a dead server each time)."""
        return self.degraded and time.monotonic() < self._retry_at

    async def _call(
        self, remote: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        """`remote()` on Redis, or `local()` on the fallback while Redis is unreachable."""
        if self.skipping():
            return await local()
        try:
            result = await remote()
        except UNREACHABLE as error:
            self.lost(error)
            return await local()
        if self.degraded:
            await self._recovered()
        return result

    async def _recovered(self) -> None:
        """Redis answers again: write back the marks set or deleted meanwhile."""
        self.degraded = False
        pending, self._pending = self._pending, {}
        try:
            for key, was_set in pending.items():
                entry = self.fallback.remaining(key) if was_set else None
                if entry is not None and entry[1] > 0:
                    await self.client.set(self.prefix + key, entry[0], px=_milliseconds(entry[1]))
                elif not was_set:
                    await self.client.delete(self.prefix + key)
        except UNREACHABLE as error:  # gone again: keep what is not written yet
            self._pending = pending | self._pending
            self.lost(error)
            return
        log.warning("Redis answers again: %d mark(s) written back", len(pending))

    def _remember(self, key: str, was_set: bool) -> None:
        self._pending.pop(key, None)
        self._pending[key] = was_set
        while len(self._pending) > self.PENDING_LIMIT:
            self._pending.pop(next(iter(self._pending)))

    async def hit(self, key: str, window_seconds: float, amount: int = 1) -> Window:
        async def remote() -> Window:
            count, ttl_ms = await self._hit(
                keys=[self.prefix + key], args=[_milliseconds(window_seconds), amount]
            )
            return Window(int(count), int(ttl_ms) / 1000)

        return await self._call(remote, lambda: self.fallback.hit(key, window_seconds, amount))

    async def get(self, key: str) -> str | None:
        async def remote() -> str | None:
            value = await self.client.get(self.prefix + key)
            return None if value is None else str(value)

        return await self._call(remote, lambda: self.fallback.get(key))

    async def set(self, key: str, value: str, ttl_seconds: float) -> None:
        async def local() -> None:
            await self.fallback.set(key, value, ttl_seconds)
            self._remember(key, True)

        async def remote() -> None:
            await self.client.set(self.prefix + key, value, px=_milliseconds(ttl_seconds))

        await self._call(remote, local)

    async def delete(self, key: str) -> None:
        async def local() -> None:
            await self.fallback.delete(key)
            self._remember(key, False)

        async def remote() -> None:
            await self.client.delete(self.prefix + key)

        await self._call(remote, local)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


def build_cache(redis_url: str) -> Cache:
    """Redis when a URL is configured, else the in-process cache."""
    return RedisCache(redis_url) if redis_url else MemoryCache()
