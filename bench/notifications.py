"""Like events turned into grouped notifications per second, against a bulk INSERT.

    python -m bench.notifications [--events 100000] [--posts 1000] [--rounds 3]
                                  [--batch-size 500] [--relay-batch-size 5000]
                                  [--database-url URL] [--kafka HOST:PORT]

Seeds 3,000 users (1,000 post authors, 2,000 likers) once, and builds `--events`
`post.liked` events as the posts store emits them, spread evenly over `--posts`
posts and interleaved (a burst over many posts at once), stamped a millisecond
apart so each post's likes fall in one group. Then per round, from empty
notification tables:

- per event: `NotificationConsumer.handle` for each event in order, as the bus
  delivers them (claim, block and preference checks, the group found or started,
  the actor added, the push delivery planned, one transaction per event);
- batched: `NotificationConsumer.handle_batch` on the same events in batches of
  `--batch-size` (0: skip), one transaction per batch;
- pipeline: the events as committed outbox rows (a burst written by requests,
  staged before the clock starts), then the real pipeline until every event is
  consumed: the outbox relay publishes rounds of `--relay-batch-size` rows to the
  event bus (in process; Kafka with `--kafka`), which hands each round (each
  partition's poll on Kafka) to `NotificationConsumer.handle_batch`, on the
  consumer's own engine as `entativa worker` runs it;
- baseline: the rows those leave behind (one group per post, its actors, one push
  delivery per group, the consumed-event marks), built before the clock starts and
  written in one transaction with one executemany INSERT per table (SQLAlchemy
  sends multi-row INSERTs: "insertmanyvalues"), as the batched path writes.

Prints events/s per round and the median of each, and the ratios to the
baseline (issue 7's target: at least 10,000 events/s on PostgreSQL). Default
store: SQLite in a temporary directory; `--database-url` points at PostgreSQL
(its database is dropped and created again: give it a name of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from datasources.events.model import Event
from datasources.events.pipeline import EventConfig, EventPipeline
from datasources.events.tables import ConsumedEventRow, OutboxRow
from datasources.migrate import upgrade
from datasources.notifications.consumer import NotificationConsumer
from datasources.notifications.tables import (
    NotificationActorRow,
    NotificationDeliveryRow,
    NotificationGroupRow,
)
from datasources.sql import Database
from datasources.users.tables import UserRow

PLATFORM = "vignette"
AUTHORS = 1_000
LIKERS = 2_000
START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TABLES = (
    ConsumedEventRow,
    NotificationDeliveryRow,
    NotificationActorRow,
    NotificationGroupRow,
    OutboxRow,
)


async def fresh_database(url: str) -> None:
    """PostgreSQL: drop and create the database of `url` (bench.likes does the same)."""
    name = make_url(url).database
    admin = create_async_engine(url.replace(f"/{name}", "/postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()


async def seed_users(db: Database) -> None:
    rows = [
        {
            "id": uid,
            "platform": PLATFORM,
            "username": f"u{uid}",
            "username_key": f"u{uid}",
            "email": f"u{uid}@example.com",
            "email_key": f"u{uid}@example.com",
            "password_hash": "-",
            "display_name": f"User {uid}",
            "created_at": START,
        }
        for uid in range(1, AUTHORS + LIKERS + 1)
    ]
    async with db.transaction() as session:
        await session.execute(insert(UserRow), rows)


def like_events(count: int, posts: int) -> list[Event]:
    """Event n: a like of post n % posts by a liker no other like of that post has."""
    events = []
    for n in range(count):
        post, k = n % posts, n // posts
        author = 1 + post % AUTHORS
        liker = AUTHORS + 1 + (post + 7 * k) % LIKERS
        events.append(
            Event(
                id=str(uuid.uuid4()),
                type="post.liked",
                platform=PLATFORM,
                time=START + timedelta(milliseconds=n),
                actor_id=liker,
                subject_type="post",
                subject_id=10_000 + post,
                data={"author_id": author, "like_count": k + 1},
            )
        )
    return events


async def clear(db: Database) -> None:
    """Empty the notification tables (PostgreSQL: TRUNCATE, so no round pays for the
    dead rows of the one before)."""
    async with db.transaction() as session:
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(table.__tablename__ for table in TABLES)
            await session.execute(text(f"TRUNCATE {names}"))
            return
        for table in TABLES:
            await session.execute(delete(table))


async def counts(db: Database) -> tuple[int, int, int]:
    async with db.session() as session:
        groups = await session.scalar(select(func.count()).select_from(NotificationGroupRow))
        actors = await session.scalar(select(func.count()).select_from(NotificationActorRow))
        owed = await session.scalar(select(func.count()).select_from(NotificationDeliveryRow))
    return int(groups or 0), int(actors or 0), int(owed or 0)


def progress(label: str, total: int) -> Callable[[int], None]:
    step = max(1, total // 10)
    started = time.perf_counter()

    def report(done: int) -> None:
        if done % step == 0 or done == total:
            rate = done / max(time.perf_counter() - started, 1e-9)
            print(f"  {label}: {done:,}/{total:,} ({rate:,.0f}/s)", flush=True)

    return report


async def per_event_round(db: Database, events: Sequence[Event]) -> float:
    consumer = NotificationConsumer(db)
    report = progress("per event", len(events))
    started = time.perf_counter()
    for n, event in enumerate(events, 1):
        await consumer.handle(event)
        report(n)
    return len(events) / (time.perf_counter() - started)


async def batched_round(db: Database, events: Sequence[Event], size: int) -> float:
    consumer = NotificationConsumer(db)
    handle_batch: Callable[[Sequence[Event]], Awaitable[None]] = consumer.handle_batch
    report = progress("batched", len(events))
    started = time.perf_counter()
    for start in range(0, len(events), size):
        chunk = events[start : start + size]
        await handle_batch(chunk)
        report(start + len(chunk))
    return len(events) / (time.perf_counter() - started)


async def stage_outbox(db: Database, events: Sequence[Event]) -> None:
    """The burst as the writers leave it: committed, unpublished outbox rows."""
    rows = [
        {"event_id": e.id, "topic": e.topic, "payload": e.to_json(), "created_at": e.time}
        for e in events
    ]
    async with db.transaction() as session:
        for start in range(0, len(rows), 10_000):
            await session.execute(insert(OutboxRow), rows[start : start + 10_000])


async def consumed(db: Database) -> int:
    async with db.session() as session:
        count = await session.scalar(select(func.count()).select_from(ConsumedEventRow))
    return int(count or 0)


async def pipeline_round(
    db: Database, events: Sequence[Event], relay_batch_size: int, kafka: str, namespace: str
) -> float:
    await stage_outbox(db, events)
    config = EventConfig(
        kafka_bootstrap=kafka, kafka_namespace=namespace, relay_batch_size=relay_batch_size
    )
    pipeline = EventPipeline(db.url, config)
    consumer = NotificationConsumer(Database(db.url), owns_db=True)
    report = progress("pipeline", len(events))
    try:
        await pipeline.start(relay=False, consumers=[consumer])
        started = time.perf_counter()
        await pipeline.relay.start()  # its loop, as `entativa worker` runs it
        done = 0
        while done < len(events):  # Kafka: consumed after the relay is done publishing
            await asyncio.sleep(0.25)
            done = await consumed(db)
        elapsed = time.perf_counter() - started
        report(len(events))
    finally:
        await pipeline.close()
        await consumer.close()
    return len(events) / elapsed


def baseline_rows(events: Sequence[Event]) -> dict[Any, list[dict[str, Any]]]:
    """What the consumer leaves behind for these events, as plain rows."""
    groups: dict[int, dict[str, Any]] = {}
    actors: list[dict[str, Any]] = []
    for event in events:
        post = event.subject_id
        group = groups.get(post)
        if group is None:
            group = groups[post] = {
                "id": len(groups) + 1,
                "platform": PLATFORM,
                "recipient_id": event.data["author_id"],
                "type": "POST_LIKE",
                "subject_type": "post",
                "subject_id": post,
                "group_key": f"POST_LIKE:post:{post}",
                "root_type": "post",
                "root_id": post,
                "window_start": event.time,
                "latest_at": event.time,
                "actor_count": 0,
                "is_read": False,
            }
        group["actor_count"] += 1
        group["latest_at"] = event.time
        actors.append({"group_id": group["id"], "actor_id": event.actor_id, "acted_at": event.time})
    deliveries = [
        {
            "platform": PLATFORM,
            "user_id": g["recipient_id"],
            "group_id": g["id"],
            "channel": "PUSH",
            "not_before": g["window_start"],
            "held": False,
            "created_at": g["window_start"],
        }
        for g in groups.values()
    ]
    consumed = [
        {"consumer": "notifications", "event_id": e.id, "consumed_at": START} for e in events
    ]
    return {
        NotificationGroupRow: list(groups.values()),
        NotificationActorRow: actors,
        NotificationDeliveryRow: deliveries,
        ConsumedEventRow: consumed,
    }


async def baseline_round(db: Database, rows: dict[Any, list[dict[str, Any]]], count: int) -> float:
    started = time.perf_counter()
    async with db.transaction() as session:
        for table, values in rows.items():
            await session.execute(insert(table.__table__), values)
    return count / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    url = args.database_url
    if url:
        await fresh_database(url)
    else:
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    await upgrade(url)
    db = Database(url)
    events = like_events(args.events, args.posts)
    rows = baseline_rows(events)
    expected = (len(rows[NotificationGroupRow]), len(events), len(rows[NotificationDeliveryRow]))
    batched = args.batch_size > 0
    results: dict[str, list[float]] = {
        "per event": [],
        "batched": [],
        "pipeline": [],
        "baseline": [],
    }
    try:
        await seed_users(db)
        backend = db.engine.dialect.name
        print(f"{args.events:,} post.liked events over {args.posts:,} posts, {backend}")
        for round_number in range(1, args.rounds + 1):
            await clear(db)
            results["baseline"].append(await baseline_round(db, rows, len(events)))
            assert await counts(db) == expected, await counts(db)
            line = f"round {round_number}: baseline {results['baseline'][-1]:,.0f} events/s"
            if not args.skip_per_event:
                await clear(db)
                results["per event"].append(await per_event_round(db, events))
                assert await counts(db) == expected, await counts(db)
                line += f", per event {results['per event'][-1]:,.0f} events/s"
            if batched:
                await clear(db)
                results["batched"].append(await batched_round(db, events, args.batch_size))
                assert await counts(db) == expected, await counts(db)
                line += f", batched {results['batched'][-1]:,.0f} events/s"
            if args.relay_batch_size > 0:
                await clear(db)
                namespace = f"bench{uuid.uuid4().hex[:8]}" if args.kafka else ""
                rate = await pipeline_round(
                    db, events, args.relay_batch_size, args.kafka, namespace
                )
                results["pipeline"].append(rate)
                assert await counts(db) == expected, await counts(db)
                line += f", pipeline {rate:,.0f} events/s"
            print(line, flush=True)
    finally:
        await db.dispose()
    base = statistics.median(results["baseline"])
    print(f"baseline (bulk INSERT of the same rows):  {base:,.0f} events/s (median)")
    for name in ("per event", "batched", "pipeline"):
        if results[name]:
            ours = statistics.median(results[name])
            print(
                f"consumer, {name:<9} (groups {expected[0]:,}, actors {expected[1]:,}): "
                f"{ours:,.0f} events/s (median), ratio to baseline {ours / base:.2f}"
            )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--relay-batch-size", type=int, default=5_000, help="pipeline rounds (0: skip)"
    )
    parser.add_argument("--kafka", default="", help="bootstrap server: the pipeline over Kafka")
    parser.add_argument("--skip-per-event", action="store_true", help="only batched and baseline")
    parser.add_argument("--database-url", default="")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
