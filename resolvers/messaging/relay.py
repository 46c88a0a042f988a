"""The relay: sendMessage's addressing rules, the device queues, acknowledgements.

A message is ciphertext per device: the sender encrypts once for every device
of every recipient and for its own other devices, and the server checks the
addressing against the device lists before queueing anything:

- a device missing or one that does not exist → MISMATCHED_DEVICES with
  `missingDevices` / `extraDevices` ([{userId, deviceIds}]), so the client
  fetches bundles for the new devices and drops the removed ones;
- a `recipientRegistrationId` that is not the device's current one (the device
  was re-registered) → STALE_DEVICES with `staleDevices`;
- content over 96 KiB → PAYLOAD_TOO_LARGE.

A `clientMessageId` seen before from this sender answers what the first send
answered (`duplicate: true`) and queues nothing. A recipient who blocked the
sender gets nothing, and the sender is told the same as for any delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from datasources.messaging.conversations import direct_key
from datasources.messaging.envelopes import Addressed, Addressing, Outgoing, SendRequest
from datasources.messaging.queue import EnvelopeRecord, OutgoingEnvelope, Sender, announce
from datasources.messaging.records import SendResultRecord
from resolvers.context import Context
from resolvers.errors import ApiError, BadUserInput, NotFound, PayloadTooLarge
from resolvers.ids import decode_id, encode_id
from resolvers.messaging import policy
from resolvers.pagination import Keyset, Page, decode_cursor, page_size
from subscriptions.broker import BrokerUnavailable

log = logging.getLogger(__name__)

MAX_CONTENT_BYTES = 96 * 1024
MAX_CLIENT_MESSAGE_ID = 128
MAX_EXPIRES_SECONDS = 30 * 24 * 3600  # the retention: nothing outlives it anyway
MAX_PAGE = 500
MAX_ACKNOWLEDGE = 1000
DIRECT_TYPES = frozenset({"PREKEY_MESSAGE", "CIPHERTEXT", "RECEIPT"})
"""Envelope types sendMessage relays; MLS and call signals have their own mutations."""


class MismatchedDevices(ApiError):
    code = "MISMATCHED_DEVICES"


class StaleDevices(ApiError):
    code = "STALE_DEVICES"


@dataclass(frozen=True)
class AddressedEnvelope:
    recipient_id: str  # a User global id
    device_id: int
    registration_id: int
    type: str
    content: bytes


@dataclass(frozen=True)
class SendInput:
    client_message_id: str
    sender_device_id: int
    conversation_id: str | None
    envelopes: Sequence[AddressedEnvelope]
    expires_in_seconds: int | None


Device = tuple[int, int]  # (user id, device id)


# ── sendMessage ──────────────────────────────────────────────────────────


async def send_message(context: Context, given: SendInput) -> SendResultRecord:
    """Check and queue a message in one transaction (datasources/messaging/envelopes.py
    `send`): a resend is answered before anything else is checked."""
    viewer = context.require_viewer()
    _check_shape(given)
    store = context.stores.envelopes
    named: Target | None = None
    if given.conversation_id is not None:
        # Membership is read through the request's loaders, before the transaction
        # (which must not wait for other connections): the resend check comes first.
        previous = await store.sent_before(viewer.user_id, given.client_message_id)
        if previous is not None:
            return previous
        _addressed(given.envelopes)  # its errors come before the conversation's
        named = await _named_target(context, given.conversation_id)
    sender = Sender(context.platform, viewer.user_id, given.sender_device_id)
    try:
        addressed: Addressed | Exception = _addressing(sender, given, named)
    except ApiError as error:  # still answered as a duplicate if it is a resend
        addressed = error
    request = SendRequest(sender, given.client_message_id, addressed, policy.now(context))
    sent = await store.send(request)
    await _announce(context, sent.records)
    return sent.result


def _addressing(sender: Sender, given: SendInput, named: Target | None) -> Addressed:
    """What the send's transaction must read, and the rules it checks on it."""
    addressed = _addressed(given.envelopes)
    target = named or _direct_target(sender.user_id, addressed)
    direct = direct_key(sender.user_id, target.recipients[0]) if named is None else None

    def rules(found: Addressing) -> Outgoing:
        return _checked(found, sender, given, target, addressed, named is None)

    return Addressed(target.recipients, direct, rules)


def _checked(
    found: Addressing,
    sender: Sender,
    given: SendInput,
    target: Target,
    addressed: dict[Device, AddressedEnvelope],
    direct: bool,
) -> Outgoing:
    """The addressing rules, on what the send's transaction read: the message to queue."""
    recipients = target.recipients
    if direct and recipients[0] not in found.existing:
        raise NotFound("user")
    devices = found.devices
    if sender.device_id not in devices[sender.user_id]:
        raise BadUserInput("senderDeviceId is not one of your devices", field="senderDeviceId")
    expected = _expected(devices, sender.user_id, sender.device_id, recipients)
    _check_devices(expected, addressed, devices)
    conversation = target.conversation or found.direct  # None: the first message of the pair
    return Outgoing(
        sender=sender,
        client_message_id=given.client_message_id,
        conversation_id=conversation[0] if conversation else None,
        disappearing_seconds=conversation[1] if conversation else None,
        direct_with=recipients[0] if direct else None,
        envelopes=[  # a recipient who blocked the sender gets nothing, silently
            OutgoingEnvelope(user_id, device_id, e.type, e.content)
            for (user_id, device_id), e in addressed.items()
            if user_id not in found.blockers
        ],
        unread_for=[user_id for user_id in recipients if user_id not in found.blockers],
        reported_count=len(addressed),
        expires_in_seconds=given.expires_in_seconds,
    )


async def _announce(context: Context, records: list[EnvelopeRecord]) -> None:
    """Tell live subscribers; the message is committed whatever happens here (a
    lost announcement only delays: subscribers resume from the queue)."""
    try:
        await announce(context.stores.broker, records)
    except BrokerUnavailable:
        log.warning("envelopes queued but not announced: the realtime broker is down")


def _check_shape(given: SendInput) -> None:
    if not 1 <= len(given.client_message_id) <= MAX_CLIENT_MESSAGE_ID:
        raise BadUserInput(
            f"clientMessageId must be 1 to {MAX_CLIENT_MESSAGE_ID} characters",
            field="clientMessageId",
        )
    seconds = given.expires_in_seconds
    if seconds is not None and not 1 <= seconds <= MAX_EXPIRES_SECONDS:
        raise BadUserInput(
            f"expiresInSeconds must be between 1 and {MAX_EXPIRES_SECONDS}",
            field="expiresInSeconds",
        )
    for envelope in given.envelopes:
        if envelope.type not in DIRECT_TYPES:
            raise BadUserInput(
                f"sendMessage relays {', '.join(sorted(DIRECT_TYPES))} envelopes",
                field="envelopes",
            )
        if len(envelope.content) > MAX_CONTENT_BYTES:
            raise PayloadTooLarge(
                f"envelope content is limited to {MAX_CONTENT_BYTES} bytes", MAX_CONTENT_BYTES
            )


def _addressed(envelopes: Sequence[AddressedEnvelope]) -> dict[Device, AddressedEnvelope]:
    addressed: dict[Device, AddressedEnvelope] = {}
    for envelope in envelopes:
        device = (decode_id(envelope.recipient_id, "User", "recipientId"), envelope.device_id)
        if device in addressed:
            raise BadUserInput("one envelope per device", field="envelopes")
        addressed[device] = envelope
    return addressed


@dataclass(frozen=True)
class Target:
    """Where a message goes: its recipients, and the conversation when one was named
    (id, disappearing timer); None: the DIRECT conversation with the one recipient."""

    recipients: list[int]
    conversation: tuple[int, int | None] | None


async def _named_target(context: Context, conversation_id: str) -> Target:
    """The conversation sendMessage names: DIRECT, with the viewer a member."""
    viewer_id = context.require_viewer().user_id
    pk = decode_id(conversation_id, "Conversation", "conversationId")
    conversation = await policy.require_member(context, pk)
    if conversation.kind != "DIRECT":
        raise BadUserInput("group messages go through sendGroupMessage", field="conversationId")
    members = await context.loaders.messaging.members.load(pk)
    recipients = [m.user_id for m in members if m.user_id != viewer_id]
    return Target(recipients, (pk, conversation.disappearing_after_seconds))


def _direct_target(sender_id: int, addressed: dict[Device, AddressedEnvelope]) -> Target:
    """Without conversationId: the DIRECT conversation with the one other user addressed."""
    others = sorted({user_id for user_id, _ in addressed} - {sender_id})
    if len(others) != 1:
        raise BadUserInput(
            "without conversationId, address exactly one other user", field="envelopes"
        )
    return Target(others, None)


def _expected(
    devices: dict[int, dict[int, int]], sender_id: int, sender_device: int, recipients: list[int]
) -> set[Device]:
    expected = {(user_id, d) for user_id in recipients for d in devices.get(user_id, {})}
    expected |= {(sender_id, d) for d in devices[sender_id] if d != sender_device}
    return expected


def _check_devices(
    expected: set[Device],
    addressed: dict[Device, AddressedEnvelope],
    devices: dict[int, dict[int, int]],
) -> None:
    missing, extra = expected - set(addressed), set(addressed) - expected
    if missing or extra:
        raise MismatchedDevices(
            "address every device of every recipient and your other devices",
            missingDevices=_by_user(missing),
            extraDevices=_by_user(extra),
        )
    stale = {
        device
        for device, envelope in addressed.items()
        if devices[device[0]][device[1]] != envelope.registration_id
    }
    if stale:
        raise StaleDevices("some devices were re-registered", staleDevices=_by_user(stale))


def _by_user(devices: set[Device]) -> list[dict[str, object]]:
    users: dict[int, list[int]] = {}
    for user_id, device_id in devices:
        users.setdefault(user_id, []).append(device_id)
    return [
        {"userId": encode_id("User", user_id), "deviceIds": sorted(device_ids)}
        for user_id, device_ids in sorted(users.items())
    ]


# ── the device queue ─────────────────────────────────────────────────────


async def require_own_device(context: Context, device_id: int) -> int:
    """The viewer's id, when `device_id` is one of their devices; NOT_FOUND otherwise."""
    viewer_id = context.require_viewer().user_id
    devices = await context.stores.envelopes.devices([viewer_id])
    if device_id not in devices[viewer_id]:
        raise NotFound("device")
    return viewer_id


async def pending_envelopes(
    context: Context, device_id: int, first: int | None, after: str | None
) -> Page[EnvelopeRecord]:
    """The device's queue, oldest first (cursor: the sequence)."""
    viewer_id = await require_own_device(context, device_id)
    limit = page_size(first, MAX_PAGE)
    cursor = decode_cursor(after)
    now = policy.now(context)
    store = context.stores.envelopes
    after_sequence = cursor.id if cursor is not None else None
    found = await store.after(viewer_id, device_id, after_sequence, limit + 1, now)
    total = await store.count(viewer_id, device_id, now)
    return Page.from_fetched(
        found, limit, cursor is not None, total, lambda e: Keyset(e.server_timestamp, e.sequence)
    )


async def acknowledge(context: Context, device_id: int, ids: Sequence[str]) -> int:
    """Delete these envelopes from the device's queue: how many were deleted."""
    if len(ids) > MAX_ACKNOWLEDGE:
        raise BadUserInput(f"at most {MAX_ACKNOWLEDGE} ids at once", field="ids")
    pks = [decode_id(global_id, "Envelope", "ids") for global_id in ids]
    viewer_id = await require_own_device(context, device_id)
    return await context.stores.envelopes.acknowledge(viewer_id, device_id, pks)


async def envelope_of_viewer(context: Context, envelope_id: int) -> EnvelopeRecord | None:
    """An envelope still waiting in one of the viewer's own queues (node)."""
    if context.viewer_id is None:
        return None
    record = await context.stores.envelopes.by_id(
        context.platform, envelope_id, policy.now(context)
    )
    return record if record is not None and record.recipient_id == context.viewer_id else None
