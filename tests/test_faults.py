"""Surviving faults (issue 9): a store or a process goes away, the graph keeps (or
resumes) working, and in the end every write is present exactly once.

Each test starts private servers (tests/cluster_support.py) and stops or kills
them; the shared ones are never touched. Run alone: `pytest -m cluster`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from sqlalchemy import func, select

from datasources.cache import UNREACHABLE, RedisCache
from datasources.events.model import NewEvent
from datasources.events.outbox import emit_all
from datasources.events.tables import ConsumedEventRow, OutboxRow
from datasources.sql import Database
from resolvers.ids import decode_id
from subscriptions import topics
from tests.cluster_support import (
    EntativaProcess,
    PostgresCluster,
    RedisServer,
    TansuBroker,
    all_consumed,
    cluster_env,
    comment_bodies,
    database_url,
    follow_notifications,
    kafka_broker,
    local_app,
    namespace,
    postgres_cluster,
    processes,
    redis_server,
)
from tests.conftest import Account, create_users, sign_up
from tests.posts_helpers import add_comment, create_post
from tests.realtime_support import COMMENT_ADDED, Socket, http_client, open_socket

__all__ = ["database_url", "kafka_broker", "postgres_cluster", "redis_server"]  # fixtures

pytestmark = pytest.mark.cluster

VIEWER = "{ viewer { id username } }"
SIGN_OUT = "mutation($t: String!) { signOut(refreshToken: $t) }"


async def subscribe_until_accepted(
    address: str, token: str, post_id: str
) -> tuple[Socket, list[str]]:
    """What a client does after a realtime error: subscribe again until it holds.
    Returns the socket and the comment bodies it got meanwhile."""
    for _ in range(100):
        sock = await open_socket(address, token)
        await sock.subscribe("c", COMMENT_ADDED, {"postId": post_id})
        try:
            message = await sock.receive(0.5)
        except TimeoutError:
            return sock, []  # accepted: no error came
        if message["type"] == "next":  # accepted, and a late event came at once
            return sock, [message["payload"]["data"]["commentAdded"]["body"]]
        await sock.close()
        assert message["type"] == "error", message
    raise AssertionError("subscriptions never worked again")


async def test_a_redis_restart_keeps_the_api_serving_and_realtime_recovers(
    database_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = cluster_env(database_url, tmp_path / "data", redis_url=redis_server.url)
    server = EntativaProcess("serve", env, tmp_path / "serve.log").start()
    with processes(server):
        await server.ready()
        async with http_client(server.address) as gql:
            alice, bob, carol = [await sign_up(gql, name) for name in ("alice", "bob", "carol")]
            post = await create_post(gql, alice)
            await add_comment(gql, bob, "before", postId=post["id"])
            (await gql(SIGN_OUT, {"t": carol.refresh_token})).ok()  # revoked in Redis
            sock = await open_socket(server.address, bob.token)
            await sock.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
            topic = topics.post("socialink", decode_id(post["id"], "Post"))
            await redis_server.await_listeners(topic, 1)

            redis_server.stop()
            error = await sock.receive(10)  # realtime says clearly what happened
            assert error["type"] == "error" and error["id"] == "c", error
            assert "unavailable" in error["payload"][0]["message"]
            assert error["payload"][0]["extensions"]["retryable"] is True
            refused = await open_socket(server.address, bob.token)
            await refused.subscribe("c", COMMENT_ADDED, {"postId": post["id"]})
            assert (await refused.receive(10))["type"] == "error"

            # Queries and mutations go on; a sign-out from before the outage holds.
            assert (await gql(VIEWER, token=bob.token)).ok()["viewer"]["username"] == "bob"
            assert (await gql(VIEWER, token=carol.token)).codes == ["UNAUTHENTICATED"]
            await add_comment(gql, bob, "during", postId=post["id"])
            (await gql(SIGN_OUT, {"t": alice.refresh_token})).ok()  # marks kept locally
            alice = await sign_in(gql, "alice")

            redis_server.start()
            again, bodies = await subscribe_until_accepted(server.address, bob.token, post["id"])
            await add_comment(gql, alice, "after", postId=post["id"])
            bodies.append((await again.next("c"))["data"]["commentAdded"]["body"])
            while bodies[-1] != "after":  # "during" may come late, never twice
                bodies.append((await again.next("c"))["data"]["commentAdded"]["body"])
            assert len(bodies) == len(set(bodies)), bodies

            await all_consumed(database_url)
            assert await comment_bodies(gql, post["id"], bob.token) == (
                3,
                ["after", "before", "during"],
            )
            # The sign-out made during the outage is written to Redis once the cache
            # tries it again (at most once a second): other processes see it then.
            # (Redis restarted empty: carol's mark is gone, hers is in the database.)
            deadline = time.monotonic() + 10
            while await revoked_in_redis(redis_server.url) != 1:
                assert time.monotonic() < deadline, "the outage's marks were not written back"
                await gql(VIEWER, token=bob.token)  # any request uses the cache
                await asyncio.sleep(0.2)


async def sign_in(gql: Any, username: str) -> Account:
    result = await gql(
        "mutation($input: SignInInput!) { signIn(input: $input) "
        "{ accessToken refreshToken user { id } } }",
        {"input": {"login": username, "password": "correct horse battery"}},
    )
    payload = result.ok()["signIn"]
    return Account(
        payload["user"]["id"],
        username,
        payload["accessToken"],
        payload["refreshToken"],
        "socialink",
    )


async def revoked_in_redis(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return len(await client.keys("entativa:revoked-family:*"))
    finally:
        await client.aclose()


async def unpublished(database_url: str) -> int:
    db = Database(database_url)
    try:
        async with db.session() as session:
            query = select(func.count()).where(OutboxRow.published_at.is_(None))
            return int(await session.scalar(query) or 0)
    finally:
        await db.dispose()


async def test_a_kafka_restart_holds_events_in_the_outbox_and_drains_them(
    database_url: str, kafka_broker: TansuBroker, tmp_path: Path
) -> None:
    """The relay (a worker of its own here) stays up through the outage: it keeps the
    events in the outbox and publishes them when the broker is back.

    The broker in CI (Tansu) keeps its log in memory, so a restart loses the topics,
    the log and the groups' offsets, all of which a real Kafka keeps. A consumer
    still positioned in the lost log would read the new one from there and skip its
    start, so the consumer worker starts again with the broker; consumers living
    through a kept log are what test_a_worker_killed_mid_batch… and
    tests/test_scale_out.py show. (Tansu also acknowledges a send to a topic it does
    not have, so the broker comes back only after the relay's send failed: the relay
    then makes the topics again before it retries, datasources/events/kafka.py.)
    """
    env = cluster_env(
        database_url, tmp_path / "data", kafka=kafka_broker.address, namespace=namespace()
    )

    def worker(name: str, option: str) -> EntativaProcess:
        own = env | {"ENTATIVA_DATA_DIR": str(tmp_path / name)}
        return EntativaProcess("worker", own, tmp_path / f"{name}.log", (option,)).start()

    server = EntativaProcess("serve", env, tmp_path / "serve.log").start()
    relay = worker("relay", "--no-consumers")
    consumers = worker("consumers", "--no-relay")
    later = EntativaProcess("worker", consumers.env, tmp_path / "later.log", ("--no-relay",))
    with processes(server, relay, consumers, later):
        await asyncio.gather(server.ready(), relay.ready(), consumers.ready())
        async with http_client(server.address) as gql:
            alice, bob = [await sign_up(gql, name) for name in ("alice", "bob")]
            post = await create_post(gql, alice)
            await add_comment(gql, bob, "before", postId=post["id"])
            await all_consumed(database_url)

            consumers.stop()
            kafka_broker.stop()
            for n in range(5):  # writes go on: their events wait in the outbox
                await add_comment(gql, bob, f"during {n}", postId=post["id"])
            await asyncio.sleep(1.0)
            assert await unpublished(database_url) == 5
            # Back only once the relay gave up on a send: a send still waiting when an
            # in-memory broker returns is acknowledged for a topic it no longer has.
            deadline = time.monotonic() + 30
            while "publishing failed" not in relay.output():
                assert time.monotonic() < deadline, relay.output()[-2000:]
                await asyncio.sleep(0.2)
            assert await unpublished(database_url) == 5

            kafka_broker.start()  # empty: the relay makes the topics again
            later.start()
            await later.ready()
            await all_consumed(database_url, seconds=60)
            await add_comment(gql, alice, "after", postId=post["id"])  # and it goes on
            await all_consumed(database_url)
            count, bodies = await comment_bodies(gql, post["id"], bob.token)
        assert relay.process is not None and relay.process.poll() is None  # never restarted
    assert count == 7
    assert bodies == ["after", "before"] + [f"during {n}" for n in range(5)]


async def test_a_postgresql_restart_is_survived_without_restarting_the_server(
    database_url: str, postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    server = EntativaProcess(
        "serve", cluster_env(database_url, tmp_path / "data"), tmp_path / "serve.log"
    ).start()
    with processes(server):
        await server.ready()
        async with http_client(server.address) as gql:
            alice, bob = [await sign_up(gql, name) for name in ("alice", "bob")]
            post = await create_post(gql, alice)
            await add_comment(gql, bob, "before", postId=post["id"])

            postgres_cluster.restart()  # every pooled connection is now dead

            # The pool notices (pre-ping) and reconnects: the first requests succeed.
            assert (await gql(VIEWER, token=bob.token)).ok()["viewer"]["username"] == "bob"
            await add_comment(gql, bob, "after", postId=post["id"])
            await all_consumed(database_url)  # the relay's own engine recovered too
            assert await comment_bodies(gql, post["id"], alice.token) == (2, ["after", "before"])
        assert server.process is not None and server.process.poll() is None  # same process


async def consumed_count(database_url: str) -> int:
    db = Database(database_url)
    try:
        async with db.session() as session:
            query = select(func.count()).where(ConsumedEventRow.consumer == "notifications")
            return int(await session.scalar(query) or 0)
    finally:
        await db.dispose()


async def test_a_worker_killed_mid_batch_leaves_nothing_lost_or_doubled(
    database_url: str, kafka_broker: TansuBroker, tmp_path: Path
) -> None:
    ns = namespace()
    env = cluster_env(database_url, tmp_path / "data", kafka=kafka_broker.address, namespace=ns)
    async with local_app(database_url, tmp_path, kafka_broker.address, ns) as app:
        users = [
            int(decode_id(a.id, "User"))
            for a in await create_users(app, [f"u{n}" for n in range(40)])
        ]
    pairs = [(a, b) for a in users for b in users if a != b][:1500]
    db = Database(database_url)
    async with db.transaction() as session:  # a backlog: the worker takes it in batches
        await emit_all(
            session,
            (
                NewEvent(
                    "user.followed", "socialink", a, "user", b, {"follower_id": a, "followee_id": b}
                )
                for a, b in pairs
            ),
        )
    await db.dispose()

    first = EntativaProcess("worker", env, tmp_path / "first.log").start()
    second = EntativaProcess("worker", env, tmp_path / "second.log")
    with processes(first, second):
        for _ in range(1200):  # kill it once it is part way through
            done = await consumed_count(database_url)
            if done:
                break
            await asyncio.sleep(0.02)
        first.kill()
        assert 0 < done < len(pairs), done
        second.start()
        await all_consumed(database_url, seconds=90)
    expected: dict[int, tuple[int, int]] = {}
    for _, followee in pairs:
        count = expected.get(followee, (0, 0))[0] + 1
        expected[followee] = (count, count)
    assert await follow_notifications(database_url) == expected


async def test_the_cache_serves_from_the_process_while_redis_is_down(
    redis_server: RedisServer,
) -> None:
    cache = RedisCache(redis_server.url, prefix="faults:")
    try:
        await cache.set("before", "1", 60)
        redis_server.stop()
        assert await cache.get("before") is None  # only Redis knew it…
        assert cache.degraded  # …which is why the server then asks the database
        await cache.set("during", "2", 60)
        assert await cache.get("during") == "2"
        assert (await cache.hit("window", 60)).hits == 1  # limits hold in this process
        with pytest.raises(UNREACHABLE):  # readiness still sees the outage
            await cache.ping()

        redis_server.start()
        await asyncio.sleep(cache.RETRY_SECONDS)  # Redis is tried again this often
        assert await cache.get("anything") is None
        assert not cache.degraded
        assert await cache.client.get("faults:during") == "2"  # written back
    finally:
        await cache.close()
