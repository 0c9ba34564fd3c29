"""Coworking paid by SEPA Direct Debit through the sandbox: a debit is ``processing`` for 5
business days. A new member has access from the Checkout's completion; a renewal debit in flight
keeps access; a late failure ends a first subscription (its sale reversed) or puts a renewal past
due (grace); a dispute after settlement is booked. The books equal Stripe's balance at every step."""

from __future__ import annotations

import datetime as dt
import re

from funding.clock import local_date
from funding.coworking.lifecycle import access_of
from tests.support.e2e import (
    DAY,
    HOUR,
    SEPA_DISPUTED,
    SEPA_FAILS,
    SEPA_OK,
    advance,
    arm_sepa_failure,
    books_match_stripe,
    db_call,
    facts,
    join,
    join_by_sepa,
    member_client,
    replace_by_sepa,
    settled,
    setup,
    wait_for,
)

SETTLES = 8 * DAY  # 5 business days, whatever the weekday


def notice(e2e, invoice_id: str) -> str:
    """The text of the pre-notification email of an invoice's debit."""
    async def go(sessions):
        from sqlalchemy import select

        from funding.mail.models import Email

        async with sessions() as session:
            return await session.scalar(select(Email.body_text).where(Email.dedupe_key.like(f"coworking:{invoice_id}:debit:%")))

    return db_call(e2e.settings, go) or ""


def email_body(e2e, key: str) -> str:
    async def go(sessions):
        from sqlalchemy import select

        from funding.mail.models import Email

        async with sessions() as session:
            return await session.scalar(select(Email.body_text).where(Email.dedupe_key == key))

    return db_call(e2e.settings, go) or ""


def aux(member_id: int) -> str:
    return f"M{member_id:06d}"


def processing(e2e, member_id: int):
    def ready():
        sub, invoices, entries, emails, _ = facts(e2e, member_id)
        return (sub, invoices, entries, emails) if sub is not None and invoices and entries else None

    return wait_for(ready, timeout=30, what="the first invoice booked while its debit processes")


def test_a_desk_paid_by_sepa_processing_then_paid_then_renewed(e2e):
    world = setup(e2e)
    member_id = join_by_sepa(e2e, world, "flex", "Lucie Ferrand", "lucie@example.org", SEPA_OK)
    sub, invoices, entries, _emails = processing(e2e, member_id)
    assert sub.status == "incomplete"
    wait_for(lambda: any(f"{invoices[0].stripe_invoice_id}:debit:" in e for e in facts(e2e, member_id)[3]), timeout=30,
             what="the pre-notification of the first debit")
    assert re.search(r"Votre prochain prélèvement de 180,00\s€ le \d\d/\d\d/\d{4}", notice(e2e, invoices[0].stripe_invoice_id))
    access = access_of(sub)
    assert access.granted and access.reason == "processing"  # the door opens while the bank answers
    assert invoices[0].status == "open" and invoices[0].amount_remaining == 18000
    assert [e[0] for e in entries] == ["VT"]  # sold (411), nothing on 5115 until the debit settles
    books_match_stripe(e2e)
    with member_client(e2e, member_id) as client:
        home = client.get("/membre").text
        assert 'status-processing">prélèvement en cours' in home and "Régler la facture" not in home
        assert "Prélèvement SEPA" in home and "2606" in home and "Référence du mandat" in home

    advance(e2e, SETTLES)
    settled(e2e, member_id, 1)
    wait_for(lambda: facts(e2e, member_id)[0].status == "active", timeout=30, what="active once the debit settled")
    sub, _invoices, entries, _emails, _ = facts(e2e, member_id)
    assert access_of(sub).granted and [e[0] for e in entries] == ["VT", "ST"]
    assert entries[1][2][-1] == ("411", aux(member_id), -18000)
    books_match_stripe(e2e)

    # 7 days before the renewal (Stripe's invoice.upcoming), the member is told its amount and day.
    end = int(sub.current_period_end.replace(tzinfo=dt.UTC).timestamp())
    advance(e2e, end - 6 * DAY - e2e.sandbox.now())
    key = f"sepa-notice:{sub.stripe_subscription_id}:{end}"
    wait_for(lambda: key in facts(e2e, member_id)[3], timeout=30, what="the renewal's debit announced days before")
    assert re.search(rf"Votre abonnement « [^»]+ » sera renouvelé le {local_date(end + HOUR):%d/%m/%Y} : 180,00\s€ seront "
                     r"prélevés ce jour-là\.", email_body(e2e, key))

    # The renewal: debited at the period's end, processing for days: still active, access goes on.
    advance(e2e, 6 * DAY + 2 * HOUR)

    def renewal_processing():
        sub, invoices, entries, emails, _ = facts(e2e, member_id)
        return (sub, invoices, entries, emails) if len(invoices) >= 2 and len(entries) >= 3 else None

    sub, invoices, entries, _emails = wait_for(renewal_processing, timeout=30, what="the renewal invoice")
    assert sub.status == "active" and access_of(sub).granted
    assert invoices[-1].status == "open" and [e[0] for e in entries] == ["VT", "ST", "VT"]
    books_match_stripe(e2e)
    with member_client(e2e, member_id) as client:
        home = client.get("/membre").text
        assert 'status-processing">prélèvement en cours' in home and "Régler la facture" not in home
    advance(e2e, SETTLES)
    sub, invoices, entries, emails = settled(e2e, member_id, 2)
    assert [e[0] for e in entries] == ["VT", "ST", "VT", "ST"] and access_of(sub).granted
    books_match_stripe(e2e)
    # Announced once: days before (invoice.upcoming), not again when the debit started.
    assert any(f"{invoices[0].stripe_invoice_id}:debit:" in e for e in emails)  # the first debit: at its start
    assert not any(f"{invoices[-1].stripe_invoice_id}:debit:" in e for e in emails) and emails.count(key) == 1


def test_a_first_debit_failing_late_ends_the_access_and_reverses_the_sale(e2e):
    world = setup(e2e)
    member_id = join_by_sepa(e2e, world, "flex", "Hugo Besson", "hugo@example.org", SEPA_FAILS)
    sub, _invoices, entries, _emails = processing(e2e, member_id)
    assert access_of(sub).granted and [e[0] for e in entries] == ["VT"]
    books_match_stripe(e2e)
    advance(e2e, SETTLES)

    def expired():
        sub, invoices, entries, emails, _ = facts(e2e, member_id)
        done = sub.status == "incomplete_expired" and invoices[0].status == "void" and len(entries) >= 2
        return (sub, invoices, entries, emails) if done and any(e.endswith(":first-debit-failed") for e in emails) else None

    sub, _invoices, entries, emails = wait_for(expired, timeout=30, what="the subscription expired after the failed debit")
    assert not access_of(sub).granted
    # The sale, then its reversal: nothing owed, nothing on 5115.
    assert (len(entries) == 2 and entries[0][2] == [(a, x, -amount) for a, x, amount in entries[1][2]]) or \
        sorted(entries[0][2]) == sorted((a, x, -amount) for a, x, amount in entries[1][2])
    assert f"coworking:{sub.stripe_subscription_id}:first-debit-failed" in emails
    assert not any(e.endswith(":welcome") for e in emails)
    books_match_stripe(e2e)


def test_a_renewal_debit_failing_late_puts_the_member_past_due_with_grace(e2e):
    world = setup(e2e)
    member_id = join_by_sepa(e2e, world, "flex", "Inès Vidal", "ines@example.org", SEPA_OK)
    processing(e2e, member_id)
    advance(e2e, SETTLES)
    settled(e2e, member_id, 1)
    books_match_stripe(e2e)
    arm_sepa_failure(e2e, "insufficient_funds")
    advance(e2e, 31 * DAY + 2 * HOUR - SETTLES)
    wait_for(lambda: len(facts(e2e, member_id)[1]) >= 2, timeout=30, what="the renewal invoice")
    sub = facts(e2e, member_id)[0]
    assert sub.status == "active" and access_of(sub).granted  # processing: access goes on
    advance(e2e, SETTLES)

    def past_due():
        sub, invoices, entries, emails, _ = facts(e2e, member_id)
        done = sub.status == "past_due" and invoices[-1].status == "open" and len(entries) >= 3
        return (sub, invoices, entries, emails) if done and any(":failed:" in e for e in emails) else None

    sub, invoices, entries, _emails = wait_for(past_due, timeout=30, what="past due after the late failure")
    access = access_of(sub)
    assert access.granted and access.reason == "grace"
    assert [e[0] for e in entries] == ["VT", "ST", "VT"] and invoices[-1].amount_remaining == 18000  # still owed on 411
    books_match_stripe(e2e)


def test_a_debit_disputed_after_settlement_is_booked_by_the_dispute_path(e2e):
    world = setup(e2e)
    member_id = join_by_sepa(e2e, world, "flex", "Paul Arnaud", "paul@example.org", SEPA_DISPUTED)
    processing(e2e, member_id)
    books_match_stripe(e2e)
    advance(e2e, SETTLES)
    settled(e2e, member_id, 1)

    async def disputes(sessions):
        from sqlalchemy import func, select

        from funding.ledger.models import Entry

        async with sessions() as session:
            return await session.scalar(select(func.count()).select_from(Entry).where(Entry.label.like("Litige (fonds retenus)%")))

    wait_for(lambda: db_call(e2e.settings, disputes), timeout=30, what="the dispute booked")
    books_match_stripe(e2e)


def test_a_card_member_moves_to_sepa_and_the_renewal_is_debited(e2e):
    world = setup(e2e)
    member_id = join(e2e, world, "flex", "Nina Roux", "nina@example.org")
    settled(e2e, member_id, 1)
    home = replace_by_sepa(e2e, member_id, SEPA_OK, name="Nina Roux")
    assert "Votre nouveau moyen de paiement est enregistré" in home.replace("&#39;", "'")
    assert 'id="mandate-on-file"' in home and "2606" in home and "Référence du mandat" in home
    advance(e2e, 31 * DAY + 2 * HOUR)

    def renewal():
        sub, invoices, entries, emails, _ = facts(e2e, member_id)
        ready = len(invoices) >= 2 and len(entries) >= 3 and any(f"{invoices[-1].stripe_invoice_id}:debit:" in e for e in emails)
        return (sub, invoices, entries) if ready else None

    sub, invoices, entries = wait_for(renewal, timeout=30, what="the renewal debited by SEPA")
    assert sub.status == "active" and access_of(sub).granted and invoices[-1].status == "open"
    books_match_stripe(e2e)
    advance(e2e, SETTLES)
    sub, invoices, entries, _emails = settled(e2e, member_id, 2)
    assert [e[0] for e in entries] == ["VT", "ST", "VT", "ST"]
    books_match_stripe(e2e)
