"""The campaign tests' fixtures: Stripe's off-session PaymentIntents and cancellations (the
deadline job's calls), on top of the fake Stripe of tests/support/stripe_fixtures.py."""

from __future__ import annotations

import pytest

from tests.support.campaigns import OffSession


@pytest.fixture
def off_session(fake_stripe):
    return OffSession(fake_stripe)
