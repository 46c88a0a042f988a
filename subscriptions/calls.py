"""Live field `callSignals(deviceId)`: call signals for one of the viewer's own devices.

Signals are ephemeral: resolvers/messaging/calls.py publishes each one on the
topic of every device it is for (`call-signals:<platform>:<user>:<device>`) and
stores none of them, so a device that is not listening misses them (a call is
a live thing: a late OFFER is useless). A viewer subscribes only to a device
they registered (NOT_FOUND otherwise, whoever's it is); the topic names the
viewer, so no one else's socket ever listens there. A signal from a user with a
block either way with the viewer is dropped (hidden_by), as the relay already
skips them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from resolvers.context import Context
from subscriptions.live import SKIP

SIGNAL_KIND = "call_signal"
VIEWER_ARGUMENT = "_viewer_id"
"""Set by `authorize` (the hub and the per-subscriber path both call it before
`topics`), so the topic names the device of the viewer who subscribed."""


def call_signal_topic(platform: str, user_id: int, device_id: int) -> str:
    return f"call-signals:{platform}:{user_id}:{device_id}"


def _device_id(arguments: dict[str, Any]) -> int:
    return int(arguments.get("deviceId", arguments.get("device_id", 0)))


class CallSignals:
    name: ClassVar[str] = "callSignals"

    def topics(self, platform: str, arguments: dict[str, Any]) -> Sequence[str]:
        viewer_id = arguments.get(VIEWER_ARGUMENT)
        if viewer_id is None:
            return ()
        return (call_signal_topic(platform, int(viewer_id), _device_id(arguments)),)

    async def authorize(self, context: Context, arguments: dict[str, Any]) -> None:
        from resolvers.messaging.calls import require_own_device

        viewer = context.require_viewer()
        await require_own_device(context, _device_id(arguments))
        arguments[VIEWER_ARGUMENT] = viewer.user_id

    def handles(self, message: dict[str, Any]) -> bool:
        return message.get("kind") == SIGNAL_KIND

    def hidden_by(self, message: dict[str, Any]) -> Sequence[int]:
        sender = message.get("from_user_id")
        return (int(sender),) if sender is not None else ()

    async def root(self, context: Context, message: dict[str, Any]) -> Any:
        from resolvers.messaging.calls import SignalRecord
        from schema.messaging.calls import CallSignal

        record = SignalRecord.of(message)
        sender = await context.loaders.users.by_id.load(record.from_user_id)
        return SKIP if sender is None else CallSignal(record=record)
