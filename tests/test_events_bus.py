"""The event bus contract, run on the in-process bus and on Kafka (Tansu in CI).

What a consumer can rely on whichever bus runs: every consumer group gets every
event of its domains once, in order for one subject, as published (same JSON);
members of one group share the work; a handler that fails gets the event again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from datasources.events.bus import BusUnavailable, EventBus, InProcessBus
from datasources.events.kafka import KafkaBus
from tests.events_support import (
    BUS_KINDS,
    BatchRecorder,
    Recorder,
    eventually,
    kafka_options,
    make_bus,
    publish_until_accepted,
    stamped,
)


@pytest.fixture(params=BUS_KINDS)
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    chosen = make_bus(request.param)
    await chosen.start()
    yield chosen
    await chosen.stop()


async def test_every_group_gets_every_event_once_as_published(bus: EventBus) -> None:
    search, notifications = Recorder(), Recorder()
    await bus.subscribe("search", ["users"], search)
    await bus.subscribe("notifications", ["users", "posts"], notifications)
    events = stamped(6, subject_id=7) + stamped(4, platform="vignette")

    await bus.publish(events)

    await eventually(
        lambda: min(len(search.events), len(notifications.events)) >= len(events),
        what="all events in both groups",
    )
    for recorder in (search, notifications):
        assert sorted(recorder.ids) == sorted(e.id for e in events)  # each once
        same_subject = [e.id for e in recorder.events if e.platform == "socialink"]
        assert same_subject == [e.id for e in events[:6]]  # one subject: in order
        assert {e.id: e for e in recorder.events} == {e.id: e for e in events}  # same content


async def test_groups_see_only_their_domains_and_platforms(bus: EventBus) -> None:
    posts_only, vignette_users = Recorder(), Recorder()
    await bus.subscribe("posts-only", ["posts"], posts_only)
    await bus.subscribe("vignette-users", ["users"], vignette_users, platforms=["vignette"])
    users = stamped(3)
    posts = stamped(2, event_type="post.created")
    vignette = stamped(2, platform="vignette")

    await bus.publish(users + posts + vignette)

    await eventually(lambda: len(posts_only.events) >= 2 and len(vignette_users.events) >= 2)
    assert sorted(posts_only.ids) == sorted(e.id for e in posts)
    assert sorted(vignette_users.ids) == sorted(e.id for e in vignette)


async def test_members_of_one_group_share_the_events(bus: EventBus) -> None:
    first, second = Recorder(), Recorder()
    await bus.subscribe("indexer", ["users"], first)
    await bus.subscribe("indexer", ["users"], second)
    events = stamped(40)  # 40 subjects: spread over the members

    await bus.publish(events)

    await eventually(lambda: len(first.events) + len(second.events) >= 40, what="40 events")
    assert sorted(first.ids + second.ids) == sorted(e.id for e in events)


async def test_a_failed_handler_gets_the_event_again(bus: EventBus) -> None:
    events = stamped(5, subject_id=3)
    flaky = Recorder(fail_first={events[2].id})
    steady = Recorder()
    await bus.subscribe("flaky", ["users"], flaky)
    await bus.subscribe("steady", ["users"], steady)

    await publish_until_accepted(bus, events)  # the relay re-publishes a refused batch

    await eventually(lambda: len(flaky.events) >= 5, what="the failed event handled later")
    assert flaky.ids == [e.id for e in events]  # in order, the failed one not skipped
    assert steady.ids == [e.id for e in events]  # the other group: each once
    assert flaky.calls >= 6


async def test_a_batch_handler_gets_many_events_per_call_in_order(bus: EventBus) -> None:
    """What the notifications consumer relies on to apply a burst in few transactions."""
    batches = BatchRecorder()
    await bus.subscribe("batched", ["users"], batches.single, batch_handler=batches)
    events = stamped(200, subject_id=9)  # one subject: one partition, in order

    await bus.publish(events)

    await eventually(lambda: len(batches.ids) >= 200, what="200 events in batches")
    assert batches.ids == [e.id for e in events]  # each once, in order
    assert len(batches.batches) < 20  # not one call per event
    assert batches.single.calls == 0


async def test_a_failed_batch_comes_again_whole(bus: EventBus) -> None:
    events = stamped(30, subject_id=4)
    batches = BatchRecorder(fail_first={events[10].id})
    await bus.subscribe("batched", ["users"], batches.single, batch_handler=batches)

    await publish_until_accepted(bus, events)

    await eventually(lambda: len(batches.ids) >= 30, what="the failed batch handled later")
    assert batches.ids == [e.id for e in events]  # nothing lost, nothing twice


async def test_kafka_sends_a_large_publish_as_several_record_batches_in_order() -> None:
    """A partition's share of a publish beyond `max_batch_bytes` goes out in several
    record batches (the relay's rounds are up to 5,000 events): none lost, in order."""
    bus = make_bus("kafka", max_batch_bytes=4096)
    got = Recorder()
    await bus.subscribe("all", ["users"], got)
    events = stamped(150, subject_id=5)  # one subject: one partition, ~40 KiB
    await bus.start()
    try:
        await bus.publish(events)
        await eventually(lambda: len(got.events) >= 150, what="150 events")
    finally:
        await bus.stop()
    assert got.ids == [e.id for e in events]


async def test_in_process_publish_fails_until_every_group_succeeded() -> None:
    """In-process delivery is synchronous: a refused batch stays in the outbox."""
    bus = InProcessBus()
    events = stamped(2)
    flaky = Recorder(fail_first={events[1].id})
    await bus.subscribe("flaky", ["users"], flaky)

    with pytest.raises(BusUnavailable):
        await bus.publish(events)
    await bus.publish(events)

    assert flaky.ids == [e.id for e in events]


async def test_kafka_publish_to_an_unreachable_broker_raises_bus_unavailable() -> None:
    bus = KafkaBus(kafka_options(bootstrap="127.0.0.1:1", request_timeout_ms=1000))
    await bus.start()
    try:
        with pytest.raises(BusUnavailable):
            await bus.publish(stamped(1))
    finally:
        await bus.stop()
