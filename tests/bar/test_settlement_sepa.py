"""Bar tabs debited off session by SEPA Direct Debit where the member's Stripe customer has a bank
account with an active mandate (issue 18): the debit is in transit for days (the batch neither paid
nor due, the member told the debit's day), then paid, or due again with the bank's reason."""

from __future__ import annotations

import urllib.parse

import httpx
from sqlalchemy import select, update

from funding.auth.models import User
from funding.bar import service  # noqa: F401  (registers the purposes and paid hooks)
from funding.bar.models import Batch
from funding.bar.settlement import bill, record_payment_intent, settle_departure
from funding.db import transaction
from funding.mail.models import Email
from tests.support.bar import a_batch, coworker, make_bar, sell, site_of
from tests.support.stripe_objects import BASE, event, payment_intent, sid
from webhooks.handlers import bar as bar_handlers

MANDATE = "mandate_1QbarSEPA"
DEBIT_DAY = "2026-12-14"


def form(request: httpx.Request) -> dict:
    return dict(urllib.parse.parse_qsl(request.content.decode()))


def sepa_method(pm_id: str = "pm_sepa_1") -> dict:
    return {"id": pm_id, "object": "payment_method", "type": "sepa_debit", "customer": "cus_bar1",
            "billing_details": {"name": "Membre", "email": "membre@example.org"},
            "sepa_debit": {"bank_code": "20041", "branch_code": "01005", "country": "FR", "fingerprint": "f1",
                           "generated_from": {"charge": None, "setup_attempt": None}, "last4": "2606"}}


def customer_with(fake_stripe, default: dict | None, *, cards: list[dict] = (), accounts: list[dict] = (),
                  mandate_status: str = "active"):
    """The member's Stripe customer (its default for invoices expanded, as asked), its saved methods,
    and the mandate of its bank account (found on the SetupIntent that set it up)."""
    fake_stripe.router.get(url__regex=rf"^{BASE}/v1/customers/cus_bar1(\?.*)?$").mock(return_value=httpx.Response(
        200, json={"id": "cus_bar1", "object": "customer", "invoice_settings": {"default_payment_method": default}}))

    def methods(request: httpx.Request) -> httpx.Response:
        data = list(cards) if request.url.params.get("type") == "card" else list(accounts)
        return httpx.Response(200, json={"object": "list", "data": data, "has_more": False,
                                         "url": "/v1/customers/cus_bar1/payment_methods"})

    fake_stripe.router.get(url__regex=rf"^{BASE}/v1/customers/cus_bar1/payment_methods(\?.*)?$").mock(side_effect=methods)
    fake_stripe.router.get(url__regex=rf"^{BASE}/v1/charges(\?.*)?$").mock(return_value=httpx.Response(
        200, json={"object": "list", "data": [], "has_more": False, "url": "/v1/charges"}))
    fake_stripe.router.get(url__regex=rf"^{BASE}/v1/setup_intents(\?.*)?$").mock(return_value=httpx.Response(
        200, json={"object": "list", "has_more": False, "url": "/v1/setup_intents",
                   "data": [{"id": "seti_1", "object": "setup_intent", "status": "succeeded", "mandate": MANDATE,
                             "payment_method": "pm_sepa_1", "customer": "cus_bar1"}]}))
    fake_stripe.router.get(f"{BASE}/v1/mandates/{MANDATE}").mock(return_value=httpx.Response(
        200, json={"id": MANDATE, "object": "mandate", "status": mandate_status, "type": "multi_use",
                   "payment_method": "pm_sepa_1", "payment_method_details": {
                       "type": "sepa_debit", "sepa_debit": {"reference": "REF123", "url": "https://example.org"}}}))


def debit_charge(pi: dict) -> dict:
    return {"id": pi["latest_charge"], "object": "charge", "status": "pending", "paid": False, "amount": pi["amount"],
            "balance_transaction": None, "payment_intent": pi["id"], "payment_method": "pm_sepa_1",
            "payment_method_details": {"type": "sepa_debit", "sepa_debit": {
                "bank_code": "20041", "branch_code": "01005", "country": "FR", "fingerprint": "f1", "last4": "2606",
                "mandate": MANDATE, "expected_debit_date": DEBIT_DAY}}}


def debit_answer(fake_stripe, sent: dict) -> httpx.Response:
    """Stripe's answer to the off-session debit: processing (its charge pending until the bank answers)."""
    pi = payment_intent(amount=int(sent["amount"]), status="processing", latest_charge=sid("py"),
                        metadata={k[len("metadata["):-1]: v for k, v in sent.items() if k.startswith("metadata[")})
    pi |= {"customer": sent["customer"], "payment_method": sent["payment_method"], "payment_method_types": ["sepa_debit"],
           "allowed_payment_method_types": ["sepa_debit"]}
    fake_stripe.add(pi, debit_charge(pi))
    return httpx.Response(200, json=pi)


async def emails(sessions) -> list[tuple[str, str, str]]:
    async with sessions() as session:
        return [tuple(r) for r in (await session.execute(
            select(Email.dedupe_key, Email.subject, Email.body_text).order_by(Email.id))).all()]


async def deliver_current(sessions, gw, pi: dict, kind: str) -> None:
    """The event, handled as the worker handles it (the PaymentIntent fetched now), twice."""
    evt = event(kind, pi)
    handler = bar_handlers.HANDLERS[kind]
    for _ in range(2):
        async with transaction(sessions) as session:
            await handler.apply(session, evt, await handler.prepare(gw, evt))


async def test_a_tab_is_debited_under_the_default_mandate_in_transit_then_failed_with_its_reason(sessions, world, gw,
                                                                                                  fake_stripe):
    bar = await make_bar(sessions, world)
    await coworker(sessions, world, bar.members[0])
    async with transaction(sessions) as session:
        await session.execute(update(User).where(User.id == bar.members[0]).values(locale="en"))
    batch = await a_batch(sessions, world, bar)
    customer_with(fake_stripe, sepa_method())
    route = fake_stripe.router.post(f"{BASE}/v1/payment_intents").mock(
        side_effect=lambda request: debit_answer(fake_stripe, form(request)))
    assert await bill(sessions, gw, batch.id) == "billed"
    sent = form(route.calls[0].request)
    assert (sent["payment_method"], sent["mandate"], sent["allowed_payment_method_types[0]"], sent["off_session"],
            sent["confirm"], sent["currency"]) == ("pm_sepa_1", MANDATE, "sepa_debit", "true", "true", "eur")
    assert "allowed_payment_method_types[1]" not in sent
    async with sessions() as session:
        in_transit = await session.get(Batch, batch.id)
    assert (in_transit.status, in_transit.method) == ("billed", "payment_intent")  # neither paid nor due
    [(key, subject, body)] = await emails(sessions)
    assert key == f"bar-batch:{batch.id}:debit" and subject == "Your bar tab at Thiers: a debit of €11.50"
    assert "It will be debited on 14 December 2026 from the bank account of your SEPA mandate" in body, body  # in their language

    # Days later the bank refuses: the PaymentIntent is back to requires_payment_method, with the reason.
    pi = fake_stripe.objects[in_transit.stripe_payment_intent_id]
    pi |= {"status": "requires_payment_method", "payment_method": None, "last_payment_error": {
        "code": "account_closed", "message": "The customer's bank account has been closed.", "type": "invalid_request_error",
        "payment_method": sepa_method()}}
    await deliver_current(sessions, gw, pi, "payment_intent.payment_failed")
    async with sessions() as session:
        due = await session.get(Batch, batch.id)
    assert (due.status, due.last_error) == ("due", "account_closed")
    mails = await emails(sessions)
    assert [m[0] for m in mails] == [f"bar-batch:{batch.id}:debit", f"bar-batch:{batch.id}:due"]  # once, though told twice
    body = mails[1][2]
    assert "Your bank rejected the SEPA debit of this tab" in body and "/bar/ardoise" in body, body
    assert "Reason given by the bank: this bank account is closed." in body, body


async def test_a_debit_that_settles_pays_the_batch_and_says_it_was_a_debit(sessions, world, gw, fake_stripe):
    bar = await make_bar(sessions, world)
    await coworker(sessions, world, bar.members[0])
    batch = await a_batch(sessions, world, bar)
    customer_with(fake_stripe, None, accounts=[sepa_method()])  # no default, no card: the bank account with its mandate
    fake_stripe.router.post(f"{BASE}/v1/payment_intents").mock(side_effect=lambda request: debit_answer(fake_stripe, form(request)))
    assert await bill(sessions, gw, batch.id) == "billed"
    async with sessions() as session:
        pi = fake_stripe.objects[(await session.get(Batch, batch.id)).stripe_payment_intent_id]
    pi |= {"status": "succeeded", "amount_received": pi["amount"]}
    await deliver_current(sessions, gw, pi, "payment_intent.succeeded")
    async with sessions() as session:
        paid = await session.get(Batch, batch.id)
    assert paid.status == "paid"
    mails = await emails(sessions)
    assert [m[0] for m in mails] == [f"bar-batch:{batch.id}:debit", f"bar-batch:{batch.id}:paid"]
    assert "prélèvement SEPA" in mails[1][2] and "carte" not in mails[1][2]


async def test_a_card_is_preferred_to_a_bank_account_whose_mandate_ended_and_without_either_the_tab_is_due(
        sessions, world, gw, fake_stripe):
    bar = await make_bar(sessions, world)
    await coworker(sessions, world, bar.members[0])
    batch = await a_batch(sessions, world, bar)
    card = {"id": "pm_card_9", "object": "payment_method", "type": "card", "card": {"brand": "visa", "last4": "4242"}}
    customer_with(fake_stripe, sepa_method(), cards=[card], accounts=[sepa_method()], mandate_status="inactive")
    route = fake_stripe.router.post(f"{BASE}/v1/payment_intents").mock(side_effect=lambda request: httpx.Response(
        200, json=payment_intent(amount=int(form(request)["amount"]), status="processing",
                                 metadata={"purpose": "bar_tab", "bar_batch_id": str(batch.id)})))
    assert await bill(sessions, gw, batch.id) == "billed"
    sent = form(route.calls[0].request)
    assert sent["payment_method"] == "pm_card_9" and "mandate" not in sent and "allowed_payment_method_types[0]" not in sent

    # A member leaving with only a bank account whose mandate ended: nothing is debited, the tab is due.
    await sell(sessions, bar, "Thé")
    async with transaction(sessions) as session:
        leaving = await settle_departure(session, await site_of(session, world), bar.members[0])
    customer_with(fake_stripe, None, accounts=[sepa_method()], mandate_status="inactive")
    assert await bill(sessions, gw, leaving.id) == "due" and len(route.calls) == 1


async def test_a_member_leaving_is_debited_under_their_mandate_too(sessions, world, gw, fake_stripe):
    bar = await make_bar(sessions, world)
    await coworker(sessions, world, bar.members[0], subscription=True)  # no next invoice will come: debited now
    await sell(sessions, bar, "Bière locale")
    async with transaction(sessions) as session:
        batch = await settle_departure(session, await site_of(session, world), bar.members[0])
    customer_with(fake_stripe, sepa_method())
    route = fake_stripe.router.post(f"{BASE}/v1/payment_intents").mock(
        side_effect=lambda request: debit_answer(fake_stripe, form(request)))
    assert await bill(sessions, gw, batch.id) == "billed"
    assert form(route.calls[0].request)["mandate"] == MANDATE
    async with transaction(sessions) as session:  # a late processing event never moves it back
        pi = fake_stripe.objects[(await session.get(Batch, batch.id)).stripe_payment_intent_id]
        assert await record_payment_intent(session, pi) == "billed"
