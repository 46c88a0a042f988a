"""The outbox relay: committed outbox rows → the event bus, at least once.

One round takes the oldest unpublished rows (by id), publishes them as one batch
and marks them published. On PostgreSQL the rows are taken `FOR UPDATE SKIP
LOCKED` inside the round's transaction, so any number of relays (server processes,
`entativa worker`s) share the outbox without two of them taking the same row; on
SQLite one process relays (a second one would only cause duplicates, which
consumers absorb).

A process that dies after publishing and before marking leaves the rows
unpublished: they are published again, which is why consumers are idempotent.
A failed publish (broker unreachable, an in-process consumer failing) leaves the
rows as they were and the relay retries with exponential backoff.

During a backlog (full batches) rounds overlap: the next batch is read and parsed
while the one before is published and marked, each round in its own transaction,
and a round publishes only after the one before it reached the bus, so batches keep
id order.

The relay wakes right after a commit that added outbox rows in this process
(`outbox.notify_on_commit`) and otherwise polls every `poll_seconds`. It deletes
published rows older than `retention` from time to time, and with them the
consumers' idempotency records older than twice that.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    any_,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from datasources.events.bus import BusUnavailable, EventBus
from datasources.events.model import Event
from datasources.events.outbox import database_key, notify_on_commit
from datasources.events.retry import Backoff
from datasources.events.tables import ConsumedEventRow, OutboxRow
from datasources.events.transactions import transaction
from datasources.sql import Database, utcnow

log = logging.getLogger("entativa.events.relay")


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    failures: int = 0
    last_error: str | None = None
    pruned: int = 0


@dataclass
class RelayOptions:
    batch_size: int = 5_000
    poll_seconds: float = 1.0
    retention: timedelta = timedelta(days=7)
    prune_every_seconds: float = 600.0
    backoff_first: float = 0.2
    backoff_cap: float = 30.0
    pipeline_depth: int = 2  # rounds in flight at once during a backlog (1: one by one)
    progress: Callable[[str], None] | None = field(default=None, repr=False)


class OutboxRelay:
    """Publishes the outbox; `start`/`stop` run it in the background, `run_once` and
    `drain` run it by hand (tests, benchmarks)."""

    def __init__(self, db: Database, bus: EventBus, options: RelayOptions | None = None) -> None:
        self.db = db
        self.bus = bus
        self.options = options or RelayOptions()
        self.stats = RelayStats()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unregister: Callable[[], None] | None = None
        self._select_lock = asyncio.Lock()
        self._after = 0  # see run_once

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self.running:
            return
        self._unregister = notify_on_commit(database_key(self.db.engine.sync_engine), self.wake)
        self._wake.set()  # whatever was committed while no relay ran goes first
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="outbox relay")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Let the round in flight finish (its rows get marked), flush what is already
        committed (a server on SIGTERM publishes the events of its last requests, not at
        its next start), then stop; after `grace_seconds` cancel it (its rows stay
        unpublished and go out again with the next relay)."""
        if self._unregister is not None:
            self._unregister()
            self._unregister = None
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_seconds)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception:  # the loop logs its own failures; never raise from stop
            log.exception("outbox relay stopped with an error")

    async def run_once(self) -> int:
        """Publish one batch of the oldest unpublished rows; how many were published."""
        return await self._round()

    async def _round(
        self,
        previous: asyncio.Future[bool] | None = None,
        handed_over: asyncio.Future[bool] | None = None,
    ) -> int:
        """Select, publish, mark one batch in one transaction.

        While batches come full (a backlog), the next select starts after the last id
        taken instead of scanning the published rows again (that made a backlog
        quadratic on PostgreSQL). When the backlog ends (a short batch) or a round
        fails, the cursor goes back to 0, so a row committed late with a lower id, or
        a failed batch, is taken on the next pass.

        In a pipeline (`_backlog`, which resets the cursor once all its rounds are
        done), `previous` says whether the batch before this one reached the bus:
        this one publishes only after it, and not at all if it failed (so batches
        reach the bus in id order); `handed_over` tells the next round the same.
        """
        pipelined = handed_over is not None
        try:
            async with transaction(self.db) as session:
                # Rounds take the lock in the order they were created (the connection too:
                # awaiting it first would let a later round select an earlier batch).
                async with self._select_lock:
                    connection = await session.connection()  # Core rows: no ORM loading
                    ids, payloads = _columns(await connection.execute(self._select()))
                    if ids:
                        self._after = ids[-1]
                # Parsed before waiting: overlaps the previous round's publish.
                events = [Event.from_json(payload) for payload in payloads]
                reached = previous is None or await previous
                if not ids:
                    _settle(handed_over, reached)  # pass the earlier outcome on
                    if not pipelined:
                        self._after = 0
                    return 0
                if not reached:
                    raise BusUnavailable("an earlier batch did not reach the bus")
                await self.bus.publish(events)
                _settle(handed_over, True)
                await connection.execute(
                    update(OutboxRow).where(self._taken(ids)).values(published_at=utcnow())
                )
        except BaseException:
            if not pipelined:
                self._after = 0
            raise
        finally:
            _settle(handed_over, False)
        if not pipelined and len(ids) < self.options.batch_size:
            self._after = 0
        self.stats.published += len(ids)
        self.stats.batches += 1
        return len(ids)

    def _taken(self, ids: list[int]) -> ColumnElement[bool]:
        """`id IN ids` with one parameter instead of thousands to render and bind (a
        round is up to `batch_size` rows): `= ANY(array)` on PostgreSQL, the ids of a
        JSON array on SQLite."""
        if self.db.is_sqlite:
            listed = func.json_each(bindparam("ids", json.dumps(ids))).table_valued("value")
            return OutboxRow.id.in_(select(listed.c.value))
        return OutboxRow.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger)))

    def _select(self) -> Select[int, str]:
        query = (
            select(OutboxRow.id, OutboxRow.payload)
            .where(OutboxRow.published_at.is_(None), OutboxRow.id > self._after)
            .order_by(OutboxRow.id)
            .limit(self.options.batch_size)
        )
        return query if self.db.is_sqlite else query.with_for_update(skip_locked=True)

    async def _backlog(self) -> int:
        """Rounds overlapped while batches come full: the next batch is read from the
        database while the one before is published and marked (`pipeline_depth`
        rounds at once, each in its own transaction). Raises the first failure."""
        loop = asyncio.get_running_loop()
        in_flight: deque[asyncio.Task[int]] = deque()
        previous: asyncio.Future[bool] | None = None
        total = 0
        try:
            while not self._stopping.is_set():
                handed_over: asyncio.Future[bool] = loop.create_future()
                in_flight.append(asyncio.create_task(self._round(previous, handed_over)))
                previous = handed_over
                if len(in_flight) < self.options.pipeline_depth:
                    continue
                count = await in_flight.popleft()
                total += count
                if count < self.options.batch_size:
                    break
        finally:
            outcomes = await asyncio.gather(*in_flight, return_exceptions=True)
            self._after = 0  # the next pass starts from the oldest unpublished row
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            total += outcome
        return total

    async def drain(self) -> int:
        """Publish until nothing is left; how many were published."""
        total = 0
        while count := await self.run_once():
            total += count
        return total

    async def prune(self) -> int:
        """Delete published rows past retention, and idempotency records past twice it."""
        now = utcnow()
        async with transaction(self.db) as session:
            outbox = await session.execute(
                delete(OutboxRow).where(
                    OutboxRow.published_at.is_not(None),
                    OutboxRow.published_at < now - self.options.retention,
                )
            )
            await session.execute(
                delete(ConsumedEventRow).where(
                    ConsumedEventRow.consumed_at < now - 2 * self.options.retention
                )
            )
        pruned = int(getattr(outbox, "rowcount", 0) or 0)
        self.stats.pruned += pruned
        return pruned

    async def _loop(self) -> None:
        backoff = Backoff(self.options.backoff_first, self.options.backoff_cap)
        next_prune = 0.0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                count = await self.run_once()
                if count >= self.options.batch_size:  # a backlog: overlap the rounds
                    count += await self._backlog()
                if time.monotonic() >= next_prune:
                    await self.prune()
                    next_prune = time.monotonic() + self.options.prune_every_seconds
            except asyncio.CancelledError:
                raise
            except Exception as error:  # bus or database unreachable: keep the rows, retry
                self._failed(error)
                await self._pause(backoff.next(), self._stopping)
                continue
            backoff.reset()
            if count:
                self._say(f"relayed {count} events ({self.stats.published} in all)")
            await self._pause(self.options.poll_seconds, self._wake)
        await self._flush()

    async def _flush(self) -> None:
        """On stop: publish every row committed so far. A failure (the bus is down) is
        logged, not raised: the rows stay in the outbox for the next relay."""
        try:
            count = await self.drain()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._failed(error)
            return
        if count:
            self._say(f"relayed {count} events on stop ({self.stats.published} in all)")

    @staticmethod
    async def _pause(seconds: float, until: asyncio.Event) -> None:
        """Sleep `seconds`, or less when `until` is set. (`asyncio.timeout`, not
        `wait_for`: no task per pause, so an idle relay creates no asyncio tasks.)"""
        try:
            async with asyncio.timeout(seconds):
                await until.wait()
        except TimeoutError:
            pass

    def _failed(self, error: Exception) -> None:
        self.stats.failures += 1
        self.stats.last_error = repr(error)
        log.warning("outbox relay: publishing failed (%r); will retry", error)

    def _say(self, line: str) -> None:
        if self.options.progress is not None:
            self.options.progress(line)
        else:
            log.debug(line)


def _columns(rows: Iterable[Row[int, str]]) -> tuple[list[int], list[str]]:
    """The ids and payloads of the rows taken, one row at a time: a round's thousands
    of `Row`s are freed as they are read instead of living (and being scanned by the
    garbage collector) until the round ends."""
    ids: list[int] = []
    payloads: list[str] = []
    for row_id, payload in rows:
        ids.append(row_id)
        payloads.append(payload)
    return ids, payloads


def _settle(future: asyncio.Future[bool] | None, value: bool) -> None:
    if future is not None and not future.done():
        future.set_result(value)
