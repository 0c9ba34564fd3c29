"""The demo's composition: the product, and the offline Stripe sandbox beside it on one port."""

from __future__ import annotations

import httpx

from funding.settings import load_settings
from tests.support.db import TEST_SEAL_KEY


def _settings(tmp_path, **extra):
    return load_settings({}, FUNDING_ENV="test", DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}", SECRET_KEY="test-secret-key-0123456789",
                         LEDGER_SEAL_KEY=TEST_SEAL_KEY, BASE_URL="http://127.0.0.1:8000", **extra)


def test_with_a_stripe_key_the_demo_app_is_the_product_alone(tmp_path):
    from funding.app import FundingApp
    from funding.demo.compose import create_demo_app

    app = create_demo_app(_settings(tmp_path, STRIPE_SECRET_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x"))
    assert isinstance(app, FundingApp) and not hasattr(app.state, "sandbox")


async def test_without_a_key_the_sandbox_answers_beside_the_product_and_delivers_while_served(tmp_path):
    from funding.demo.compose import create_demo_app

    settings = _settings(tmp_path)
    app = create_demo_app(settings, process_events=False)
    sandbox = app.state.sandbox
    assert sandbox.public_base == settings.base_url + "/_sandbox/stripe"
    assert sandbox.webhook_url == settings.base_url + "/webhooks/stripe"
    assert sandbox.webhook_secret == settings.stripe_webhook_secret  # the product verifies what it signs
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
        assert sandbox._delivery_task is not None  # the sandbox's lifespan runs with the product's
        clock = await client.get("/_sandbox/stripe/_admin/clock")
        assert clock.status_code == 200 and clock.json()["now"] > 0
        ready = await client.get("/readyz")  # the product answers (its database is not migrated here: not ready)
        assert ready.status_code == 503
    assert sandbox._delivery_task is None
