"""The deadline job asks Stripe before it charges, and a failure stays with its pledge (issue 19)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update

from funding.campaigns import deadline
from funding.campaigns.models import Pledge
from funding.payments.models import StripeRequest
from funding.stripe_gateway import StripeUnknown
from tests.support.campaigns import active_pledge, make_campaign, pledge_row


async def test_a_failed_read_after_a_charge_fails_that_pledge_only_and_it_is_settled_later(sessions, world, gw, stripe_settings,
                                                                                          off_session, monkeypatch):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", goal=6_000)
    pledges = [await active_pledge(sessions, campaign.id, amount="25", pm="pm_card_visa", email=f"p{n}@example.org") for n in range(3)]
    retrieve = gw.retrieve
    failed: list[str] = []

    async def flaky(resource, object_id, **kw):
        if resource == "payment_intents" and not failed:
            failed.append(object_id)  # the first read after a successful charge: Stripe away
            raise StripeUnknown("GET /v1/payment_intents: no answer")
        return await retrieve(resource, object_id, **kw)

    monkeypatch.setattr(gw, "retrieve", flaky)
    ends = campaign.ends_at + dt.timedelta(seconds=1)
    await deadline.run(sessions, stripe_settings, gw, now=ends)  # the job is not aborted
    states = [(await pledge_row(sessions, p.id)).status for p in pledges]
    assert failed and states == ["charging", "paid", "paid"] and len(off_session.created) == 3
    await deadline.run(sessions, stripe_settings, gw, now=ends + dt.timedelta(minutes=6))  # the stale claim resumed
    assert [(await pledge_row(sessions, p.id)).status for p in pledges] == ["paid"] * 3
    assert len(off_session.created) == 3  # the same key: no second charge


async def test_a_pledge_charged_at_stripe_but_forgotten_here_is_adopted_not_charged_again(sessions, world, gw, stripe_settings,
                                                                                         off_session, owner_engine):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", goal=5_000)
    promise = await active_pledge(sessions, campaign.id, amount="50", pm="pm_card_visa")
    ends = campaign.ends_at + dt.timedelta(seconds=1)
    await deadline.run(sessions, stripe_settings, gw, now=ends)
    charged = await pledge_row(sessions, promise.id)
    assert charged.status == "paid" and len(off_session.created) == 1
    # Local state lost (a restore) and Stripe's idempotency keys forgotten (past 24 h).
    off_session.by_key.clear()
    async with owner_engine.begin() as conn:  # the service's role deletes no request: the owner stands for the restore
        await conn.execute(delete(StripeRequest.__table__))
        await conn.execute(update(Pledge.__table__).where(Pledge.__table__.c.id == promise.id).values(
            status="active", charge_attempt=0, payment_intent_id=None, claimed_at=None))
    await deadline.run(sessions, stripe_settings, gw, now=ends + dt.timedelta(days=2))
    again = await pledge_row(sessions, promise.id)
    assert len(off_session.created) == 1 and again.status == "paid" and again.payment_intent_id == charged.payment_intent_id
    async with sessions() as session:
        request = await session.scalar(select(StripeRequest))
    assert (request.status, request.stripe_id) == ("succeeded", charged.payment_intent_id)
