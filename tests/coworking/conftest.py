"""Coworking fixtures: a world with plans on sale (their Stripe prices known), members,
and Stripe Billing faked over respx (the Stripe fixtures of tests/support/stripe_fixtures.py
then talk to it)."""

from __future__ import annotations

import pytest
import respx

from funding.coworking.models import Member
from tests.support.coworking import BillingStripe, Catalogue, make_catalogue, new_member
from tests.support.stripe_fixtures import record_refusals


@pytest.fixture
def fake_stripe():
    with respx.mock(assert_all_called=False) as router:
        yield BillingStripe(router)
        record_refusals(router)


@pytest.fixture
def fake(fake_stripe) -> BillingStripe:
    return fake_stripe


@pytest.fixture
async def catalogue(sessions, world, fake) -> Catalogue:
    return await make_catalogue(sessions, world, fake)


@pytest.fixture
async def member(sessions, world, catalogue) -> Member:
    return await new_member(sessions, world)


@pytest.fixture
def app_client(hook_client):
    """The app (talking to the fake Stripe); events are processed by the test."""
    return hook_client
