"""Health that tells the truth (issue 19): /healthz is liveness and tells a full pool from a
dead database; /readyz says whether this process can work, and counts the inbox."""

from __future__ import annotations

import contextlib
import logging

import httpx
import pytest
from sqlalchemy import insert, text, update

from funding.app import create_app
from funding.db import create_engine, session_factory, transaction, utcnow
from funding.ops.models import ProcessHeartbeat
from funding.payments.models import EventStatus, StripeEvent
from funding.sessions import sessions_for
from funding.settings import load_settings
from tests.support.db import TEST_SEAL_KEY
from tests.support.stripe_objects import charge, event
from tests.support.webhooks import deliver


@contextlib.asynccontextmanager
async def serving(settings):
    app = create_app(settings, process_events=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield app, client


async def _worker_beats(sessions) -> None:
    async with transaction(sessions) as session:
        now = utcnow()
        await session.execute(insert(ProcessHeartbeat).values(id="elsewhere:1:abcd", kind="worker", host="elsewhere", pid=1,
                                                              started_at=now, beat_at=now))


async def test_healthz_is_alive_and_readyz_wants_a_worker_and_counts_the_inbox(settings, engine, sessions):
    await deliver(engine, *(event("charge.succeeded", charge(amount=1000 + n, txn=None)) for n in range(3)))
    async with transaction(sessions) as session:
        await session.execute(update(StripeEvent).where(StripeEvent.id.in_(
            text("SELECT id FROM stripe_events ORDER BY id LIMIT 1"))).values(status=EventStatus.DEAD))
    async with serving(settings) as (_app, client):
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["database"] == "ok"
        assert health.json()["pool"]["state"] == "ok"
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["problems"] == ["no worker heartbeat in the last 30 s"]
        assert ready.json()["inbox"] == {"backlog": 2, "in_flight": 0, "dead_letters": 1}
        await _worker_beats(sessions)
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.json()
        body = ready.json()
        assert body["status"] == "ok" and body["migrations"] == "current" and body["worker"]["alive"] == 1
        assert body["inbox"] == {"backlog": 2, "in_flight": 0, "dead_letters": 1}


async def test_readyz_refuses_while_the_migrations_are_behind(settings, owner_engine, sessions):
    await _worker_beats(sessions)
    async with owner_engine.begin() as conn:
        version = (await conn.execute(text("SELECT min(version_num) FROM alembic_version"))).scalar_one()
        await conn.execute(text("UPDATE alembic_version SET version_num = 'old' WHERE version_num = :v"), {"v": version})
    try:
        async with serving(settings) as (_app, client):
            assert (await client.get("/healthz")).status_code == 200  # alive: restarting it would not help
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and "head is" in ready.json()["migrations"]
    finally:
        async with owner_engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v WHERE version_num = 'old'"), {"v": version})


@pytest.fixture
def pg_settings(pg_url):
    """PostgreSQL only: SQLite is embedded, it has no server to lose nor a bounded pool to fill."""
    return load_settings({}, FUNDING_ENV="test", DATABASE_URL=pg_url, SECRET_KEY="test-secret-key-0123456789",
                         BASE_URL="http://testserver", LEDGER_SEAL_KEY=TEST_SEAL_KEY)


async def test_a_full_pool_is_not_a_dead_database(pg_settings):
    settings = pg_settings
    engine = create_engine(settings.database_url)
    await _worker_beats(session_factory(engine))
    await engine.dispose()
    small = settings.with_(db_pool_size=2, db_max_overflow=0, db_pool_timeout=0.5)
    async with serving(small) as (app, client):
        held = [await app.state.engine.connect() for _ in range(2)]
        try:
            health = (await client.get("/healthz")).json()
            assert health["database"] == "ok" and health["pool"] == {"state": "full", "size": 2, "max_overflow": 0,
                                                                      "checked_out": 2}
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["problems"] == ["connection pool full"]
        finally:
            for conn in held:
                await conn.close()
        assert (await client.get("/readyz")).status_code == 200


async def test_a_dead_database_is_said_so_and_a_refusal_is_one_line(pg_settings, caplog):
    settings, dead = pg_settings, "postgresql+asyncpg://nobody@127.0.0.1:9/none"
    async with serving(settings) as (app, client):
        live_probe, app.state.probe_engine = app.state.probe_engine, create_engine(dead, pool=False)
        try:
            health = await client.get("/healthz")
            assert health.status_code == 200 and health.json()["database"] == "unreachable"
            assert (await client.get("/readyz")).status_code == 503
        finally:
            await app.state.probe_engine.dispose()
            app.state.probe_engine = live_probe
        # every request's database is away: 503, one line each
        dead_engine = create_engine(dead, pool_timeout=1)
        live, app.state.sessions = app.state.sessions, sessions_for(dead_engine, settings)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            page = await client.get("/")
        app.state.sessions = live
        await dead_engine.dispose()
        assert page.status_code == 503 and page.headers["retry-after"] == "5"
        mine = [r for r in caplog.records if r.name == "funding.web"]
        assert len(mine) == 1 and mine[0].exc_info is None and "database unavailable on GET /" in mine[0].getMessage()
