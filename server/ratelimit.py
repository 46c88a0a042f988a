"""Rate limits per operation class, per user and per client address, in one place.

An operation's class comes from its root fields (`classify`): `signIn` is sign-in,
`signUp` sign-up, `claimPreKeyBundles` a key claim, any other mutation field a write,
`search` / `autocomplete` a search; other queries are not rate limited here (their
cost is, server/cost.py). Each root field of a class takes one token, so aliasing a
mutation ten times costs ten.

Who pays: a signed-out request pays from its address's bucket; a signed-in one from
its user's bucket AND from a bucket of its address that is `signed_in_address_factor`
times looser (many people share an address behind a NAT; one person with many
accounts still meets it). All buckets of a request are checked and taken together:
a refused request takes no token anywhere.

The buckets are GCRA token buckets (the "generic cell rate algorithm": one number per
bucket, the time it will be full again), refilled at `per_minute` and holding at most
`burst` tokens. On Redis (`RedisCache`) one Lua script checks and takes every bucket
of a request atomically, on the Redis server's clock, so every replica shares them;
otherwise they live in the process's cache, whose methods never suspend mid-update.

A refused request gets RATE_LIMITED with `extensions.retryAfter` (whole seconds until
every bucket it needs holds enough tokens), and HTTP `Retry-After`, before anything
executes. The sign-in *failure* limit (resolvers/users/sessions.py) is separate and
stays: it counts wrong passwords per account, this counts attempts per caller.
"""

from __future__ import annotations

import math
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.utilities import get_operation_ast
from strawberry.types import ExecutionContext

from datasources.cache import UNREACHABLE, Cache, RedisCache
from resolvers.errors import RateLimited
from server.settings import OperationClass, RateLimit, RateLimits

MUTATION_CLASSES: dict[str, OperationClass] = {
    "signIn": "sign_in",
    "signUp": "sign_up",
    "claimPreKeyBundles": "key_claims",  # messaging: applies from the day it exists
}
QUERY_CLASSES: dict[str, OperationClass] = {"search": "search", "autocomplete": "search"}


def _root_fields(
    selection_set: SelectionSetNode, document: DocumentNode, seen: set[str]
) -> Iterator[str]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, document, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            for definition in document.definitions:
                if (
                    isinstance(definition, FragmentDefinitionNode)
                    and definition.name.value == selection.name.value
                ):
                    yield from _root_fields(definition.selection_set, document, seen)


def classify(document: DocumentNode, operation_name: str | None) -> Counter[OperationClass]:
    """Tokens the operation takes per class: one per root field of that class."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return Counter()
    classes: Counter[OperationClass] = Counter()
    for field in _root_fields(operation.selection_set, document, set()):
        if field.startswith("__"):
            continue
        if operation.operation is OperationType.MUTATION:
            classes[MUTATION_CLASSES.get(field, "writes")] += 1
        elif operation.operation is OperationType.QUERY and field in QUERY_CLASSES:
            classes[QUERY_CLASSES[field]] += 1
    return classes


@dataclass(frozen=True)
class Bucket:
    key: str
    interval_ms: float  # time to earn one token back
    burst: int

    @classmethod
    def of(cls, key: str, limit: RateLimit, factor: float = 1.0) -> Bucket:
        per_minute = max(limit.per_minute * factor, 1e-9)
        return cls(key, 60_000 / per_minute, max(1, math.floor(limit.burst * factor)))


def buckets(
    limits: RateLimits, kind: OperationClass, user_id: int | None, address: str
) -> list[Bucket]:
    limit: RateLimit = getattr(limits, kind)
    if user_id is None:
        return [Bucket.of(f"rate:{kind}:address:{address}", limit)]
    return [
        Bucket.of(f"rate:{kind}:user:{user_id}", limit),
        Bucket.of(
            f"rate:{kind}:signed-in-address:{address}", limit, limits.signed_in_address_factor
        ),
    ]


# KEYS: the buckets; ARGV: interval_ms, burst and cost of each bucket. Returns 0 (taken
# from all) or the milliseconds until all could give their cost (none taken).
TAKE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local wait = 0
local full_at = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  full_at[i] = tat + interval * cost
  local allowed_at = full_at[i] - interval * burst
  if allowed_at - now > wait then wait = allowed_at - now end
end
if wait > 0 then return math.ceil(wait) end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tostring(full_at[i]), 'PX', math.max(1, math.ceil(full_at[i] - now)))
end
return 0
"""

_scripts: weakref.WeakKeyDictionary[RedisCache, Any] = weakref.WeakKeyDictionary()


async def take(
    cache: Cache, costs: Sequence[tuple[Bucket, int]], clock: Callable[[], float] = time.monotonic
) -> float:
    """Take each bucket's cost from it, from all or from none: 0, or seconds to wait."""
    if isinstance(cache, RedisCache):
        try:
            if not cache.skipping():
                return await _take_on_redis(cache, costs)
        except UNREACHABLE as error:  # Redis down: this process's buckets meanwhile
            cache.lost(error)
        cache = cache.fallback
    # In-process: no await below suspends (MemoryCache), so this is atomic under asyncio.
    now = clock() * 1000
    full_at: list[float] = []
    wait = 0.0
    for bucket, cost in costs:
        stored = await cache.get(bucket.key)
        tat = max(float(stored), now) if stored is not None else now
        full_at.append(tat + bucket.interval_ms * cost)
        wait = max(wait, full_at[-1] - bucket.interval_ms * bucket.burst - now)
    if wait > 0:
        return wait / 1000
    for (bucket, _), at in zip(costs, full_at, strict=True):
        await cache.set(bucket.key, repr(at), (at - now) / 1000)
    return 0.0


async def _take_on_redis(cache: RedisCache, costs: Sequence[tuple[Bucket, int]]) -> float:
    script = _scripts.get(cache)
    if script is None:
        script = _scripts[cache] = cache.client.register_script(TAKE_SCRIPT)
    args: list[float] = []
    for bucket, cost in costs:
        args += [bucket.interval_ms, bucket.burst, cost]
    keys = [cache.prefix + bucket.key for bucket, _ in costs]
    return int(await script(keys=keys, args=args)) / 1000


async def check(
    cache: Cache,
    limits: RateLimits,
    classes: Counter[OperationClass],
    user_id: int | None,
    address: str,
) -> int:
    """0 when the operation may run (its tokens taken), else retryAfter in seconds."""
    costs = [
        (bucket, cost)
        for kind, cost in classes.items()
        for bucket in buckets(limits, kind, user_id, address)
    ]
    waited = await take(cache, costs)
    return max(1, math.ceil(waited)) if waited else 0


async def over_limits(
    context: Any, document: DocumentNode, operation_name: str | None
) -> RateLimited | None:
    """Before an operation executes: RATE_LIMITED when it is over its class's limits
    (nothing taken), else None (its tokens taken). A context without our settings and
    stores (tests of schema pieces) is never limited."""
    settings = getattr(context, "settings", None)
    stores = getattr(context, "stores", None)
    if settings is None or stores is None:
        return None
    limits: RateLimits = settings.rate_limits
    classes = classify(document, operation_name) if limits.enabled else Counter()
    if not classes:
        return None
    viewer = getattr(context, "viewer", None)
    address = getattr(context, "client_address", "unknown")
    retry_after = await check(
        stores.cache, limits, classes, viewer.user_id if viewer else None, address
    )
    return RateLimited(retry_after) if retry_after else None


async def refuse_over_limits(execution: ExecutionContext) -> None:
    """`over_limits` for strawberry's runner: a refused operation's result becomes
    RATE_LIMITED (and `Retry-After` over HTTP), so nothing executes. Run by the
    server's schema extension (server/limits.py `ServeOperation`)."""
    document = execution.graphql_document
    if document is None:
        return
    refused = await over_limits(execution.context, document, execution.operation_name)
    if refused is None:
        return
    execution.result = GraphQLExecutionResult(data=None, errors=[refused])
    headers = getattr(getattr(execution.context, "response", None), "headers", None)
    if headers is not None:  # HTTP (a websocket has no response headers)
        headers["Retry-After"] = str(refused.retry_after)
