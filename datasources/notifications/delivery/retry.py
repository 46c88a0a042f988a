"""Retrying a delivery the provider asked us to retry (429, 5xx, network errors).

Exponential backoff with jitter, capped, for a bounded number of attempts, and
never sooner than the provider's Retry-After. A Retry-After longer than the cap is
not slept through here: the result goes back to the caller (the notification
worker), which requeues the delivery for that time instead of holding a task.
The sleep and the random source are injectable so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from datasources.notifications.delivery.push import DeliveryResult, Outcome

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt n (from 0) that failed waits min(cap, first × 2ⁿ) scaled by a random
    factor in [1 − jitter, 1], so senders that failed together spread out."""

    attempts: int = 5  # including the first
    first: float = 1.0
    cap: float = 60.0
    jitter: float = 0.5

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        base = min(self.cap, self.first * 2**failures)
        return base * (1 - self.jitter * rand())


async def with_retries(
    attempt: Callable[[], Awaitable[DeliveryResult]],
    policy: RetryPolicy = RetryPolicy(),
    *,
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> DeliveryResult:
    """Call `attempt` until it is not RETRY_LATER or the attempts are spent; the
    last result is returned either way (RETRY_LATER: the caller requeues it)."""
    failures = 0
    while True:
        result = await attempt()
        if result.outcome is not Outcome.RETRY_LATER:
            return result
        failures += 1
        if failures >= policy.attempts:
            return result
        if result.retry_after is not None and result.retry_after > policy.cap:
            return result
        wait = policy.delay(failures - 1, rand)
        if result.retry_after is not None:
            wait = max(wait, result.retry_after)
        await sleep(wait)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date
    (RFC 9110 §10.2.3); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
