"""Alembic environment: async engines for SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio

from alembic import context

from funding.models import metadata

config = context.config


def _do_run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            # SQLite's procedure for rebuilding a table that others reference: foreign keys
            # off while the migrations run (see _run_async), checked whole before commit.
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migrations left rows that break a foreign key: {broken[:5]}")


async def _run_async(url: str) -> None:
    from funding.db import create_engine

    engine = create_engine(url, pool=False)
    if engine.dialect.name == "sqlite":
        from sqlalchemy import event

        @event.listens_for(engine.sync_engine, "connect")
        def _foreign_keys_off(dbapi_connection, _record):  # after funding.db's own listener, before BEGIN
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.close()

    try:
        async with engine.connect() as connection:
            await connection.run_sync(_do_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _do_run(connection)
        return
    url = config.attributes.get("database_url")
    if url is None:
        from funding.settings import load_settings

        url = load_settings(FUNDING_ENV="development").database_url
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported: run `funding db upgrade`")
run()
