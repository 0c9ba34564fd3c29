"""SEPA's pre-notification from ``invoice.upcoming`` (issue 18): a renewal paid by a SEPA mandate
is announced to the donor (or the member) once per subscription and period, with its amount and
day; a card, a stale announcement or a mandate gone announce nothing; a debit announced this way
is not announced again when it starts."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from funding.db import transaction
from funding.donations.models import GiftInterval, RecurringGift
from funding.mail.models import Email
from funding.payments import prenotice
from tests.support.coworking import price, subscription
from tests.support.stripe_objects import BASE, event, now, sid
from webhooks.handlers import prenotice as handlers

DAY = 86_400
MANDATE = "mandate_1QgiftSEPA"


def sepa_method(pm_id: str) -> dict:
    return {"id": pm_id, "object": "payment_method", "type": "sepa_debit", "customer": "cus_gift",
            "sepa_debit": {"bank_code": "20041", "branch_code": "01005", "country": "FR", "fingerprint": "f1",
                           "generated_from": {"charge": None, "setup_attempt": None}, "last4": "2606"}}


def a_gift_subscription(fake_stripe, gift_id: int, *, method: dict, mandate_status: str = "active") -> dict:
    sub = subscription(customer="cus_gift", price=price(price_id=sid("price"), amount=2000),
                       metadata={"purpose": "recurring_gift", "gift_id": str(gift_id)}, start=now() - 20 * DAY)
    sub["default_payment_method"] = method["id"]
    fake_stripe.add(sub, method)
    fake_stripe.router.get(url__regex=rf"^{BASE}/v1/charges(\?.*)?$").mock(return_value=httpx.Response(
        200, json={"object": "list", "data": [], "has_more": False, "url": "/v1/charges"}))
    fake_stripe.router.get(url__regex=rf"^{BASE}/v1/setup_intents(\?.*)?$").mock(return_value=httpx.Response(
        200, json={"object": "list", "has_more": False, "url": "/v1/setup_intents", "data": [
            {"id": "seti_g", "object": "setup_intent", "mandate": MANDATE, "payment_method": method["id"],
             "customer": "cus_gift", "status": "succeeded"}]}))
    fake_stripe.router.get(f"{BASE}/v1/mandates/{MANDATE}").mock(return_value=httpx.Response(200, json={
        "id": MANDATE, "object": "mandate", "status": mandate_status, "type": "multi_use", "payment_method": method["id"],
        "payment_method_details": {"type": "sepa_debit", "sepa_debit": {"reference": "GIFTREF42", "url": "https://x"}}}))
    return sub


def upcoming(sub: dict, *, period_end: int | None = None) -> dict:
    """The renewal's invoice as ``invoice.upcoming`` carries it: a preview, no id."""
    end = period_end or sub["items"]["data"][0]["current_period_end"]
    return {"object": "invoice", "amount_due": 2000, "currency": "eur", "customer": sub["customer"], "status": "draft",
            "billing_reason": "upcoming", "period_start": end - 30 * DAY, "period_end": end, "next_payment_attempt": end + 3600,
            "parent": {"type": "subscription_details", "quote_details": None,
                       "subscription_details": {"metadata": sub["metadata"], "subscription": sub["id"]}},
            "lines": {"object": "list", "has_more": False, "data": [
                {"object": "line_item", "amount": 2000, "period": {"start": end, "end": end + 30 * DAY}}]}}


async def a_gift(sessions, world) -> RecurringGift:
    async with transaction(sessions) as session:
        gift = RecurringGift(org_id=world.org_id, site_id=world.site_id, amount=2000, currency="EUR", interval=GiftInterval.MONTH,
                             email="camille@example.org", name="Camille Roux", status="active")
        session.add(gift)
    return gift


async def announce(sessions, gw, invoice: dict, times: int = 2) -> list[tuple[str, str, str]]:
    evt = event("invoice.upcoming", invoice)
    handler = handlers.HANDLERS["invoice.upcoming"]
    for _ in range(times):  # delivered twice: one email
        async with transaction(sessions) as session:
            await handler.apply(session, evt, await handler.prepare(gw, evt))
    async with sessions() as session:
        return [tuple(r) for r in (await session.execute(select(Email.dedupe_key, Email.subject, Email.body_text)))]


async def test_a_renewal_debited_by_sepa_is_announced_once_with_its_amount_and_day(sessions, world, gw, fake_stripe):
    gift = await a_gift(sessions, world)
    sub = a_gift_subscription(fake_stripe, gift.id, method=sepa_method("pm_sepa_g"))
    async with transaction(sessions) as session:
        (await session.get(RecurringGift, gift.id)).stripe_subscription_id = sub["id"]
    invoice = upcoming(sub)
    [(key, subject, body)] = await announce(sessions, gw, invoice)
    end = invoice["period_end"]
    from funding.clock import local_date

    day = local_date(end + 3600).strftime("%d/%m/%Y")
    assert key == f"sepa-notice:{sub['id']}:{end}"
    assert subject == f"Votre prochain prélèvement de 20,00\u00a0€ le {day}"
    assert f"Votre don mensuel n° {gift.id} de 20,00\u00a0€ sera prélevé le {day}." in body, body
    assert "se terminant par 2606" in body and "mandat GIFTREF42" in body
    async with sessions() as session:  # the debit starting later is not announced a second time
        assert await prenotice.announced(session, {**invoice, "id": "in_renewal"})
        assert not await prenotice.announced(session, {**invoice, "id": "in_next", "period_end": end + 30 * DAY})


async def test_a_card_a_stale_period_or_an_ended_mandate_announce_nothing(sessions, world, gw, fake_stripe):
    gift = await a_gift(sessions, world)
    card = {"id": "pm_card_g", "object": "payment_method", "type": "card", "card": {"brand": "visa", "last4": "4242"}}
    by_card = a_gift_subscription(fake_stripe, gift.id, method=card)
    assert await announce(sessions, gw, upcoming(by_card)) == []
    by_sepa = a_gift_subscription(fake_stripe, gift.id, method=sepa_method("pm_sepa_h"))
    past = by_sepa["items"]["data"][0]["current_period_end"] - 30 * DAY  # an old event: that renewal happened
    assert await announce(sessions, gw, upcoming(by_sepa, period_end=past)) == []
    ended = a_gift_subscription(fake_stripe, gift.id, method=sepa_method("pm_sepa_i"), mandate_status="inactive")
    assert await announce(sessions, gw, upcoming(ended)) == []


def test_a_checkout_offering_sepa_states_the_pre_notification_delay():
    note = prenotice.checkout_note(["card", "sepa_debit"])["custom_text"]["submit"]["message"]
    assert "au moins 2 jours" in note and "7 jours avant chaque échéance" in note and len(note) <= 1200
    assert prenotice.checkout_note(["card"]) == {}
