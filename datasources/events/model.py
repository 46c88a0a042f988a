"""Domain events as they travel: versioned JSON with an id, type, platform, time,
actor and subject.

Writers create a `NewEvent` and hand it to `outbox.emit` inside the transaction of
the change it describes; the relay turns outbox rows into `Event`s on the bus.
The JSON shape (version 1) is what Kafka consumers outside this codebase read:

    {"id": "…uuid…", "version": 1, "type": "post.liked", "platform": "vignette",
     "time": "2026-11-26T01:02:03.456789+00:00",
     "actor": {"id": 12}, "subject": {"type": "post", "id": 34},
     "data": {...}}

`type` is `<entity>.<verb>` (`post.created`, `user.followed`…); the entity names the
domain whose topic carries it (`entativa.<platform>.<domain>`, see `DOMAIN_OF`).
"""

from __future__ import annotations

import json
import json.scanner
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from datasources.sql import utcnow

VERSION = 1

# The domain (topic) each entity's events belong to.
DOMAIN_OF: dict[str, str] = {
    "user": "users",
    "media": "media",
    "post": "posts",
    "comment": "posts",
    "take": "posts",
    "template": "posts",
    "trend": "posts",
    "story": "stories",
}


@dataclass(frozen=True)
class NewEvent:
    """What a writer says happened; id and time are given when it is emitted."""

    type: str
    platform: str
    actor_id: int | None
    subject_type: str
    subject_id: int
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return domain_of(self.type)


@dataclass(frozen=True)
class Event:
    """An event as published: `NewEvent` plus its id, time and version."""

    id: str
    type: str
    platform: str
    time: datetime
    actor_id: int | None
    subject_type: str
    subject_id: int
    data: dict[str, Any]
    version: int = VERSION
    # The JSON this event was read from: the relay republishes it as it is instead of
    # serializing again (not an init field, so `dataclasses.replace` drops it).
    _json: str | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def domain(self) -> str:
        return domain_of(self.type)

    @property
    def topic(self) -> str:
        return topic_for(self.platform, self.domain)

    @classmethod
    def stamp(cls, new: NewEvent, at: datetime | None = None) -> Event:
        return cls(
            id=str(uuid.uuid4()),
            type=new.type,
            platform=new.platform,
            time=at or utcnow(),
            actor_id=new.actor_id,
            subject_type=new.subject_type,
            subject_id=new.subject_id,
            data=dict(new.data),
        )

    def to_json(self) -> str:
        if self._json is not None:
            return self._json
        return json.dumps(
            {
                "id": self.id,
                "version": self.version,
                "type": self.type,
                "platform": self.platform,
                "time": self.time.isoformat(),
                "actor": None if self.actor_id is None else {"id": self.actor_id},
                "subject": {"type": self.subject_type, "id": self.subject_id},
                "data": self.data,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        """Parse an event (raises ValueError, KeyError or TypeError when it is not one).

        Runs for every event twice on the Kafka path (the relay, each consumer), so it
        fills the instance's fields directly instead of through the frozen dataclass's
        `__init__` (one `object.__setattr__` per field: nearly as slow as the parse).
        """
        if not isinstance(text, str):
            text = text.decode()
        raw = _loads(text)
        if raw.get("version") != VERSION:
            raise ValueError(f"unsupported event version {raw.get('version')!r}")
        actor = raw.get("actor")
        subject = raw["subject"]
        event = object.__new__(cls)
        vars(event).update(
            id=raw["id"],
            type=raw["type"],
            platform=raw["platform"],
            time=datetime.fromisoformat(raw["time"]),
            actor_id=None if actor is None else int(actor["id"]),
            subject_type=subject["type"],
            subject_id=int(subject["id"]),
            data=raw.get("data") or {},
            version=VERSION,
            _json=text,
        )
        return event


# The decoder's own scanner (typeshed types its argument as a scanner, not a decoder).
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _loads(text: str) -> Any:
    """`json.loads(text)` without its per-call overhead (a third of its time on an event):
    the decoder's C scanner, as `json.loads` calls it, on text that is one JSON value
    and nothing else; other text (surrounding whitespace, invalid JSON) goes through
    `json.loads` for its result or its error."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


@lru_cache(maxsize=256)
def domain_of(event_type: str) -> str:
    """Cached: asked for every event relayed and consumed (its topic, subscriptions)."""
    entity = event_type.split(".", 1)[0]
    try:
        return DOMAIN_OF[entity]
    except KeyError:
        raise ValueError(f"event type {event_type!r} names no known entity") from None


def topic_for(platform: str, domain: str) -> str:
    return f"entativa.{platform}.{domain}"
