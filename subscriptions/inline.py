"""Run a coroutine inline until it would wait; hand the rest to a task only then.

Fan-out calls an ASGI `send` per socket. When the socket's transport has room,
that coroutine never suspends, and wrapping it in a task (creation, scheduling,
a loop iteration) costs more than the send itself. `start` steps the coroutine
once: finished → None; suspended on a future → a `Waiting` whose `finish()`
(awaited in a task) waits for that future and drives the coroutine to the end
the way an asyncio Task would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Waiting:
    __slots__ = ("coroutine", "yielded")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coroutine = coroutine
        self.yielded = yielded

    async def finish(self) -> None:
        coroutine, yielded = self.coroutine, self.yielded
        try:
            while True:
                try:
                    if yielded is None:  # a bare yield (sleep(0)): just let others run
                        await asyncio.sleep(0)
                    else:
                        # As Task.__step does: the coroutine's own `await` marked the
                        # future as blocking; a second await of it requires the reset.
                        yielded._asyncio_future_blocking = False
                        await yielded
                except BaseException as error:  # noqa: BLE001  # raised into the coroutine
                    try:
                        yielded = coroutine.throw(error)
                    except StopIteration:
                        return
                    continue
                try:
                    yielded = coroutine.send(None)
                except StopIteration:
                    return
        finally:
            coroutine.close()


def start(coroutine: Coroutine[Any, Any, Any]) -> Waiting | None:
    """Step `coroutine`; None when it finished without waiting. Its exception, if
    it raised before waiting, propagates."""
    try:
        yielded = coroutine.send(None)
    except StopIteration:
        return None
    except BaseException:
        coroutine.close()
        raise
    return Waiting(coroutine, yielded)
