"""The `envelopes(deviceId, afterSequence)` live field: a device's queue, resumable.

Only the device's own user subscribes (NOT_FOUND for a device id that is not
one of theirs, as for pendingEnvelopes). The stream replays the queue after
`afterSequence` (from its start without it), then delivers what the relay
announces on the device's topic (datasources/messaging/queue.py `announce`:
`{"sequence": n}` after each commit), with no gap and no duplicate
(subscriptions/resume.py). An announcement that carries its envelope (the
only one its commit queued for the device) is delivered as it is, unless it
expired meanwhile: a committed envelope, not read back. One that does not is
only a hint, and the envelope is read from the queue; so is everything the
stream replays, and an expired or acknowledged envelope is never replayed.

Sequences have holes where envelopes were acknowledged or purged; a read of the
log that reaches its end therefore reports the device's last sequence handed
out (a `Skip` entry, read before the envelopes: all up to it are committed), so
a live hint after a hole never waits for envelopes that no longer exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from datasources.messaging.envelopes import EnvelopeStore
from datasources.messaging.queue import EnvelopeRecord, device_topic, envelope_from_message
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.messaging import policy
from resolvers.messaging.relay import require_own_device
from subscriptions.live import SKIP

VIEWER_ARGUMENT = "_viewer_id"
"""Set by `authorize` (the device's owner): the topic is the viewer's device's."""


@dataclass(frozen=True)
class Hint:
    """A live announcement: the envelope at `sequence` was queued for the device
    (`record`: that envelope, when the announcement carried it)."""

    user_id: int
    device_id: int
    sequence: int
    record: EnvelopeRecord | None = None


@dataclass(frozen=True)
class Skip:
    """Nothing (left) in the queue up to `sequence`."""

    sequence: int


Entry = EnvelopeRecord | Hint | Skip


def _device(arguments: dict[str, Any]) -> int:
    return int(arguments.get("deviceId", arguments.get("device_id", 0)))


class DeviceLog:
    """A device's queue as a DurableLog (subscriptions/resume.py)."""

    def __init__(self, context: Context, user_id: int, device_id: int) -> None:
        self.context = context
        self.store: EnvelopeStore = context.stores.envelopes
        self.user_id = user_id
        self.device_id = device_id

    async def read_after(self, cursor: int | None, limit: int) -> Sequence[Entry]:
        last = await self.store.last_sequence(self.user_id, self.device_id)  # first: see above
        found: list[Entry] = list(
            await self.store.after(
                self.user_id, self.device_id, cursor, limit, policy.now(self.context)
            )
        )
        reached = found[-1].sequence if found else (cursor or 0)
        if len(found) < limit and last > reached:
            found.append(Skip(last))
        return found


class Envelopes:
    name: ClassVar[str] = "envelopes"
    resumable: ClassVar[bool] = True

    def topics(self, platform: str, arguments: dict[str, Any]) -> Sequence[str]:
        viewer_id = arguments.get(VIEWER_ARGUMENT)
        if viewer_id is None:
            return ()
        return (device_topic(platform, int(viewer_id), _device(arguments)),)

    async def authorize(self, context: Context, arguments: dict[str, Any]) -> None:
        after = self.after(arguments)
        if after is not None and after < 0:
            raise BadUserInput("afterSequence must be 0 or more", field="afterSequence")
        arguments[VIEWER_ARGUMENT] = await require_own_device(context, _device(arguments))

    def handles(self, message: dict[str, Any]) -> bool:
        return isinstance(message.get("sequence"), int)

    def hidden_by(self, message: dict[str, Any]) -> Sequence[int]:
        return ()  # a blocked sender's envelopes were never queued (relay.py)

    def log(self, context: Context, arguments: dict[str, Any]) -> DeviceLog:
        return DeviceLog(context, int(arguments[VIEWER_ARGUMENT]), _device(arguments))

    def after(self, arguments: dict[str, Any]) -> int | None:
        value = arguments.get("afterSequence", arguments.get("after_sequence"))
        return int(value) if value is not None else None

    def cursor_of(self, entry: Entry) -> int:
        return entry.sequence

    def live_entry(self, arguments: dict[str, Any], message: dict[str, Any]) -> Hint | None:
        sequence = message.get("sequence")
        if not isinstance(sequence, int):
            return None
        hint = Hint(int(arguments[VIEWER_ARGUMENT]), _device(arguments), sequence)
        carried = message.get("envelope")  # the record here, its JSON from elsewhere
        if isinstance(carried, dict):
            carried = envelope_from_message(carried)
        if isinstance(carried, EnvelopeRecord):
            key = (carried.recipient_id, carried.recipient_device_id, carried.sequence)
            if key == (hint.user_id, hint.device_id, sequence):
                return Hint(hint.user_id, hint.device_id, sequence, carried)
        return hint

    async def root(self, context: Context, entry: Any) -> Any:
        from schema.messaging.types import Envelope

        if isinstance(entry, Skip):
            return SKIP
        if isinstance(entry, Hint):
            now = policy.now(context)
            record = entry.record
            if record is None:
                record = await context.stores.envelopes.at_sequence(
                    entry.user_id, entry.device_id, entry.sequence, now
                )
            elif record.expires_at is not None and record.expires_at <= now:
                record = None  # expired since it was queued, as the queue's reads skip it
            return SKIP if record is None else Envelope(record=record)
        return Envelope(record=entry)
