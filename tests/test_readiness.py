"""`/readyz` pings every store the process is configured to use and names the one
that fails (503); `/healthz` stays 200 meanwhile (liveness is not readiness).

The unreachable stores are ports nothing listens on, so these run anywhere; the
all-stores-up case needs the servers of DEVELOPERS.md (skipped without them, failed
under ENTATIVA_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.settings import Settings
from tests.services import KAFKA_BOOTSTRAP, POSTGRES_URL, REDIS_URL, require

Make = Callable[..., httpx.AsyncClient]

MONGO = ("127.0.0.1", 27017)
ELASTICSEARCH = ("127.0.0.1", 9200)


def closed_port() -> int:
    """A local port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def client_for(tmp_path: Path) -> AsyncIterator[Make]:
    """`client_for(**settings)`: an HTTP client of a fresh app on a SQLite file."""
    made: list[tuple[Any, httpx.AsyncClient]] = []

    def make(**changes: Any) -> httpx.AsyncClient:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'entativa.db'}",
            "secret_key": "readiness-secret-key-that-is-long-enough",
            "story_sweep_seconds": 0,
        }
        settings = Settings(**{**values, **changes})
        app = create_app(settings)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        made.append((app, http))
        return http

    yield make
    for app, http in made:
        await http.aclose()
        await app.state.runtime.close()


async def ready(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await http.get("/readyz")
    return response.status_code, response.json()


async def test_embedded_stores_are_all_checked_and_ready(client_for: Make) -> None:
    status, body = await ready(client_for())
    assert (status, body["status"], body["failed"]) == (200, "ok", [])
    # No MongoDB or Kafka configured: stories live in db, events in process.
    assert body["checks"] == {"db": "ok", "cache": "ok", "broker": "ok", "search": "ok"}


@pytest.mark.parametrize(
    ("store", "changes"),
    [
        ("stories", lambda port: {"mongo_url": f"mongodb://127.0.0.1:{port}"}),
        (
            "search",
            lambda port: {
                "search_backend": "elasticsearch",
                "elasticsearch_url": f"http://127.0.0.1:{port}",
            },
        ),
        ("events", lambda port: {"kafka_bootstrap": f"127.0.0.1:{port}"}),
        ("db", lambda port: {"database_url": f"postgresql+asyncpg://u@127.0.0.1:{port}/none"}),
    ],
    ids=["mongodb", "elasticsearch", "kafka", "postgresql"],
)
async def test_an_unreachable_configured_store_makes_the_process_unready(
    client_for: Make, store: str, changes: Callable[[int], dict[str, Any]]
) -> None:
    http = client_for(**changes(closed_port()))
    assert (await http.get("/healthz")).status_code == 200  # alive: no restart wanted
    started = time.monotonic()
    status, body = await ready(http)
    assert status == 503, body
    assert body["status"] == "unavailable"
    assert body["failed"] == [store]
    assert body["checks"][store].startswith("unavailable (")
    assert all(outcome == "ok" for name, outcome in body["checks"].items() if name != store)
    assert time.monotonic() - started < 10, "readiness answers within its timeout"


async def test_unreachable_redis_fails_both_of_its_uses(client_for: Make) -> None:
    status, body = await ready(client_for(redis_url=f"redis://127.0.0.1:{closed_port()}/0"))
    assert status == 503
    assert sorted(body["failed"]) == ["broker", "cache"]
    assert body["checks"]["db"] == "ok"


async def test_every_production_store_is_checked_when_configured(client_for: Make) -> None:
    """The production shape (PostgreSQL, Redis, MongoDB, Elasticsearch, Kafka): six
    checks, all ok; then the same with one of them gone names only that one."""
    require("PostgreSQL", "127.0.0.1", 5432)
    require("Redis", "127.0.0.1", 6379)
    require("MongoDB (a Mongo-wire server)", *MONGO)
    require("Elasticsearch (an OpenSearch-API server)", *ELASTICSEARCH)
    host, port = KAFKA_BOOTSTRAP.rsplit(":", 1)
    require("Kafka", host, int(port))
    production = {
        "database_url": POSTGRES_URL,
        "redis_url": REDIS_URL,
        "mongo_url": f"mongodb://{MONGO[0]}:{MONGO[1]}",
        "mongo_database": "entativa_readiness",
        "search_backend": "elasticsearch",
        "elasticsearch_url": f"http://{ELASTICSEARCH[0]}:{ELASTICSEARCH[1]}",
        "elasticsearch_opensearch_compatible": True,
        "kafka_bootstrap": KAFKA_BOOTSTRAP,
        "kafka_topic_namespace": "readiness",
    }
    status, body = await ready(client_for(**production))
    assert status == 200, body
    assert body["checks"] == dict.fromkeys(
        ["db", "cache", "broker", "search", "stories", "events"], "ok"
    )

    status, body = await ready(
        client_for(**{**production, "mongo_url": f"mongodb://127.0.0.1:{closed_port()}"})
    )
    assert (status, body["failed"]) == (503, ["stories"])
