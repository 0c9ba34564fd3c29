"""Accrual (ACCOUNTING.md §9): an invoice is in the books from the day it is issued, whatever
becomes of it — paid, left open, voided, written off, paid after a write-off — and in any
order the events arrive; a member's 411 account is always what Stripe says they owe."""

from __future__ import annotations

from sqlalchemy import func, select

from funding.ledger.models import Entry, Posting
from funding.payments.tax_rates import tax_rate_id
from tests.support.coworking import Story, line
from tests.support.stripe_objects import now
from tests.support.webhooks import deliver
from webhooks.processing import drain


async def books(sessions) -> list[tuple[str, str, str | None, list[tuple[str, int]]]]:
    """(journal, piece, source key, [(account, amount)]) of every entry, in number order."""
    async with sessions() as session:
        out = []
        for entry in (await session.scalars(select(Entry).order_by(Entry.number))).all():
            postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
            out.append((entry.journal_code, entry.piece_ref, entry.source_key, [(p.account_number, p.amount) for p in postings]))
    return out


async def balance(sessions, account: str, aux: str | None = None) -> int:
    async with sessions() as session:
        query = select(func.coalesce(func.sum(Posting.amount), 0)).where(Posting.account_number == account)
        if aux is not None:
            query = query.where(Posting.aux_code == aux)
        return int(await session.scalar(query) or 0)


async def test_a_voided_invoice_is_sold_then_reversed_in_either_order(engine, sessions, member, catalogue, gw, fake):
    story = Story(fake, member, catalogue)
    inv, _ = story.bill(status="open", attempts=0)
    voided = {**inv, "status": "void", "amount_remaining": 0,
              "status_transitions": {**inv["status_transitions"], "voided_at": now()}}
    fake.add(voided)  # Stripe holds it void: the late "finalized" event fetches that
    await deliver(engine, story.evt("invoice.voided", voided))
    await drain(sessions, gw)
    await deliver(engine, story.evt("invoice.finalized", inv))
    await drain(sessions, gw)

    entries = await books(sessions)
    key = f"stripe:{inv['id']}"
    assert [(journal, piece, source) for journal, piece, source, _ in entries] == [
        ("VT", inv["number"], key), ("VT", inv["number"], f"{key}:void")]
    assert entries[1][3] == [(account, -amount) for account, amount in entries[0][3]]  # the mirror, line by line
    async with sessions() as session:
        sale, reversal = (await session.scalars(select(Entry).order_by(Entry.number))).all()
    assert reversal.reverses_id == sale.id
    assert await balance(sessions, "411", member.aux_code) == 0 and await balance(sessions, "706") == 0


async def test_an_uncollectible_invoice_is_written_off_and_a_late_payment_reverses_the_loss(engine, sessions, member, catalogue,
                                                                                             gw, fake):
    story = Story(fake, member, catalogue)
    inv, _ = story.bill(status="open", attempts=4)
    lost = {**inv, "status": "uncollectible",
            "status_transitions": {**inv["status_transitions"], "marked_uncollectible_at": now()}}
    fake.add(lost)
    await deliver(engine, story.evt("invoice.finalized", inv), story.evt("invoice.marked_uncollectible", lost))
    await drain(sessions, gw)
    entries = await books(sessions)
    assert [(journal, source) for journal, _, source, _ in entries] == [
        ("VT", f"stripe:{inv['id']}"), ("OD", f"stripe:{inv['id']}:uncollectible")]
    # The VAT on what will never be paid is recovered; the rest is a loss; the member owes nothing in the books.
    assert entries[1][3] == [("654", 15000), ("445711", 3000), ("411", -18000)]
    assert await balance(sessions, "411", member.aux_code) == 0

    # The member pays after all (Stripe allows paying an uncollectible invoice).
    paid = {**lost, "status": "paid", "amount_paid": 18000, "amount_remaining": 0,
            "status_transitions": {**lost["status_transitions"], "paid_at": now()}}
    _pi, charge, _txn = fake.paid_invoice(paid, fee=295)
    fake.add(paid)
    for _ in range(2):  # delivered twice: booked once
        await deliver(engine, story.evt("charge.succeeded", charge), story.evt("invoice.paid", paid))
        await drain(sessions, gw)
    entries = await books(sessions)
    assert [(journal, source) for journal, _, source, _ in entries][2:] == [
        ("OD", f"stripe:{inv['id']}:recovered"), ("ST", f"stripe:{charge['balance_transaction']}")]
    assert await balance(sessions, "654") == 0 and await balance(sessions, "411", member.aux_code) == 0
    assert await balance(sessions, "706") == -15000 and await balance(sessions, "445711") == -3000


async def test_the_books_take_stripes_own_tax_figures_so_411_is_what_stripe_asks(engine, sessions, member, catalogue, gw, fake):
    """With a Tax Rate on the line, the VAT booked is Stripe's (rounded its way), not a split of ours."""
    rate = await tax_rate_id(sessions, gw, 200)
    story = Story(fake, member, catalogue)
    start, end = story.period()
    taxed = line(price_id=catalogue.price_id("flex"), amount=18001, start=start, end=end, sub_id=story.sub["id"])
    taxed["taxes"] = [{"amount": 3000, "tax_behavior": "inclusive", "tax_rate_details": {"tax_rate": rate},
                       "taxability_reason": "standard_rated", "taxable_amount": 15001, "type": "tax_rate_details"}]
    bar = line(price_id=None, amount=550, start=start, end=end, sub_id=story.sub["id"], invoice_item="ii_bar",
               metadata={"entrelab_booked": "1", "vat_rate": "100"})
    inv, _ = story.bill(status="open", attempts=1, lines=[taxed, bar])
    await deliver(engine, story.evt("invoice.finalized", inv))
    await drain(sessions, gw)
    [(_, _, _, sale)] = await books(sessions)
    assert sale == [("411", 18001), ("445711", -3000), ("706", -15001)]  # the bar line was booked at the till
    assert await balance(sessions, "411", member.aux_code) == inv["amount_remaining"] - 550


async def test_a_write_off_spreads_over_the_invoices_vat_rates(engine, sessions, member, catalogue, gw, fake):
    story = Story(fake, member, catalogue)
    start, end = story.period()
    desk = line(price_id=catalogue.price_id("flex"), amount=18000, start=start, end=end, sub_id=story.sub["id"])
    bar = line(price_id=None, amount=1100, start=start, end=end, sub_id=story.sub["id"], invoice_item="ii_bar",
               metadata={"entrelab_booked": "1", "vat_rate": "100"})
    inv, _ = story.bill(status="open", attempts=4, lines=[desk, bar])
    lost = {**inv, "status": "uncollectible"}
    fake.add(lost)
    await deliver(engine, story.evt("invoice.marked_uncollectible", lost))
    await drain(sessions, gw)
    writeoff = (await books(sessions))[-1][3]
    assert writeoff == [("654", 15000 + 1000), ("445711", 3000), ("445712", 100), ("411", -19100)]
