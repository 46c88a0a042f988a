"""Chosen presence statuses (ONLINE, AWAY, OFFLINE) on top of the presence marks.

subscriptions/presence.py knows whether a user is connected (an online mark
refreshed by their sockets and heartbeats) and when they were last seen. A
user may also say what they want shown (`setPresence`):

- ONLINE: shown ONLINE while connected (the default when nothing was chosen);
- AWAY: connected but idle: shown AWAY while connected;
- OFFLINE: appear offline, even while connected, until they choose again; their
  `lastSeenAt` stays at the moment they chose it (their later activity is not
  shown through it).

Not connected is OFFLINE whatever was chosen. The choice is a cache key (with
the last-seen lifetime); every `set` publishes the shown status on the user's
topic `presence:<platform>:<user>` for the `presence` subscription. Nothing is
written to a durable store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from subscriptions.presence import LAST_SEEN_DAYS, Presence
from subscriptions.topics import encode

ONLINE, AWAY, OFFLINE = "ONLINE", "AWAY", "OFFLINE"
STATUSES = (ONLINE, AWAY, OFFLINE)
PRESENCE_KIND = "presence"


def presence_topic(platform: str, user_id: int) -> str:
    return f"presence:{platform}:{user_id}"


@dataclass(frozen=True)
class Shown:
    status: str
    last_seen_at: datetime | None


class Statuses:
    def __init__(self, presence: Presence) -> None:
        self.presence = presence

    async def set(self, platform: str, user_id: int, status: str) -> Shown:
        """Record the user's choice (a heartbeat too: choosing is activity), then
        announce what is now shown."""
        presence = self.presence
        await presence.heartbeat(platform, user_id)
        key = _status_key(platform, user_id)
        if status == ONLINE:
            await presence.cache.delete(key)
        else:
            chosen = json.dumps({"status": status, "at": presence.clock()})
            await presence.cache.set(key, chosen, LAST_SEEN_DAYS * 86400)
        shown = await self.shown(platform, user_id)
        await self.announce(platform, user_id, shown)
        return shown

    async def shown(self, platform: str, user_id: int) -> Shown:
        """What anyone allowed to see this user's presence sees now."""
        return await self._shown(platform, user_id, await self._chosen(platform, user_id))

    async def _shown(self, platform: str, user_id: int, chosen: dict[str, Any]) -> Shown:
        presence = self.presence
        if chosen.get("status") == OFFLINE:
            return Shown(OFFLINE, datetime.fromtimestamp(float(chosen["at"]), UTC))
        last_seen = await presence.last_seen(platform, user_id)
        if not await presence.is_online(platform, user_id):
            return Shown(OFFLINE, last_seen)
        return Shown(AWAY if chosen.get("status") == AWAY else ONLINE, last_seen)

    async def announce_connection(self, platform: str, user_id: int) -> None:
        """The user's first socket here opened or their last one closed: publish what
        is shown now (ONLINE or AWAY, or OFFLINE with the moment they left), unless
        they chose to appear offline: then nothing watchers see has changed, and an
        event would tell them of the connection."""
        chosen = await self._chosen(platform, user_id)
        if chosen.get("status") == OFFLINE:
            return
        await self.announce(platform, user_id, await self._shown(platform, user_id, chosen))

    async def _chosen(self, platform: str, user_id: int) -> dict[str, Any]:
        raw = await self.presence.cache.get(_status_key(platform, user_id))
        return json.loads(raw) if raw else {}

    async def announce(self, platform: str, user_id: int, shown: Shown) -> None:
        if self.presence.broker is None:
            return
        message = {
            "kind": PRESENCE_KIND,
            "user_id": user_id,
            "status": shown.status,
            "last_seen_at": shown.last_seen_at.isoformat() if shown.last_seen_at else None,
        }
        await self.presence.broker.publish(presence_topic(platform, user_id), encode(message))


def _status_key(platform: str, user_id: int) -> str:
    return f"presence-status:{platform}:{user_id}"
