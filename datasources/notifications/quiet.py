"""Quiet hours on the user's wall clock: whether a moment is quiet, and when it ends.

Quiet hours are wall-clock times in an IANA zone ("22:00"–"07:00" Europe/Paris),
so they follow daylight saving: the window is read in the zone's local time of
each moment, never as a fixed UTC offset. A window whose end is before its
start wraps over midnight.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from datasources.notifications.records import QuietHoursRecord


def is_quiet(quiet: QuietHoursRecord, at: datetime) -> bool:
    local = at.astimezone(ZoneInfo(quiet.timezone)).time()
    start, end = time.fromisoformat(quiet.start), time.fromisoformat(quiet.end)
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_until(quiet: QuietHoursRecord, at: datetime) -> datetime | None:
    """When the quiet hours `at` falls in end (UTC), or None when `at` is not quiet."""
    if not is_quiet(quiet, at):
        return None
    zone = ZoneInfo(quiet.timezone)
    local = at.astimezone(zone)
    end = time.fromisoformat(quiet.end)
    ends = datetime.combine(local.date(), end, tzinfo=zone)
    if ends <= local:  # over midnight: the end is tomorrow's
        ends = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return ends.astimezone(UTC)


def held_until(
    quiet: QuietHoursRecord | None, paused_until: datetime | None, at: datetime
) -> datetime | None:
    """Until when push and email made at `at` wait (quiet hours, a pause), or None."""
    candidates = []
    if paused_until is not None and paused_until > at:
        candidates.append(paused_until)
    if quiet is not None:
        until = quiet_until(quiet, at)
        if until is not None:
            candidates.append(until)
    if not candidates:
        return None
    latest = max(candidates)
    # The pause may end inside quiet hours (or the reverse): wait for both.
    if quiet is not None:
        again = quiet_until(quiet, latest)
        if again is not None:
            latest = again
    return latest


DIGEST_TIME = time(8, 0)
"""When the email digest goes out: 08:00 on the user's wall clock (their quiet-hours
zone, else UTC)."""


def next_digest(timezone: str | None, at: datetime) -> datetime:
    """The first digest time after `at` (UTC)."""
    zone = ZoneInfo(timezone) if timezone else UTC
    local = at.astimezone(zone)
    due = datetime.combine(local.date(), DIGEST_TIME, tzinfo=zone)
    if due <= local:
        due = datetime.combine(local.date() + timedelta(days=1), DIGEST_TIME, tzinfo=zone)
    return due.astimezone(UTC)
