"""The pool's liveness check (funding.db._ping): a pooled connection whose server went away is
replaced before anyone gets it, and the check costs one round trip, not SQLAlchemy's three."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from funding.db import create_engine
from tests.support.db import PG_ADMIN_URL


@pytest.fixture
def database_url(pg_url):  # a server that can end a backend under the pool's feet
    return pg_url


async def _terminate(pid: int) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_a_connection_ended_by_the_server_is_replaced_at_checkout(pg_url):
    engine = create_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        await _terminate(first)  # a restart, a failover, an idle timeout: the pool still holds it
        async with engine.connect() as conn:  # no error reaches the caller
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        await engine.dispose()


async def test_checking_a_pooled_connection_out_costs_one_statement(pg_url, monkeypatch):
    """SQLAlchemy's pre-ping on asyncpg would send BEGIN, ``;`` and ROLLBACK (three round trips on
    every request); the pool's check is one simple-protocol ``SELECT 1``."""
    engine = create_engine(pg_url, pool_size=1, max_overflow=0)
    sent: list[str] = []
    for name in ("execute", "fetchrow", "fetch", "fetchval"):  # what a connection sends, at the driver
        original = getattr(asyncpg.Connection, name)

        def spy(self, query, *args, _original=original, _name=name, **kwargs):
            sent.append(f"{_name} {query.strip()}")
            return _original(self, query, *args, **kwargs)

        monkeypatch.setattr(asyncpg.Connection, name, spy)
    try:
        async with engine.connect() as conn:
            await conn.scalar(text("SELECT 1 AS warm"))  # the pool now holds a connection
        sent.clear()
        async with engine.connect() as conn:
            assert sent == ["execute SELECT 1"]  # the liveness check, before anything of ours
    finally:
        await engine.dispose()
