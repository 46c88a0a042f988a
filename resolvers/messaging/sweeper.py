"""The messaging sweeper: purges envelopes at their expiry and after the retention.

Runs every `messaging_sweep_seconds` (60 by default) in `entativa worker`, or in
the embedded server, like the stories sweeper. An envelope goes when its
`expires_at` (the message's `expiresInSeconds` or the conversation's
disappearing timer) has come, read or not, and every envelope after
`envelope_retention_days` (30) undelivered. Reads already hide expired
envelopes from the moment they expire; the sweep reclaims them (ciphertext
that nobody can fetch any more should not stay on disk either). Each round also
purges encrypted attachments past their retention and ends the calls that rang out
while no process held their timer (`sweep_round`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from resolvers.messaging.attachments import purge_expired
from resolvers.messaging.calls import sweep_ringing
from resolvers.periodic import Periodic

if TYPE_CHECKING:
    from datasources.registry import Stores


PURGE_BATCH = 5000
RETENTION = timedelta(days=30)


async def sweep_once(stores: Stores, retention: timedelta = RETENTION) -> int:
    """One round as of `stores.clock()`: how many envelopes were purged."""
    now = stores.clock()
    purged = 0
    while True:
        count = await stores.envelopes.purge(now, retention, PURGE_BATCH)
        purged += count
        if count < PURGE_BATCH:
            return purged


async def sweep_round(
    stores: Stores, retention: timedelta = RETENTION, ring_seconds: float = 60.0
) -> dict[str, int]:
    """Everything messaging keeps only for a while: envelopes, attachments, ringing calls."""
    return {
        "envelopes": await sweep_once(stores, retention),
        "attachments": await purge_expired(stores),
        "calls": await sweep_ringing(stores, ring_seconds),
    }


class MessagingSweeper(Periodic):
    """`sweep_round` every `every_seconds` (resolvers/periodic.py)."""

    name = "messaging sweep"

    def __init__(
        self,
        stores: Stores,
        every_seconds: float,
        retention: timedelta = RETENTION,
        ring_seconds: float = 60.0,
    ) -> None:
        super().__init__(every_seconds)
        self.stores = stores
        self.retention = retention
        self.ring_seconds = ring_seconds

    async def run_round(self) -> dict[str, int] | None:
        swept = await sweep_round(self.stores, self.retention, self.ring_seconds)
        return swept if any(swept.values()) else None


def build_sweeper(
    stores: Stores, every_seconds: float, retention_days: float, ring_seconds: float
) -> MessagingSweeper:
    return MessagingSweeper(stores, every_seconds, timedelta(days=retention_days), ring_seconds)
