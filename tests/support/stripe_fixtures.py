"""Stripe faked over respx, as fixtures for every test directory (a plugin: tests/conftest.py
lists it in ``pytest_plugins``). A directory overrides ``fake_stripe`` to fake more of Stripe
(tests/coworking/conftest.py fakes Billing); ``gw`` and ``hook_client`` then talk to that."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from funding.settings import load_settings
from funding.stripe_gateway import StripeGateway
from stripe_sandbox import validation
from stripe_sandbox.encoding import decode_pairs
from stripe_sandbox.errors import StripeError
from tests.support.db import TEST_SEAL_KEY
from tests.support.stripe_objects import BASE, FakeStripe
from tests.support.webhooks import SECRET


@pytest.fixture
def stripe_settings(database_url):
    return load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=database_url,
                         SECRET_KEY="test-secret-key-0123456789", BASE_URL="http://testserver", STRIPE_SECRET_KEY="sk_test_unit",
                         STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_API_BASE=BASE, STRIPE_IDEMPOTENCY_PREFIX="entrelab")


@pytest.fixture
def fake_stripe():
    with respx.mock(assert_all_called=False) as router:
        yield FakeStripe(router)
        record_refusals(router)


def record_refusals(router: respx.MockRouter) -> None:
    """The product's requests to the faked Stripe, checked as the sandbox checks them (the API
    version's parameters): a refusal is recorded where the autouse fixture in tests/conftest.py sees it."""
    for call in router.calls:
        request = call.request
        if not request.url.path.startswith("/v1/"):
            continue
        pairs = parse_qsl(request.url.query.decode(), keep_blank_values=True)
        if request.method == "POST":
            pairs += parse_qsl(request.content.decode(), keep_blank_values=True)
        try:
            validation.check(request.method, request.url.path, decode_pairs(pairs))
        except StripeError as exc:
            validation.REFUSED.append({"method": request.method, "path": request.url.path, "code": exc.code,
                                       "param": exc.param, "message": exc.message})


@pytest.fixture
async def gw(stripe_settings, fake_stripe):
    async def no_sleep(_):
        return None

    gateway = StripeGateway(stripe_settings, sleep=no_sleep, timeout=2)
    yield gateway
    await gateway.aclose()


@pytest.fixture
async def hook_client(stripe_settings, fake_stripe):
    """The app (talking to the fake Stripe) with our webhook endpoint; events are processed by the test,
    not in the background."""
    from funding.app import create_app

    app = create_app(stripe_settings, process_events=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", follow_redirects=False) as client:
            client.app = app
            yield client
