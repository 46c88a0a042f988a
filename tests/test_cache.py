"""The cache contract: the same tests against MemoryCache and RedisCache."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from datasources.cache import Cache, MemoryCache, RedisCache, build_cache
from datasources.registry import build_stores
from tests.services import REDIS_URL, require


def require_redis() -> None:
    where = urlparse(REDIS_URL)
    require("Redis", where.hostname or "127.0.0.1", where.port or 6379)


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        memory = MemoryCache()
        yield memory
        await memory.close()
        return
    require_redis()
    prefix = f"test:{uuid.uuid4().hex}:"  # tests never see each other's keys
    shared = RedisCache(REDIS_URL, prefix=prefix)
    yield shared
    async for key in shared.client.scan_iter(match=prefix + "*"):
        await shared.client.delete(key)
    await shared.close()


async def test_set_get_delete(cache: Cache) -> None:
    assert await cache.get("missing") is None
    await cache.set("greeting", "hello", ttl_seconds=30)
    await cache.set("other", "world", ttl_seconds=30)
    assert await cache.get("greeting") == "hello"
    await cache.delete("greeting")
    assert await cache.get("greeting") is None
    assert await cache.get("other") == "world"
    await cache.delete("never-set")  # deleting nothing is fine


async def test_set_replaces_value_and_ttl(cache: Cache) -> None:
    await cache.set("key", "first", ttl_seconds=0.2)
    await cache.set("key", "second", ttl_seconds=30)
    await asyncio.sleep(0.3)
    assert await cache.get("key") == "second"


async def test_values_expire_after_their_ttl(cache: Cache) -> None:
    await cache.set("short", "gone soon", ttl_seconds=0.2)
    await cache.set("long", "stays", ttl_seconds=30)
    assert await cache.get("short") == "gone soon"
    await asyncio.sleep(0.3)
    assert await cache.get("short") is None
    assert await cache.get("long") == "stays"


async def test_hit_counts_within_a_window(cache: Cache) -> None:
    first = await cache.hit("logins", window_seconds=60)
    assert first.hits == 1 and 59 < first.resets_in <= 60
    assert (await cache.hit("logins", 60)).hits == 2
    count, resets_in = await cache.hit("logins", 60)
    assert count == 3 and 0 < resets_in <= 60
    assert (await cache.hit("other", 60)).hits == 1  # keys count apart
    assert (await cache.hit("logins", 60, amount=-1)).hits == 2  # giving a hit back
    assert await cache.get("logins") == "2"


async def test_window_is_fixed_and_resets(cache: Cache) -> None:
    await cache.hit("w", window_seconds=0.5)
    await asyncio.sleep(0.3)
    later = await cache.hit("w", window_seconds=0.5)
    assert later.hits == 2
    assert later.resets_in <= 0.25  # a later hit does not extend the window
    await asyncio.sleep(0.3)
    fresh = await cache.hit("w", window_seconds=0.5)
    assert fresh.hits == 1  # the window ended: counting starts again
    assert fresh.resets_in > 0.4


async def test_concurrent_hits_are_all_counted(cache: Cache) -> None:
    windows = await asyncio.gather(*(cache.hit("busy", 60) for _ in range(50)))
    assert sorted(window.hits for window in windows) == list(range(1, 51))
    assert (await cache.hit("busy", 60)).hits == 51


async def test_ping(cache: Cache) -> None:
    await cache.ping()


async def test_memory_cache_forgets_expired_entries() -> None:
    """Expired keys are dropped, not kept forever: the process must not grow."""
    now = [0.0]
    memory = MemoryCache(clock=lambda: now[0])
    for index in range(1000):
        await memory.set(f"k{index}", "v", ttl_seconds=1)
        await memory.hit(f"h{index}", window_seconds=1)
    now[0] = 2.0
    await memory.set("fresh", "v", ttl_seconds=1)
    assert len(memory._entries) == 1
    assert len(memory._expiries) == 1


def test_settings_pick_the_implementation() -> None:
    assert isinstance(build_cache(""), MemoryCache)
    assert isinstance(build_cache(REDIS_URL), RedisCache)


async def test_stores_use_redis_when_configured(tmp_path: Path) -> None:
    require_redis()
    stores = build_stores(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", redis_url=REDIS_URL)
    try:
        assert isinstance(stores.cache, RedisCache)
        key = f"test:{uuid.uuid4().hex}"
        await stores.cache.set(key, "shared", ttl_seconds=5)
        other = RedisCache(REDIS_URL)  # another process would see it
        assert await other.get(key) == "shared"
        await other.delete(key)
        await other.close()
    finally:
        await stores.close()
