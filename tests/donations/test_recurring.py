"""Recurring gifts against a respx Stripe: what we create (once, keyed by our own rows), what
bad input creates (nothing), and events in any order, twice: one instalment, one entry, one
thanks; one email per failed attempt."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from funding.db import transaction
from funding.donations import recurring
from funding.donations.models import GiftStatus, RecurringGift, RecurringGiftPayment
from funding.mail.models import Email
from funding.orgs.models import Site
from funding.payments.models import StripeRequest
from tests.support.coworking import invoice, line, price, subscription
from tests.support.stripe_objects import balance_transaction, event, now, refund, sid
from tests.support.webhooks import deliver, entries
from webhooks.processing import drain


async def _start(sessions, gw, world, amount=2000, interval="month", email="ana@example.org"):
    async with sessions() as session:
        site = await session.get(Site, world.site_id)
    return await recurring.start_recurring(sessions, gw, site=site, amount=amount, interval=interval, email=email,
                                           name="Ana Martin", donor={"donor_address": "3 rue Durolle\n63300 Thiers\nFrance"},
                                           success_url="http://testserver/soutenir/regulier/merci?session_id={CHECKOUT_SESSION_ID}",
                                           cancel_url="http://testserver/soutenir?annule=1")


async def test_a_gift_creates_its_price_once_and_a_checkout_in_subscription_mode_keyed_by_the_gift(sessions, world, gw, fake_stripe):
    first, url = await _start(sessions, gw, world)
    second, _ = await _start(sessions, gw, world, email="bob@example.org")
    yearly, _ = await _start(sessions, gw, world, amount=5000, interval="year")
    assert url.startswith("https://checkout.stripe.test/")
    keys = [(path, key) for path, _params, key in fake_stripe.posts]
    org = world.org_id
    assert keys == [
        ("products", f"entrelab-recurring-gift-product-{org}-products-1"),
        ("prices", f"entrelab-recurring-gift-price-{org}-month-eur-2000-prices-1"),
        ("checkout/sessions", f"entrelab-recurring-gift-{first.id}-checkout-sessions-1"),
        ("checkout/sessions", f"entrelab-recurring-gift-{second.id}-checkout-sessions-1"),  # the same price, not made again
        ("prices", f"entrelab-recurring-gift-price-{org}-year-eur-5000-prices-1"),
        ("checkout/sessions", f"entrelab-recurring-gift-{yearly.id}-checkout-sessions-1"),
    ]
    _path, params, _key = fake_stripe.posted("checkout/sessions")[0]
    assert params["mode"] == "subscription" and params["customer_email"] == "ana@example.org" and "customer" not in params
    assert params["subscription_data"]["metadata"] == {"purpose": "recurring_gift", "recurring_gift_id": str(first.id),
                                                       "org_id": str(org), "site_id": str(world.site_id)}
    price_params = fake_stripe.posted("prices")[0][1]
    assert price_params["unit_amount"] == "2000" and price_params["currency"] == "eur" and price_params["recurring"] == {"interval": "month"}
    async with sessions() as session:
        gift = await session.get(RecurringGift, first.id)
    assert gift.status == GiftStatus.OPEN and gift.checkout_session_id and gift.amount == 2000


@pytest.mark.parametrize(("amount", "interval", "currency", "says"), [
    (499, "month", "EUR", "compris entre"), (1999, "year", "EUR", "compris entre"), (1_000_001, "month", "EUR", "compris entre"),
    (2000, "week", "EUR", "mensuel ou annuel"), (2000, "month", "USD", "en euros"),
])
async def test_bad_input_is_refused_before_anything_is_created(sessions, world, gw, fake_stripe, amount, interval, currency, says):
    async with sessions() as session:
        site = await session.get(Site, world.site_id)
    with pytest.raises(recurring.GiftError, match=says):
        await recurring.start_recurring(sessions, gw, site=site, amount=amount, interval=interval, currency=currency,
                                        email="ana@example.org", name="Ana", donor=None, success_url="http://x/ok",
                                        cancel_url="http://x/no")
    assert fake_stripe.posts == []
    async with sessions() as session:
        assert await session.scalar(select(func.count(RecurringGift.id))) == 0
        assert await session.scalar(select(func.count(StripeRequest.id))) == 0


def _paid_month(fake, gift, sub, *, fee=55):
    start = now()
    inv = invoice(customer=sub["customer"], sub=sub, lines=[line(price_id=sub["items"]["data"][0]["price"]["id"], amount=gift.amount,
                                                                 start=start, end=start + 30 * 86_400, sub_id=sub["id"],
                                                                 description="Don mensuel")])
    _pi, ch, txn = fake.paid_invoice(inv, fee=fee)
    return inv, ch, txn


def _gift_subscription(fake, gift, status="active"):
    gift_price = price(price_id=sid("price"), amount=gift.amount)
    sub = subscription(customer=sid("cus"), price=gift_price, status=status, metadata=recurring.gift_metadata(gift))
    checkout = {"id": gift.checkout_session_id, "object": "checkout.session", "mode": "subscription", "status": "complete",
                "metadata": recurring.gift_metadata(gift), "subscription": sub["id"], "customer": sub["customer"],
                "payment_status": "paid", "payment_intent": None}
    fake.add(sub, checkout)
    return sub, checkout


async def test_events_in_any_order_and_twice_give_one_instalment_one_entry_one_thanks(engine, sessions, world, gw, fake_stripe):
    gift, _ = await _start(sessions, gw, world)
    sub, checkout = _gift_subscription(fake_stripe, gift)
    inv, ch, txn = _paid_month(fake_stripe, gift, sub)
    paid = event("invoice.paid", inv)
    # The invoice and its charge before the checkout that started it; everything delivered twice.
    await deliver(engine, paid, event("charge.succeeded", ch), event("customer.subscription.created", sub),
                  event("checkout.session.completed", checkout), event("invoice.paid", inv), event("charge.succeeded", ch))
    await drain(sessions, gw)
    assert await entries(sessions) == [(f"stripe:{txn['id']}", [("5115", 1945), ("627", 55), ("75411", -2000)])]
    async with sessions() as session:
        row = await session.get(RecurringGift, gift.id)
        instalments = (await session.scalars(select(RecurringGiftPayment))).all()
        emails = (await session.scalars(select(Email.dedupe_key))).all()
    assert row.status == GiftStatus.ACTIVE and row.stripe_subscription_id == sub["id"] and row.stripe_customer_id == sub["customer"]
    assert [(i.stripe_invoice_id, i.amount, i.gift_id) for i in instalments] == [(inv["id"], 2000, gift.id)]
    assert list(emails) == [f"recurring-gift:{gift.id}:thanks"]

    # A second month: one more instalment and entry, no second thanks.
    inv2, _ch2, txn2 = _paid_month(fake_stripe, gift, sub)
    await deliver(engine, event("invoice.paid", inv2))
    await drain(sessions, gw)
    booked = await entries(sessions)
    assert [key for key, _lines in booked] == [f"stripe:{txn['id']}", f"stripe:{txn2['id']}"]
    async with sessions() as session:
        assert await session.scalar(select(func.count(RecurringGiftPayment.id))) == 2
        assert await session.scalar(select(func.count(Email.id))) == 1


async def test_a_failed_attempt_emails_the_donor_once_per_attempt(engine, sessions, world, gw, fake_stripe):
    gift, _ = await _start(sessions, gw, world)
    sub, _checkout = _gift_subscription(fake_stripe, gift, status="past_due")
    start = now()
    inv = invoice(customer=sub["customer"], sub=sub, status="open", attempt_count=1, next_payment_attempt=start + 3 * 86_400,
                  lines=[line(price_id=sub["items"]["data"][0]["price"]["id"], amount=2000, start=start, end=start + 30 * 86_400,
                              sub_id=sub["id"])])
    fake_stripe.add(inv)
    first = event("invoice.payment_failed", inv)
    await deliver(engine, first, event("invoice.payment_failed", inv), event("customer.subscription.updated", sub))
    await drain(sessions, gw)
    retry = {**inv, "attempt_count": 2}
    fake_stripe.add(retry)
    await deliver(engine, event("invoice.payment_failed", retry))
    await drain(sessions, gw)
    async with sessions() as session:
        emails = (await session.scalars(select(Email).order_by(Email.id))).all()
        row = await session.get(RecurringGift, gift.id)
    assert [e.dedupe_key for e in emails] == [f"recurring-gift:{inv['id']}:failed:1", f"recurring-gift:{inv['id']}:failed:2"]
    assert all(e.to_addr == "ana@example.org" and inv["hosted_invoice_url"] in e.body_text for e in emails)
    assert row.status == GiftStatus.PAST_DUE
    assert await entries(sessions) == []  # nothing paid, nothing booked


async def test_the_donor_stops_their_gift_and_nobody_else_can(sessions, world, gw, fake_stripe):
    gift, _ = await _start(sessions, gw, world)
    sub, _checkout = _gift_subscription(fake_stripe, gift)
    async with transaction(sessions) as session:
        await recurring.apply_subscription(session, sub, now())
    fake_stripe.router.delete(url__regex=rf".*/v1/subscriptions/{sub['id']}$").respond(200, json={**sub, "status": "canceled"})
    with pytest.raises(LookupError):
        await recurring.stop(sessions, gw, gift_id=gift.id, email="mallory@example.org")
    stopped = await recurring.stop(sessions, gw, gift_id=gift.id, email="ana@example.org")
    assert stopped.status == GiftStatus.CANCELED and stopped.canceled_at is not None
    with pytest.raises(recurring.GiftError):
        await recurring.stop(sessions, gw, gift_id=gift.id, email="ana@example.org")


async def test_a_refunded_instalment_is_booked_back_off_the_gifts(engine, sessions, world, gw, fake_stripe):
    gift, _ = await _start(sessions, gw, world)
    sub, checkout = _gift_subscription(fake_stripe, gift)
    inv, ch, txn = _paid_month(fake_stripe, gift, sub)
    await deliver(engine, event("checkout.session.completed", checkout), event("invoice.paid", inv))
    await drain(sessions, gw)
    re_txn = balance_transaction(amount=-2000, fee=0, type="refund", source="re_x")
    re = refund(amount=2000, charge_id=ch["id"], txn=re_txn["id"])
    re_txn["source"] = re["id"]
    refunded = {**ch, "amount_refunded": 2000, "refunds": {**ch["refunds"], "data": [re]}}
    fake_stripe.add(re_txn, re, refunded)
    await deliver(engine, event("charge.refunded", refunded), event("refund.created", re))
    await drain(sessions, gw)
    assert await entries(sessions) == [(f"stripe:{txn['id']}", [("5115", 1945), ("627", 55), ("75411", -2000)]),
                                       (f"stripe:{re_txn['id']}", [("5115", -2000), ("75411", 2000)])]
    async with sessions() as session:
        assert (await session.scalar(select(RecurringGiftPayment))).amount_refunded == 2000  # the annual receipt will not count it
