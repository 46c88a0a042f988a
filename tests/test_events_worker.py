"""`entativa worker` as its own process: relays what servers committed, reports
progress, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from datasources.events.model import NewEvent
from datasources.events.outbox import emit
from datasources.migrate import upgrade
from datasources.sql import Database
from tests.events_support import outbox


async def test_the_worker_relays_committed_events_and_stops_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'entativa.db'}"
    await upgrade(url)
    db = Database(url)
    env = {
        **os.environ,
        "ENTATIVA_DATABASE_URL": url,
        "ENTATIVA_DATA_DIR": str(tmp_path / "data"),
        "ENTATIVA_KAFKA_BOOTSTRAP": "",
        "ENTATIVA_RELAY_POLL_SECONDS": "0.1",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with db.transaction() as session:  # a server process commits a write
            await emit(
                session, *[NewEvent("user.followed", "socialink", 1, "user", n) for n in range(3)]
            )

        for _ in range(600):  # up to 30 s
            if all(published for _, published in await outbox(db)):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the worker did not publish the events")
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(worker.communicate(), 30)
        await db.dispose()
    text = output.decode()
    assert worker.returncode == 0, text
    assert "[entativa worker] relayed 3 events" in text
    assert "stopped after relaying 3 events" in text
