"""Everything one process holds for its lifetime: settings, stores, schema, auth."""
from __future__ import annotations

from dataclasses import dataclass

import strawberry

from datasources.events.pipeline import EventConfig
from datasources.notifications.delivery import ApnsConfig, FcmConfig, ServiceAccount, SmtpConfig
from datasources.notifications.dispatch import DispatchConfig, NotificationDispatcher, Wording
from datasources.registry import Stores, build_consumers, build_stores
from datasources.search.build import SearchConfig
from resolvers.context import Viewer
from resolvers.ids import encode_id
from resolvers.messaging.sweeper import MessagingSweeper, build_sweeper
from resolvers.notifications.inbox import summary
from resolvers.stories.sweeper import StorySweeper
from resolvers.users.sessions import family_revoked
from server.auth import Auth
from server.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    stores: Stores
    schema: strawberry.Schema
    auth: Auth
    sweeper: StorySweeper | None = None
    messaging_sweeper: MessagingSweeper | None = None
    dispatcher: NotificationDispatcher | None = None
    _closed: bool = False

    async def authenticate(self, token: str, platform: str) -> Viewer | None:
        """The viewer an access token proves on `platform`, or None.

        A valid signature is not enough: the token's family may have been revoked
        (sign-out, refresh-token reuse) before the token expired.
        """
        viewer = self.auth.read_access_token(token)
        if viewer is None or viewer.platform != platform:
            return None
        if await family_revoked(self.stores.cache, viewer.family_id):
            return None
        if getattr(self.stores.cache, "degraded", False):  # Redis down (datasources/cache.py):
            # a sign-out from before the outage is only in Redis; the database knows it.
            if await self.stores.sessions.family_revoked(platform, viewer.family_id):
                return None
        return viewer

    async def start(self) -> None:
        """Background work of the server process (the Starlette lifespan calls it).

        Embedded default (no Kafka): the outbox relay and the consumers run here, on
        the in-process bus, and so does the stories sweeper. With Kafka, `entativa worker`
        runs them instead; the bus is still started so the process can subscribe (e.g.
        realtime fan-out). The notification dispatcher too, when push or email is
        configured (datasources/notifications/dispatch.py).
        """
        await self.stores.prepare()
        if self.settings.embedded_events:
            await self.stores.events.start(relay=True, consumers=build_consumers(self.stores))
            self.sweeper = StorySweeper(self.stores, self.settings.story_sweep_seconds)
            self.sweeper.start()
            self.messaging_sweeper = messaging_sweeper(self.settings, self.stores)
            self.messaging_sweeper.start()
            self.dispatcher = build_dispatcher(self.settings, self.stores)
            if self.dispatcher is not None:
                self.dispatcher.start()
        else:
            await self.stores.events.start(relay=False)

    async def close(self) -> None:
        """Idempotent: the lifespan and the code that built the app may both call it."""
        if self._closed:
            return
        self._closed = True
        if self.sweeper is not None:
            await self.sweeper.stop()
        if self.messaging_sweeper is not None:
            await self.messaging_sweeper.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await self.stores.close()


def messaging_sweeper(settings: Settings, stores: Stores) -> MessagingSweeper:
    """Purges expired envelopes and attachments, ends rung-out calls (server and worker)."""
    return build_sweeper(
        stores,
        settings.messaging_sweep_seconds,
        settings.envelope_retention_days,
        settings.call_ring_seconds,
    )


def build_runtime(settings: Settings, schema: strawberry.Schema) -> Runtime:
    stores = stores_from_settings(settings)
    auth = Auth(settings, stores.sessions)
    return Runtime(settings=settings, stores=stores, schema=schema, auth=auth)


def stores_from_settings(settings: Settings) -> Stores:
    """Every store of a process from `ENTATIVA_*` settings: the one place `serve`
    (whole graph or `--subgraph`) and `entativa worker` build them, so a server and a
    worker given the same environment use the same database, Redis, MongoDB, search
    backend, Kafka and media directory (the worker's sweeper deletes media files)."""
    return build_stores(
        settings.resolved_database_url,
        echo=settings.sql_echo,
        redis_url=settings.redis_url,
        media_dir=settings.resolved_media_dir,
        events=event_config(settings),
        mongo_url=settings.mongo_url,
        mongo_database=settings.mongo_database,
        search=search_config(settings),
    )


async def prepare_stores(settings: Settings) -> list[str]:
    """What `entativa migrate` sets up besides the tables, once per deployment: the
    MongoDB indexes and the first Elasticsearch index with its alias. Processes do it
    lazily too, but replicas starting together would race to create the first index
    (two indexes behind one alias, which then refuses writes); the migration job runs
    before any of them (docker-compose.yml). Returns what it prepared."""
    stores = stores_from_settings(settings)
    done: list[str] = []
    try:
        if stores.mongo is not None:
            await stores.prepare()
            done.append(f"MongoDB indexes of {settings.mongo_database}")
        if settings.search_backend == "elasticsearch":  # Tantivy: made where it is opened
            ensure_index = getattr(stores.search, "ensure_index", None)
            if ensure_index is not None:
                await ensure_index()
                done.append(f"Elasticsearch index {settings.elasticsearch_index}")
    finally:
        await stores.close()
    return done


def search_config(settings: Settings) -> SearchConfig:
    return SearchConfig(
        backend=settings.search_backend,
        path=settings.data_dir / "search",
        elasticsearch_url=settings.elasticsearch_url,
        elasticsearch_index=settings.elasticsearch_index,
        opensearch_compatible=settings.elasticsearch_opensearch_compatible,
    )


def event_config(settings: Settings) -> EventConfig:
    return EventConfig(
        kafka_bootstrap=settings.kafka_bootstrap,
        kafka_namespace=settings.kafka_topic_namespace,
        kafka_partitions=settings.kafka_partitions,
        kafka_session_timeout_ms=settings.kafka_session_timeout_ms,
        relay_batch_size=settings.relay_batch_size,
        relay_poll_seconds=settings.relay_poll_seconds,
        outbox_retention_hours=settings.outbox_retention_hours,
    )


def dispatch_config(settings: Settings) -> DispatchConfig:
    """Push and email from settings: a provider without its credentials is off."""
    fcm = apns = smtp = None
    if settings.fcm_credentials_file is not None:
        account = ServiceAccount.from_file(settings.fcm_credentials_file)
        fcm = FcmConfig(account, settings.fcm_project_id, settings.fcm_base_url)
    if settings.apns_key_file is not None and settings.apns_team_id and settings.apns_key_id:
        apns = ApnsConfig.from_key_file(
            settings.apns_key_file,
            team_id=settings.apns_team_id,
            key_id=settings.apns_key_id,
            topic=settings.apns_topic,
            base_url=settings.apns_base_url,
        )
    if settings.smtp_host and settings.smtp_from:
        smtp = SmtpConfig(
            host=settings.smtp_host,
            sender=settings.smtp_from,
            port=settings.smtp_port,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
        )
    return DispatchConfig(
        fcm=fcm, apns=apns, smtp=smtp, every_seconds=settings.notification_dispatch_seconds
    )


def build_dispatcher(settings: Settings, stores: Stores) -> NotificationDispatcher | None:
    """The notification dispatcher, or None when neither push nor email is configured
    (the deliveries then wait in their table until one is)."""
    config = dispatch_config(settings)
    if not config.enabled:
        return None
    wording = Wording(summary=summary, node_id=lambda pk: encode_id("NotificationGroup", pk))
    return NotificationDispatcher(stores.db, stores.cache, config, wording, clock=stores.clock)
