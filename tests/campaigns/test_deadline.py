"""The deadline job against Stripe faked over respx: decide, charge once, grace, match, sweep."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from funding.campaigns import deadline, settle
from funding.campaigns.models import Campaign, Match, Pledge
from funding.db import transaction, utcnow
from funding.mail.models import Email
from funding.payments.models import StripeRequest
from tests.support.campaigns import (
    active_pledge,
    campaign_row,
    make_campaign,
    pledge,
    pledge_row,
    tiers_of,
)
from tests.support.stripe_objects import BASE, checkout_session


async def close_at(sessions, stripe_settings, gw, moment: dt.datetime) -> int:
    return await deadline.run(sessions, stripe_settings, gw, now=moment)


async def mail_keys(sessions) -> list[str]:
    async with sessions() as session:
        return sorted((await session.scalars(select(Email.dedupe_key))).all())


async def test_goal_met_charges_every_promise_once_and_sorts_out_the_refusals(sessions, world, gw, stripe_settings, off_session):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", goal=10_000, tiers=[{"amount": 3000, "stock": 5}])
    (tier,) = await tiers_of(sessions, campaign.id)
    ok = await active_pledge(sessions, campaign.id, amount="50", pm="pm_card_visa")
    auth = await active_pledge(sessions, campaign.id, amount="", tier=str(tier.id), pm="pm_card_authenticationRequired",
                               email="auth@example.org")
    declined = await active_pledge(sessions, campaign.id, amount="40", pm="pm_card_chargeDeclined", email="no@example.org")
    ends = campaign.ends_at + dt.timedelta(seconds=1)

    assert await close_at(sessions, stripe_settings, gw, campaign.ends_at - dt.timedelta(seconds=1)) == 0  # not yet
    await close_at(sessions, stripe_settings, gw, ends)
    assert (await campaign_row(sessions, campaign.id)).status == "succeeded"
    assert sorted(off_session.keys) == sorted(f"entrelab-pledge-{p.id}-charge-1-payment_intents-1"
                                              for p in (ok, auth, declined))
    assert [(await pledge_row(sessions, p.id)).status for p in (ok, auth, declined)] == ["paid", "action_required",
                                                                                          "card_declined"]
    waiting = await pledge_row(sessions, auth.id)
    assert waiting.payment_intent_id and waiting.grace_until == ends + dt.timedelta(days=7)
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.collected_total, row.backers_count) == (12_000, 5000, 3)

    # The job runs again, or on a second worker: nobody is charged twice, nobody emailed twice.
    emails = await mail_keys(sessions)
    await close_at(sessions, stripe_settings, gw, ends + dt.timedelta(minutes=1))
    assert len(off_session.created) == 3 and await mail_keys(sessions) == emails
    assert emails == sorted([f"campaign-pledge:{ok.id}:paid", f"campaign-pledge:{auth.id}:auth-1",
                             f"campaign-pledge:{declined.id}:declined-1"])

    # Seven days later the two unpaid promises fail; the totals and the stock follow.
    await close_at(sessions, stripe_settings, gw, ends + dt.timedelta(days=7, minutes=1))
    assert [(await pledge_row(sessions, p.id)).status for p in (auth, declined)] == ["failed", "failed"]
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.collected_total, row.backers_count) == (5000, 5000, 1)
    assert (await tiers_of(sessions, campaign.id))[0].remaining == 5
    assert waiting.payment_intent_id in off_session.canceled  # an old link can no longer take the money
    assert f"campaign-pledge:{auth.id}:failed" in await mail_keys(sessions)


async def test_goal_missed_charges_nobody_and_tells_every_backer(sessions, world, gw, stripe_settings, off_session):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", goal=100_000, match={"cap": 5000, "total": 10_000})
    promises = [await active_pledge(sessions, campaign.id, amount="50", email=f"b{n}@example.org") for n in range(2)]
    late = await pledge(sessions, campaign.id, amount="30")  # its card page still open at the deadline
    await close_at(sessions, stripe_settings, gw, campaign.ends_at + dt.timedelta(seconds=1))
    await close_at(sessions, stripe_settings, gw, campaign.ends_at + dt.timedelta(days=9))
    assert off_session.keys == []
    async with sessions() as session:
        assert await session.scalar(select(func.count(StripeRequest.id))) == 0
        match = await session.scalar(select(Match).where(Match.campaign_id == campaign.id))
    assert (await campaign_row(sessions, campaign.id)).status == "failed" and match.status == "canceled"
    assert [(await pledge_row(sessions, p.id)).status for p in promises] == ["void", "void"]
    assert (await pledge_row(sessions, late.id)).status == "expired"
    keys = await mail_keys(sessions)
    assert keys == sorted(f"campaign-pledge:{p.id}:campaign-failed" for p in promises)
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.backers_count, row.collected_total) == (10_000, 2, 0)  # where it ended, nothing taken


async def test_a_new_card_in_the_grace_window_is_charged_with_the_next_key(sessions, world, gw, stripe_settings, off_session):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", goal=1000)
    declined = await active_pledge(sessions, campaign.id, amount="40", pm="pm_card_chargeDeclined")
    ends = campaign.ends_at + dt.timedelta(seconds=1)
    await close_at(sessions, stripe_settings, gw, ends)
    first_attempt = (await pledge_row(sessions, declined.id)).payment_intent_id
    assert (await pledge_row(sessions, declined.id)).status == "card_declined"

    async with transaction(sessions) as session:  # the backer saved another card through Checkout (setup mode)
        await session.execute(update(Pledge).where(Pledge.id == declined.id).values(checkout_session_id="cs_test_new_card",
                                                                                    card_sessions=1))
        setup = {"id": "cs_test_new_card", "object": "checkout.session", "mode": "setup", "status": "complete",
                 "customer": declined.customer_id,
                 "metadata": {"purpose": "pledge", "pledge_id": str(declined.id), "card": "1"},
                 "setup_intent": {"id": "seti_1", "object": "setup_intent", "status": "succeeded",
                                  "payment_method": "pm_card_visa"}}
        await settle.settle_setup_session(session, setup)
        await settle.settle_setup_session(session, setup)  # webhook and return page
    assert (await pledge_row(sessions, declined.id)).status == "retry"
    await close_at(sessions, stripe_settings, gw, ends + dt.timedelta(days=2))
    assert off_session.keys[-1] == f"entrelab-pledge-{declined.id}-charge-2-payment_intents-1"
    assert off_session.canceled == [first_attempt]  # the first attempt can no longer take the money
    paid = await pledge_row(sessions, declined.id)
    assert (paid.status, paid.charge_attempt, paid.grace_until) == ("paid", 2, None)
    assert f"campaign-pledge:{declined.id}:card-1" in await mail_keys(sessions)


async def test_no_definite_answer_keeps_the_claim_and_the_sweep_retries_with_the_same_key(sessions, world, gw, stripe_settings,
                                                                                            off_session):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", goal=1000)
    promise = await active_pledge(sessions, campaign.id, amount="40")
    ends = campaign.ends_at + dt.timedelta(seconds=1)
    off_session.fail_next = 4  # every retry of the gateway gets a 500
    await close_at(sessions, stripe_settings, gw, ends)
    claimed = await pledge_row(sessions, promise.id)
    assert (claimed.status, claimed.charge_attempt) == ("charging", 1)
    await close_at(sessions, stripe_settings, gw, ends + dt.timedelta(minutes=1))  # too early to resume
    assert len(off_session.keys) == 4
    await close_at(sessions, stripe_settings, gw, ends + dt.timedelta(minutes=10))
    assert set(off_session.keys) == {f"entrelab-pledge-{promise.id}-charge-1-payment_intents-1"}
    assert len(off_session.created) == 1 and (await pledge_row(sessions, promise.id)).status == "paid"


async def test_keep_it_all_is_decided_without_charging_anyone(sessions, world, gw, stripe_settings, off_session):
    from tests.support.campaigns import paid_pledge

    met = await make_campaign(sessions, world, slug="met", goal=5000)
    missed = await make_campaign(sessions, world, slug="missed", goal=500_000)
    await paid_pledge(sessions, met.id, amount="50")
    kept = await paid_pledge(sessions, missed.id, amount="50")
    moment = max(met.ends_at, missed.ends_at) + dt.timedelta(seconds=1)
    await close_at(sessions, stripe_settings, gw, moment)
    assert [(await campaign_row(sessions, c.id)).status for c in (met, missed)] == ["succeeded", "failed"]
    assert (await pledge_row(sessions, kept.id)).status == "paid" and off_session.keys == []


async def test_an_abandoned_checkout_is_expired_at_stripe_and_its_unit_given_back(sessions, world, gw, stripe_settings,
                                                                                 fake_stripe):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 2000, "stock": 1}])
    (tier,) = await tiers_of(sessions, campaign.id)
    abandoned = await pledge(sessions, campaign.id, tier=str(tier.id), amount="")
    session_obj = checkout_session(amount=2000, metadata={"purpose": "pledge", "pledge_id": str(abandoned.id)},
                                   payment_intent=None, status="open", payment_status="unpaid")
    fake_stripe.add(session_obj)
    expired = {**session_obj, "status": "expired", "url": None}
    fake_stripe.router.post(f"{BASE}/v1/checkout/sessions/{session_obj['id']}/expire").respond(200, json=expired)
    async with transaction(sessions) as session:
        await session.execute(update(Pledge).where(Pledge.id == abandoned.id).values(checkout_session_id=session_obj["id"]))
    await close_at(sessions, stripe_settings, gw, utcnow() + dt.timedelta(minutes=30))
    assert (await pledge_row(sessions, abandoned.id)).status == "pending"  # still within the hour
    await close_at(sessions, stripe_settings, gw, utcnow() + dt.timedelta(hours=2))
    assert (await pledge_row(sessions, abandoned.id)).status == "expired"
    assert (await tiers_of(sessions, campaign.id))[0].remaining == 1


async def test_campaign_rows_decided_by_another_worker_are_left_alone(sessions, world, gw, stripe_settings, off_session):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", goal=1000)
    await active_pledge(sessions, campaign.id, amount="40")
    async with transaction(sessions) as session:
        await session.execute(update(Campaign).where(Campaign.id == campaign.id).values(status="failed"))
    await close_at(sessions, stripe_settings, gw, campaign.ends_at + dt.timedelta(seconds=1))
    assert (await campaign_row(sessions, campaign.id)).status == "failed" and off_session.keys == []


async def test_a_confirmation_that_lands_while_a_new_card_waits_is_kept_and_the_new_card_not_charged(
        sessions, world, gw, stripe_settings, off_session, fake_stripe):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", goal=1000)
    promise = await active_pledge(sessions, campaign.id, amount="40", pm="pm_card_authenticationRequired")
    ends = campaign.ends_at + dt.timedelta(seconds=1)
    await close_at(sessions, stripe_settings, gw, ends)
    waiting = await pledge_row(sessions, promise.id)
    assert waiting.status == "action_required"
    async with transaction(sessions) as session:  # a new card saved…
        await session.execute(update(Pledge).where(Pledge.id == promise.id).values(checkout_session_id="cs_test_card2",
                                                                                   card_sessions=1))
        await settle.settle_setup_session(session, {
            "id": "cs_test_card2", "mode": "setup", "status": "complete", "customer": waiting.customer_id,
            "metadata": {"purpose": "pledge", "pledge_id": str(promise.id), "card": "1"},
            "setup_intent": {"id": "seti_2", "status": "succeeded", "payment_method": "pm_card_visa"}})
    fake_stripe.objects[waiting.payment_intent_id]["status"] = "succeeded"  # …while the bank page, left open, was confirmed
    await close_at(sessions, stripe_settings, gw, ends + dt.timedelta(days=1))
    paid = await pledge_row(sessions, promise.id)
    assert (paid.status, paid.payment_intent_id) == ("paid", waiting.payment_intent_id)
    assert len(off_session.created) == 1 and off_session.canceled == []


async def test_the_grace_period_runs_from_the_charge_whoever_learns_the_decline_first(sessions, world):
    # Stripe's webhook can arrive before the deadline job has read its own answer (issue 16: delivery
    # in any order): the webhook's handler settles the PaymentIntent first, at its own time. The
    # week of grace still runs from the charge the job made, not from whoever heard of it first.
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", goal=10_000)
    declined = await active_pledge(sessions, campaign.id, amount="40", pm="pm_card_chargeDeclined", email="no@example.org")
    charged_at = utcnow() + dt.timedelta(days=30)  # the job's clock: the deadline, a month from the handler's
    async with transaction(sessions) as session:
        await session.execute(update(Pledge).where(Pledge.id == declined.id).values(
            status="charging", charge_attempt=1, claimed_at=charged_at, updated_at=charged_at))
    pi = {"id": "pi_declined", "object": "payment_intent", "status": "requires_payment_method", "amount": 4000, "currency": "eur",
          "metadata": {"pledge_id": str(declined.id), "attempt": "1"},
          "last_payment_error": {"code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined."}}
    async with transaction(sessions) as session:
        await settle.settle_charge(session, pi)  # the webhook's handler: no `now`, its own clock
    row = await pledge_row(sessions, declined.id)
    assert row.status == "card_declined" and row.grace_until == charged_at + dt.timedelta(days=7)
    async with transaction(sessions) as session:  # the job's own settle, a moment later, changes nothing
        await settle.settle_charge(session, pi, now=charged_at + dt.timedelta(seconds=2))
    assert (await pledge_row(sessions, declined.id)).grace_until == charged_at + dt.timedelta(days=7)
