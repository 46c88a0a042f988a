"""Stepping a send inline and finishing it in a task only when it must wait."""

from __future__ import annotations

import asyncio

import pytest

from subscriptions.inline import start


async def test_a_coroutine_that_never_waits_finishes_inline() -> None:
    done: list[str] = []

    async def send() -> None:
        event = asyncio.Event()
        event.set()
        await event.wait()  # set: no suspension
        done.append("sent")

    assert start(send()) is None
    assert done == ["sent"]


async def test_a_coroutine_that_waits_is_finished_by_a_task() -> None:
    writable = asyncio.Event()
    done: list[str] = []

    async def send() -> None:
        await writable.wait()
        await asyncio.sleep(0)  # a bare yield too
        await writable.wait()
        done.append("sent")

    waiting = start(send())
    assert waiting is not None and done == []
    task = asyncio.create_task(waiting.finish())
    await asyncio.sleep(0.01)
    assert not task.done()
    writable.set()
    await task
    assert done == ["sent"]


async def test_errors_raise_inline_or_from_finish() -> None:
    async def broken() -> None:
        raise ConnectionError("gone")

    with pytest.raises(ConnectionError):
        start(broken())

    gate = asyncio.Event()

    async def later() -> None:
        await gate.wait()
        raise ConnectionError("gone later")

    waiting = start(later())
    assert waiting is not None
    task = asyncio.create_task(waiting.finish())
    gate.set()
    with pytest.raises(ConnectionError):
        await task


async def test_cancelling_the_task_cancels_the_coroutine() -> None:
    cleaned: list[str] = []

    async def send() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("cleaned")

    waiting = start(send())
    assert waiting is not None
    task = asyncio.create_task(waiting.finish())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["cleaned"]
