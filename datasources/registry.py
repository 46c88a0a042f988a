"""The stores a process uses, picked by settings, and the per-request loaders over them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from datasources.cache import Cache, build_cache
from datasources.events.consumers import EventConsumer
from datasources.events.pipeline import EventConfig, EventPipeline
from datasources.media.blobs import BlobStore, LocalBlobStore
from datasources.media.loaders import MediaLoaders
from datasources.media.store import MediaStore
from datasources.messaging.attachments import AttachmentStore
from datasources.messaging.calls import CallStore
from datasources.messaging.conversations import ConversationStore
from datasources.messaging.envelopes import EnvelopeStore
from datasources.messaging.groups import GroupStore
from datasources.messaging.keys import KeyStore
from datasources.messaging.loaders import MessagingLoaders
from datasources.notifications.loaders import NotificationLoaders
from datasources.notifications.store import NotificationStore
from datasources.posts.loaders import PostLoaders
from datasources.posts.store import PostStore
from datasources.posts.take_loaders import TakeLoaders
from datasources.posts.takes_store import TakeStore
from datasources.search.build import SearchConfig, build_search_index
from datasources.search.history import SearchLog
from datasources.search.metrics import SearchMetrics
from datasources.search.store import SearchIndex
from datasources.sql import Database, utcnow
from datasources.stories.loaders import StoryLoaders
from datasources.stories.store import StoryStore
from datasources.users.loaders import UserLoaders
from datasources.users.sessions import SessionStore
from datasources.users.store import UserStore
from subscriptions.broker import Broker, build_broker
from subscriptions.timers import Timers


@dataclass
class Stores:
    """Long-lived adapters, one set per process."""

    db: Database
    users: UserStore
    media: MediaStore
    blobs: BlobStore
    sessions: SessionStore
    cache: Cache
    events: EventPipeline  # the bus, the outbox relay, the consumers (datasources/events)
    posts: PostStore
    takes: TakeStore
    broker: Broker  # realtime pub/sub (subscriptions/broker.py): Redis or in-process
    stories: StoryStore  # MongoDB when configured, else the relational database
    mongo: Any = None  # the AsyncMongoClient behind `stories`, if any
    # The time every expiry decision reads (stories); tests move it forward.
    clock: Callable[[], datetime] = field(default=utcnow)
    notifications: NotificationStore = field(init=False)  # over `db`
    keys: KeyStore = field(init=False)  # messaging key directory, over `db`
    conversations: ConversationStore = field(init=False)  # messaging, over `db`
    envelopes: EnvelopeStore = field(init=False)  # messaging device queues, over `db`
    groups: GroupStore = field(init=False)  # messaging MLS groups, over `db`
    calls: CallStore = field(init=False)  # messaging calls, over `db`
    attachments: AttachmentStore = field(init=False)  # encrypted attachments, over `db`
    # One-shot timers of this process: ring timeouts, typing expiry (subscriptions/timers.py).
    timers: Timers = field(default_factory=Timers)
    search_config: SearchConfig = field(default_factory=SearchConfig)
    search_log: SearchLog = field(init=False)  # history and daily rollup, over `db`
    search_metrics: SearchMetrics = field(init=False)
    _search: SearchIndex | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.notifications = NotificationStore(self.db)
        self.keys = KeyStore(self.db)
        self.conversations = ConversationStore(self.db)
        self.envelopes = EnvelopeStore(self.db)
        self.groups = GroupStore(self.db)
        self.calls = CallStore(self.db)
        self.attachments = AttachmentStore(self.db)
        self.search_log = SearchLog(self.db)
        self.search_metrics = SearchMetrics()

    @property
    def search(self) -> SearchIndex:
        """The search index (datasources/search), opened on first use: a process that
        never searches or indexes opens no index directory or client."""
        if self._search is None:
            self._search = build_search_index(self.search_config)
        return self._search

    def readiness(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """What `/readyz` pings (server/observability.py), by store name: every store this
        process is configured to use. `stories` and `events` appear only when they are
        servers of their own (MongoDB, Kafka); otherwise they live in `db` or in-process."""
        checks: dict[str, Callable[[], Awaitable[None]]] = {
            "db": self.db.ping,
            "cache": self.cache.ping,  # Redis when configured
            "broker": self.broker.ping,  # Redis pub/sub when configured
            "search": self.search.ping,  # Elasticsearch, or the Tantivy directory
        }
        stories_ping = getattr(self.stories, "ping", None)
        if self.mongo is not None and stories_ping is not None:
            checks["stories"] = stories_ping
        if self.events.config.uses_kafka:
            checks["events"] = self.events.ping
        return checks

    async def prepare(self) -> None:
        """Idempotent setup a store needs before serving (MongoDB's indexes)."""
        ensure_indexes = getattr(self.stories, "ensure_indexes", None)
        if ensure_indexes is not None:
            await ensure_indexes()

    async def close(self) -> None:
        self.timers.cancel_all()
        await self.events.close()
        for consumer in self.events.consumers:  # e.g. the search indexer: its engine
            close = getattr(consumer, "close", None)
            if close is not None:
                await close()
        await self.broker.close()
        await self.db.dispose()
        await self.cache.close()
        if self.mongo is not None:
            await self.mongo.close()
        if self._search is not None:
            await self._search.close()


def build_stores(
    database_url: str,
    echo: bool = False,
    redis_url: str = "",
    media_dir: Path = Path("data/media"),
    events: EventConfig | None = None,
    mongo_url: str = "",
    mongo_database: str = "entativa",
    search: SearchConfig | None = None,
) -> Stores:
    db = Database(database_url, echo=echo)
    stories, mongo = build_story_store(db, mongo_url, mongo_database)
    return Stores(
        db=db,
        users=UserStore(db),
        media=MediaStore(db),
        blobs=LocalBlobStore(media_dir),
        sessions=SessionStore(db),
        cache=build_cache(redis_url),
        events=EventPipeline(database_url, events),
        posts=PostStore(db),
        takes=TakeStore(db),
        broker=build_broker(redis_url),
        stories=stories,
        mongo=mongo,
        search_config=search or SearchConfig(),
    )


def build_story_store(db: Database, mongo_url: str, mongo_database: str) -> tuple[StoryStore, Any]:
    """MongoDB (PyMongo's async client) when a URL is set, else the relational store."""
    if not mongo_url:
        from datasources.stories.relational import RelationalStoryStore

        return RelationalStoryStore(db), None
    from pymongo import AsyncMongoClient

    from datasources.stories.mongo import MongoStoryStore

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    return MongoStoryStore(client[mongo_database]), client


def build_consumers(stores: Stores) -> list[EventConsumer]:
    """The event consumers `entativa worker` (or the embedded server) runs; each is
    idempotent by event id (datasources/events/consumers.py). Search indexing,
    notifications and counters add theirs here."""
    from datasources.notifications.consumer import NotificationConsumer
    from datasources.search.indexer import SearchIndexer
    from subscriptions.relay import RealtimeRelay  # domain events → realtime broker

    return [
        RealtimeRelay(stores.broker),
        NotificationConsumer(Database(stores.db.url), stores.broker, owns_db=True),
        SearchIndexer(
            Database(stores.db.url),
            stores.search,
            search_checkpoint(stores.search_config),
            owns_db=True,
        ),
    ]


def search_checkpoint(config: SearchConfig) -> Path | None:
    """Where the embedded index records how far it is durable (indexer.py)."""
    return config.path / "INDEXED" if config.backend == "tantivy" else None


class Loaders:
    """Fresh DataLoaders for one request, scoped to its platform.

    Each domain's loaders are made when the request first uses them: most requests
    touch two or three domains, and making every domain's DataLoaders for each one
    was a measurable share of a small mutation's CPU."""

    def __init__(self, stores: Stores, platform: str) -> None:
        self._stores = stores
        self._platform = platform

    @cached_property
    def users(self) -> UserLoaders:
        return UserLoaders(self._stores.users, self._platform)

    @cached_property
    def media(self) -> MediaLoaders:
        return MediaLoaders(self._stores.media, self._platform)

    @cached_property
    def posts(self) -> PostLoaders:
        return PostLoaders(self._stores.posts, self._platform, users=self.users)

    @cached_property
    def takes(self) -> TakeLoaders:
        return TakeLoaders(self._stores.takes, self._platform)

    @cached_property
    def stories(self) -> StoryLoaders:
        return StoryLoaders(self._stores.stories, self._platform, self._stores.clock)

    @cached_property
    def notifications(self) -> NotificationLoaders:
        return NotificationLoaders(self._stores.notifications, self._platform)

    @cached_property
    def messaging(self) -> MessagingLoaders:
        return MessagingLoaders(self._stores.conversations, self._platform, self._stores.calls)
