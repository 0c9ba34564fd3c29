"""Recurring gifts by SEPA Direct Debit against a respx Stripe: Checkout offers card and
sepa_debit; while the first debit is processing the backer space says so (not active, not
failed), with the mandate read from Stripe."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from funding.auth.models import User
from funding.db import transaction
from funding.donations import recurring
from funding.donations.models import GiftStatus, RecurringGift
from funding.mail.models import Email
from tests.support.coworking import invoice, invoice_payment, line
from tests.support.gifts import gift_subscription, start_gift
from tests.support.stripe_objects import BASE, event, now, payment_intent, sid
from tests.support.web import login_as
from tests.support.webhooks import deliver
from webhooks.processing import drain


def _sepa_on_file(fake_stripe, sub: dict) -> str:
    """A sepa_debit payment method as the subscription's default, its pending debit and its mandate; the mandate reference."""
    pm_id, mandate_id, reference = sid("pm"), f"mandate_{sid('x')[-8:]}", "8F3A2C9D1E0B4A77"
    pm = {"id": pm_id, "object": "payment_method", "type": "sepa_debit", "customer": sub["customer"],
          "sepa_debit": {"bank_code": "20041", "branch_code": "01005", "country": "FR", "fingerprint": "fp", "last4": "2606",
                         "generated_from": {"charge": None, "setup_attempt": None}},
          "billing_details": {"name": "Ana Martin", "email": "ana@example.org"}}
    mandate = {"id": mandate_id, "object": "mandate", "payment_method": pm_id, "status": "active", "type": "multi_use",
               "payment_method_details": {"type": "sepa_debit", "sepa_debit": {"reference": reference, "url": "https://stripe.test/m"}}}
    pending = {"id": sid("ch"), "object": "charge", "status": "pending", "customer": sub["customer"], "payment_method": pm_id,
               "amount": 2000, "currency": "eur", "balance_transaction": None, "created": now(),
               "payment_method_details": {"type": "sepa_debit", "sepa_debit": {"bank_code": "20041", "last4": "2606",
                                                                               "mandate": mandate_id}}}
    sub["default_payment_method"] = pm_id
    fake_stripe.add(pm, sub)
    fake_stripe.router.get(url__regex=rf"^{BASE}/v1/payment_methods/{pm_id}(\?.*)?$").mock(return_value=httpx.Response(200, json=pm))
    fake_stripe.router.get(url__regex=rf"^{BASE}/v1/mandates/{mandate_id}(\?.*)?$").mock(return_value=httpx.Response(200, json=mandate))
    fake_stripe.router.get(url__regex=rf"^{BASE}/v1/charges\?.*customer={sub['customer']}").mock(
        return_value=httpx.Response(200, json={"object": "list", "data": [pending], "has_more": False, "url": "/v1/charges"}))
    return reference


async def test_the_gift_checkout_offers_card_and_sepa_debit(sessions, world, gw, fake_stripe):
    await start_gift(sessions, gw, world)
    _path, params, _key = fake_stripe.posted("checkout/sessions")[0]
    assert params["allowed_payment_method_types"] == ["card", "sepa_debit"] and params["mode"] == "subscription"
    assert "au moins 2 jours" in params["custom_text"]["submit"]["message"]  # the pre-notification delay, stated


async def test_a_gift_whose_first_debit_is_processing_shows_as_being_debited_with_its_mandate(
        hook_client, sessions, stripe_settings, world, gw, fake_stripe):
    gift = await start_gift(sessions, gw, world)
    sub = gift_subscription(fake_stripe, gift, status="incomplete")
    reference = _sepa_on_file(fake_stripe, sub)
    async with transaction(sessions) as session:
        mirrored = await recurring.apply_subscription(session, sub, now())
        user = User(email="ana@example.org", name="Ana Martin")
        session.add(user)
        await session.flush()
    assert mirrored is not None and mirrored.status == GiftStatus.INCOMPLETE

    await login_as(hook_client, sessions, stripe_settings, user.id)
    page = await hook_client.get("/mes-contributions")
    assert page.status_code == 200
    assert "en cours de prélèvement" in page.text and "Le premier prélèvement est en cours" in page.text
    assert "20041 •••• 2606" in page.text and reference in page.text  # the mandate, from Stripe
    assert "en cours</span>" not in page.text and "non abouti" not in page.text  # neither running nor failed
    assert "Changer le montant" not in page.text and "Arrêter ce don" in page.text

    # Stripe unreachable for the mandate: the page still renders, without it.
    fake_stripe.objects.pop(sub["id"])
    again = await hook_client.get("/mes-contributions")
    assert again.status_code == 200 and "en cours de prélèvement" in again.text and reference not in again.text


def _failed_debit(fake_stripe, sub: dict, *, code: str, billing_reason: str, retry: int | None) -> dict:
    """An open invoice of the gift whose debit the bank refused (``code``), its PaymentIntent back to requires_payment_method."""
    start = now()
    inv = invoice(customer=sub["customer"], sub=sub, status="open", attempt_count=1, billing_reason=billing_reason,
                  next_payment_attempt=retry,
                  lines=[line(price_id=sub["items"]["data"][0]["price"]["id"], amount=2000, start=start, end=start + 30 * 86_400,
                              sub_id=sub["id"])])
    pi = payment_intent(amount=2000, metadata={}, status="requires_payment_method")
    pi["payment_method_types"] = ["card", "sepa_debit"]
    pi["last_payment_error"] = {"code": code, "message": "refused", "type": "invalid_request_error"}
    inv["payments"]["data"] = [invoice_payment(invoice_id=inv["id"], pi_id=pi["id"], amount=2000, status="open")]
    fake_stripe.add(inv, pi)
    return inv


async def test_a_first_debit_refused_late_tells_the_donor_once_with_the_reason(engine, sessions, world, gw, fake_stripe):
    gift = await start_gift(sessions, gw, world)
    sub = gift_subscription(fake_stripe, gift, status="incomplete")
    inv = _failed_debit(fake_stripe, sub, code="insufficient_funds", billing_reason="subscription_create", retry=None)
    await deliver(engine, event("invoice.payment_failed", inv), event("invoice.payment_failed", inv))
    await drain(sessions, gw)
    sub["status"] = "incomplete_expired"
    inv["status"] = "void"  # expired with its first debit: the invoice voided
    await deliver(engine, event("customer.subscription.deleted", sub), event("invoice.payment_failed", inv))
    await drain(sessions, gw)
    async with sessions() as session:
        emails = (await session.scalars(select(Email).order_by(Email.id))).all()
        row = await session.get(RecurringGift, gift.id)
    assert [e.dedupe_key for e in emails] == [f"recurring-gift:{gift.id}:not-started"]
    assert "pas assez approvisionné" in emails[0].body_text and "n'a pas pu démarrer" in emails[0].subject
    assert "pas assez approvisionné" in emails[0].body_html
    assert row.status == GiftStatus.INCOMPLETE_EXPIRED


async def test_a_later_debit_refused_late_emails_the_attempt_with_the_reason(engine, sessions, world, gw, fake_stripe):
    gift = await start_gift(sessions, gw, world)
    sub = gift_subscription(fake_stripe, gift, status="past_due")
    inv = _failed_debit(fake_stripe, sub, code="debit_not_authorized", billing_reason="subscription_cycle",
                        retry=now() + 3 * 86_400)
    await deliver(engine, event("invoice.payment_failed", inv), event("customer.subscription.updated", sub))
    await drain(sessions, gw)
    async with sessions() as session:
        emails = (await session.scalars(select(Email).order_by(Email.id))).all()
    assert [e.dedupe_key for e in emails] == [f"recurring-gift:{inv['id']}:failed:1"]
    assert "contesté ce prélèvement" in emails[0].body_text and "Nous réessaierons" in emails[0].body_text
