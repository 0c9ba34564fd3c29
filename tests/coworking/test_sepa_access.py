"""Plans paid by SEPA Direct Debit (Stripe faked with respx): the Checkout offers the debit; a
new member whose first debit is processing has access from the Checkout's completion; a late
failure ends it and tells them; an incomplete subscription whose Checkout never completed gives
none; a renewal processing keeps the subscription active."""

from __future__ import annotations

from sqlalchemy import select

from funding.coworking.lifecycle import apply_subscription, current_subscription, member_access
from funding.coworking.models import JoinRequest, Member
from funding.db import transaction
from funding.mail.models import Email
from tests.support.coworking import active_member, invoice, invoice_payment, line, new_member, subscription
from tests.support.stripe_objects import charge, event, now, payment_intent, sid
from tests.support.web import csrf, join_by_email, login_as
from tests.support.webhooks import deliver
from webhooks.processing import drain


async def _joined_by_debit(app_client, engine, sessions, world, catalogue, fake, gw):
    """A join whose Checkout completed with a SEPA debit processing: ``unpaid``, the subscription ``incomplete``."""
    await join_by_email(app_client, sessions, f"/coworking/{world.site_slug}/adherer/flex", {
        "csrf_token": await csrf(app_client), "name": "Lucie Ferrand", "email": "lucie@example.org", "phone": "0473000002"})
    async with sessions() as session:
        join = await session.scalar(select(JoinRequest))
    (_path, params, _key), = fake.posted("checkout/sessions")
    sub = subscription(customer=join.stripe_customer_id, price=catalogue.prices["flex"], metadata=params["subscription_data"]["metadata"],
                       status="incomplete")
    fake.add(sub)
    fake.objects[join.checkout_session_id].update(status="complete", subscription=sub["id"], payment_status="unpaid")
    await deliver(engine, event("customer.subscription.created", sub), event("checkout.session.completed", fake.objects[join.checkout_session_id]))
    await drain(sessions, gw)
    async with sessions() as session:
        member = await session.scalar(select(Member))
    return params, sub, member


async def test_a_plan_checkout_offers_the_card_and_sepa_direct_debit(app_client, engine, sessions, world, catalogue, fake, gw):
    params, _sub, _member = await _joined_by_debit(app_client, engine, sessions, world, catalogue, fake, gw)
    assert params["mode"] == "subscription" and params["allowed_payment_method_types"] == ["card", "sepa_debit"]


async def test_a_new_member_whose_first_debit_is_processing_has_access_until_it_fails(app_client, engine, sessions, world,
                                                                                     catalogue, fake, gw):
    _params, sub, member = await _joined_by_debit(app_client, engine, sessions, world, catalogue, fake, gw)
    async with sessions() as session:
        current = await current_subscription(session, member.id)
        access = await member_access(session, member.id)
    assert current is not None and current.status == "incomplete"
    assert access.granted and access.reason == "processing"

    # The bank refuses the debit days later: Stripe ends the subscription, access ends, the member is told.
    sub.update(status="incomplete_expired", ended_at=now())
    await deliver(engine, event("customer.subscription.deleted", sub))
    await drain(sessions, gw)
    async with sessions() as session:
        access = await member_access(session, member.id)
        emails = (await session.scalars(select(Email.dedupe_key).where(Email.user_id == member.user_id))).all()
    assert not access.granted
    assert f"coworking:{sub['id']}:first-debit-failed" in emails and not any(e.endswith(":welcome") for e in emails)


async def test_an_incomplete_subscription_whose_checkout_never_completed_gives_no_access(sessions, world, catalogue, fake):
    member = await new_member(sessions, world, name="Marc Dupré", email="marc@example.org")
    other = subscription(customer=member.stripe_customer_id, price=catalogue.prices["flex"],
                         metadata={"purpose": "coworking", "member_id": str(member.id)}, status="incomplete")
    async with transaction(sessions) as session:
        await apply_subscription(session, other, now())
    async with sessions() as session:
        access = await member_access(session, member.id)
        emails = (await session.scalars(select(Email.dedupe_key).where(Email.user_id == member.user_id))).all()
    assert not access.granted and access.reason == "none"
    other.update(status="incomplete_expired")
    async with transaction(sessions) as session:
        await apply_subscription(session, other, now() + 1)
    async with sessions() as session:
        after = (await session.scalars(select(Email.dedupe_key).where(Email.user_id == member.user_id))).all()
    assert after == emails  # no checkout completed: nothing to tell


async def test_a_renewal_debit_processing_keeps_the_subscription_active_and_the_access(sessions, world, catalogue, fake):
    member, sub, _row, _inv = await active_member(sessions, world, catalogue, fake)
    # Stripe keeps the subscription active while the renewal invoice's debit processes (the invoice stays open).
    async with transaction(sessions) as session:
        await apply_subscription(session, {**sub, "status": "active"}, now() + 10)
    async with sessions() as session:
        access = await member_access(session, member.id)
    assert access.granted and access.reason == "active"


async def test_a_renewal_debited_by_sepa_is_pre_notified_once_and_shown_in_flight(app_client, engine, sessions, settings, world,
                                                                                  catalogue, fake, gw):
    member, sub, _row, _inv = await active_member(sessions, world, catalogue, fake)
    ch_id = sid("ch")
    pi = payment_intent(amount=18000, metadata={}, status="processing", latest_charge=ch_id)
    pi["payment_method_types"] = ["card", "sepa_debit"]
    ch = charge(amount=18000, txn=None, metadata={}, payment_intent=pi["id"], charge_id=ch_id)
    ch.update(status="pending", paid=False, payment_method_details={"type": "sepa_debit", "sepa_debit": {
        "bank_code": "20041", "branch_code": "01005", "country": "FR", "last4": "2606", "mandate": "mandate_x",
        "expected_debit_date": "2027-01-12"}})
    renewal = invoice(customer=member.stripe_customer_id, sub=sub, status="open", billing_reason="subscription_cycle", lines=[
        line(price_id=catalogue.price_id("flex"), amount=18000, start=now(), end=now() + 30 * 86_400, sub_id=sub["id"])])
    record = invoice_payment(invoice_id=renewal["id"], pi_id=pi["id"], amount=18000, status="open")
    renewal["payments"]["data"] = [record]
    fake.invoice_payments.append(record)
    fake.add(renewal, pi, ch)
    await deliver(engine, event("invoice.finalized", renewal), event("invoice.updated", renewal))
    await drain(sessions, gw)
    async with sessions() as session:
        notices = (await session.scalars(select(Email).where(Email.user_id == member.user_id,
                                                             Email.dedupe_key.like("%:debit:%")))).all()
        access = await member_access(session, member.id)
    assert [n.dedupe_key for n in notices] == [f"coworking:{renewal['id']}:debit:{pi['id']}"]  # once, whatever the events
    assert "Votre prochain prélèvement de" in notices[0].body_text and "12/01/2027" in notices[0].body_text
    assert access.granted and access.reason == "active"

    await login_as(app_client, sessions, settings, member.user_id)
    home = await app_client.get("/membre")
    assert 'status-processing">prélèvement en cours' in home.text and "Régler la facture" not in home.text
