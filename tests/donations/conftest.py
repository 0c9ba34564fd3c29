"""Recurring gifts' fixtures: Stripe Billing faked over respx (the Stripe fixtures of
tests/support/stripe_fixtures.py then talk to it)."""

from __future__ import annotations

import pytest
import respx

from tests.support.coworking import BillingStripe
from tests.support.stripe_fixtures import record_refusals


@pytest.fixture
def fake_stripe():
    with respx.mock(assert_all_called=False) as router:
        yield BillingStripe(router)
        record_refusals(router)
