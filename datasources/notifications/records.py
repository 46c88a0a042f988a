"""Plain records of the notifications store: what resolvers and the consumer get back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from datasources.notifications.tables import (
    NotificationGroupRow,
    NotificationSettingsRow,
    PushDeviceRow,
)


@dataclass(frozen=True)
class Activity:
    """One actor did something the recipient hears about (made by the consumer).

    `single`: the type never groups, so `group_key` names this one activity;
    otherwise activities with the same key within `window` of a group's first
    one join it.
    """

    platform: str
    recipient_id: int
    actor_id: int
    type: str
    subject_type: str
    subject_id: int
    group_key: str
    at: datetime
    single: bool
    root_type: str | None = None
    root_id: int | None = None
    parent_id: int | None = None


@dataclass(frozen=True)
class Change:
    """What a write did to one recipient's notifications (published after commit)."""

    platform: str
    recipient_id: int
    group_id: int | None = None  # a group gained an actor (notificationReceived)


@dataclass(frozen=True)
class GroupRecord:
    id: int
    platform: str
    recipient_id: int
    type: str
    subject_type: str
    subject_id: int
    actor_count: int
    latest_at: datetime
    is_read: bool


def group_record(row: NotificationGroupRow) -> GroupRecord:
    return GroupRecord(
        id=row.id,
        platform=row.platform,
        recipient_id=row.recipient_id,
        type=row.type,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        actor_count=row.actor_count,
        latest_at=row.latest_at,
        is_read=row.is_read,
    )


@dataclass(frozen=True)
class QuietHoursRecord:
    start: str  # "22:00"
    end: str  # "07:00"
    timezone: str  # IANA zone


@dataclass(frozen=True)
class PreferencesRecord:
    """A user's stored choices; `channels` holds only the types they changed."""

    channels: dict[str, frozenset[str]]
    quiet_hours: QuietHoursRecord | None = None
    paused_until: datetime | None = None
    email_digest: bool = False


@dataclass(frozen=True)
class PreferencesUpdate:
    """A validated change; None leaves a setting as it is."""

    channels: dict[str, frozenset[str]]
    quiet_hours: QuietHoursRecord | None = None
    clear_quiet_hours: bool = False
    paused_until: datetime | None = None
    set_paused_until: bool = False
    email_digest: bool | None = None


def preferences_record(
    settings: NotificationSettingsRow | None, channels: dict[str, frozenset[str]]
) -> PreferencesRecord:
    if settings is None:
        return PreferencesRecord(channels=channels)
    quiet = None
    if settings.quiet_start and settings.quiet_end and settings.quiet_timezone:
        quiet = QuietHoursRecord(settings.quiet_start, settings.quiet_end, settings.quiet_timezone)
    return PreferencesRecord(
        channels=channels,
        quiet_hours=quiet,
        paused_until=settings.paused_until,
        email_digest=settings.email_digest,
    )


@dataclass(frozen=True)
class DeviceRecord:
    id: int
    user_id: int
    provider: str
    token: str
    name: str | None
    created_at: datetime
    last_used_at: datetime | None


def device_record(row: PushDeviceRow) -> DeviceRecord:
    return DeviceRecord(
        id=row.id,
        user_id=row.user_id,
        provider=row.provider,
        token=row.token,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )
