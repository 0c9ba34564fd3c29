"""Test harness: every database test runs on SQLite and on a fresh PostgreSQL database.

PostgreSQL is the one on 127.0.0.1:5432 (TEST_POSTGRES_URL to change it): the run
creates its own database, migrates it once, empties it before each test and drops it
at the end. Without PostgreSQL (a newcomer's laptop) those tests are skipped and the
summary says so; with FUNDING_TEST_REQUIRE_ALL=1 (what .ci/run sets) a skip is a failure.
"""

from __future__ import annotations

import inspect
import os
import secrets
import shutil
import time
from pathlib import Path

import pytest

from funding.settings import load_settings
from tests.support.db import (
    PG_ADMIN_URL,
    REQUIRE_ALL,
    TEST_SEAL_KEY,
    owner_url,
    pg_admin,
    run_async,
    run_blocking,
    service_url,
    skip_or_fail,
)
from tests.support.refusals import describe, watch_refusals

# The app's days are Paris days (funding.clock), whatever the server's zone; the tests' own
# "today" (dt.date.today() in a test) must be the same day, or every test that dates something
# "today" fails between 23:00 and midnight UTC. (tests/test_clock.py keeps the app off local time.)
os.environ["TZ"] = "Europe/Paris"
time.tzset()

# Stripe faked over respx (stripe_settings, fake_stripe, gw, hook_client), for every directory.
pytest_plugins = ["tests.support.stripe_fixtures"]

KEEP_TABLES = {"alembic_version", "journals"}


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    """Every coroutine test runs on asyncio through anyio's plugin, without a marker each."""
    if (collector.funcnamefilter(name) and inspect.iscoroutinefunction(obj)
            and not any(mark.name == "anyio" for mark in getattr(obj, "pytestmark", []))):
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


@pytest.fixture(autouse=True)
def _no_stripe_refusals(request):
    """Live Stripe answers 400 to a parameter its API version does not have: so does the
    sandbox, and a test during which it did fails, unless the test is about refusal."""
    with watch_refusals() as refused:
        yield
    if refused and request.node.get_closest_marker("stripe_refusal") is None:
        pytest.fail(f"the Stripe sandbox refused {len(refused)} request(s) of the product: {describe(refused)}", pytrace=False)


@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def pg_database():
    """A fresh PostgreSQL database for this run, migrated by its owner exactly as `funding db
    upgrade` does in production; the tests connect as the service's own role, which owns
    nothing and holds only what funding/grants.py gives it. (None if PostgreSQL is unreachable.)"""
    from funding.migrate import upgrade_and_grant

    name = f"funding_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        run_async(lambda: pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable, auth refused…
        yield None, f"PostgreSQL not available at {PG_ADMIN_URL}: {type(exc).__name__}"
        return
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    owner = load_settings(serving=False, DATABASE_URL=f"{base}/{name}").database_url
    url = service_url(owner, f"{name}_svc")
    try:
        run_blocking(upgrade_and_grant, load_settings(serving=False, DATABASE_URL=url, MIGRATION_DATABASE_URL=owner))
        yield url, None
    finally:
        run_async(lambda: pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        run_async(lambda: pg_admin(f'DROP ROLE IF EXISTS "{name}_svc"'))


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
    run_async(lambda: _pg_exec(owner_url(url), ["SET session_replication_role = replica",
                                                f"TRUNCATE {tables} RESTART IDENTITY CASCADE"]))


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
def settings(database_url, tmp_path):
    return load_settings(
        {},
        FUNDING_ENV="test",
        DATABASE_URL=database_url,
        SECRET_KEY="test-secret-key-0123456789",
        BASE_URL="http://testserver",
        LEDGER_SEAL_KEY=TEST_SEAL_KEY,
        MEDIA_DIR=str(tmp_path / "media"),
        STRIPE_IDEMPOTENCY_PREFIX="entrelab",  # the keys tests spell out; the default (per database) has its own test
    )


@pytest.fixture
async def engine(settings):
    from funding.db import create_engine

    engine = create_engine(settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def owner_engine(settings):
    """An engine as the database's owner: what tests (and intruders) use to reach past the service's role."""
    from funding.db import create_engine

    url = settings.database_url if settings.database_url.startswith("sqlite") else owner_url(settings.database_url)
    engine = create_engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def owner_sessions(owner_engine, settings):
    """Sessions as the database's owner (on SQLite, the same file): where only the triggers stand guard."""
    from funding.sessions import sessions_for

    return sessions_for(owner_engine, settings)


@pytest.fixture
async def sessions(engine, settings):
    from funding.sessions import sessions_for

    return sessions_for(engine, settings)


@pytest.fixture
async def world(sessions):
    """An organisation with two sites, and one user of each role."""
    from tests.support.world import make_world

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
