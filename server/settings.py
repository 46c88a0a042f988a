"""Settings from the environment (`ENTATIVA_*`), with embedded defaults.

The defaults run everything in one process on local files under `./data`, so a
newcomer needs no server. Production points the URLs at real services.
"""
from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PlatformName = Literal["socialink", "vignette"]
OperationClass = Literal["sign_in", "sign_up", "writes", "search", "key_claims"]


class RateLimit(BaseModel):
    """A token bucket (server/ratelimit.py): up to `burst` at once, `per_minute` sustained."""

    per_minute: float
    burst: int


class RateLimits(BaseModel):
    """Per operation class; a user's bucket, or a signed-out caller's address's. A
    signed-in caller's address gets `signed_in_address_factor` times the user's limit.
    From the environment as JSON, e.g. ENTATIVA_RATE_LIMITS='{"writes": {...}}'."""

    enabled: bool = True
    signed_in_address_factor: float = 5.0
    sign_in: RateLimit = RateLimit(per_minute=30, burst=30)
    sign_up: RateLimit = RateLimit(per_minute=30, burst=60)
    writes: RateLimit = RateLimit(per_minute=600, burst=300)
    search: RateLimit = RateLimit(per_minute=300, burst=120)
    key_claims: RateLimit = RateLimit(per_minute=60, burst=60)
    # Each claimer of each target's keys (resolvers/messaging/keys.py): 6 per 10 minutes.
    key_claims_per_target: RateLimit = RateLimit(per_minute=0.6, burst=6)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENTATIVA_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite file in data_dir
    redis_url: str = ""  # empty: in-process cache
    # Events (datasources/events): empty bootstrap = the in-process bus, with the outbox
    # relay and consumers inside `serve`; set = Kafka, relayed by `entativa worker`.
    kafka_bootstrap: str = ""
    kafka_topic_namespace: str = ""  # prefix of the topics and consumer group ids
    kafka_partitions: int = 3
    kafka_session_timeout_ms: int = 10_000
    relay_poll_seconds: float = 1.0  # fallback when no in-process commit wakes the relay
    # Rows per relay round: each round reaches a batching consumer (notifications) as one
    # batch, one transaction; 5,000 keeps a burst of 100,000 likes at ~20 transactions.
    relay_batch_size: int = 5_000
    outbox_retention_hours: float = 7 * 24  # published outbox rows are kept this long
    # Stories (datasources/stories): empty = the relational database; set = MongoDB.
    mongo_url: str = ""
    mongo_database: str = "entativa"
    story_sweep_seconds: float = 60.0  # purge expired stories, announce ended countdowns
    media_dir: Path | None = None  # empty: data_dir / "media"
    # Search (datasources/search): the embedded Tantivy index under data_dir/search, or
    # Elasticsearch / an OpenSearch-API server (set opensearch_compatible for those).
    search_backend: Literal["tantivy", "elasticsearch"] = "tantivy"
    elasticsearch_url: str = "http://127.0.0.1:9200"
    elasticsearch_index: str = "entativa-search"
    elasticsearch_opensearch_compatible: bool = False
    public_url: str = ""  # base for absolute media URLs; empty: relative paths

    default_platform: PlatformName = "socialink"
    secret_key: str = ""  # empty: generated once, kept in data_dir/secret_key
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600

    sign_in_failures_per_minute: int = 5
    rate_limits: RateLimits = RateLimits()  # per operation class (server/ratelimit.py)
    # Addresses of proxies (the router, a load balancer) whose X-Forwarded-For is
    # believed; from anyone else the header is ignored (it is trivial to forge).
    trusted_proxies: list[str] = []
    max_image_bytes: int = 20 * 1024 * 1024
    max_video_bytes: int = 200 * 1024 * 1024
    max_audio_bytes: int = 50 * 1024 * 1024

    max_query_depth: int = 12
    max_aliases: int = 30
    max_query_tokens: int = 2000
    max_page_size: int = 100
    # Cost analysis (server/cost.py): a request estimated above this is refused; 0: off.
    max_query_cost: int = 20_000
    # Persisted queries (server/persisted.py): Apollo APQ, documents kept in the cache;
    # trusted_documents accepts only those `entativa documents register` put in
    # data_dir/trusted_documents.json.
    persisted_queries: bool = True
    persisted_query_ttl_seconds: int = 7 * 24 * 3600
    trusted_documents: bool = False

    # Realtime (subscriptions/): websockets and HTTP subscriptions. Connections per
    # user are counted per process; a full outgoing queue closes the socket (1013).
    max_connections_per_user: int = 10
    max_subscriptions_per_connection: int = 50
    ws_ping_seconds: float = 15.0  # keep-alive ping/ka interval; 0 disables
    ws_queue_size: int = 256  # outgoing messages a connection may have waiting
    ws_init_timeout_seconds: float = 10.0  # connection_init must come this soon (4408)
    # SIGTERM (server/cli.py serve): requests in flight get this long to finish before
    # they are cancelled and the outbox relay flushes; keep it under the orchestrator's
    # kill delay (docker-compose.yml: stop_grace_period 30s).
    shutdown_grace_seconds: float = 20.0

    # Messaging calls and encrypted attachments (resolvers/messaging/calls.py, attachments.py).
    call_ring_seconds: float = 60.0  # an unanswered call ends this long after it started
    max_encrypted_attachment_bytes: int = 100 * 1024 * 1024  # PAYLOAD_TOO_LARGE beyond
    attachment_retention_days: float = 30.0  # attachments are purged this long after upload
    messaging_sweep_seconds: float = 60.0  # purge expired envelopes (messaging/sweeper.py)
    envelope_retention_days: float = 30.0  # undelivered envelopes are purged after this long

    # Push and email delivery (datasources/notifications/delivery), done by the worker,
    # never on a request. A channel without its credentials (key file, host) is off.
    fcm_base_url: str = "https://fcm.googleapis.com"
    fcm_project_id: str = ""  # empty: the project_id in the service-account key
    fcm_credentials_file: Path | None = None  # Google service-account key (JSON)
    apns_base_url: str = "https://api.push.apple.com"
    apns_team_id: str = ""
    apns_key_id: str = ""
    apns_key_file: Path | None = None  # the AuthKey_<key id>.p8 token-signing key
    apns_topic: str = ""  # the app's bundle id, for devices registered without one
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_from: str = ""  # From header, e.g. "Entativa <notifications@example.com>"
    smtp_starttls: bool = True
    smtp_username: str = ""
    smtp_password: str = ""
    notification_dispatch_seconds: float = 10.0  # how often due push/email are sent

    # production: GraphiQL and introspection off whatever else says (validated at
    # construction: model_copy(update=...) skips it), HSTS on (server/hygiene.py).
    environment: Literal["development", "production"] = "development"
    graphiql: bool = True
    introspection: bool = True
    cors_origins: list[str] = []  # origins browsers may call the API from; empty: none
    # A request body that is not a multipart upload: 3 MiB carries an MLS commit and its
    # Welcome of up to 1 MiB each (the handshake limit) as base64 in one JSON body.
    max_request_bytes: int = 3 * 1024 * 1024
    log_level: str = "INFO"
    sql_echo: bool = False

    @model_validator(mode="after")
    def _production_switches(self) -> Settings:
        if self.environment == "production":
            self.graphiql = False
            self.introspection = False
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'entativa.db').as_posix()}"

    @property
    def embedded_events(self) -> bool:
        """Whether `serve` runs the outbox relay and consumers itself (no Kafka)."""
        return not self.kafka_bootstrap

    @property
    def resolved_media_dir(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @cached_property
    def signing_key(self) -> str:
        """The token signing secret: configured, or generated once and kept on disk."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


PLATFORMS: tuple[PlatformName, ...] = ("socialink", "vignette")
