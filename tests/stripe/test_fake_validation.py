"""The respx fake of Stripe checks the product's requests as the sandbox does (the API version's
parameters, tests/support/stripe_fixtures.py ``record_refusals``): proven here on Checkout, the
call whose retired ``payment_method_types`` no test could see before (issue 16)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.refusals import watch_refusals
from tests.support.stripe_fixtures import record_refusals
from tests.support.stripe_objects import BASE

SESSION = {
    "mode": "payment", "success_url": "http://testserver/merci", "cancel_url": "http://testserver/annule",
    "line_items": [{"quantity": 1, "price_data": {"currency": "eur", "unit_amount": 2500,
                                                  "product_data": {"name": "Toit solaire"}}}],
    "metadata": {"pledge_id": "12"}, "payment_intent_data": {"metadata": {"pledge_id": "12"}},
    "customer_creation": "always", "expand": ["payment_intent"],
}


@pytest.mark.stripe_refusal  # one request below is refused on purpose; the others must not be
@pytest.mark.parametrize(("extra", "refused_param"), [
    ({"allowed_payment_method_types": ["card"]}, None),
    ({"payment_method_types": ["card"]}, "payment_method_types"),
    ({"line_items": [{"quantity": "one", "price": "price_x"}]}, "line_items[0][quantity]"),
    ({"mode": "lifetime"}, "mode"),
])
async def test_the_fake_refuses_a_checkout_session_as_the_api_version_does(gw, fake_stripe, extra, refused_param):
    fake_stripe.router.post(f"{BASE}/v1/checkout/sessions").mock(
        return_value=httpx.Response(200, json={"id": "cs_test_fake", "object": "checkout.session"}))
    await gw.create("checkout.sessions", SESSION | extra, key="pledge-12-checkout")
    with watch_refusals() as refused:
        record_refusals(fake_stripe.router)
    assert [r["param"] for r in refused] == ([refused_param] if refused_param else [])
    fake_stripe.router.calls.reset()  # recorded once here, not again at the fixture's teardown
