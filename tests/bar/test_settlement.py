"""Settlement of tabs through Stripe (faked over respx) and the books of the bar's payments."""

from __future__ import annotations

import json
import urllib.parse

import httpx
import pytest
from sqlalchemy import select

from funding.bar import service  # noqa: F401  (registers the purposes and paid hooks)
from funding.bar.closings import close_day
from funding.bar.models import Batch, Ticket
from funding.bar.settlement import bill, billing_job, cut_off, record_invoice, settle_departure
from funding.bar.till import BarError, open_ticket
from funding.db import transaction
from funding.ledger.models import Entry, Posting
from funding.mail.models import Email
from funding.payments.models import Payment
from tests.support.bar import a_batch, coworker, make_bar, sell, site_of
from tests.support.stripe_objects import BASE, balance_transaction, charge, checkout_session, event, payment_intent, sid
from tests.support.webhooks import deliver
from webhooks.handlers import bar as bar_handlers
from webhooks.processing import drain


def form(request: httpx.Request) -> dict:
    return dict(urllib.parse.parse_qsl(request.content.decode()))


async def test_a_subscriber_s_tab_goes_on_the_next_invoice_once_then_is_paid_with_it(sessions, world, gw, fake_stripe):
    bar = await make_bar(sessions, world)
    await coworker(sessions, world, bar.members[0], subscription=True)
    batch = await a_batch(sessions, world, bar)
    assert (batch.amount, batch.line_count, batch.status) == (150 + 450 + 550, 3, "ready")
    items = iter(("ii_bar1", "ii_bar2"))
    route = fake_stripe.router.post(f"{BASE}/v1/invoiceitems").mock(
        side_effect=lambda request: httpx.Response(200, json={"id": next(items), "object": "invoiceitem"}))
    assert await bill(sessions, gw, batch.id) == "billed"
    assert await billing_job(sessions, None, gw) == 0  # billed already: never twice
    # One line per VAT rate (coffee and sandwich at 10 %, beer at 20 %), each with its Tax Rate and its own key.
    sent_all = [form(call.request) for call in route.calls]
    assert [call.request.headers["idempotency-key"] for call in route.calls] == [
        f"entrelab-bar-batch-{batch.id}-vat-100-invoice_items-1", f"entrelab-bar-batch-{batch.id}-vat-200-invoice_items-1"]
    assert [(s["amount"], fake_stripe.objects[s["tax_rates[0]"]]["percentage"]) for s in sent_all] == [("700", 10.0), ("450", 20.0)]
    sent = sent_all[0]
    assert (sent["customer"], sent["subscription"], sent["currency"]) == ("cus_bar1", "sub_cus_bar1", "eur")
    assert all(s["metadata[bar_batch_id]"] == str(batch.id) and s["metadata[entrelab_booked]"] == "1" for s in sent_all)

    invoice = {"id": "in_bar1", "object": "invoice", "status": "paid", "customer": "cus_bar1",
               "lines": {"object": "list", "has_more": False, "data": [
                   {"id": "il_1", "object": "line_item", "amount": 15000, "metadata": {}},
                   {"id": "il_2", "object": "line_item", "amount": 700, "metadata": sent_metadata(sent_all[0])},
                   {"id": "il_3", "object": "line_item", "amount": 450, "metadata": sent_metadata(sent_all[1])}]}}
    fake_stripe.add(invoice)
    evt = event("invoice.paid", invoice)
    for _ in range(2):  # delivered twice: one effect
        handler = bar_handlers.HANDLERS["invoice.paid"]
        async with transaction(sessions) as session:
            assert await handler.apply(session, evt, await handler.prepare(gw, evt)) == []
    async with sessions() as session:
        paid = await session.get(Batch, batch.id)
        emails = (await session.scalars(select(Email.dedupe_key))).all()
    assert (paid.status, paid.stripe_invoice_id, paid.stripe_invoice_item_id) == ("paid", "in_bar1", "ii_bar1")
    assert emails == [f"bar-batch:{batch.id}:billed"]


async def test_a_tab_refused_half_way_is_billed_in_full_or_not_at_all(sessions, world, gw, fake_stripe):
    """Stripe takes the 10 % line and refuses the 20 % one: the first is deleted, the batch is due."""
    bar = await make_bar(sessions, world)
    await coworker(sessions, world, bar.members[0], subscription=True)
    batch = await a_batch(sessions, world, bar)
    answers = iter((httpx.Response(200, json={"id": "ii_half", "object": "invoiceitem"}),
                    httpx.Response(400, json={"error": {"type": "invalid_request_error", "message": "No such subscription"}})))
    fake_stripe.router.post(f"{BASE}/v1/invoiceitems").mock(side_effect=lambda request: next(answers))
    deleted = fake_stripe.router.delete(f"{BASE}/v1/invoiceitems/ii_half").mock(
        return_value=httpx.Response(200, json={"id": "ii_half", "object": "invoiceitem", "deleted": True}))
    assert await bill(sessions, gw, batch.id) == "due"
    assert deleted.call_count == 1
    async with sessions() as session:
        due = await session.get(Batch, batch.id)
    assert (due.status, due.stripe_invoice_item_id) == ("due", None) and "No such subscription" in due.last_error


def sent_metadata(sent: dict) -> dict:
    return {k[len("metadata["):-1]: v for k, v in sent.items() if k.startswith("metadata[")}


async def test_a_voided_invoice_makes_the_batch_due_and_an_old_event_never_moves_it_back(sessions, world):
    bar = await make_bar(sessions, world)
    batch = await a_batch(sessions, world, bar)
    line = {"id": "il_9", "amount": batch.amount, "metadata": {"bar_batch_id": str(batch.id)}}
    for status in ("open", "void", "open"):
        async with transaction(sessions) as session:
            await record_invoice(session, {"id": "in_9", "status": status, "lines": {"data": [line]}})
    async with sessions() as session:
        assert (await session.get(Batch, batch.id)).status == "due"


async def test_a_card_on_file_is_charged_off_session_and_a_decline_leaves_the_tab_to_pay_online(
        sessions, world, gw, fake_stripe):
    bar = await make_bar(sessions, world)
    await coworker(sessions, world, bar.members[0])
    await coworker(sessions, world, bar.members[1], customer="cus_bar2")
    for member in bar.members:
        await sell(sessions, bar, "Sandwich", member=member)
    first, second = await cut_off(sessions, key="2026-11", site_ids=[world.site_id])
    fake_stripe.router.get(url__regex=rf"^{BASE}/v1/customers/cus_bar\d(\?.*)?$").mock(return_value=httpx.Response(
        200, json={"id": "cus_bar1", "object": "customer", "invoice_settings": {"default_payment_method": {
            "id": "pm_card_1", "object": "payment_method", "type": "card", "card": {"brand": "visa", "last4": "4242"}}}}))

    def charge_card(request: httpx.Request) -> httpx.Response:
        sent = form(request)
        if sent["customer"] == "cus_bar2":
            return httpx.Response(402, json={"error": {"type": "card_error", "code": "card_declined",
                                                       "decline_code": "insufficient_funds", "message": "Your card was declined."}})
        pi = payment_intent(amount=int(sent["amount"]), metadata=sent_metadata(sent))
        return httpx.Response(200, json={**pi, "customer": sent["customer"], "payment_method": sent["payment_method"]})

    route = fake_stripe.router.post(f"{BASE}/v1/payment_intents").mock(side_effect=charge_card)
    assert await billing_job(sessions, None, gw) == 2
    sent = [form(c.request) for c in route.calls]
    assert [(s["customer"], s["off_session"], s["confirm"], s["payment_method"]) for s in sent] == [
        ("cus_bar1", "true", "true", "pm_card_1"), ("cus_bar2", "true", "true", "pm_card_1")]
    assert [c.request.headers["idempotency-key"] for c in route.calls] == [
        f"entrelab-bar-batch-{first}-payment_intents-1", f"entrelab-bar-batch-{second}-payment_intents-1"]
    async with sessions() as session:
        paid, due = await session.get(Batch, first), await session.get(Batch, second)
        emails = (await session.scalars(select(Email.dedupe_key))).all()
    assert (paid.status, due.status) == ("paid", "due")
    assert "card_declined" in due.last_error and sorted(emails) == sorted([f"bar-batch:{first}:paid", f"bar-batch:{second}:due"])
    assert await billing_job(sessions, None, gw) == 0 and len(route.calls) == 2


async def test_without_a_stripe_customer_the_tab_is_due_from_the_member_area(sessions, world, gw):
    bar = await make_bar(sessions, world)
    batch = await a_batch(sessions, world, bar)
    assert await bill(sessions, gw, batch.id) == "due"


async def test_a_member_who_leaves_is_settled_by_card_even_with_a_subscription(sessions, world, gw, fake_stripe):
    bar = await make_bar(sessions, world)
    await coworker(sessions, world, bar.members[0], subscription=True)
    await sell(sessions, bar, "Thé")
    async with transaction(sessions) as session:
        batch = await settle_departure(session, await site_of(session, world), bar.members[0])
    async with transaction(sessions) as session:
        with pytest.raises(BarError, match="Rien à régler"):
            await settle_departure(session, await site_of(session, world), bar.members[0])
    fake_stripe.router.get(f"{BASE}/v1/customers/cus_bar1").mock(return_value=httpx.Response(
        200, json={"id": "cus_bar1", "object": "customer", "invoice_settings": {"default_payment_method": None}}))
    fake_stripe.router.get(f"{BASE}/v1/customers/cus_bar1/payment_methods").mock(return_value=httpx.Response(
        200, json={"object": "list", "data": [{"id": "pm_saved", "object": "payment_method"}], "has_more": False}))
    route = fake_stripe.router.post(f"{BASE}/v1/payment_intents").mock(side_effect=lambda request: httpx.Response(
        200, json=payment_intent(amount=200, metadata=sent_metadata(form(request)), status="processing")))
    assert await bill(sessions, gw, batch.id) == "billed"
    assert form(route.calls[0].request)["payment_method"] == "pm_saved"


async def test_a_credit_is_carried_forward_and_a_zero_tab_is_closed_empty(sessions, world):
    bar = await make_bar(sessions, world)
    line = await sell(sessions, bar, "Café")
    await cut_off(sessions, key="2026-10", site_ids=[world.site_id])
    from funding.bar.till import cancel

    async with transaction(sessions) as session:
        await cancel(session, await site_of(session, world), line_id=line.id, reason="Offert par la maison")
    assert await cut_off(sessions, key="2026-11", site_ids=[world.site_id]) == []  # -1,50: carried forward
    await sell(sessions, bar, "Café")
    [batch_id] = await cut_off(sessions, key="2026-12", site_ids=[world.site_id])
    async with sessions() as session:
        batch = await session.get(Batch, batch_id)
    assert (batch.status, batch.amount, batch.line_count) == ("empty", 0, 2)


async def test_a_tab_s_day_entry_and_its_settlement_meet_on_the_member_s_411_account(
        engine, sessions, world, gw, fake_stripe):
    bar = await make_bar(sessions, world)
    member = await coworker(sessions, world, bar.members[0])
    batch = await a_batch(sessions, world, bar)
    async with transaction(sessions) as session:
        await close_day(session, await site_of(session, world))
    meta = {"purpose": "bar_tab", "bar_batch_id": str(batch.id), "site_id": str(world.site_id)}
    ch_id = sid("ch")
    pi = payment_intent(amount=batch.amount, metadata=meta, latest_charge=ch_id)
    txn = balance_transaction(amount=batch.amount, fee=42, source=ch_id)
    ch = charge(amount=batch.amount, txn=txn["id"], metadata=meta, payment_intent=pi["id"], charge_id=ch_id)
    fake_stripe.add(pi, ch, txn)
    await deliver(engine, event("payment_intent.succeeded", pi), event("charge.succeeded", ch))
    await drain(sessions, gw)
    async with sessions() as session:
        rows = (await session.execute(select(Entry.journal_code, Posting.account_number, Posting.aux_code, Posting.amount)
                                      .join(Entry, Entry.id == Posting.entry_id).where(Posting.account_number == "411")
                                      .order_by(Entry.number))).all()
        settled = await session.get(Batch, batch.id)
    assert rows == [("CA", "411", member.aux_code, 1150), ("ST", "411", member.aux_code, -1150)]
    assert settled.status == "paid" and settled.stripe_payment_intent_id == pi["id"]


async def test_a_walk_in_paid_by_card_is_booked_per_vat_rate_and_marks_the_ticket_paid(engine, sessions, world, gw,
                                                                                       fake_stripe):
    bar = await make_bar(sessions, world)
    async with transaction(sessions) as session:
        ticket = await open_ticket(session, await site_of(session, world))
    for product in ("Sandwich", "Bière locale", "Jus de pomme d'Auvergne"):
        await sell(sessions, bar, product, ticket=ticket.id)
    async with transaction(sessions) as session:
        payment = Payment(org_id=world.org_id, site_id=world.site_id, purpose="bar_sale", amount=1300, currency="EUR",
                          description="Bar", status="open", extra=json.dumps({"ticket_id": str(ticket.id)}))
        session.add(payment)
    meta = {"purpose": "bar_sale", "ticket_id": str(ticket.id), "payment_id": str(payment.id)}
    ch_id = sid("ch")
    pi = payment_intent(amount=1300, metadata=meta, latest_charge=ch_id)
    txn = balance_transaction(amount=1300, fee=45, source=ch_id)
    ch = charge(amount=1300, txn=txn["id"], metadata=meta, payment_intent=pi["id"], charge_id=ch_id)
    cs = checkout_session(amount=1300, metadata=meta, payment_intent=pi["id"])
    fake_stripe.add(pi, ch, txn, cs)
    await deliver(engine, event("checkout.session.completed", cs), event("charge.succeeded", ch))
    await drain(sessions, gw)
    async with sessions() as session:
        entry = await session.scalar(select(Entry).where(Entry.source_key == f"stripe:{txn['id']}"))
        postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
        paid = await session.get(Ticket, ticket.id)
    assert [(p.account_number, p.amount) for p in postings] == [
        ("5115", 1255), ("627", 45), ("707", -375), ("445711", -75), ("707", -500), ("445712", -50),
        ("707", -284), ("445713", -16)]
    assert paid.status == "paid" and paid.payment_id == payment.id
    async with transaction(sessions) as session:
        from funding.bar.till import cancel

        with pytest.raises(BarError, match="déjà payée"):
            await cancel(session, await site_of(session, world), line_id=1, reason="x")


async def test_the_payment_intent_s_webhook_and_the_synchronous_answer_settle_the_batch_once(sessions, world, gw,
                                                                                           fake_stripe):
    from funding.bar.settlement import apply_payment_intent

    bar = await make_bar(sessions, world)
    batch = await a_batch(sessions, world, bar)
    async with transaction(sessions) as session:
        await record_invoice(session, {"id": "in_x", "status": "open", "lines": {"data": []}})  # unrelated invoice
    pi = payment_intent(amount=batch.amount, metadata={"purpose": "bar_tab", "bar_batch_id": str(batch.id)})
    fake_stripe.add(pi)
    evt = event("payment_intent.succeeded", pi)
    handler = bar_handlers.HANDLERS["payment_intent.succeeded"]
    for _ in range(2):  # the webhook, delivered twice, before the charge's own answer is recorded
        async with transaction(sessions) as session:
            await handler.apply(session, evt, await handler.prepare(gw, evt))
    async with sessions() as session:
        first = await session.get(Batch, batch.id)
    assert await apply_payment_intent(sessions, pi) == "paid"
    async with sessions() as session:
        again = await session.get(Batch, batch.id)
    assert (first.status, first.paid_at) == (again.status, again.paid_at) == ("paid", first.paid_at)
    assert again.stripe_payment_intent_id == pi["id"] and again.method == "payment_intent"
    async with sessions() as session:  # the member hears of it once (issue 17: every money move mails)
        mails = (await session.execute(select(Email.dedupe_key, Email.subject, Email.body_text))).all()
    assert [m.dedupe_key for m in mails] == [f"bar-batch:{batch.id}:paid"]
    assert "réglée" in mails[0].subject
