"""`entativa worker`: the outbox relay and the event consumers as their own process.

With Kafka (`ENTATIVA_KAFKA_BOOTSTRAP`), run as many as needed next to the servers:
relays share the outbox (PostgreSQL row locks), consumers share partitions through
their consumer groups. Without Kafka the worker uses the in-process bus, so its
consumers get the events it relays itself (the embedded `serve` does the same in
the server process; run one or the other on SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

from datasources.registry import build_consumers
from resolvers.stories.sweeper import StorySweeper
from server.logs import configure_logging
from server.runtime import build_dispatcher, event_config, messaging_sweeper, stores_from_settings
from server.settings import Settings

STATUS_EVERY_SECONDS = 30.0


def say(line: str) -> None:
    print(f"[entativa worker] {line}", flush=True)


async def run_worker(settings: Settings, relay: bool = True, consumers: bool = True) -> None:
    """Run until SIGINT/SIGTERM; the relay's round in flight finishes before exit."""
    configure_logging(settings.log_level)
    config = event_config(settings)
    # The same stores as a server's (presence in Redis: who is online, for the email
    # rule; the media directory: the story sweeper deletes expired stories' files).
    stores = stores_from_settings(settings)
    pipeline = stores.events
    pipeline.relay.options.progress = say
    chosen = build_consumers(stores) if consumers else []
    bus = f"Kafka at {config.kafka_bootstrap}" if config.uses_kafka else "the in-process bus"
    say(
        f"relay {'on' if relay else 'off'}, {len(chosen)} consumer(s) "
        f"({', '.join(c.name for c in chosen) or 'none registered'}), {bus}"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    sweeper = StorySweeper(stores, settings.story_sweep_seconds)
    envelope_sweeper = messaging_sweeper(settings, stores)
    dispatcher = build_dispatcher(settings, stores) if consumers else None
    try:
        await stores.prepare()
        await pipeline.start(relay=relay, consumers=chosen)
        sweeper.start()
        envelope_sweeper.start()
        if dispatcher is not None:
            dispatcher.start()
        say(f"push/email dispatch {'on' if dispatcher else 'off (no credentials)'}")
        say("running (Ctrl-C to stop)")
        await _report_until(stop, pipeline.relay.stats)
    finally:
        say("stopping")
        await sweeper.stop()
        await envelope_sweeper.stop()
        if dispatcher is not None:
            await dispatcher.stop()
        await stores.close()
        say(f"stopped after relaying {pipeline.relay.stats.published} events")


async def _report_until(stop: asyncio.Event, stats: object) -> None:
    """A status line every STATUS_EVERY_SECONDS: the relay's totals and last error."""
    started = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATUS_EVERY_SECONDS)
        if not stop.is_set():
            say(f"up {time.monotonic() - started:.0f}s: {stats}")
