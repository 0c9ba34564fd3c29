"""Stripe's events about pledges: delivered twice, in any order, raced by the return page."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from funding.campaigns import settle
from funding.campaigns.models import CampaignEntry, Pledge, TaxReceipt
from funding.db import transaction
from funding.ledger.models import Entry, Posting
from funding.mail.models import Email
from funding.payments.models import Payment
from tests.support.campaigns import (
    campaign_row,
    make_campaign,
    pledge,
    pledge_row,
    set_status,
    tiers_of,
)
from tests.support.stripe_objects import (
    balance_transaction,
    charge,
    checkout_session,
    dispute,
    event,
    payment_intent,
    refund,
    sid,
)
from tests.support.webhooks import deliver
from webhooks.processing import drain


async def entries(sessions) -> list[tuple[str, list[tuple[str, int]], int | None]]:
    async with sessions() as session:
        rows = (await session.scalars(select(Entry).order_by(Entry.number))).all()
        out = []
        for entry in rows:
            postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
            tag = await session.scalar(select(CampaignEntry.campaign_id).where(CampaignEntry.source_key == entry.source_key))
            out.append((entry.source_key, [(p.account_number, p.amount) for p in postings], tag))
    return out


async def emails(sessions) -> list[str]:
    async with sessions() as session:
        return sorted((await session.scalars(select(Email.dedupe_key))).all())


async def keep_it_all_paid(sessions, fake, world, campaign, *, amount="50", tier="", fee=100):
    made = await pledge(sessions, campaign.id, amount=amount, tier=tier)
    async with transaction(sessions) as session:
        payment = Payment(org_id=world.org_id, site_id=world.site_id, purpose="pledge", ref=f"pledge:{made.id}",
                          amount=made.amount, currency="EUR", description="Contribution", email=made.email, name=made.name,
                          status="open")
        session.add(payment)
        await session.flush()
    meta = {"purpose": "pledge", "pledge_id": str(made.id), "payment_id": str(payment.id), "org_id": str(world.org_id),
            "site_id": str(world.site_id)}
    ch_id = sid("ch")
    pi = payment_intent(amount=made.amount, metadata=meta, latest_charge=ch_id)
    txn = balance_transaction(amount=made.amount, fee=fee, source=ch_id)
    ch = charge(amount=made.amount, txn=txn["id"], metadata=meta, payment_intent=pi["id"], charge_id=ch_id)
    cs = checkout_session(amount=made.amount, metadata=meta, payment_intent=pi["id"])
    fake.add(txn, ch, pi, cs)
    return made, cs, pi, ch, txn


async def test_a_keep_it_all_gift_is_paid_booked_tagged_and_receipted_once(engine, sessions, world, gw, fake_stripe):
    campaign = await make_campaign(sessions, world)
    made, cs, pi, ch, txn = await keep_it_all_paid(sessions, fake_stripe, world, campaign)
    completed = event("checkout.session.completed", cs)
    await deliver(engine, completed, event("charge.succeeded", ch), event("payment_intent.succeeded", pi))
    await drain(sessions, gw)
    await deliver(engine, {**completed, "id": sid("evt")})  # the same news again, under another event id
    await drain(sessions, gw)
    assert await entries(sessions) == [(f"stripe:{txn['id']}", [("5115", 4900), ("627", 100), ("75411", -5000)], campaign.id)]
    paid = await pledge_row(sessions, made.id)
    assert (paid.status, paid.payment_intent_id) == ("paid", pi["id"])
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.collected_total, row.backers_count) == (5000, 5000, 1)
    assert await emails(sessions) == [f"campaign-pledge:{made.id}:paid"]  # the pledge's receipt, not a donation's
    async with sessions() as session:
        assert await session.scalar(select(func.count(TaxReceipt.id))) == 1


async def test_a_presale_is_booked_on_4191_with_its_vat(engine, sessions, world, gw, fake_stripe):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 5000, "kind": "reward", "value": 3000, "vat": 200}])
    (tier,) = await tiers_of(sessions, campaign.id)
    _made, cs, _pi, _ch, txn = await keep_it_all_paid(sessions, fake_stripe, world, campaign, amount="", tier=str(tier.id))
    await deliver(engine, event("checkout.session.completed", cs))
    await drain(sessions, gw)
    assert await entries(sessions) == [(f"stripe:{txn['id']}", [("5115", 4900), ("627", 100), ("4191", -4167),
                                                                ("445711", -833)], campaign.id)]
    async with sessions() as session:
        assert await session.scalar(select(func.count(TaxReceipt.id))) == 0  # a sale has no tax receipt


async def test_a_refund_from_the_dashboard_reverses_the_gift_lowers_the_totals_and_reissues_the_receipt(
        engine, sessions, world, gw, fake_stripe):
    campaign = await make_campaign(sessions, world)
    made, cs, _pi, ch, _txn = await keep_it_all_paid(sessions, fake_stripe, world, campaign)
    await deliver(engine, event("checkout.session.completed", cs))
    await drain(sessions, gw)
    refund_txn = balance_transaction(amount=-2000, fee=0, type="refund", source=sid("re"))
    re = refund(amount=2000, charge_id=ch["id"], txn=refund_txn["id"])
    refund_txn["source"] = re["id"]
    refunded = {**ch, "amount_refunded": 2000, "refunds": {"object": "list", "data": [re], "has_more": False}}
    fake_stripe.add(refund_txn, re, refunded)
    for _ in range(2):
        await deliver(engine, event("charge.refunded", refunded), event("refund.created", re))
        await drain(sessions, gw)
    found = await entries(sessions)
    assert found[1] == (f"stripe:{refund_txn['id']}", [("5115", -2000), ("75411", 2000)], campaign.id)
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.collected_total, row.backers_count) == (3000, 3000, 1)
    async with sessions() as session:
        receipts = (await session.scalars(select(TaxReceipt).order_by(TaxReceipt.number))).all()
    assert [(r.number, r.amount, r.voided_at is not None) for r in receipts] == [(1, 5000, True), (2, 3000, False)]
    assert f"campaign-pledge:{made.id}:refund-2000" in await emails(sessions)


async def test_a_saved_card_activates_the_promise_once_whichever_path_comes_first(engine, sessions, world, gw, fake_stripe):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing")
    made = await pledge(sessions, campaign.id, amount="40")
    meta = {"purpose": "pledge", "pledge_id": str(made.id), "campaign_id": str(campaign.id)}
    seti = {"id": sid("seti"), "object": "setup_intent", "status": "succeeded", "payment_method": sid("pm"),
            "customer": "cus_1", "metadata": meta}
    cs = {**checkout_session(amount=0, metadata=meta, payment_intent=None, payment_status="no_payment_required"),
          "mode": "setup", "customer": "cus_1", "setup_intent": seti["id"], "amount_total": None}
    fake_stripe.add(seti, cs)
    async with transaction(sessions) as session:
        await session.execute(update(Pledge).where(Pledge.id == made.id).values(checkout_session_id=cs["id"], customer_id="cus_1"))
        await settle.settle_setup_session(session, {**cs, "setup_intent": seti})  # the return page, first
    await deliver(engine, event("checkout.session.completed", cs))
    await deliver(engine, event("checkout.session.completed", cs))
    await drain(sessions, gw)
    active = await pledge_row(sessions, made.id)
    assert (active.status, active.payment_method_id, active.customer_id) == ("active", seti["payment_method"], "cus_1")
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.backers_count, row.collected_total) == (4000, 1, 0)
    assert await emails(sessions) == [f"campaign-pledge:{made.id}:card-saved"]
    assert await entries(sessions) == []


async def test_the_first_card_sessions_news_arriving_after_the_deadline_changes_nothing(engine, sessions, world, gw,
                                                                                      fake_stripe):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing")
    made = await pledge(sessions, campaign.id, amount="40")
    meta = {"purpose": "pledge", "pledge_id": str(made.id), "campaign_id": str(campaign.id)}
    seti = {"id": sid("seti"), "object": "setup_intent", "status": "succeeded", "payment_method": "pm_first",
            "customer": "cus_1", "metadata": meta}
    cs = {**checkout_session(amount=0, metadata=meta, payment_intent=None, payment_status="no_payment_required"),
          "mode": "setup", "customer": "cus_1", "setup_intent": seti["id"], "amount_total": None}
    fake_stripe.add(seti, cs)
    async with transaction(sessions) as session:
        await session.execute(update(Pledge).where(Pledge.id == made.id).values(checkout_session_id=cs["id"], customer_id="cus_1"))
        await settle.settle_setup_session(session, {**cs, "setup_intent": seti})
        # the deadline came: the bank wants the backer to authenticate
        await session.execute(update(Pledge).where(Pledge.id == made.id).values(status="action_required", charge_attempt=1))
    await deliver(engine, event("checkout.session.completed", cs))  # the first session's webhook, very late
    await drain(sessions, gw)
    late = await pledge_row(sessions, made.id)
    assert (late.status, late.payment_method_id) == ("action_required", "pm_first")
    assert await emails(sessions) == [f"campaign-pledge:{made.id}:card-saved"]


async def test_an_off_session_charge_settles_from_its_payment_intent_event(engine, sessions, world, gw, fake_stripe):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing")
    made = await pledge(sessions, campaign.id, amount="40")
    await set_status(sessions, campaign.id, "succeeded")
    async with transaction(sessions) as session:
        await session.execute(update(Pledge).where(Pledge.id == made.id).values(status="charging", charge_attempt=1))
    meta = {"purpose": "pledge", "pledge_id": str(made.id), "campaign_id": str(campaign.id), "attempt": "1"}
    ch_id = sid("ch")
    pi = payment_intent(amount=4000, metadata=meta, latest_charge=ch_id)
    txn = balance_transaction(amount=4000, fee=85, source=ch_id)
    ch = charge(amount=4000, txn=txn["id"], metadata=meta, payment_intent=pi["id"], charge_id=ch_id)
    fake_stripe.add(pi, txn, ch)
    for _ in range(2):
        await deliver(engine, event("payment_intent.succeeded", pi), event("charge.succeeded", ch))
        await drain(sessions, gw)
    assert await entries(sessions) == [(f"stripe:{txn['id']}", [("5115", 3915), ("627", 85), ("75411", -4000)], campaign.id)]
    assert (await pledge_row(sessions, made.id)).status == "paid"
    assert await emails(sessions) == [f"campaign-pledge:{made.id}:paid"]


async def test_news_of_an_earlier_attempt_does_not_move_a_pledge_back(engine, sessions, world, gw, fake_stripe):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing")
    made = await pledge(sessions, campaign.id, amount="40")
    await set_status(sessions, campaign.id, "succeeded")
    async with transaction(sessions) as session:
        await session.execute(update(Pledge).where(Pledge.id == made.id).values(status="charging", charge_attempt=2))
    old = payment_intent(amount=4000, metadata={"purpose": "pledge", "pledge_id": str(made.id), "attempt": "1"},
                         status="requires_payment_method")
    old["last_payment_error"] = {"code": "card_declined", "decline_code": "generic_decline", "type": "card_error"}
    fake_stripe.add(old)
    await deliver(engine, event("payment_intent.payment_failed", old))
    await drain(sessions, gw)
    assert (await pledge_row(sessions, made.id)).status == "charging"
    assert await emails(sessions) == []


async def test_events_of_other_purposes_are_left_to_their_domain(engine, sessions, world, gw, fake_stripe):
    ch_id = sid("ch")
    meta = {"purpose": "donation", "site_id": str(world.site_id)}
    pi = payment_intent(amount=1000, metadata=meta, latest_charge=ch_id)
    txn = balance_transaction(amount=1000, fee=40, source=ch_id)
    ch = charge(amount=1000, txn=txn["id"], metadata=meta, payment_intent=pi["id"], charge_id=ch_id)
    fake_stripe.add(pi, txn, ch)
    await deliver(engine, event("charge.succeeded", ch), event("payment_intent.succeeded", pi))
    await drain(sessions, gw)
    async with sessions() as session:
        assert await session.scalar(select(func.count(CampaignEntry.id))) == 0
        assert await session.scalar(select(func.count(Entry.id))) == 1


@pytest.mark.parametrize("outcome", ["lost", "won"])
async def test_a_lost_chargeback_takes_the_gift_out_of_the_totals_and_voids_its_receipt(engine, sessions, world, gw,
                                                                                         fake_stripe, outcome):
    campaign = await make_campaign(sessions, world)
    made, cs, _pi, ch, _txn = await keep_it_all_paid(sessions, fake_stripe, world, campaign)
    await deliver(engine, event("checkout.session.completed", cs))
    await drain(sessions, gw)
    withdrawal = balance_transaction(amount=-5000, fee=1500, type="adjustment", category="dispute", source="dp_x")
    dp = dispute(amount=5000, charge_id=ch["id"], status="needs_response", txns=[withdrawal])
    withdrawal["source"] = dp["id"]
    fake_stripe.add(withdrawal, dp)
    await deliver(engine, event("charge.dispute.created", dp), event("charge.dispute.funds_withdrawn", dp))
    await drain(sessions, gw)
    found = await entries(sessions)
    assert found[1] == (f"stripe:{withdrawal['id']}", [("5115", -6500), ("627", 1500), ("75411", 5000)], campaign.id)
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.backers_count) == (5000, 1)  # still contested: nothing taken back yet

    closed = {**dp, "status": outcome}
    if outcome == "won":
        reinstated = balance_transaction(amount=5000, fee=0, type="adjustment", category="dispute_reversal", source=dp["id"])
        closed["balance_transactions"] = [withdrawal, reinstated]
        fake_stripe.add(reinstated)
    fake_stripe.add(closed)
    for _ in range(2):  # the news twice, and the older events again after it: nothing moves back or twice
        await deliver(engine, event("charge.dispute.closed", closed), event("charge.dispute.created", dp))
        await drain(sessions, gw)
    row = await campaign_row(sessions, campaign.id)
    async with sessions() as session:
        receipts = (await session.scalars(select(TaxReceipt).order_by(TaxReceipt.number))).all()
        taken_back = (await session.get(Pledge, made.id)).amount_refunded
    if outcome == "lost":
        assert (row.crowd_total, row.collected_total, row.backers_count, taken_back) == (0, 0, 0, 5000)
        assert [(r.amount, r.voided_at is not None) for r in receipts] == [(5000, True)]
        assert "litige perdu" in receipts[0].void_reason
    else:
        assert (row.crowd_total, row.backers_count, taken_back) == (5000, 1, 0)
        assert [(r.amount, r.voided_at is not None) for r in receipts] == [(5000, False)]
        assert (await entries(sessions))[2][2] == campaign.id  # the reinstatement carries the campaign's tag too
    assert not [k for k in await emails(sessions) if "refund" in k]  # the bank told the backer, not us
