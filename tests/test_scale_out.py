"""Scale-out (issue 9): two `entativa serve` and two `entativa worker` processes on one
PostgreSQL, Redis and Kafka (private instances, tests/cluster_support.py).

What holds: a subscriber on one server gets what a mutation on the other caused; the
workers' consumer group splits the partitions, and each worker consumes the events
of its share; a worker killed with SIGKILL mid-stream loses nothing (the other takes
over its partitions) and every event's effect is there exactly once.
Run alone: `pytest -m cluster`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from resolvers.ids import decode_id
from subscriptions import topics
from tests.cluster_support import (
    EntativaProcess,
    RedisServer,
    TansuBroker,
    all_consumed,
    cluster_env,
    database_url,
    follow_notifications,
    kafka_broker,
    local_app,
    namespace,
    partition_of,
    postgres_cluster,
    processes,
    redis_server,
)
from tests.conftest import Account, GraphQLClient, create_users
from tests.posts_helpers import add_comment, create_post
from tests.realtime_support import COMMENT_ADDED, http_client, open_socket

__all__ = ["database_url", "kafka_broker", "postgres_cluster", "redis_server"]  # fixtures

pytestmark = pytest.mark.cluster

FOLLOW = "mutation($id: ID!) { follow(userId: $id) { following } }"
GROUP = "notifications"
PARTITIONS = 3  # ENTATIVA_KAFKA_PARTITIONS default
# Topics of the notifications group: users, posts, stories on both platforms.
ALL = {
    f"{platform}.{domain}:{p}"
    for platform in ("socialink", "vignette")
    for domain in ("users", "posts", "stories")
    for p in range(PARTITIONS)
}


def short(assignment: set[str]) -> set[str]:
    """'ns.entativa.socialink.users:1' → 'socialink.users:1'."""
    return {name.split(".entativa.", 1)[1] for name in assignment}


def latest(worker: EntativaProcess) -> set[str]:
    found = worker.assignments(GROUP)
    return short(found[-1]) if found else set()


async def split_between(one: EntativaProcess, two: EntativaProcess, seconds: float = 40) -> None:
    """Until the two members' latest assignments are disjoint and cover every partition."""
    deadline = time.monotonic() + seconds
    while True:
        first, second = latest(one), latest(two)
        if first and second and not first & second and first | second == ALL:
            return
        assert time.monotonic() < deadline, (first, second)
        await asyncio.sleep(0.2)


@asynccontextmanager
async def in_process_client(app: Any) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield GraphQLClient(client)


async def follow_all(
    gql: GraphQLClient,
    pairs: list[tuple[Account, Account]],
    part_way: asyncio.Event | None = None,
) -> None:
    """Each follower follows its followee; `part_way` is set after a third of them."""
    for n, (follower, followee) in enumerate(pairs):
        (await gql(FOLLOW, {"id": followee.id}, token=follower.token)).ok()
        if part_way is not None and n == len(pairs) // 3:
            part_way.set()


def expected_followers(pairs: list[tuple[Account, Account]]) -> dict[int, tuple[int, int]]:
    counts: dict[int, int] = {}
    for _, followee in pairs:
        key = int(decode_id(followee.id, "User"))
        counts[key] = counts.get(key, 0) + 1
    return {key: (count, count) for key, count in counts.items()}


async def test_two_servers_and_two_workers_share_realtime_and_the_work(
    database_url: str,
    redis_server: RedisServer,
    kafka_broker: TansuBroker,
    tmp_path: Path,
) -> None:
    ns = namespace()
    env = cluster_env(
        database_url,
        tmp_path / "data",
        redis_url=redis_server.url,
        kafka=kafka_broker.address,
        namespace=ns,
    )

    def role(kind: str, name: str) -> EntativaProcess:
        own = env | {"ENTATIVA_DATA_DIR": str(tmp_path / name)}  # each its own search index
        return EntativaProcess(kind, own, tmp_path / f"{name}.log").start()

    one, two = role("serve", "one"), role("serve", "two")
    first, second = role("worker", "first"), role("worker", "second")
    with processes(one, two, first, second):
        await asyncio.gather(*(p.ready() for p in (one, two, first, second)))
        await split_between(first, second)
        shares = (latest(first), latest(second))

        # Realtime across processes: caused on one server, seen on the other.
        async with (
            local_app(database_url, tmp_path, kafka_broker.address, ns) as app,
            in_process_client(app) as gql,
            http_client(one.address) as gql_one,
            http_client(two.address) as gql_two,
        ):
            users = await create_users(app, [f"user{n}" for n in range(24)])
            alice, bob = users[0], users[1]
            post = await create_post(gql_one, alice)
            on_two = await open_socket(two.address, bob.token)
            on_one = await open_socket(one.address, alice.token)
            for sock in (on_one, on_two):
                await sock.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
            topic = topics.post("socialink", decode_id(post["id"], "Post"))
            await redis_server.await_listeners(topic, 2)
            await add_comment(gql_one, alice, "from one", postId=post["id"])
            for sock in (on_two, on_one):
                assert (await sock.next("c", 20))["data"]["commentAdded"]["body"] == "from one"
            await add_comment(gql_two, bob, "from two", postId=post["id"])
            for sock in (on_one, on_two):
                assert (await sock.next("c", 20))["data"]["commentAdded"]["body"] == "from two"
            for sock in (on_one, on_two):
                assert await sock.silent()  # each once, though two workers relay

            # The group splits the work: each worker holds events of its share.
            pairs = [(users[i], users[(i + k) % 24]) for i in range(24) for k in range(1, 7)]
            half = len(pairs) // 2
            await follow_all(gql, pairs[:half])
            await all_consumed(database_url)
            held = [
                partition_of("socialink", "user", int(decode_id(followee.id, "User")))
                for _, followee in pairs[:half]
            ]
            for share in shares:
                assert any(f"socialink.users:{p}" in share for p in held), (share, held)

            # SIGKILL one worker mid-stream: the other takes over, nothing is lost.
            part_way = asyncio.Event()
            writing = asyncio.create_task(follow_all(gql, pairs[half:], part_way))
            await part_way.wait()
            first.kill()
            assert not writing.done()  # mid-stream
            await writing
            await all_consumed(database_url, seconds=60)
            assert await follow_notifications(database_url) == expected_followers(pairs)
            deadline = time.monotonic() + 30
            while latest(second) != ALL:  # the survivor holds every partition now
                assert time.monotonic() < deadline, latest(second)
                await asyncio.sleep(0.2)
        assert first.process is not None and first.process.returncode == -9
