"""Test harness: every database test runs on SQLite and on a fresh PostgreSQL database.

PostgreSQL is the one on 127.0.0.1:5432 (TEST_POSTGRES_URL to change it): the run
creates its own database, migrates it once, empties it before each test and drops it
at the end. Without PostgreSQL (a newcomer's laptop) those tests are skipped and the
summary says so; with FUNDING_TEST_REQUIRE_ALL=1 (what .ci/run sets) a skip is a failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import secrets
import shutil
from pathlib import Path

import pytest

from funding.settings import load_settings

REQUIRE_ALL = os.environ.get("FUNDING_TEST_REQUIRE_ALL") == "1"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
KEEP_TABLES = {"alembic_version", "journals"}


def skip_or_fail(reason: str):
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (FUNDING_TEST_REQUIRE_ALL=1 forbids skipping)")
    pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    """Every coroutine test runs on asyncio through anyio's plugin, without a marker each."""
    if collector.funcnamefilter(name) and inspect.iscoroutinefunction(obj):
        if not any(mark.name == "anyio" for mark in getattr(obj, "pytestmark", [])):
            pytest.mark.anyio(obj)


def pytest_sessionfinish(session, exitstatus):
    """In CI every test must run: a skip anywhere fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if REQUIRE_ALL and reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped and REQUIRE_ALL:
        terminalreporter.write_line(f"FAIL: {len(skipped)} test(s) skipped under FUNDING_TEST_REQUIRE_ALL=1", red=True)
    elif skipped:
        terminalreporter.write_line(
            f"note: {len(skipped)} test(s) skipped (PostgreSQL or Debian chromium missing?); "
            ".ci/run installs what they need and refuses any skip.",
            yellow=True,
        )


@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"


def run_async(make_coro):
    """Run a coroutine to completion on a fresh loop in another thread: safe from any
    test, including those where Playwright or anyio already runs a loop here."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


def run_blocking(fn, *args):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database():
    """A fresh, migrated PostgreSQL database for this run, or None if unreachable."""
    from funding.migrate import upgrade

    name = f"funding_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        run_async(lambda: _pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable, auth refused…
        yield None, f"PostgreSQL not available at {PG_ADMIN_URL}: {type(exc).__name__}"
        return
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = load_settings(serving=False, DATABASE_URL=f"{base}/{name}").database_url
    try:
        run_blocking(upgrade, url)
        yield url, None
    finally:
        run_async(lambda: _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    from funding.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    run_blocking(upgrade, f"sqlite+aiosqlite:///{path}")
    return path


def _empty_pg(url: str) -> None:
    from funding.models import metadata

    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name not in KEEP_TABLES)
    # Triggers forbid deleting ledger rows; a test database is emptied with them off.
    run_async(lambda: _pg_exec(url, ["SET session_replication_role = replica", f"TRUNCATE {tables} RESTART IDENTITY CASCADE"]))


async def _pg_exec(url: str, statements: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, sqlite_template) -> str:
    if request.param == "sqlite":
        target = tmp_path / "funding.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite+aiosqlite:///{target}"
    url, reason = request.getfixturevalue("pg_database")
    if url is None:
        skip_or_fail(reason)
    _empty_pg(url)
    return url


@pytest.fixture
def pg_url(request) -> str:
    """PostgreSQL only (concurrency tests)."""
    url, reason = request.getfixturevalue("pg_database")
    if url is None:
        skip_or_fail(reason)
    _empty_pg(url)
    return url


@pytest.fixture
def settings(database_url):
    return load_settings(
        {},
        FUNDING_ENV="test",
        DATABASE_URL=database_url,
        SECRET_KEY="test-secret-key-0123456789",
        BASE_URL="http://testserver",
    )


@pytest.fixture
async def engine(settings):
    from funding.db import create_engine

    engine = create_engine(settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine):
    from funding.db import session_factory

    return session_factory(engine)


@pytest.fixture
async def world(sessions):
    """An organisation with two sites, and one user of each role."""
    from tests.factories import make_world

    return await make_world(sessions)


@pytest.fixture
def app(settings):
    from funding.app import create_app

    return create_app(settings)


@pytest.fixture
async def client(app):
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", follow_redirects=False) as c:
            yield c
