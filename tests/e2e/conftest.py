"""End-to-end: the whole app with the offline Stripe sandbox, served by a real uvicorn."""

from __future__ import annotations

import pytest

from funding.settings import load_settings
from tests.support.db import TEST_SEAL_KEY
from tests.support.live import LiveServer, free_port


@pytest.fixture
def e2e_settings(database_url):
    port = free_port()
    return load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=database_url, SECRET_KEY="e2e-secret-key-0123456789",
                         BASE_URL=f"http://127.0.0.1:{port}", WORKER_POLL_SECONDS="0.2")


@pytest.fixture
def e2e(e2e_settings):
    from tests.support.e2e import served

    app = served(e2e_settings)
    with LiveServer(app, int(e2e_settings.base_url.rsplit(":", 1)[1])) as server:
        server.app = app
        server.sandbox = app.state.sandbox
        server.settings = e2e_settings
        yield server
