"""Graceful shutdown of a real `entativa serve` process on SIGTERM (what Docker and
Kubernetes send before SIGKILL):

- a request in flight (a client still uploading its body) completes with its answer;
- new connections are refused meanwhile (the listening socket is closed first);
- open websockets are closed with 1001 (going away: reconnect elsewhere);
- the embedded outbox relay publishes every event committed before it stopped, and
  the consumers apply them, before the process exits.

The events checked are committed by another process (this test) while the server's
relay polls only hourly, so nothing but the flush on stop can publish them. The same
holds for `entativa worker` (with Kafka, the relay runs there).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from sqlalchemy import select

from datasources.events.tables import ConsumedEventRow
from datasources.migrate import upgrade
from datasources.sql import Database
from datasources.users.graph import SocialGraph
from datasources.users.store import UserStore
from resolvers.ids import decode_id
from tests.conftest import GraphQLClient, sign_up
from tests.events_support import outbox
from tests.realtime_support import open_socket

SLOW_QUERY = {
    "query": '{ user(username: "alice") { username followers(first: 5) { totalCount } } }'
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def entativa_command() -> list[str]:
    script = Path(sys.executable).with_name("entativa")
    return [str(script)] if script.exists() else [sys.executable, "-m", "server.cli"]


async def wait_ready(http: httpx.AsyncClient, process: asyncio.subprocess.Process) -> None:
    for _ in range(600):  # up to 60 s (two cores shared by many test runs)
        if process.returncode is not None:
            raise AssertionError(f"entativa serve exited with {process.returncode}")
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("entativa serve did not become ready")


async def slow_body(sent_first: asyncio.Event, release: asyncio.Event) -> AsyncIterator[bytes]:
    """The request body in two chunks, the second only once `release` is set."""
    body = json.dumps(SLOW_QUERY).encode()
    yield body[:10]
    sent_first.set()
    await release.wait()
    yield body[10:]


async def test_sigterm_drains_requests_closes_sockets_with_1001_and_flushes_the_outbox(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'entativa.db'}"
    await upgrade(url)
    port = free_port()
    env = {
        **os.environ,
        "ENTATIVA_DATABASE_URL": url,
        "ENTATIVA_DATA_DIR": str(tmp_path / "data"),
        "ENTATIVA_SECRET_KEY": "shutdown-test-secret-key-long-enough-for-hs256",
        "ENTATIVA_KAFKA_BOOTSTRAP": "",  # the embedded bus: relay and consumers in serve
        "ENTATIVA_REDIS_URL": "",
        "ENTATIVA_RELAY_POLL_SECONDS": "3600",  # only a commit in serve (or stop) wakes it
        "ENTATIVA_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        *entativa_command(),
        "serve",
        "--no-demo",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    db = Database(url)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await wait_ready(http, process)
            gql = GraphQLClient(http)
            alice, bob = await sign_up(gql, "alice"), await sign_up(gql, "bob")
            for _ in range(100):  # the sign-ups' events: published at once (commit wake-up)
                if all(published for _, published in await outbox(db)):
                    break
                await asyncio.sleep(0.05)

            # Another process commits follows: this server's relay is not woken by them.
            graph = SocialGraph(db)
            alice_pk, bob_pk = decode_id(alice.id, "User"), decode_id(bob.id, "User")
            await graph.follow(bob_pk, alice_pk, "socialink")
            await asyncio.sleep(0.3)
            waiting = [event.id for event, published in await outbox(db) if not published]
            assert len(waiting) == 1, "the follow's event waits in the outbox"

            sock = await open_socket(f"127.0.0.1:{port}", alice.token)
            sent_first, release = asyncio.Event(), asyncio.Event()
            in_flight = asyncio.create_task(
                http.post(
                    "/socialink/graphql",
                    content=slow_body(sent_first, release),
                    headers={"content-type": "application/json"},
                )
            )
            await asyncio.wait_for(sent_first.wait(), 10)
            await asyncio.sleep(0.3)  # the server is reading the body

            process.send_signal(signal.SIGTERM)
            assert await sock.closed_with(within=10) == 1001
            async with httpx.AsyncClient(base_url=base, timeout=2) as newcomer:
                try:
                    await newcomer.get("/healthz")
                    refused = False
                except httpx.TransportError:
                    refused = True
            assert refused, "a new connection is refused while draining"
            assert process.returncode is None, "still draining the request in flight"

            release.set()
            response = await asyncio.wait_for(in_flight, 30)
        output, _ = await asyncio.wait_for(process.communicate(), 60)
        # uvicorn re-raises the signal once its shutdown is complete, so the exit status
        # says "ended by SIGTERM" (143 in Docker), as for any process with no handler.
        assert process.returncode == -signal.SIGTERM, output.decode(errors="replace")
        assert response.status_code == 200
        assert response.json() == {
            "data": {"user": {"username": "alice", "followers": {"totalCount": 1}}}
        }

        assert all(published for _, published in await outbox(db)), "flushed on stop"
        async with db.session() as session:
            consumed = set(
                await session.scalars(
                    select(ConsumedEventRow.event_id).where(
                        ConsumedEventRow.consumer == "notifications"
                    )
                )
            )
        assert set(waiting) <= consumed, "the consumers applied the flushed events"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await db.dispose()


async def test_sigterm_makes_the_worker_publish_what_is_committed_before_it_exits(
    tmp_path: Path,
) -> None:
    """`entativa worker` polls the outbox; events committed by a server since its last
    round are published on SIGTERM instead of waiting for the next worker."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'entativa.db'}"
    await upgrade(url)
    env = {
        **os.environ,
        "ENTATIVA_DATABASE_URL": url,
        "ENTATIVA_DATA_DIR": str(tmp_path / "data"),
        "ENTATIVA_KAFKA_BOOTSTRAP": "",
        "ENTATIVA_REDIS_URL": "",
        "ENTATIVA_RELAY_POLL_SECONDS": "3600",
    }
    db = Database(url)
    # A server committed two sign-ups: the worker's first round publishes them (after
    # that it polls only hourly: commits in other processes do not wake it).
    users = UserStore(db)
    carol = await users.create("socialink", "carol", "carol@example.com", "-", "Carol")
    dave = await users.create("socialink", "dave", "dave@example.com", "-", "Dave")
    worker = await asyncio.create_subprocess_exec(
        *entativa_command(),
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        for _ in range(600):  # up to 30 s
            if all(published for _, published in await outbox(db)):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the worker did not publish the sign-ups")
        # Then a follow: its event waits in the outbox.
        await SocialGraph(db).follow(carol.id, dave.id, "socialink")
        await asyncio.sleep(0.3)
        waiting = [event.id for event, published in await outbox(db) if not published]
        assert len(waiting) == 1, "the worker's relay has not seen it"

        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(worker.communicate(), 60)
        text = output.decode(errors="replace")
        assert worker.returncode == 0, text
        assert f"relayed {len(waiting)} events on stop" in text
        assert all(published for _, published in await outbox(db))
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        await db.dispose()
