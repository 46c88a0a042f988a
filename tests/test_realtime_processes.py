"""Two server processes sharing PostgreSQL and Redis: what a mutation on one causes
reaches a subscriber on the other, and a sign-out on one closes sockets on both."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.settings import Settings
from tests.conftest import create_users
from tests.posts_helpers import create_post
from tests.realtime_support import COMMENT_ADDED, free_port, http_client, open_socket
from tests.services import REDIS_URL
from tests.test_realtime_broker import require_redis

ROOT = Path(__file__).resolve().parent.parent
ADD = "mutation($input: AddCommentInput!) { addComment(input: $input) { id } }"
SIGN_OUT = "mutation($t: String!) { signOut(refreshToken: $t) }"


@contextmanager
def server_process(settings: Settings, tmp: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "ENTATIVA_DATABASE_URL": settings.resolved_database_url,
        "ENTATIVA_REDIS_URL": REDIS_URL,
        "ENTATIVA_SECRET_KEY": settings.secret_key,
        "ENTATIVA_DATA_DIR": str(tmp),
        "ENTATIVA_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "server.cli", "serve", "--no-demo", "--port", str(port)]
    tmp.mkdir(parents=True, exist_ok=True)
    log = (tmp / "server.log").open("wb")  # read it when a test fails
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def ready(address: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"http://{address}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"server at {address} did not start")


@pytest.fixture
async def two_servers(
    app: Any, settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    require_redis()
    if "postgresql" not in settings.resolved_database_url:
        pytest.skip("two processes share PostgreSQL (SQLite has no SKIP LOCKED relay)")
    with (
        server_process(settings, tmp_path / "one") as one,
        server_process(settings, tmp_path / "two") as two,
    ):
        await asyncio.gather(ready(one), ready(two))
        yield one, two


async def test_a_mutation_on_one_process_reaches_a_subscriber_on_the_other(
    app: Any, two_servers: tuple[str, str]
) -> None:
    one, two = two_servers
    alice, bob = await create_users(app, ["alice", "bob"])
    async with http_client(one) as gql_one, http_client(two) as gql_two:
        post = await create_post(gql_one, alice)
        on_two = await open_socket(two, bob.token)
        on_one = await open_socket(one, None)
        for sock in (on_one, on_two):
            await sock.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
        await asyncio.sleep(0.3)
        await gql_one(ADD, {"input": {"postId": post["id"], "body": "from one"}}, token=alice.token)
        for sock in (on_two, on_one):
            assert (await sock.next("c"))["data"]["commentAdded"]["body"] == "from one"
        await gql_two(ADD, {"input": {"postId": post["id"], "body": "from two"}}, token=bob.token)
        for sock in (on_two, on_one):
            assert (await sock.next("c"))["data"]["commentAdded"]["body"] == "from two"
        for sock in (on_one, on_two):
            assert await sock.silent()  # each event once, though both processes relay


async def test_signing_out_on_one_process_closes_sockets_on_the_other(
    app: Any, two_servers: tuple[str, str]
) -> None:
    one, two = two_servers
    (alice,) = await create_users(app, ["alice"])
    sock = await open_socket(two, alice.token)
    async with http_client(one) as gql_one:
        await gql_one(SIGN_OUT, {"t": alice.refresh_token})
    assert await sock.closed_with() == 4403
