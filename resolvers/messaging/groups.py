"""MLS groups: the delivery service's rules (RFC 9420, RFC 9750 §5).

The server relays MLS handshake and application messages it cannot read. It
reads only their wire-format header (mls_wire.py) and checks it against what
the client declared: the conversation's MLS group id, the epoch, and the
content type (a commit for commitToGroup; an application PrivateMessage for
sendGroupMessage). A mismatch or malformed header is BAD_USER_INPUT and stores
nothing.

- createGroup: the creator and `memberIds`, users of the same platform, at most
  MAX_MEMBERS in all, epoch 0. A user with a block either way with the one
  adding them (creator, or committer of an add) cannot be added: NOT_FOUND, the
  answer for a user who does not exist, so adding cannot probe for blocks (the
  same rule as claimPreKeyBundles). Blocks between two other members do not
  keep them out of a group (as in every group messenger); see sendGroupMessage.
  The MLS group itself starts with the creator alone: the creator's first
  commit adds the members' devices and carries their Welcome.
- commitToGroup: the epoch is a compare-and-set (datasources/messaging/groups.py):
  of concurrent commits for one epoch exactly one wins, the others get CONFLICT
  and nothing of theirs (their Welcome included) is queued. The winner's commit
  goes to every device of the members before it except the sending device,
  removed members included (it is how they learn they were removed; nothing
  after it reaches them); the Welcome goes to every device of `addedMemberIds`
  only. A commit of epoch 0 (the creator's first, adding the members of
  createGroup) reaches no one: only the creating device is in the MLS group
  then, everyone else joins from the Welcome. A Welcome needs added members
  and added members need a Welcome. An added user already a member (the first
  commit after createGroup, or a member's new device) stays one and gets the
  Welcome; a removed user no longer a member (one who left: the others commit
  the removal of their leaves) is ignored.
  Any member may add and remove (MLS has no admin role); a member cannot remove
  themselves in a commit (RFC 9420 forbids it): leaveGroup. Handshake messages
  up to MAX_HANDSHAKE_BYTES (PAYLOAD_TOO_LARGE).
- sendGroupMessage: to every member device except the sending one, for the
  current epoch only (anything else is CONFLICT: the client must process the
  commits it missed and re-encrypt). The clientMessageId makes a resend a no-op
  (`duplicate: true`), even after the epoch moved on. As in the relay, members
  who block the sender do not receive their messages (MLS tolerates a member
  skipping application messages; handshake messages always reach everyone).
- leaveGroup: a member leaves the server's membership at once and receives
  nothing more; the remaining members' clients commit the removal of the
  leaver's leaves from the MLS tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from datasources.messaging.groups import (
    CommitPlan,
    EpochConflict,
    GroupIdTaken,
    GroupSend,
    NotAMember,
    TooManyMembers,
    UnknownDevice,
)
from datasources.messaging.queue import EnvelopeRecord, announce
from datasources.messaging.records import ConversationRecord, SendResultRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, NotFound, PayloadTooLarge
from resolvers.ids import decode_id
from resolvers.messaging import mls_wire, policy
from resolvers.messaging.mls_wire import ContentType, MalformedMlsMessage, WireFormat

MAX_MEMBERS = 1500
MAX_HANDSHAKE_BYTES = 1024 * 1024
MAX_APPLICATION_BYTES = 96 * 1024  # the relay's envelope limit
MAX_GROUP_ID_BYTES = 256
MAX_NAME_LENGTH = 100
MAX_CLIENT_MESSAGE_ID = 128
MAX_EPOCH = 2**63 - 1  # stored as BIGINT; MLS epochs are uint64


@dataclass(frozen=True)
class CommitInput:
    conversation_id: str
    sender_device_id: int
    epoch: int
    commit: bytes
    welcome: bytes | None
    added_member_ids: Sequence[str]
    removed_member_ids: Sequence[str]


@dataclass(frozen=True)
class GroupMessageInput:
    conversation_id: str
    sender_device_id: int
    epoch: int
    ciphertext: bytes
    client_message_id: str


async def create_group(
    context: Context, group_id: bytes, name: str | None, member_ids: Sequence[str]
) -> ConversationRecord:
    viewer = context.require_viewer()
    if not 1 <= len(group_id) <= MAX_GROUP_ID_BYTES:
        raise BadUserInput(f"groupId must be 1 to {MAX_GROUP_ID_BYTES} bytes", field="groupId")
    shown_name = _name(name)
    members = _user_ids(member_ids, "memberIds") - {viewer.user_id}
    if len(members) + 1 > MAX_MEMBERS:
        raise BadUserInput(f"a group has at most {MAX_MEMBERS} members", field="memberIds")
    await _require_addable(context, members)
    try:
        record = await context.stores.groups.create(
            context.platform, viewer.user_id, group_id, shown_name, members, policy.now(context)
        )
    except GroupIdTaken:
        raise Conflict("a group with this groupId exists", field="groupId") from None
    return record


async def commit_to_group(context: Context, given: CommitInput) -> ConversationRecord:
    viewer = context.require_viewer()
    conversation_id = decode_id(given.conversation_id, "Conversation", "conversationId")
    _require_size(given.commit, MAX_HANDSHAKE_BYTES, "commit")
    if given.welcome is not None:
        _require_size(given.welcome, MAX_HANDSHAKE_BYTES, "welcome")
    group = await _group(context, conversation_id)
    _require_epoch(given.epoch)
    header = _header(given.commit, "commit")
    _require_header(header, group, given.epoch, "commit")
    if header.content_type is not ContentType.COMMIT:
        raise BadUserInput("commit is not an MLS commit", field="commit")
    added = _user_ids(given.added_member_ids, "addedMemberIds")
    removed = _user_ids(given.removed_member_ids, "removedMemberIds")
    _require_welcome(given.welcome, bool(added))
    if added & removed:
        raise BadUserInput("a user cannot be added and removed at once", field="removedMemberIds")
    if viewer.user_id in removed:
        raise BadUserInput("leave with leaveGroup, not a commit", field="removedMemberIds")
    members = await context.loaders.messaging.members.load(conversation_id)
    await _require_addable(context, added - {viewer.user_id, *(m.user_id for m in members)})
    plan = CommitPlan(
        platform=context.platform,
        conversation_id=conversation_id,
        sender_id=viewer.user_id,
        sender_device_id=given.sender_device_id,
        epoch=given.epoch,
        commit=given.commit,
        welcome=given.welcome,
        added_ids=frozenset(added),
        removed_ids=frozenset(removed),
        max_members=MAX_MEMBERS,
    )
    try:
        outcome = await context.stores.groups.commit(plan, policy.now(context))
    except EpochConflict:
        raise _stale_epoch() from None
    except TooManyMembers:
        raise BadUserInput(
            f"a group has at most {MAX_MEMBERS} members", field="addedMemberIds"
        ) from None
    except (NotAMember, UnknownDevice) as error:
        raise _not_sendable(error) from None
    await _announce(context, conversation_id, outcome.envelopes)
    return outcome.conversation


async def send_group_message(context: Context, given: GroupMessageInput) -> SendResultRecord:
    viewer = context.require_viewer()
    conversation_id = decode_id(given.conversation_id, "Conversation", "conversationId")
    if not 1 <= len(given.client_message_id) <= MAX_CLIENT_MESSAGE_ID:
        raise BadUserInput(
            f"clientMessageId must be 1 to {MAX_CLIENT_MESSAGE_ID} characters",
            field="clientMessageId",
        )
    _require_size(given.ciphertext, MAX_APPLICATION_BYTES, "ciphertext")
    group = await _group(context, conversation_id)
    _require_epoch(given.epoch)
    header = _header(given.ciphertext, "ciphertext")
    _require_header(header, group, given.epoch, "ciphertext")
    if header.content_type is not ContentType.APPLICATION or (
        header.wire_format is not WireFormat.PRIVATE_MESSAGE
    ):
        raise BadUserInput(
            "ciphertext is not an MLS application message (a PrivateMessage)", field="ciphertext"
        )
    message = GroupSend(
        platform=context.platform,
        conversation_id=conversation_id,
        sender_id=viewer.user_id,
        sender_device_id=given.sender_device_id,
        epoch=given.epoch,
        ciphertext=given.ciphertext,
        client_message_id=given.client_message_id,
    )
    try:
        outcome = await context.stores.groups.send(message, policy.now(context))
    except EpochConflict:
        raise _stale_epoch() from None
    except (NotAMember, UnknownDevice) as error:
        raise _not_sendable(error) from None
    await _announce(context, conversation_id, outcome.envelopes)
    return outcome.result


async def leave_group(context: Context, conversation_id: str) -> bool:
    viewer = context.require_viewer()
    pk = decode_id(conversation_id, "Conversation", "conversationId")
    await _group(context, pk)
    left = await context.stores.groups.leave(pk, viewer.user_id)
    if not left:  # a concurrent leave of the same viewer won
        raise NotFound("conversation")
    _forget(context, pk)
    return True


# ── checks ──────────────────────────────────────────────────────────────


async def _group(context: Context, conversation_id: int) -> ConversationRecord:
    """The group, for one of its members; NOT_FOUND for anyone else."""
    conversation = await policy.require_member(context, conversation_id)
    if conversation.kind != "GROUP" or conversation.group_id is None:
        raise BadUserInput("not a group conversation", field="conversationId")
    return conversation


def _user_ids(global_ids: Sequence[str], field: str) -> set[int]:
    return {decode_id(global_id, "User", field) for global_id in global_ids}


async def _require_addable(context: Context, user_ids: set[int]) -> None:
    viewer = context.require_viewer()
    addable = await context.stores.groups.addable(context.platform, viewer.user_id, user_ids)
    if addable != user_ids:
        raise NotFound("user")


def _name(name: str | None) -> str | None:
    if name is None or not name.strip():
        return None
    if len(name.strip()) > MAX_NAME_LENGTH:
        raise BadUserInput(f"name is longer than {MAX_NAME_LENGTH} characters", field="name")
    return name.strip()


def _require_size(data: bytes, limit: int, field: str) -> None:
    if len(data) > limit:
        raise PayloadTooLarge(f"{field} is larger than {limit} bytes", limit)


def _require_epoch(epoch: int) -> None:
    if not 0 <= epoch <= MAX_EPOCH:
        raise BadUserInput("epoch must be a non-negative MLS epoch", field="epoch")


def _header(data: bytes, field: str) -> mls_wire.GroupMessageHeader:
    try:
        return mls_wire.parse_group_message(data)
    except MalformedMlsMessage as error:
        raise BadUserInput(f"{field}: {error}", field=field) from None


def _require_header(
    header: mls_wire.GroupMessageHeader, group: ConversationRecord, epoch: int, field: str
) -> None:
    """What the client declared must be what the MLS header says."""
    if header.group_id != group.group_id:
        raise BadUserInput(f"{field} belongs to another MLS group", field=field)
    if header.epoch != epoch:
        raise BadUserInput(f"{field} was made in epoch {header.epoch}, not {epoch}", field=field)


def _require_welcome(welcome: bytes | None, adds: bool) -> None:
    if welcome is None:
        if adds:
            raise BadUserInput("added members need a welcome", field="welcome")
        return
    if not adds:
        raise BadUserInput("a welcome needs addedMemberIds", field="addedMemberIds")
    try:
        mls_wire.parse_welcome(welcome)
    except MalformedMlsMessage as error:
        raise BadUserInput(f"welcome: {error}", field="welcome") from None


def _stale_epoch() -> Conflict:
    return Conflict("the group has moved to a newer epoch", field="epoch")


def _not_sendable(error: Exception) -> Exception:
    if isinstance(error, UnknownDevice):
        return BadUserInput("senderDeviceId is not one of your devices", field="senderDeviceId")
    return NotFound("conversation")  # the viewer left or was removed meanwhile


async def _announce(
    context: Context, conversation_id: int, envelopes: Sequence[EnvelopeRecord]
) -> None:
    """After the commit: live subscribers read their queues; later reads see the change."""
    _forget(context, conversation_id)
    await announce(context.stores.broker, envelopes)


def _forget(context: Context, conversation_id: int) -> None:
    """Drop this request's cached conversation and members (read before the write)."""
    context.loaders.messaging.conversation.clear(conversation_id)
    context.loaders.messaging.members.clear(conversation_id)
