"""PostgreSQL under contention: the last units of a tier, and two workers at the deadline."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select

from funding.campaigns import deadline
from funding.campaigns.models import Pledge
from funding.campaigns.pledges import ContributionError
from funding.db import create_engine
from funding.mail.models import Email
from funding.settings import load_settings
from funding.stripe_gateway import StripeGateway
from tests.support.campaigns import (
    OffSession,
    active_pledge,
    campaign_row,
    make_campaign,
    pledge,
    tiers_of,
)
from tests.support.db import TEST_SEAL_KEY, sealed_sessions
from tests.support.stripe_objects import BASE
from tests.support.world import make_world


@pytest.fixture
async def pg_sessions(pg_url):
    engine = create_engine(pg_url)
    yield sealed_sessions(engine)
    await engine.dispose()


async def test_fifty_backers_racing_for_the_last_ten_units_make_exactly_ten_pledges(pg_sessions):
    world = await make_world(pg_sessions)
    campaign = await make_campaign(pg_sessions, world, tiers=[{"title": "Couteau gravé", "amount": 8000, "stock": 10}])
    (tier,) = await tiers_of(pg_sessions, campaign.id)

    async def backer(n: int):
        try:
            return await pledge(pg_sessions, campaign.id, tier=str(tier.id), amount="", email=f"backer{n}@example.org")
        except ContributionError as exc:
            return exc

    outcomes = await asyncio.gather(*(backer(n) for n in range(50)))
    made = [o for o in outcomes if isinstance(o, Pledge)]
    refused = [o for o in outcomes if isinstance(o, ContributionError)]
    assert len(made) == 10 and len(refused) == 40
    assert all("épuisée" in str(exc) for exc in refused)
    async with pg_sessions() as session:
        assert await session.scalar(select(func.count(Pledge.id)).where(Pledge.tier_id == tier.id)) == 10
    assert (await tiers_of(pg_sessions, campaign.id))[0].remaining == 0


async def test_two_workers_closing_at_once_charge_each_promise_once(pg_url, pg_sessions, fake_stripe):
    world = await make_world(pg_sessions)
    campaign = await make_campaign(pg_sessions, world, mode="all_or_nothing", goal=1000)
    promises = [await active_pledge(pg_sessions, campaign.id, amount="25", email=f"p{n}@example.org") for n in range(30)]
    off_session = OffSession(fake_stripe)
    settings = load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=pg_url, SECRET_KEY="test-secret-key-0123456789",
                             BASE_URL="http://testserver", STRIPE_SECRET_KEY="sk_test_unit",
                             STRIPE_WEBHOOK_SECRET="whsec_x", STRIPE_API_BASE=BASE, STRIPE_IDEMPOTENCY_PREFIX="entrelab")
    moment = campaign.ends_at + dt.timedelta(seconds=1)

    async def worker():
        engine = create_engine(pg_url)
        gw = StripeGateway(settings, timeout=5)
        try:
            return await deadline.run(sealed_sessions(engine), settings, gw, now=moment)
        finally:
            await gw.aclose()
            await engine.dispose()

    done = await asyncio.gather(worker(), worker())
    assert sum(done) == 1 + 30  # one decision, thirty charges, between them
    assert len(off_session.created) == 30
    assert sorted(off_session.keys) == sorted(f"entrelab-pledge-{p.id}-charge-1-payment_intents-1" for p in promises)
    async with pg_sessions() as session:
        statuses = (await session.scalars(select(Pledge.status).where(Pledge.campaign_id == campaign.id))).all()
        receipts = await session.scalar(select(func.count(Email.id)).where(Email.dedupe_key.like("campaign-pledge:%:paid")))
    assert set(statuses) == {"paid"} and receipts == 30
    row = await campaign_row(pg_sessions, campaign.id)
    assert (row.status, row.collected_total, row.backers_count) == ("succeeded", 75_000, 30)
