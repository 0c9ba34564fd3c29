"""Money comes from Stripe, not from the payload's word: a signed event that says a pledge or a
payment was paid moves nothing unless Stripe's own object (and our row) agree; else it is a
dead letter at once, shown to staff with what disagreed."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from funding.campaigns.models import Pledge, TaxReceipt
from funding.db import transaction
from funding.ledger.models import Entry
from funding.mail.models import Email
from funding.payments.models import Payment, StripeEvent
from tests.support.campaigns import campaign_row, make_campaign, pledge
from tests.support.stripe_objects import balance_transaction, charge, checkout_session, event, payment_intent, sid
from tests.support.webhooks import deliver, entries, make_payment, paid_donation
from webhooks.processing import drain


async def unpaid_pledge(sessions, world, amount_euros: str = "900"):
    """A keep-it-all pledge and its open Payment, as the contribution form leaves them."""
    campaign = await make_campaign(sessions, world)
    made = await pledge(sessions, campaign.id, amount=amount_euros)
    async with transaction(sessions) as session:
        payment = Payment(org_id=world.org_id, site_id=world.site_id, purpose="pledge", ref=f"pledge:{made.id}",
                          amount=made.amount, currency="EUR", description="Contribution", email=made.email, name=made.name,
                          status="open")
        session.add(payment)
        await session.flush()
    meta = {"purpose": "pledge", "pledge_id": str(made.id), "payment_id": str(payment.id), "org_id": str(world.org_id),
            "site_id": str(world.site_id)}
    return campaign, made, payment, meta


async def nothing_moved(sessions, campaign, made, payment) -> None:
    async with sessions() as session:
        assert (await session.get(Pledge, made.id)).status == "pending"
        assert (await session.get(Payment, payment.id)).status == "open"
        assert await session.scalar(select(func.count(TaxReceipt.id))) == 0
        assert await session.scalar(select(func.count(Email.id))) == 0
        assert await session.scalar(select(func.count(Entry.id))) == 0
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.collected_total, row.backers_count) == (0, 0, 0)


async def dead_letter(sessions, evt) -> str:
    async with sessions() as session:
        row = await session.get(StripeEvent, evt["id"])
    assert row.status == "dead", (row.status, row.last_error)
    assert row.last_error.startswith("refusé")
    return row.last_error


async def staff_sees(sessions, settings, world, evt, words: str) -> None:
    from funding.app import create_app
    from tests.support.web import login_as, text_of

    app = create_app(settings.with_(stripe_secret_key="sk_test_x", stripe_api_base="http://stripe.test"), process_events=False)
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await login_as(client, sessions, settings, world.users["staff"])
        page = text_of((await client.get("/admin/stripe")).text)
    assert evt["id"] in page and words in page


async def test_a_captured_charge_whose_amount_stripe_does_not_hold_moves_nothing_and_is_a_dead_letter(
        engine, sessions, settings, world, gw, fake_stripe):
    campaign, made, payment, meta = await unpaid_pledge(sessions, world)
    # Stripe holds a 1 € charge; the signed payload says 950 € for the 900 € pledge.
    ch_id = sid("ch")
    txn = balance_transaction(amount=100, fee=0, source=ch_id)
    real = charge(amount=100, txn=txn["id"], metadata=meta, payment_intent=sid("pi"), charge_id=ch_id)
    fake_stripe.add(txn, real)
    forged = event("charge.captured", {**real, "amount": 95_000, "amount_captured": 95_000})
    await deliver(engine, forged)
    await drain(sessions, gw)
    await nothing_moved(sessions, campaign, made, payment)
    assert "95000" in await dead_letter(sessions, forged)
    await staff_sees(sessions, settings, world, forged, "95000")


async def test_a_genuine_one_euro_charge_naming_a_900_euro_pledge_pays_nothing(engine, sessions, world, gw, fake_stripe):
    campaign, made, payment, meta = await unpaid_pledge(sessions, world)
    ch_id = sid("ch")
    txn = balance_transaction(amount=100, fee=0, source=ch_id)
    pi = payment_intent(amount=100, metadata=meta, latest_charge=ch_id)
    real = charge(amount=100, txn=None, metadata=meta, payment_intent=pi["id"], charge_id=ch_id)
    fake_stripe.add(txn, real, pi)
    for evt in (event("charge.captured", real), event("payment_intent.succeeded", pi)):
        await deliver(engine, evt)
        await drain(sessions, gw)
        assert "100 reçus" in await dead_letter(sessions, evt)
    await nothing_moved(sessions, campaign, made, payment)


@pytest.mark.parametrize("stripe_says", ["failed", "unknown charge", "unknown transaction"])
async def test_a_captured_charge_for_the_right_amount_that_stripe_says_unpaid_moves_nothing(
        engine, sessions, settings, world, gw, fake_stripe, stripe_says):
    campaign, made, payment, meta = await unpaid_pledge(sessions, world)
    ch_id = sid("ch")
    pi = payment_intent(amount=made.amount, metadata=meta, status="requires_payment_method")
    cs = checkout_session(amount=made.amount, metadata=meta, payment_intent=pi["id"], status="open", payment_status="unpaid")
    fake_stripe.add(pi, cs)
    if stripe_says == "failed":
        fake_stripe.add({**charge(amount=made.amount, txn=None, metadata=meta, payment_intent=pi["id"], charge_id=ch_id),
                         "status": "failed", "paid": False, "captured": False})
    txn = sid("txn") if stripe_says == "unknown transaction" else None  # named by the payload, never created by Stripe
    forged = event("charge.captured", charge(amount=made.amount, txn=txn, metadata=meta, payment_intent=pi["id"], charge_id=ch_id))
    await deliver(engine, forged)
    await drain(sessions, gw)
    await nothing_moved(sessions, campaign, made, payment)
    await dead_letter(sessions, forged)
    await staff_sees(sessions, settings, world, forged, "refusé")


@pytest.mark.parametrize("kind", ["checkout.session.completed", "payment_intent.succeeded"])
async def test_a_payload_saying_paid_when_stripe_says_unpaid_is_refused_for_every_money_event(
        engine, sessions, world, gw, fake_stripe, kind):
    campaign, made, payment, meta = await unpaid_pledge(sessions, world)
    pi = payment_intent(amount=made.amount, metadata=meta, status="requires_payment_method")
    cs = checkout_session(amount=made.amount, metadata=meta, payment_intent=pi["id"], status="open", payment_status="unpaid")
    fake_stripe.add(pi, cs)
    claimed = {**cs, "status": "complete", "payment_status": "paid"} if kind.startswith("checkout") else \
        {**pi, "status": "succeeded", "amount_received": made.amount}
    forged = event(kind, claimed)
    await deliver(engine, forged)
    await drain(sessions, gw)
    await nothing_moved(sessions, campaign, made, payment)
    assert "Stripe le dit" in await dead_letter(sessions, forged)


async def test_a_checkout_stripe_holds_as_paid_for_another_amount_pays_nothing(engine, sessions, world, gw, fake_stripe):
    payment = await make_payment(sessions, world, amount=5000)
    cs, _pi, _ch, _txn = paid_donation(fake_stripe, world, payment)
    fake_stripe.add({**cs, "amount_total": 500, "amount_subtotal": 500})  # Stripe's own copy: 5 €, not 50 €
    evt = event("checkout.session.completed", {**cs, "amount_total": 500, "amount_subtotal": 500})
    await deliver(engine, evt)
    await drain(sessions, gw)
    assert "500 reçus" in await dead_letter(sessions, evt)
    async with sessions() as session:
        assert (await session.get(Payment, payment.id)).status == "open"
        assert await session.scalar(select(func.count(Email.id))) == 0


async def test_a_genuine_payment_still_goes_through_from_any_of_its_events(engine, sessions, world, gw, fake_stripe):
    payment = await make_payment(sessions, world)
    cs, pi, ch, txn = paid_donation(fake_stripe, world, payment, fee=100)
    await deliver(engine, event("charge.captured", ch), event("checkout.session.completed", cs), event("payment_intent.succeeded", pi))
    await drain(sessions, gw)
    assert await entries(sessions) == [(f"stripe:{txn['id']}", [("5115", 4900), ("627", 100), ("75411", -5000)])]
    async with sessions() as session:
        assert (await session.get(Payment, payment.id)).status == "paid"
        assert set((await session.scalars(select(StripeEvent.status))).all()) == {"processed"}


async def test_an_off_session_charge_stripe_holds_for_another_amount_or_customer_pays_no_promise(
        engine, sessions, world, gw, fake_stripe):
    from tests.support.campaigns import active_pledge

    campaign = await make_campaign(sessions, world, mode="all_or_nothing")
    made = await active_pledge(sessions, campaign.id, amount="40")
    meta = {"purpose": "pledge", "pledge_id": str(made.id), "campaign_id": str(campaign.id)}
    cheap = payment_intent(amount=100, metadata=meta)
    foreign = {**payment_intent(amount=made.amount, metadata=meta), "customer": "cus_someone_else"}
    fake_stripe.add(cheap, foreign)
    before = await campaign_row(sessions, campaign.id)
    for pi, words in ((cheap, "100 reçus"), (foreign, "cus_someone_else")):
        evt = event("payment_intent.succeeded", pi)
        await deliver(engine, evt)
        await drain(sessions, gw)
        assert words in await dead_letter(sessions, evt)
    async with sessions() as session:
        assert (await session.get(Pledge, made.id)).status == "active"
        assert await session.scalar(select(func.count(TaxReceipt.id))) == 0
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.collected_total, row.backers_count) == (
        before.crowd_total, before.collected_total, before.backers_count)


async def test_a_bar_tab_batch_is_paid_only_for_its_own_amount(engine, sessions, world, gw, fake_stripe):
    from funding.bar.models import Batch
    from funding.bar.settlement import cut_off
    from tests.support.bar import make_bar, sell

    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Sandwich")
    [batch_id] = await cut_off(sessions, key="2026-11", site_ids=[world.site_id])
    meta = {"purpose": "bar_tab", "bar_batch_id": str(batch_id)}
    pi = payment_intent(amount=1, metadata=meta)
    invoice = {"id": sid("in"), "object": "invoice", "status": "paid", "paid": True, "amount_paid": 1, "currency": "eur",
               "customer": None, "lines": {"object": "list", "has_more": False, "data": [
                   {"id": sid("il"), "object": "line_item", "amount": 1, "currency": "eur", "metadata": meta}]}}
    fake_stripe.add(pi, invoice)
    for evt in (event("payment_intent.succeeded", pi), event("invoice.paid", invoice)):
        await deliver(engine, evt)
        await drain(sessions, gw)
        await dead_letter(sessions, evt)
    async with sessions() as session:
        assert (await session.get(Batch, batch_id)).status != "paid"
