"""Calls: startCall, sendCallSignal, the ring timeout. Signals are never stored.

- `startCall` (a member of the conversation, from one of their own devices)
  creates the call row and sends its OFFER to every device of the other members.
- `sendCallSignal` relays ANSWER, ICE_CANDIDATE, HANGUP, REJECT and BUSY from a
  member's device to every other device of the conversation's members (the
  caller's, and the callee's other devices so they stop ringing when one
  answers). A non-member gets NOT_FOUND, like the conversation itself. In a
  DIRECT conversation HANGUP, REJECT and BUSY end the call; in a group only the
  caller's HANGUP does (one member declining leaves the others in the call).
- An unanswered call ends `call_ring_seconds` (60) after it started: `endedAt`
  reads so from that moment, the process that started it ends the row and sends
  HANGUP (subscriptions/timers.py), and the ring sweep (`sweep_ringing`, run by
  the messaging sweeper) does it for calls whose process died.
- Payloads are opaque (SDP or ICE candidates the clients encrypted end to end):
  relayed as they came, at most `MAX_SIGNAL_BYTES`, through the realtime broker
  to the `callSignals(deviceId)` subscriptions of the devices. Only the call row
  (who, when, which conversation, what kind) outlives the call.
- Users with a block either way get nothing from each other (like messages to
  someone who blocked the sender, dropped without telling the sender).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from datasources.messaging.calls import CallRecord, NewCall
from datasources.realtime import blocked_either_way
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, NotFound, PayloadTooLarge
from resolvers.ids import decode_id, key_of
from resolvers.messaging import policy
from subscriptions.calls import SIGNAL_KIND, call_signal_topic
from subscriptions.topics import encode

if TYPE_CHECKING:
    from datasources.registry import Stores

MAX_SIGNAL_BYTES = 64 * 1024
KINDS = ("AUDIO", "VIDEO")
OFFER, ANSWER, ICE_CANDIDATE, HANGUP, REJECT, BUSY = (
    "OFFER",
    "ANSWER",
    "ICE_CANDIDATE",
    "HANGUP",
    "REJECT",
    "BUSY",
)
RELAYED = (ANSWER, ICE_CANDIDATE, HANGUP, REJECT, BUSY)
NEEDS_PAYLOAD = frozenset({ANSWER, ICE_CANDIDATE})
ENDS_DIRECT = frozenset({HANGUP, REJECT, BUSY})


@dataclass(frozen=True)
class SignalRecord:
    """One signal as a device receives it (built from the broker message)."""

    call_id: int
    type: str
    from_user_id: int
    from_device_id: int
    payload: bytes | None
    at: datetime

    @classmethod
    def of(cls, message: dict[str, Any]) -> SignalRecord:
        payload = message.get("payload")
        return cls(
            call_id=int(message["call_id"]),
            type=str(message["type"]),
            from_user_id=int(message["from_user_id"]),
            from_device_id=int(message["from_device_id"]),
            payload=None if payload is None else base64.b64decode(payload),
            at=datetime.fromisoformat(str(message["at"])),
        )


def ring_key(call_id: int) -> tuple[str, int]:
    """The key of a call's ring timeout among the process's timers."""
    return ("call", call_id)


# ── reads ───────────────────────────────────────────────────────────────


def ended_at(call: CallRecord, now: datetime, ring_seconds: float) -> datetime | None:
    """When the call ended: as stored, or its ring timeout when it rang out unanswered
    (whether or not anything has written that down yet)."""
    if call.ended_at is not None:
        return call.ended_at
    rang_out = call.started_at + timedelta(seconds=ring_seconds)
    if call.answered_at is None and rang_out <= now:
        return rang_out
    return None


def call_ended_at(context: Context, call: CallRecord) -> datetime | None:
    return ended_at(call, policy.now(context), context.settings.call_ring_seconds)


async def visible_call(context: Context, call_id: int) -> CallRecord | None:
    """The call, for a member of its conversation on this platform; else None."""
    if context.viewer_id is None:
        return None
    found = await context.loaders.messaging.call.load(call_id)
    if found is None or await policy.visible_conversation(context, found.conversation_id) is None:
        return None
    return found


async def call_by_global_id(context: Context, global_id: str) -> CallRecord | None:
    pk = key_of(global_id, "Call")
    return None if pk is None else await visible_call(context, pk)


async def require_own_device(context: Context, device_id: int) -> None:
    """The viewer's own registered device; NOT_FOUND for anyone else's or none."""
    viewer = context.require_viewer()
    devices = await context.stores.keys.devices(viewer.user_id)
    if all(device.device_id != device_id for device in devices):
        raise NotFound("device")


# ── mutations ───────────────────────────────────────────────────────────


async def start_call(
    context: Context, conversation_global_id: str, kind: str, sender_device_id: int, offer: bytes
) -> CallRecord:
    viewer = context.require_viewer()
    conversation_id = decode_id(conversation_global_id, "Conversation", field="conversationId")
    await policy.require_member(context, conversation_id)
    if kind not in KINDS:
        raise BadUserInput(f"kind must be one of {', '.join(KINDS)}", "kind")
    _check_payload(offer, "offer", required=True)
    stores = context.stores
    devices = await stores.calls.participants(conversation_id)
    if sender_device_id not in devices.get(viewer.user_id, {}):
        raise BadUserInput("senderDeviceId is not one of your devices", "senderDeviceId")
    now = policy.now(context)
    call = await stores.calls.create(
        NewCall(context.platform, conversation_id, viewer.user_id, sender_device_id, kind, now)
    )
    ring = context.settings.call_ring_seconds
    stores.timers.arm(ring_key(call.id), ring, lambda: ring_out(stores, call, ring))
    callees = {uid: dev for uid, dev in devices.items() if uid != viewer.user_id}
    await _relay(stores, call, viewer.user_id, sender_device_id, OFFER, offer, callees, now)
    return call


async def send_call_signal(
    context: Context,
    call_global_id: str,
    sender_device_id: int,
    signal_type: str,
    payload: bytes | None,
) -> bool:
    viewer = context.require_viewer()
    call_id = decode_id(call_global_id, "Call", field="callId")
    call = await visible_call(context, call_id)
    if call is None:
        raise NotFound("call")
    if signal_type not in RELAYED:
        raise BadUserInput("an OFFER starts a call (startCall); relay answers and the rest", "type")
    _check_payload(payload, "payload", required=signal_type in NEEDS_PAYLOAD)
    stores = context.stores
    devices = await stores.calls.participants(call.conversation_id)
    if sender_device_id not in devices.get(viewer.user_id, {}):
        raise BadUserInput("senderDeviceId is not one of your devices", "senderDeviceId")
    now = policy.now(context)
    if call_ended_at(context, call) is not None:
        raise Conflict("the call has ended")
    if signal_type == ANSWER and await stores.calls.answer(call.id, now):
        stores.timers.disarm(ring_key(call.id))
    await _relay(stores, call, viewer.user_id, sender_device_id, signal_type, payload, devices, now)
    if await _ends_call(context, call, viewer.user_id, signal_type):
        stores.timers.disarm(ring_key(call.id))
        await stores.calls.end(call.id, now)
    return True


async def _ends_call(context: Context, call: CallRecord, sender_id: int, signal_type: str) -> bool:
    conversation = await context.loaders.messaging.conversation.load(call.conversation_id)
    if conversation is not None and conversation.kind == "DIRECT":
        return signal_type in ENDS_DIRECT
    return signal_type == HANGUP and sender_id == call.caller_id


def _check_payload(payload: bytes | None, field: str, required: bool) -> None:
    if payload is None or len(payload) == 0:
        if required:
            raise BadUserInput(f"{field} is required for this signal", field)
        return
    if len(payload) > MAX_SIGNAL_BYTES:
        raise PayloadTooLarge(f"{field} may be at most {MAX_SIGNAL_BYTES} bytes", MAX_SIGNAL_BYTES)


# ── delivery ────────────────────────────────────────────────────────────


async def _relay(
    stores: Stores,
    call: CallRecord,
    sender_id: int,
    sender_device_id: int,
    signal_type: str,
    payload: bytes | None,
    devices: dict[int, dict[int, int]],
    now: datetime,
    to_sender_device: bool = False,
) -> int:
    """Publish the signal to each addressed device (but the sending one, unless
    `to_sender_device`: a ring timeout tells the caller's device too); how many."""
    blocked = await blocked_either_way(stores.db, sender_id)
    message = encode(
        {
            "kind": SIGNAL_KIND,
            "call_id": call.id,
            "type": signal_type,
            "from_user_id": sender_id,
            "from_device_id": sender_device_id,
            "payload": None if payload is None else base64.b64encode(payload).decode(),
            "at": now.isoformat(),
        }
    )
    sent = 0
    for user_id, user_devices in devices.items():
        if user_id in blocked:
            continue
        for device_id in user_devices:
            if (user_id, device_id) == (sender_id, sender_device_id) and not to_sender_device:
                continue
            await stores.broker.publish(
                call_signal_topic(call.platform, user_id, device_id), message
            )
            sent += 1
    return sent


async def ring_out(stores: Stores, call: CallRecord, ring_seconds: float) -> bool:
    """End `call` if nobody answered it; tell every device (HANGUP from the caller)."""
    stopped = call.started_at + timedelta(seconds=ring_seconds)
    if not await stores.calls.ring_out(call.id, stopped):
        return False
    await _hang_up_everyone(stores, call, stopped)
    return True


async def _hang_up_everyone(stores: Stores, call: CallRecord, at: datetime) -> None:
    devices = await stores.calls.participants(call.conversation_id)
    caller, device = call.caller_id, call.caller_device_id
    await _relay(stores, call, caller, device, HANGUP, None, devices, at, to_sender_device=True)


async def sweep_ringing(stores: Stores, ring_seconds: float) -> int:
    """The sweeper's step: end calls that rang out while no timer was left to end them
    (their process died); HANGUP to their devices. How many it ended."""
    started_before = stores.clock() - timedelta(seconds=ring_seconds)
    ended = await stores.calls.end_unanswered(started_before, ring_seconds)
    for call in ended:
        stores.timers.disarm(ring_key(call.id))
        await _hang_up_everyone(stores, call, call.ended_at or started_before)
    return len(ended)
