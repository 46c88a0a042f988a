"""datasources/loading.py: values already loaded come back as values, others batch."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from datasources.loading import MaybeAwaitable, loaded, resolved, then


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
