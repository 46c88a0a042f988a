"""Resumable streams on a log of our own: replay after a cursor, then live, with no
gap and no duplicate, including appends during the replay and lost live messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass

from subscriptions.broker import InProcessBroker
from subscriptions.resume import LiveBuffer, stream


@dataclass(frozen=True)
class Entry:
    sequence: int
    body: str


class Log:
    """A durable log stand-in: appends are 'committed', then announced on the broker.
    Reading yields to the event loop, so appends can happen during a replay."""

    def __init__(self, broker: InProcessBroker, announce: bool = True) -> None:
        self.entries: list[Entry] = []
        self.broker = broker
        self.announce = announce
        self.reads = 0

    async def append(self, body: str) -> Entry:
        entry = Entry(len(self.entries) + 1, body)
        self.entries.append(entry)
        if self.announce:
            payload = json.dumps({"sequence": entry.sequence, "body": body}).encode()
            await self.broker.publish("log", payload)
        return entry

    async def read_after(self, cursor: int | None, limit: int) -> Sequence[Entry]:
        self.reads += 1
        await asyncio.sleep(0.001)
        start = cursor or 0
        return self.entries[start : start + limit]


async def listen(broker: InProcessBroker, size: int = 1000) -> LiveBuffer[Entry]:
    live: LiveBuffer[Entry] = LiveBuffer(size)

    def receive(_topic: str, data: bytes) -> None:
        value = json.loads(data)
        live.push(Entry(value["sequence"], value["body"]))

    await broker.subscribe(["log"], receive)
    return live


async def take(iterator: object, count: int, within: float = 5.0) -> list[Entry]:
    got: list[Entry] = []
    async with asyncio.timeout(within):
        async for entry in iterator:  # type: ignore[attr-defined]
            got.append(entry)
            if len(got) == count:
                break
    return got


def sequences(entries: list[Entry]) -> list[int]:
    return [entry.sequence for entry in entries]


async def test_replays_after_the_cursor_then_continues_live() -> None:
    broker = InProcessBroker()
    log = Log(broker)
    for n in range(10):
        await log.append(f"old {n}")
    live = await listen(broker)
    entries = stream(log, lambda e: e.sequence, 4, live, page_size=3)
    replayed = await take(entries, 6)
    assert sequences(replayed) == [5, 6, 7, 8, 9, 10]
    await log.append("new")
    assert sequences(await take(entries, 1)) == [11]


async def test_appends_during_the_replay_arrive_once_and_in_order() -> None:
    broker = InProcessBroker()
    log = Log(broker)
    for n in range(50):
        await log.append(f"old {n}")
    live = await listen(broker)

    async def writer() -> None:
        for n in range(50):
            await log.append(f"during {n}")
            await asyncio.sleep(0)

    writing = asyncio.create_task(writer())
    got = await take(stream(log, lambda e: e.sequence, None, live, page_size=7), 100)
    await writing
    assert sequences(got) == list(range(1, 101))


async def test_a_lost_live_message_is_read_from_the_log() -> None:
    broker = InProcessBroker()
    log = Log(broker)
    live = await listen(broker)
    entries = stream(log, lambda e: e.sequence, None, live)
    await log.append("one")
    assert sequences(await take(entries, 1)) == [1]
    log.announce = False  # the broker drops this one
    await log.append("two")
    log.announce = True
    await log.append("three")
    assert sequences(await take(entries, 2)) == [2, 3]


async def test_an_overflowing_live_buffer_falls_back_to_the_log() -> None:
    broker = InProcessBroker()
    log = Log(broker)
    live = await listen(broker, size=3)
    entries = stream(log, lambda e: e.sequence, None, live)
    await log.append("first")
    assert sequences(await take(entries, 1)) == [1]
    for n in range(20):  # nobody reads meanwhile: the buffer overflows
        await log.append(f"burst {n}")
    assert sequences(await take(entries, 20)) == list(range(2, 22))


async def test_a_cursor_at_the_end_replays_nothing_and_waits_for_live() -> None:
    broker = InProcessBroker()
    log = Log(broker)
    for n in range(3):
        await log.append(str(n))
    live = await listen(broker)
    entries = stream(log, lambda e: e.sequence, 3, live)
    waiting = asyncio.create_task(take(entries, 1))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await log.append("next")
    assert sequences(await waiting) == [4]
