"""One-shot timers of a process: run a coroutine once, a set time from now, unless
disarmed first. Two users:

- ring timeouts: an unanswered call ends `call_ring_seconds` after it started
  (resolvers/messaging/calls.py), key `("call", id)`;
- typing expiry: a member who stops sending `setTyping(true)` is announced as not
  typing 6 s after the last one (resolvers/messaging/presence.py), key
  `("typing", platform, conversation, user)`.

For calls, the process that started the call arms a timer here; answering or
ending the call disarms it. The timer is only the prompt path: reads already
show a call that rang out as ended (its `endedAt` is computed from `startedAt`
until the row says so), and the messaging sweeper's ring sweep ends, in the
database, the calls whose process died before its timer fired. So a lost timer
delays the HANGUP to the devices, never the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

log = logging.getLogger("entativa.realtime")


class Timers:
    """One pending timer per key, on the running event loop."""

    def __init__(self) -> None:
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._running: set[asyncio.Task[None]] = set()

    def arm(self, key: Hashable, delay: float, fire: Callable[[], Awaitable[Any]]) -> None:
        self.disarm(key)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(max(delay, 0.0), self._start, key, fire)

    def disarm(self, key: Hashable) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _start(self, key: Hashable, fire: Callable[[], Awaitable[Any]]) -> None:
        self._timers.pop(key, None)
        task = asyncio.get_running_loop().create_task(self._run(key, fire))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, key: Hashable, fire: Callable[[], Awaitable[Any]]) -> None:
        try:
            await fire()
        except Exception:  # e.g. the ring sweep ends the call instead
            log.exception("timer %s failed", key)

    def armed(self, key: Hashable) -> bool:
        return key in self._timers

    def cancel_all(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._running:
            with contextlib.suppress(Exception):
                task.cancel()
