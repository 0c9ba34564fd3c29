"""Migrations are the only source of the schema: models and migrations must agree."""

from __future__ import annotations

import anyio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from funding.ledger.models import include_in_schema_compare
from funding.migrate import alembic_config, head_revisions
from funding.models import metadata


async def test_models_and_migrations_do_not_drift(engine):
    def diff(connection):
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "include_object": include_in_schema_compare(connection.dialect.name)})
        return compare_metadata(context, metadata)

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], f"models and migrations differ: write a migration\n{differences}"


async def test_the_database_is_at_the_head_revision_with_every_ledger_trigger(engine):
    async with engine.connect() as conn:
        assert set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars()) == head_revisions()
        if engine.dialect.name == "sqlite":
            names = (await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))).scalars().all()
        else:
            names = (await conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))).scalars().all()
    assert {"entries_insert_guard", "entries_advance_head", "entries_delete_guard", "closings_insert_guard"} <= set(names)


def test_downgrade_to_nothing_and_back_up(tmp_path):
    from alembic import command

    url = f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}"
    config = alembic_config(url)
    command.upgrade(config, "heads")
    command.downgrade(config, "base")
    command.upgrade(config, "heads")

    async def tables():
        from funding.db import create_engine

        engine = create_engine(url)
        async with engine.connect() as conn:
            found = (await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))).scalars().all()
        await engine.dispose()
        return set(found)

    assert {"entries", "postings", "closings"} <= anyio.run(tables)
