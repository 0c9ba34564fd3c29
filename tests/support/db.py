"""The tests' databases and event loops: the seal key, sessions that seal, a PostgreSQL admin
connection, the owner's and the service's addresses, and coroutines run from sync code."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from contextlib import contextmanager

import pytest
from sqlalchemy import event

REQUIRE_ALL = os.environ.get("FUNDING_TEST_REQUIRE_ALL") == "1"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# The key that seals the tests' closings (what LEDGER_SEAL_KEY holds in production).
TEST_SEAL_KEY = "dGVzdC1zZWFsLWtleS1mb3ItZW50cmUtbGFiLXRlc3Q="


def skip_or_fail(reason: str):
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (FUNDING_TEST_REQUIRE_ALL=1 forbids skipping)")
    pytest.skip(reason)


def sealed_sessions(engine):
    """Sessions of ``engine`` that seal closings with the tests' key (as a process of the service does)."""
    from funding.db import session_factory
    from funding.ledger.seals import Keyring
    from funding.settings import Settings

    return session_factory(engine, keyring=Keyring.from_settings(Settings(seal_key=TEST_SEAL_KEY)))


def run_async(make_coro):
    """Run a coroutine to completion on a fresh loop in another thread: safe from any
    test, including those where Playwright or anyio already runs a loop here."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


def run_blocking(fn, *args):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


async def pg_admin(sql: str) -> None:
    """Run ``sql`` as PostgreSQL's administrator (CREATE/DROP DATABASE, roles)."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def service_url(owner_url: str, role: str) -> str:
    """The same database, as another role (trust authentication here: the password is for show)."""
    from sqlalchemy.engine import make_url

    return make_url(owner_url).set(username=role, password="service-role-pw").render_as_string(hide_password=False)


def owner_url(url: str) -> str:
    """The same database, as its owner (what an intruder with the owner's role, or a test's setup, uses)."""
    from sqlalchemy.engine import make_url

    admin = make_url(PG_ADMIN_URL)
    return make_url(url).set(username=admin.username, password=admin.password).render_as_string(hide_password=False)


def empty_pg(url: str, keep: tuple[str, ...] = ("alembic_version", "journals")) -> None:
    """Empty a test PostgreSQL database as its owner (what the root conftest does before each test),
    for a test that runs twice on one database."""
    from funding.models import metadata

    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name not in keep)

    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(owner_url(url).replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute("SET session_replication_role = replica")  # the ledger's triggers forbid deleting
            await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    run_async(run)


@contextmanager
def counted(sessions):
    """The statements sent through the sessions' engine while the block runs (a transaction's BEGIN aside)."""
    engine = sessions.kw["bind"].sync_engine
    sent: list[str] = []

    def count(conn, cursor, statement, *args):
        if not statement.startswith("BEGIN"):
            sent.append(" ".join(statement.split())[:80])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)
