"""The production topology as files: docker-compose.yml, the Dockerfile, the routers'
supergraphs, and the settings every Entativa process reads.

No Docker engine is needed: `docker-compose config` (Debian's docker-compose package,
installed by .ci/run) validates and resolves the compose file, and the result is
checked against the code (DOMAINS, Settings, the CLI). The Dockerfile is read.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from deploy import supergraph as generator
from schema.domains import DOMAINS
from server.cli import parser as cli_parser
from server.settings import Settings
from tests.services import services_required

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
STORES = {"postgres", "mongo", "elasticsearch", "redis", "kafka"}
REQUIRED_ENV = {"ENTATIVA_SECRET_KEY": "compose-test-secret", "POSTGRES_PASSWORD": "compose-test"}


def missing(what: str) -> None:
    if services_required():
        pytest.fail(f"{what} and ENTATIVA_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(what)


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        missing("docker-compose is not installed (apt-get install docker-compose)")
    assert binary is not None
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED_ENV and k != "ENTATIVA_BIND"}
    return subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(COMPOSE), "config"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    """The compose file's services as `docker-compose config` resolves them."""
    result = compose_config(REQUIRED_ENV)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    config = yaml.safe_load(result.stdout)
    return dict(config["services"])


def entativa_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services running the Entativa image (the ones that are built from here)."""
    return {name: service for name, service in services.items() if "build" in service}


def subgraph_of(service: dict[str, Any]) -> str | None:
    command = service.get("command") or []
    return command[command.index("--subgraph") + 1] if "--subgraph" in command else None


# ───────────────────────── docker-compose.yml ─────────────────────────


def test_one_subgraph_service_per_domain_named_like_it(services: dict[str, Any]) -> None:
    subgraphs = {name: subgraph_of(s) for name, s in services.items() if subgraph_of(s)}
    assert set(subgraphs.values()) == set(DOMAINS), (
        "docker-compose.yml needs one service per subgraph of schema/domains.py DOMAINS "
        "(copy the `users` service and change its name and --subgraph)"
    )
    assert all(name == subgraph for name, subgraph in subgraphs.items()), (
        "a subgraph's service is named like it: the routers' supergraphs reach it by that name"
    )
    for name in subgraphs:
        command = services[name]["command"]
        assert command[command.index("--port") + 1] == str(generator.SERVICE_PORT)
        assert command[command.index("--host") + 1] == "0.0.0.0"
        assert "--no-migrate" in command, "the migrate job migrates, once"
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_every_store_runs_and_kafka_is_in_kraft_mode(services: dict[str, Any]) -> None:
    assert STORES <= set(services)
    assert not any("zookeeper" in name for name in services)
    kafka = services["kafka"]["environment"]
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    for store in STORES:
        assert services[store].get("healthcheck", {}).get("test"), f"{store} has no healthcheck"


def test_every_entativa_process_reads_the_same_settings(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subgraphs, the worker, the realtime server and the migration job get one
    environment: every store URL from it, and every variable a real setting."""
    ours = entativa_services(services)
    assert {"migrate", "worker", "realtime", *DOMAINS} <= set(ours)
    environments = {name: service["environment"] for name, service in ours.items()}
    first = environments["worker"]
    assert all(env == first for env in environments.values())
    assert first["ENTATIVA_DATABASE_URL"].startswith("postgresql+asyncpg://entativa:")
    assert first["ENTATIVA_DATABASE_URL"].endswith("@postgres:5432/entativa")
    assert first["ENTATIVA_REDIS_URL"] == "redis://redis:6379/0"
    assert first["ENTATIVA_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert first["ENTATIVA_MONGO_URL"] == "mongodb://mongo:27017"
    assert first["ENTATIVA_SEARCH_BACKEND"] == "elasticsearch"
    assert first["ENTATIVA_ELASTICSEARCH_URL"] == "http://elasticsearch:9200"
    assert first["ENTATIVA_SECRET_KEY"] == REQUIRED_ENV["ENTATIVA_SECRET_KEY"]
    unknown = [
        key for key in first if key.removeprefix("ENTATIVA_").lower() not in Settings.model_fields
    ]
    assert unknown == [], f"not settings of server/settings.py: {unknown}"
    for key in [key for key in os.environ if key.startswith("ENTATIVA_")]:
        monkeypatch.delenv(key)
    for key, value in first.items():
        monkeypatch.setenv(key, str(value))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]  # as a container reads it
    assert settings.trusted_proxies == ["172.28.0.10", "172.28.0.11"]
    assert settings.environment == "production" and not settings.embedded_events
    for name, service in ours.items():  # every command is one the CLI accepts
        cli_parser().parse_args(service["command"])
        assert "media:/data/media:rw" in service["volumes"], f"{name} lacks the media volume"


def test_the_worker_scales_and_the_migration_runs_once(services: dict[str, Any]) -> None:
    worker, migrate = services["worker"], services["migrate"]
    assert worker["command"] == ["worker"]
    assert "container_name" not in worker and "ports" not in worker  # `--scale worker=N`
    for service in (worker, migrate):  # no HTTP endpoint to check
        assert service["healthcheck"] in ({"disable": True}, {"test": ["NONE"]})
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"


def test_the_routers_serve_the_committed_supergraphs(services: dict[str, Any]) -> None:
    trusted = services["worker"]["environment"]["ENTATIVA_TRUSTED_PROXIES"]
    for platform in generator.PLATFORMS:
        router = services[f"router-{platform}"]
        assert router["image"].startswith("ghcr.io/apollographql/router:")
        mounts = {m.split(":")[1]: Path(m.split(":")[0]) for m in router["volumes"]}
        assert mounts["/dist/schema/supergraph.graphql"] == generator.supergraph_path(platform)
        assert mounts["/dist/config/router.yaml"].is_file()
        assert set(router["depends_on"]) == set(DOMAINS)
        address = router["networks"]["default"]["ipv4_address"]
        assert f'"{address}"' in trusted, "the subgraphs believe the routers' X-Forwarded-For"
    config = yaml.safe_load((ROOT / "deploy" / "router" / "router.yaml").read_text())
    propagated = {rule["propagate"]["named"] for rule in config["headers"]["all"]["request"]}
    assert {"authorization", "x-request-id"} <= propagated
    assert config["include_subgraph_errors"] == {"all": True}  # contract error codes


def test_the_compose_file_refuses_to_run_without_a_shared_secret() -> None:
    result = compose_config({"POSTGRES_PASSWORD": "x"})
    assert result.returncode != 0
    assert "ENTATIVA_SECRET_KEY" in result.stderr


# ───────────────────────── the routers' supergraphs ─────────────────────────


def test_the_committed_supergraphs_are_current() -> None:
    try:
        files = generator.render()
    except generator.ComposeError as error:
        missing(str(error))
    stale = [str(path.relative_to(ROOT)) for path in generator.stale(files)]
    assert stale == [], (
        f"{', '.join(stale)} out of date with the subgraph SDLs: run "
        f"`{generator.REGENERATE}` and commit the result"
    )
    for platform in generator.PLATFORMS:
        text = generator.supergraph_path(platform).read_text()
        graphs = dict(re.findall(r'@join__graph\(name: "([^"]+)", url: "([^"]+)"\)', text))
        assert graphs == {name: generator.subgraph_url(name, platform) for name in DOMAINS}


# ───────────────────────── Dockerfile ─────────────────────────


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_is_slim_multi_stage_and_runs_as_a_user() -> None:
    instructions = dockerfile_instructions()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    stages = [args for op, args in instructions if op == "FROM"]
    assert len(stages) >= 2 and stages[-1].endswith("AS runtime")
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["entativa"]') in instructions


def test_the_image_holds_every_package_pyproject_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = {
        args.split()[0]
        for op, args in dockerfile_instructions()
        if op == "COPY" and "--from" not in args
    }
    assert packages <= copied, f"COPY these in the Dockerfile: {sorted(packages - copied)}"
    assert {"pyproject.toml", "README.md"} <= copied
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", "**/node_modules", "tests", ".env"} <= ignored
    assert not packages & ignored


async def test_the_image_healthcheck_asks_the_readiness_endpoint(tmp_path: Path) -> None:
    from server.app import create_app

    text = DOCKERFILE.read_text()
    assert "HEALTHCHECK" in text and "ENTATIVA_READY_URL" in text.split("HEALTHCHECK", 1)[1]
    url = re.search(r"ENTATIVA_READY_URL=(\S+)", text)
    assert url is not None
    path = httpx.URL(url[1]).path
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db", secret_key="k" * 40
    )
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
            response = await http.get(path)
    finally:
        await app.state.runtime.close()
    assert response.status_code == 200 and response.json()["status"] == "ok"


# ───────────────────────── one set of settings for every role ─────────────────────────


def test_servers_and_workers_build_their_stores_from_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasources.cache import RedisCache
    from datasources.stories.mongo import MongoStoryStore
    from server import worker
    from server.runtime import stores_from_settings
    from subscriptions.broker import RedisBroker

    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql+asyncpg://u:p@db.example:5432/entativa",
        redis_url="redis://redis.example:6379/0",
        kafka_bootstrap="kafka.example:9092",
        mongo_url="mongodb://mongo.example:27017",
        mongo_database="stories_db",
        search_backend="elasticsearch",
        elasticsearch_url="http://es.example:9200",
        media_dir=tmp_path / "shared-media",
    )
    stores = stores_from_settings(settings)
    assert str(stores.db.url) == settings.database_url
    assert isinstance(stores.cache, RedisCache) and isinstance(stores.broker, RedisBroker)
    assert isinstance(stores.stories, MongoStoryStore)
    assert stores.events.config.kafka_bootstrap == "kafka.example:9092"
    assert stores.search_config.backend == "elasticsearch"
    assert stores.search_config.elasticsearch_url == "http://es.example:9200"
    assert getattr(stores.blobs, "root", None) == tmp_path / "shared-media"

    built: list[Settings] = []

    def record(given: Settings) -> Any:
        built.append(given)
        raise LookupError("stop here")

    monkeypatch.setattr(worker, "stores_from_settings", record)
    with pytest.raises(LookupError):
        asyncio.run(worker.run_worker(settings))
    assert built == [settings], "entativa worker builds its stores as the server does"


async def test_migrate_prepares_mongodb_and_elasticsearch_once_for_all_replicas(
    tmp_path: Path,
) -> None:
    """`entativa migrate` (the compose file's one-shot job) creates the stories indexes
    and the first search index behind its alias, before any replica could race to."""
    from pymongo import AsyncMongoClient

    from datasources.search.elastic import ElasticSearchIndex
    from tests.services import require

    require("MongoDB (a Mongo-wire server)", "127.0.0.1", 27017)
    require("Elasticsearch (an OpenSearch-API server)", "127.0.0.1", 9200)
    suffix = tmp_path.name.lower().replace("_", "-")[-20:]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENTATIVA_")},
        "ENTATIVA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'entativa.db'}",
        "ENTATIVA_DATA_DIR": str(tmp_path / "data"),
        "ENTATIVA_MONGO_URL": "mongodb://127.0.0.1:27017",
        "ENTATIVA_MONGO_DATABASE": f"migrate-{suffix}",
        "ENTATIVA_SEARCH_BACKEND": "elasticsearch",
        "ENTATIVA_ELASTICSEARCH_URL": "http://127.0.0.1:9200",
        "ENTATIVA_ELASTICSEARCH_INDEX": f"migrate-{suffix}",
        "ENTATIVA_ELASTICSEARCH_OPENSEARCH_COMPATIBLE": "true",
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "migrate",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await asyncio.wait_for(migrate.communicate(), 120))[0].decode(errors="replace")
    assert migrate.returncode == 0, output
    assert f"MongoDB indexes of migrate-{suffix} ready" in output
    assert f"Elasticsearch index migrate-{suffix} ready" in output

    index = ElasticSearchIndex(
        "http://127.0.0.1:9200", f"migrate-{suffix}", opensearch_compatible=True
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient("mongodb://127.0.0.1:27017")
    try:
        assert len(await index._physical()) == 1, "one generation behind the alias"
        names = [i["name"] async for i in await client[f"migrate-{suffix}"].stories.list_indexes()]
        assert len(names) > 1, f"the stories indexes were created: {names}"
    finally:
        await index.drop()
        await index.close()
        await client.drop_database(f"migrate-{suffix}")
        await client.close()
