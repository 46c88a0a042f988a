"""GroupCommit (datasources/groupcommit.py): requests that arrive while a batch is
being written go together in the next one, each with its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from datasources.groupcommit import GroupCommit, Outcome


class Recorder:
    """A write that records its batches, answers each request doubled, fails the
    request -1, and takes `hold` (an event) to finish when one is given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.hold: asyncio.Event | None = None

    async def write(self, requests: Sequence[int]) -> list[Outcome[int]]:
        self.batches.append(list(requests))
        if self.hold is not None:
            await self.hold.wait()
        return [ValueError("no") if r == -1 else 2 * r for r in requests]


async def test_a_lone_request_is_written_at_once() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.write)
    assert await group.submit(3) == 6
    assert await group.submit(4) == 8
    assert recorder.batches == [[3], [4]]


async def test_requests_arriving_together_share_one_batch_in_order() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.write)
    assert await asyncio.gather(*(group.submit(n) for n in range(10))) == [2 * n for n in range(10)]
    assert recorder.batches == [list(range(10))]


async def test_requests_arriving_while_every_writer_is_busy_wait_for_the_next_batch() -> None:
    recorder = Recorder()
    recorder.hold = asyncio.Event()
    group = GroupCommit(recorder.write, writers=2)
    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0.01)
    assert recorder.batches == [[1]]  # being written
    second = [asyncio.ensure_future(group.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0.01)
    assert recorder.batches == [[1], [2, 3, 4]]  # the idle writer took them at once
    third = [asyncio.ensure_future(group.submit(n)) for n in (5, 6)]
    await asyncio.sleep(0.01)
    assert recorder.batches == [[1], [2, 3, 4]]  # both busy: these wait
    recorder.hold.set()
    assert await asyncio.gather(first, *second, *third) == [2, 4, 6, 8, 10, 12]
    assert recorder.batches == [[1], [2, 3, 4], [5, 6]]


async def test_at_most_max_batch_requests_go_together() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.write, max_batch=4, writers=1)
    await asyncio.gather(*(group.submit(n) for n in range(10)))
    assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_one_requests_error_fails_that_request_only() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.write)
    outcomes = await asyncio.gather(*(group.submit(n) for n in (1, -1, 2)), return_exceptions=True)
    assert outcomes[0] == 2 and outcomes[2] == 4
    assert isinstance(outcomes[1], ValueError)


async def test_a_failed_write_fails_every_request_of_its_batch_and_the_next_batch_runs() -> None:
    calls: list[list[int]] = []

    async def write(requests: Sequence[int]) -> list[Outcome[int]]:
        calls.append(list(requests))
        if len(calls) == 1:
            raise ConnectionError("database down")
        return list(requests)

    group: GroupCommit[int, int] = GroupCommit(write)
    outcomes = await asyncio.gather(*(group.submit(n) for n in (1, 2)), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    assert await group.submit(3) == 3


async def test_a_request_given_up_before_its_batch_is_not_written() -> None:
    recorder = Recorder()
    recorder.hold = asyncio.Event()
    group = GroupCommit(recorder.write, writers=1)
    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0.01)
    abandoned = asyncio.ensure_future(group.submit(2))
    kept = asyncio.ensure_future(group.submit(3))
    await asyncio.sleep(0.01)
    abandoned.cancel()
    recorder.hold.set()
    assert await first == 2 and await kept == 6
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert recorder.batches == [[1], [3]]


def test_a_writer_busy_in_another_event_loop_does_not_block_this_one() -> None:
    """A store outlives an event loop stopped mid-batch (a test's, a worker's): its
    stuck writer must not count against another loop's."""
    recorder = Recorder()
    group = GroupCommit(recorder.write, writers=1)
    first_loop = asyncio.new_event_loop()
    hold = asyncio.Event()
    recorder.hold = hold
    stuck = first_loop.create_task(group.submit(1))
    first_loop.run_until_complete(asyncio.sleep(0.01))  # its writer waits on `hold`
    assert recorder.batches == [[1]] and not stuck.done()
    recorder.hold = None

    async def elsewhere() -> int:
        async with asyncio.timeout(5):
            return await group.submit(2)

    assert asyncio.run(elsewhere()) == 4
    hold.set()
    assert first_loop.run_until_complete(stuck) == 2
    first_loop.close()
