"""The event bus: what the outbox relay publishes to and consumers subscribe to.

Two implementations behind one small protocol (ARCHITECTURE §5):

- `InProcessBus` (embedded default): one process, no broker. `publish` hands each
  event to every consumer group and returns only when every group's handler has
  succeeded, so the relay marks an outbox row published only after its effects
  happened; a handler failure makes `publish` fail and the relay retry the batch
  later (the groups that already succeeded are not called again while the process
  remembers them, and idempotent consumers absorb the rest).
- `KafkaBus` (datasources/events/kafka.py): topics `entativa.<platform>.<domain>`,
  consumer groups, offsets committed after the handler succeeded.

Both deliver at least once: a consumer must be idempotent by event id
(datasources/events/consumers.py does that for relational effects).

A consumer may also give a batch handler: it then gets, in one call, the events
of a relay round (in process) or of one partition's poll (Kafka) that are for it,
in order, and applies them in one transaction (notifications: a burst of likes is
a few transactions, not one per like). The batch succeeds or fails as a whole.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from datasources.events.model import Event

log = logging.getLogger("entativa.events")

Handler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[Sequence[Event]], Awaitable[None]]

PLATFORMS: tuple[str, ...] = ("socialink", "vignette")
"""The platforms whose topics a subscription covers unless it names some."""


class BusUnavailable(Exception):
    """Publishing failed (broker unreachable, a consumer failed); retry later."""


@dataclass(frozen=True)
class Subscription:
    """A consumer group's interest: event domains (topics) on some platforms."""

    group: str
    domains: frozenset[str]
    platforms: frozenset[str]

    def wants(self, event: Event) -> bool:
        return event.domain in self.domains and event.platform in self.platforms

    @classmethod
    def of(
        cls, group: str, domains: Iterable[str], platforms: Iterable[str] | None = None
    ) -> Subscription:
        if not group:
            raise ValueError("a consumer group needs a name")
        chosen = frozenset(domains)
        if not chosen:
            raise ValueError("a subscription needs at least one domain")
        return cls(group, chosen, frozenset(platforms or PLATFORMS))


class EventBus(Protocol):
    """Publish batches of events; deliver each to every subscribed consumer group once."""

    async def start(self) -> None:
        """Connect (idempotent); subscriptions made before start begin consuming now."""

    async def stop(self) -> None:
        """Stop consuming and disconnect; uncommitted deliveries come again later."""

    async def publish(self, events: Sequence[Event]) -> None:
        """Durably hand `events` over, in order; raises BusUnavailable when it could not."""

    async def subscribe(
        self,
        group: str,
        domains: Iterable[str],
        handler: Handler,
        platforms: Iterable[str] | None = None,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        """Deliver events of `domains` to `handler`, once per consumer `group`.

        Several handlers in one group share the work (each event goes to one of
        them). A handler that raises gets the event again later. With
        `batch_handler`, the bus hands over the events it has at once through it
        instead (same order, same at-least-once rule, for the whole batch).
        """


@dataclass(frozen=True)
class _Member:
    handler: Handler
    batch_handler: BatchHandler | None = None


@dataclass
class _Group:
    subscription: Subscription
    members: list[_Member] = field(default_factory=list)
    done: OrderedDict[str, None] = field(default_factory=OrderedDict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class InProcessBus:
    """Delivers synchronously to the handlers of this process (see the module docstring)."""

    REMEMBER = 50_000  # event ids per group known to be handled (skips re-calls on retry)

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def subscribe(
        self,
        group: str,
        domains: Iterable[str],
        handler: Handler,
        platforms: Iterable[str] | None = None,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        subscription = Subscription.of(group, domains, platforms)
        member = _Member(handler, batch_handler)
        existing = self._groups.get(group)
        if existing is None:
            self._groups[group] = _Group(subscription, [member])
        else:  # another member of the group: same interest, shares the work
            if existing.subscription != subscription:
                raise ValueError(f"consumer group {group!r} subscribed with another interest")
            existing.members.append(member)

    async def publish(self, events: Sequence[Event]) -> None:
        groups = [g for g in self._groups.values() if any(map(g.subscription.wants, events))]
        if len(groups) == 1:  # the common case: no task per batch
            outcomes: list[BaseException | None] = [
                await _outcome(self._deliver(groups[0], events))
            ]
        else:  # groups in parallel, so a slow one does not hold back the others
            outcomes = await asyncio.gather(
                *(self._deliver(group, events) for group in groups), return_exceptions=True
            )
        failed = [
            (group.subscription.group, outcome)
            for group, outcome in zip(groups, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        ]
        if failed:
            names = ", ".join(name for name, _ in failed)
            raise BusUnavailable(f"consumer group(s) {names} failed: {failed[0][1]!r}")

    async def _deliver(self, group: _Group, events: Sequence[Event]) -> None:
        """In order; stops at the first failure so the group never sees a gap."""
        async with group.lock:
            pending = [
                event
                for event in events
                if event.id not in group.done and group.subscription.wants(event)
            ]
            if all(member.batch_handler is not None for member in group.members):
                await self._deliver_batches(group, pending)
                return
            for event in pending:
                try:
                    await _member(group.members, event).handler(event)
                except Exception:
                    log.exception(
                        "consumer %s failed on event %s (%s); it will be retried",
                        group.subscription.group,
                        event.id,
                        event.type,
                    )
                    raise
                self._remember(group, [event])

    async def _deliver_batches(self, group: _Group, events: Sequence[Event]) -> None:
        """Each member's share of `events` in one call of its batch handler."""
        shares: dict[int, list[Event]] = {}
        for event in events:
            shares.setdefault(id(_member(group.members, event)), []).append(event)
        for member in group.members:
            share = shares.get(id(member))
            if not share:
                continue
            assert member.batch_handler is not None
            try:
                await member.batch_handler(share)
            except Exception:
                log.exception(
                    "consumer %s failed on a batch of %d events (first %s); it will be retried",
                    group.subscription.group,
                    len(share),
                    share[0].id,
                )
                raise
            self._remember(group, share)

    def _remember(self, group: _Group, events: Sequence[Event]) -> None:
        for event in events:
            group.done[event.id] = None
        while len(group.done) > self.REMEMBER:
            group.done.popitem(last=False)


async def _outcome(delivery: Awaitable[None]) -> BaseException | None:
    try:
        await delivery
    except Exception as error:
        return error
    return None


def _member(members: list[_Member], event: Event) -> _Member:
    """The group member for `event`: by subject, like a Kafka partition key."""
    if len(members) == 1:
        return members[0]
    key = f"{event.subject_type}:{event.subject_id}".encode()
    return members[zlib.crc32(key) % len(members)]


def subject_key(event: Event) -> bytes:
    """The partition key: events about one subject stay in order on one partition."""
    return f"{event.platform}:{event.subject_type}:{event.subject_id}".encode()
