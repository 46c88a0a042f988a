"""Notification preferences and push devices of the viewer (theirs alone).

Preferences: per type the channels (IN_APP, PUSH, EMAIL; a type never changed
has its default, datasources/notifications/channels.py), quiet hours as
wall-clock times in an IANA time zone (so "22:00–07:00 Europe/Paris" follows
daylight saving), `pausedUntil`, and `emailDigest`. An update is validated as a
whole before anything is stored: one bad part (an unknown zone, "25:00", a type
given twice) is BAD_USER_INPUT and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from datasources.notifications.channels import DEFAULT_CHANNELS, TYPES
from datasources.notifications.records import (
    DeviceRecord,
    PreferencesRecord,
    PreferencesUpdate,
    QuietHoursRecord,
)
from datasources.sql import utcnow
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.ids import decode_id

CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
PROVIDERS = ("FCM", "APNS")
MAX_TOKEN_LENGTH = 4096
MAX_DEVICE_NAME = 100


@dataclass(frozen=True)
class TypeChoice:
    type: str
    channels: Sequence[str]


@dataclass(frozen=True)
class PreferencesInput:
    """What the client sent, as plain values (None: left out)."""

    types: Sequence[TypeChoice] | None = None
    quiet_hours: QuietHoursRecord | None = None
    clear_quiet_hours: bool | None = None
    paused_until: datetime | None = None
    paused_until_given: bool = False
    email_digest: bool | None = None


@dataclass(frozen=True)
class Preferences:
    """What `notificationPreferences` shows: every type with its channels."""

    channels: list[tuple[str, frozenset[str]]]
    quiet_hours: QuietHoursRecord | None
    paused_until: datetime | None
    email_digest: bool


def shown(stored: PreferencesRecord) -> Preferences:
    return Preferences(
        channels=[(t, stored.channels.get(t, DEFAULT_CHANNELS[t])) for t in TYPES],
        quiet_hours=stored.quiet_hours,
        paused_until=stored.paused_until,
        email_digest=stored.email_digest,
    )


async def preferences(context: Context) -> Preferences:
    viewer = context.require_viewer()
    return shown(await context.stores.notifications.preferences(viewer.user_id))


def validate(given: PreferencesInput) -> PreferencesUpdate:
    channels: dict[str, frozenset[str]] = {}
    for choice in given.types or ():
        if choice.type not in TYPES:
            raise BadUserInput(f"unknown notification type {choice.type}", field="types")
        if choice.type in channels:
            raise BadUserInput(f"{choice.type} is given twice", field="types")
        channels[choice.type] = frozenset(choice.channels)
    if given.quiet_hours is not None and given.clear_quiet_hours:
        raise BadUserInput("give quietHours or clearQuietHours, not both", field="quietHours")
    quiet = given.quiet_hours
    if quiet is not None:
        quiet = QuietHoursRecord(
            _clock_time(quiet.start, "quietHours.start"),
            _clock_time(quiet.end, "quietHours.end"),
            _zone(quiet.timezone),
        )
        if quiet.start == quiet.end:
            raise BadUserInput("quiet hours must not start and end at once", field="quietHours")
    paused = given.paused_until
    if paused is not None:
        if paused.tzinfo is None:
            raise BadUserInput("pausedUntil needs a time zone", field="pausedUntil")
        paused = paused.astimezone(UTC)
    return PreferencesUpdate(
        channels=channels,
        quiet_hours=quiet,
        clear_quiet_hours=bool(given.clear_quiet_hours),
        paused_until=paused,
        set_paused_until=given.paused_until_given,
        email_digest=given.email_digest,
    )


async def update_preferences(context: Context, given: PreferencesInput) -> Preferences:
    viewer = context.require_viewer()
    change = validate(given)
    stored = await context.stores.notifications.update_preferences(
        context.platform, viewer.user_id, change, utcnow()
    )
    return shown(stored)


def _clock_time(value: str, field: str) -> str:
    if not CLOCK_TIME.match(value):
        raise BadUserInput(f"{field} must be a 24-hour time like 22:00", field=field)
    return value


def _zone(name: str) -> str:
    """An IANA zone name zoneinfo knows (a path or an unknown name is refused)."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise BadUserInput(f"unknown time zone {name!r}", field="quietHours.timezone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise BadUserInput(f"unknown time zone {name!r}", field="quietHours.timezone") from exc
    return name


# ── push devices ─────────────────────────────────────────────────────────


async def devices(context: Context) -> list[DeviceRecord]:
    viewer = context.require_viewer()
    return await context.stores.notifications.devices(viewer.user_id)


async def register_device(
    context: Context, provider: str, token: str, name: str | None
) -> DeviceRecord:
    viewer = context.require_viewer()
    if provider not in PROVIDERS:
        raise BadUserInput("unknown push provider", field="provider")
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise BadUserInput("token must be a provider's device token", field="token")
    if name is not None:
        name = name.strip() or None
        if name is not None and len(name) > MAX_DEVICE_NAME:
            raise BadUserInput(f"name is longer than {MAX_DEVICE_NAME} characters", field="name")
    return await context.stores.notifications.register_device(
        context.platform, viewer.user_id, provider, token, name, utcnow()
    )


async def unregister_device(context: Context, device_id: str) -> bool:
    """True when the viewer's device was removed; false for an id that is not one of
    theirs (someone else's device is not told apart from a missing one)."""
    viewer = context.require_viewer()
    pk = decode_id(device_id, "PushDevice")
    return await context.stores.notifications.unregister_device(viewer.user_id, pk)
