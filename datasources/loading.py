"""Reading through per-request DataLoaders without paying for what is already loaded.

graphql-core runs every awaitable a resolver returns as an asyncio task, and a
connection of 50 nodes with two loader-backed fields each makes 100 of them even
when one batched query per field already brought every value in. `loaded()`
hands back the plain value when the request's loader holds it, so such fields
resolve synchronously; anything not yet loaded still goes through `load()` and is
batched as usual. Connections prefetch what their nodes' selection asks for
(e.g. schema/users/types.py) to make that the common case.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeAlias, TypeGuard, TypeVar, Union, cast
from weakref import WeakMethod

from graphql.pyutils import is_awaitable
from strawberry.dataloader import DataLoader as StrawberryDataLoader

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


class DataLoader(StrawberryDataLoader[K, V]):
    """strawberry's DataLoader whose loads survive the cancellation of one awaiter,
    and which does not keep the object that holds it alive.

    Every field asking for a key awaits the same cached future. graphql-core (3.3
    on) cancels the sibling fields of a field that failed, and cancelling a task
    cancels the future it awaits: without the shield, one cancelled field would
    cancel the load for every other field of the request waiting on that key
    (they would get CancelledError, which no resolver handles). Each awaiter gets
    its own shield; the shared future runs to the end.

    A batch function that is a method of the object holding the loader (each
    domain's loaders: `DataLoader(self._posts)`) is referenced weakly. A strong
    reference would close a cycle (holder -> loader -> bound method -> holder)
    and everything the request read, cached in the loader, would wait for the
    cycle collector instead of being freed when the request ends: under load that
    made the collector's full passes a sixth of the server's time (bench/feed.py).
    The holder outlives its loads: it belongs to the request's Loaders.
    """

    def __init__(self, load_fn: Callable[[list[K]], Awaitable[Sequence[V]]], **kwargs: Any) -> None:
        super().__init__(weakly_bound(load_fn), **kwargs)

    def load(self, key: K) -> Awaitable[V]:
        return asyncio.shield(super().load(key))


def weakly_bound(function: F) -> F:
    """`function`, holding its object weakly when it is a bound method: for a callable
    stored inside what its object holds, which would otherwise close a reference cycle
    (see DataLoader)."""
    if not inspect.ismethod(function):
        return function
    method = WeakMethod(function)
    name = function.__qualname__

    def call(*args: Any, **kwargs: Any) -> Any:
        bound = method()
        if bound is None:
            raise RuntimeError(f"{name} called after its object was freed")
        return bound(*args, **kwargs)

    return cast(F, call)


MaybeAwaitable: TypeAlias = Union[V, Awaitable[V]]  # noqa: UP007 (a generic alias)


def loaded(loader: DataLoader[K, V], key: K) -> MaybeAwaitable[V]:
    """`key`'s value when this request already loaded it, else its (batched) load."""
    future = loader.cache_map.get(key)
    if _holds_value(future):
        return cast(V, future.result())
    return loader.load(key)


def unloaded(loader: DataLoader[K, V], keys: Iterable[K]) -> list[K]:
    """The `keys` whose value this request has not loaded yet (pending, failed or
    never asked for): what a prefetch still has to load. Loading the others again
    would only gather futures that are already done."""
    return [key for key in keys if not _holds_value(loader.cache_map.get(key))]


def _holds_value(future: asyncio.Future[V] | None) -> TypeGuard[asyncio.Future[V]]:
    """Whether a cached future has a value to hand out (its result() will not raise)."""
    return (
        future is not None
        and future.done()
        and not future.cancelled()
        and future.exception() is None
    )


def then(result: MaybeAwaitable[V], convert: Callable[[V], R]) -> MaybeAwaitable[R]:
    """`convert` applied to `result`, now if it is a value, later if it is awaitable.

    Awaitability is tested as graphql-core tests field results (`__await__`), not
    with inspect.isawaitable, whose ABC check is slow for the plain values that
    prefetched fields mostly hand in."""
    if is_awaitable(result):
        pending = result

        async def convert_later() -> R:
            return convert(await pending)

        return convert_later()
    return convert(cast(V, result))


async def resolved(result: MaybeAwaitable[V]) -> V:
    """Await `result` if it is awaitable (for callers that are async anyway)."""
    if is_awaitable(result):
        return await result
    return cast(V, result)


def forget(loader: DataLoader[K, V], keys: Iterable[K]) -> None:
    """clear() without strawberry's KeyError for a key that was never loaded."""
    for key in keys:
        if loader.cache_map.get(key) is not None:
            loader.clear(key)
