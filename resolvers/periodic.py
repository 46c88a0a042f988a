"""Work that runs every few seconds inside `serve` or `entativa worker` (the sweepers).

One loop for all of them: a round that fails is logged and the next one tries
again (a store hiccup must not stop purging for the life of the process), and
`stop` cancels the sleep or the round in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class Periodic:
    """`run_round` every `every_seconds` (0: never) from `start` until `stop`."""

    name = "periodic task"

    def __init__(self, every_seconds: float) -> None:
        self.every_seconds = every_seconds
        self._task: asyncio.Task[None] | None = None

    async def run_round(self) -> object:
        """One round; what it returns is logged when it is truthy (what it did)."""
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None and self.every_seconds > 0:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                done = await self.run_round()
                if done:
                    log.info("%s: %s", self.name, done)
            except Exception:
                log.exception("%s failed; retrying in %.0fs", self.name, self.every_seconds)
            await asyncio.sleep(self.every_seconds)
