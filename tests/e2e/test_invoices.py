"""Invoices end to end through the sandbox: VAT stated per rate, every finalised invoice in the
books whatever becomes of it, refunds answered by a numbered credit note, and — the test an
accountant would run — each member's 411 account equal, to the cent, to what Stripe says they owe."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from funding.coworking.credit_notes import issue_pending
from funding.coworking.models import CreditNote, Invoice, Member
from funding.coworking.plans import PlanSpec, save_plan, sync_plans
from funding.db import transaction
from funding.ledger.models import Entry, Posting
from funding.mail.models import Email
from funding.orgs.models import Site
from funding.stripe_gateway import SANDBOX_PATH, StripeGateway
from tests.support.e2e import (
    DAY,
    FAILS,
    GOOD,
    HOUR,
    advance,
    change_card,
    confirm_join,
    db_call,
    join,
    pay_on_hosted_page,
    sandbox_get,
    sandbox_post,
    settled,
    setup,
    wait_for,
)
from tests.support.web import csrf_of


def receivables(e2e) -> dict[str, tuple[int, int]]:
    """Per member's customer: (411 balance in our books, what Stripe says is due on open invoices)."""
    async def books(sessions):
        async with sessions() as session:
            members = (await session.scalars(select(Member))).all()
            out = {}
            for customer, aux in ((m.stripe_customer_id, m.aux_code) for m in members):
                out[customer] = int(await session.scalar(select(func.coalesce(func.sum(Posting.amount), 0))
                                                         .where(Posting.account_number == "411", Posting.aux_code == aux)) or 0)
            return out

    ours = db_call(e2e.settings, books)
    due = {}
    for customer in ours:
        invoices = sandbox_get(e2e, f"/v1/invoices?customer={customer}&status=open&limit=100")["data"]
        due[customer] = sum(i["amount_remaining"] for i in invoices)
    return {customer: (ours[customer], due[customer]) for customer in ours}


def test_vat_per_rate_accrual_credit_notes_and_411_equal_to_stripe(e2e):
    world = setup(e2e)
    claire = join(e2e, world, "flex", "Claire Bouchet", "claire@example.org")
    kevin = join(e2e, world, "flex", "Kévin Lopez", "kevin@example.org")
    settled(e2e, claire, 1)
    settled(e2e, kevin, 1)

    # The invoice states its VAT: 150,00 HT + 30,00 of VAT at 20 % (an inclusive Tax Rate on the line).
    async def first_invoice(sessions):
        async with sessions() as session:
            return await session.scalar(select(Invoice).where(Invoice.member_id == claire).order_by(Invoice.id))

    invoice = db_call(e2e.settings, first_invoice)
    stated = sandbox_get(e2e, f"/v1/invoices/{invoice.stripe_invoice_id}")
    assert (stated["total"], stated["total_excluding_tax"]) == (18000, 15000)
    assert [(t["amount"], t["tax_behavior"]) for t in stated["total_taxes"]] == [(3000, "inclusive")]
    assert sandbox_get(e2e, f"/v1/tax_rates/{stated['total_taxes'][0]['tax_rate_details']['tax_rate']}")["percentage"] == 20.0

    # Kévin's card fails at renewal: the open invoice is in the books (accrual), he owes it on 411.
    change_card(e2e, kevin, FAILS)
    advance(e2e, 31 * DAY + 2 * HOUR)

    def kevin_owes():
        values = receivables(e2e)
        customer = db_call(e2e.settings, lambda s: _customer(s, kevin))
        return values if values[customer] == (18000, 18000) else None

    wait_for(kevin_owes, timeout=30, what="kevin's open renewal in the books")

    # Claire is refunded 60,00 € of her first invoice: Stripe credit note, booked as the sale's mirror.
    payment = sandbox_get(e2e, f"/v1/invoice_payments?invoice={invoice.stripe_invoice_id}")["data"][0]
    sandbox_post(e2e, "/v1/refunds", {"payment_intent": payment["payment"]["payment_intent"], "amount": "6000"})

    async def called_for(sessions):
        async with sessions() as session:
            return await session.scalar(select(func.count()).select_from(CreditNote))

    wait_for(lambda: db_call(e2e.settings, called_for) == 1, timeout=30, what="the refund calling for a credit note")

    async def issue(sessions):
        gw = StripeGateway(e2e.settings)
        try:
            return await issue_pending(sessions, e2e.settings, gw)
        finally:
            await gw.aclose()

    assert db_call(e2e.settings, issue) == 1
    assert db_call(e2e.settings, issue) == 0  # once
    httpx.post(f"{e2e.url}{SANDBOX_PATH}/_admin/deliver", timeout=30)

    async def note_and_entry(sessions):
        async with sessions() as session:
            note = await session.scalar(select(CreditNote))
            entry = await session.scalar(select(Entry).where(Entry.source_key == f"stripe:{note.stripe_credit_note_id}"))
            if entry is None:
                return None
            postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
            mails = (await session.scalars(select(Email.subject).where(Email.dedupe_key.like("%credit-note")))).all()
            return note, entry, [(p.account_number, p.amount) for p in postings], list(mails)

    note, entry, postings, mails = wait_for(lambda: db_call(e2e.settings, note_and_entry), timeout=30, what="the credit note booked")
    assert note.status == "issued" and note.number == f"{invoice.number}-CN-01"
    assert (entry.journal_code, entry.piece_ref) == ("VT", note.number)
    assert postings == [("445711", 1000), ("706", 5000), ("411", -6000)]
    assert mails == [f"Avoir {note.number} sur votre facture {invoice.number}"]
    stripe_note = sandbox_get(e2e, f"/v1/credit_notes/{note.stripe_credit_note_id}")
    assert (stripe_note["total"], stripe_note["total_excluding_tax"]) == (6000, 5000)

    # Kévin's renewal is voided by the staff: reversed in the books; nothing due on either side.
    open_invoice = sandbox_get(e2e, f"/v1/invoices?customer={db_call(e2e.settings, lambda s: _customer(s, kevin))}&status=open")
    sandbox_post(e2e, f"/v1/invoices/{open_invoice['data'][0]['id']}/void", {})

    def all_square():
        values = receivables(e2e)
        return values if all(ours == due for ours, due in values.values()) and sum(o for o, _ in values.values()) == 0 else None

    values = wait_for(all_square, timeout=30, what="every member's 411 equal to Stripe's amount due")
    assert len(values) == 2


async def _customer(sessions, member_id: int) -> str:
    async with sessions() as session:
        return (await session.get(Member, member_id)).stripe_customer_id


def test_a_pass_gets_its_paid_invoice_with_vat_booked_once_from_its_payment(e2e):
    world = setup(e2e)

    async def pass_plan(sessions):
        async with transaction(sessions) as session:
            site = await session.get(Site, world.site_id)
            await save_plan(session, site, PlanSpec("journee", "Pass journée", "pass", "15,00", "20", "706", pass_days=1))
        gw = StripeGateway(e2e.settings)
        try:
            await sync_plans(sessions, gw)
        finally:
            await gw.aclose()

    db_call(e2e.settings, pass_plan)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        response = confirm_join(e2e, client, f"/coworking/{world.site_slug}/adherer/journee",
                                {"csrf_token": token, "name": "Léa Perrin", "email": "lea@example.org"})
        assert response.status_code == 303, response.text
        paid = pay_on_hosted_page(client, response.headers["location"], GOOD, name="Léa Perrin", email=None)
        assert paid.status_code in (302, 303)

    async def invoice_and_books(sessions):
        async with sessions() as session:
            invoice = await session.scalar(select(Invoice))
            if invoice is None or invoice.status != "paid":
                return None
            entries = (await session.execute(select(Entry.journal_code, Entry.source_key))).all()
            if not any(journal == "ST" for journal, _ in entries):
                return None
            return invoice, entries

    invoice, entries = wait_for(lambda: db_call(e2e.settings, invoice_and_books), timeout=30, what="the pass's invoice")
    stated = sandbox_get(e2e, f"/v1/invoices/{invoice.stripe_invoice_id}")
    assert (stated["total"], stated["total_excluding_tax"], stated["amount_paid"]) == (1800, 1500, 1800)
    # Booked once, from the payment ([ST] D 5115 · D 627 · C 706 · C 445711); the invoice adds no sale.
    assert [journal for journal, _ in entries] == ["ST"]
    assert invoice.total == 1800 and invoice.number == stated["number"]
