"""Migrations and models agree, on both backends, and migrating twice is a no-op."""
from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from datasources.migrate import upgrade
from datasources.tables import metadata


def _diff(connection: Any) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


async def test_migrated_database_matches_the_models(database_url: str) -> None:
    await upgrade(database_url)  # already at head: must change nothing
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        differences = await connection.run_sync(_diff)
    await engine.dispose()
    assert differences == [], (
        "models and migrations differ; add a migration (DEVELOPERS.md): " f"{differences}"
    )


def test_migrations_have_one_head() -> None:
    """Branches written in parallel are merged, so a new revision has one parent."""
    from alembic.script import ScriptDirectory

    from datasources.migrate import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"merge the heads {heads}: alembic merge -m 'merge' heads"
