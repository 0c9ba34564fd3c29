"""End-to-end: the whole app with the offline Stripe sandbox, served by a real uvicorn."""

from __future__ import annotations

import time

import httpx
import pytest

from funding.settings import load_settings
from tests.conftest import TEST_SEAL_KEY, run_async, sealed_sessions
from tests.live import LiveServer, free_port


@pytest.fixture
def e2e_settings(database_url):
    port = free_port()
    return load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=database_url, SECRET_KEY="e2e-secret-key-0123456789",
                         BASE_URL=f"http://127.0.0.1:{port}", WORKER_POLL_SECONDS="0.2")


@pytest.fixture
def e2e(e2e_settings):
    from funding.app import create_app

    app = create_app(e2e_settings)
    with LiveServer(app, int(e2e_settings.base_url.rsplit(":", 1)[1])) as server:
        server.app = app
        server.settings = e2e_settings
        yield server


def db_call(settings, fn):
    """Run ``await fn(sessions)`` against the test database from a sync test."""
    from funding.db import create_engine

    async def go():
        engine = create_engine(settings.database_url)
        try:
            return await fn(sealed_sessions(engine))
        finally:
            await engine.dispose()

    return run_async(go)


def wait_for(predicate, *, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def sandbox_get(server, path: str) -> dict:
    response = httpx.get(f"{server.url}/_sandbox/stripe{path}", headers={"authorization": "Bearer sk_test_e2e"}, timeout=10)
    response.raise_for_status()
    return response.json()
