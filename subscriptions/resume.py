"""Resumable streams: replay a durable log after the client's cursor, then go live,
with no gap and no duplicate, including events that arrive during the replay.

Streams that must not lose data (message envelopes, notifications) keep a durable,
ordered log; the broker only carries the news that something was appended. The
order of work is what makes it exact:

1. listen live FIRST (a `LiveBuffer` fed by a broker subscription), so nothing
   appended from now on can be missed;
2. replay the log after the client's cursor, page by page, to its end;
3. then deliver live entries, dropping those at or before the last cursor sent
   (they came in the replay already: no duplicate).

Live delivery is best effort (the broker may drop, the buffer is bounded), so a
gap is detected instead of trusted away: with dense cursors (1, 2, 3… per
stream) a live entry that does not follow the last one sent, and any buffer
overflow, sends the stream back to the log to read what is missing.

`stream` is an async generator of entries; messaging and notifications adapt
their log (`read_after`) and their broker messages (`LiveBuffer.push`) to it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Generic, Protocol, TypeVar

GAP_RETRY_SECONDS = 0.05

E = TypeVar("E")
E_co = TypeVar("E_co", covariant=True)


class DurableLog(Protocol[E_co]):
    async def read_after(self, cursor: int | None, limit: int) -> Sequence[E_co]:
        """Up to `limit` entries after `cursor` (from the start when None), in order."""
        ...


class LiveBuffer(Generic[E]):
    """Live entries waiting for the stream; bounded. Overflow is not an error: it
    only makes the stream read the log again (`lost`)."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self.entries: deque[E] = deque()
        self.lost = False
        self._ready = asyncio.Event()

    def push(self, entry: E) -> None:
        """Call from a broker handler (never blocks)."""
        if len(self.entries) >= self.size:
            self.entries.clear()
            self.lost = True
        else:
            self.entries.append(entry)
        self._ready.set()

    async def wait(self) -> None:
        while not self.entries and not self.lost:
            self._ready.clear()
            await self._ready.wait()


async def stream(
    log: DurableLog[E],
    cursor_of: Callable[[E], int],
    after: int | None,
    live: LiveBuffer[E],
    dense: bool = True,
    page_size: int = 100,
) -> AsyncIterator[E]:
    """Every entry after `after`, in order, once; then live ones as they come.

    `live` must already be receiving (subscribed before this is called).
    """
    last = after
    while True:
        live.lost = False
        before = last
        async for entry in _replay(log, cursor_of, last, page_size):
            last = cursor_of(entry)
            yield entry
        if before == last and live.entries and _gap(live, cursor_of, last, dense):
            await asyncio.sleep(GAP_RETRY_SECONDS)  # not in the log yet: read again soon
            continue
        while not live.lost:
            await live.wait()
            if live.lost:
                break  # back to the log: something was dropped
            entry = live.entries.popleft()
            cursor = cursor_of(entry)
            if last is not None and cursor <= last:
                continue  # already replayed
            if dense and last is not None and cursor != last + 1:
                live.entries.appendleft(entry)
                break  # a gap: read the log from `last`
            last = cursor
            yield entry


def _gap(live: LiveBuffer[E], cursor_of: Callable[[E], int], last: int | None, dense: bool) -> bool:
    cursor = cursor_of(live.entries[0])
    return dense and last is not None and cursor > last + 1


async def _replay(
    log: DurableLog[E], cursor_of: Callable[[E], int], after: int | None, page_size: int
) -> AsyncIterator[E]:
    while True:
        page = await log.read_after(after, page_size)
        for entry in page:
            yield entry
        if len(page) < page_size:
            return
        after = cursor_of(page[-1])
