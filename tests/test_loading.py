"""datasources/loading.py: values already loaded come back as values, others batch."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence

import pytest

from datasources.loading import DataLoader, MaybeAwaitable, loaded, resolved, then, unloaded


async def test_loaded_is_a_plain_value_once_the_batch_ran_and_awaitable_before() -> None:
    batches: list[list[int]] = []

    async def load(keys: Sequence[int]) -> list[str]:
        batches.append(list(keys))
        return [f"v{key}" for key in keys]

    loader = DataLoader[int, str](load)
    first: MaybeAwaitable[str] = loaded(loader, 1)
    second: MaybeAwaitable[str] = loaded(loader, 2)
    assert all(inspect.isawaitable(pending) for pending in (first, second))
    assert [await resolved(first), await resolved(second)] == ["v1", "v2"]
    assert batches == [[1, 2]]  # still one batch for both

    assert loaded(loader, 1) == "v1"  # cached: no awaitable, no new batch
    assert batches == [[1, 2]]


async def test_then_converts_values_now_and_awaitables_later() -> None:
    assert then(2, lambda n: n * 10) == 20

    async def three() -> int:
        return 3

    pending: MaybeAwaitable[int] = three()
    later: MaybeAwaitable[int] = then(pending, lambda n: n * 10)
    assert all(inspect.isawaitable(pending) for pending in (later,))
    assert await resolved(later) == 30


async def test_a_cancelled_field_does_not_cancel_the_load_others_wait_for() -> None:
    """graphql-core cancels the siblings of a failed field; another field awaiting
    the same key (the story tray and a user's stories) must still get its value."""
    release = asyncio.Event()

    async def load(keys: Sequence[int]) -> list[str]:
        await release.wait()
        return [f"v{key}" for key in keys]

    loader = DataLoader[int, str](load)

    async def field() -> str:
        return await loader.load(1)

    cancelled, kept = asyncio.create_task(field()), asyncio.create_task(field())
    await asyncio.sleep(0)  # both wait on the batch
    cancelled.cancel()
    release.set()
    assert await kept == "v1"
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await loader.load(1) == "v1"  # cached, not a cancelled future


async def test_unloaded_leaves_out_only_values_already_loaded() -> None:
    """A prefetch skips what is cached; a pending or failed load is still its to await
    (skipping a failed one would turn a page's error into silently missing data)."""
    release = asyncio.Event()

    async def load(keys: Sequence[int]) -> list[str | ValueError]:
        await release.wait()
        return [ValueError("no 3") if key == 3 else f"v{key}" for key in keys]

    loader = DataLoader[int, str](load)
    loader.prime(1, "v1")
    pending = asyncio.ensure_future(loader.load(2))
    failed = asyncio.ensure_future(loader.load(3))
    await asyncio.sleep(0)
    assert unloaded(loader, [1, 2, 4]) == [2, 4]  # 2 is still loading, 4 never asked
    release.set()
    assert await pending == "v2"
    with pytest.raises(ValueError):
        await failed
    assert unloaded(loader, [1, 2, 3]) == [3]


async def test_a_loader_does_not_keep_the_object_holding_it_alive() -> None:
    """A batch function that is a method of the loader's holder is held weakly: the
    holder and everything its loaders cached are freed with it, not by the cycle
    collector; a loader outliving its holder says so."""
    import gc
    import weakref

    class Holder:
        def __init__(self) -> None:
            self.by_id = DataLoader[int, str](self._load)

        async def _load(self, keys: Sequence[int]) -> list[str]:
            return [f"v{key}" for key in keys]

    holder = Holder()
    assert await holder.by_id.load(1) == "v1"
    loader, gone = holder.by_id, weakref.ref(holder)
    gc.disable()  # freed by reference counting alone
    try:
        del holder
        assert gone() is None
    finally:
        gc.enable()
    with pytest.raises(RuntimeError, match="Holder._load called after its object was freed"):
        await loader.load(2)
