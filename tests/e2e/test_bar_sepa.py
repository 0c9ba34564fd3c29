"""A bar tab debited by SEPA Direct Debit through the sandbox (issue 18): a member whose Stripe
customer pays by a bank account with an active mandate is debited off session; the debit is in
transit for 5 business days (the batch neither paid nor due, the receivable open), then settles;
or the bank refuses it late: the batch is due, the member is told why once and pays from their
area by card. The books equal Stripe's balance at every step."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from funding.auth.models import User
from funding.bar.closings import close_day
from funding.bar.models import Batch
from funding.bar.settlement import bill, cut_off
from funding.db import transaction
from funding.ledger.models import Entry, Posting
from funding.mail.models import Email
from funding.orgs.models import Site
from funding.stripe_gateway import StripeGateway
from tests.support.bar import make_bar, sell
from tests.support.e2e import (
    SEPA_OK,
    advance,
    arm_sepa_failure,
    books_match_stripe,
    db_call,
    member_client,
    sandbox_get,
    wait_for,
)
from tests.support.world import make_world

DAY = 86_400
SETTLES = 8 * DAY  # 5 business days, whatever the weekday


async def member_paying_by_sepa(sessions, gw, world, user_id: int, *, default: bool = True):
    """A coworking member whose Stripe customer has a bank account with an active SEPA mandate
    (set up as the member area's "moyen de paiement" Checkout does), as its default or not (a
    former desk member: the mandate was their subscription's)."""
    from funding.coworking.members import Details, enrol
    from funding.coworking.service import ensure_customer

    async with transaction(sessions) as session:
        user = await session.get(User, user_id)
        member, _ = await enrol(session, await session.get(Site, world.site_id), Details(name=user.name, email=user.email))
    customer = await ensure_customer(sessions, gw, member.id)
    pm = await gw.create("payment_methods", {"type": "sepa_debit", "sepa_debit": {"iban": SEPA_OK},
                                             "billing_details": {"name": user.name, "email": user.email}},
                         key=f"e2e-pm-{member.id}")
    await gw.create("setup_intents", {
        "customer": customer, "payment_method": pm["id"], "confirm": True, "usage": "off_session",
        "allowed_payment_method_types": ["sepa_debit"],
        "mandate_data": {"customer_acceptance": {"type": "online", "online": {"ip_address": "203.0.113.9",
                                                                               "user_agent": "e2e"}}}},
        key=f"e2e-seti-{member.id}")
    if default:
        await gw.call("customers", "update", customer, params={"invoice_settings": {"default_payment_method": pm["id"]}})
    return member


def tab_billed(e2e, *, default: bool = True):
    """A member paying by SEPA runs a tab of 9,00 €; the day is closed; the cut-off bills it."""
    async def go(sessions):
        world = await make_world(sessions)
        bar = await make_bar(sessions, world)
        gw = StripeGateway(e2e.settings)
        try:
            member = await member_paying_by_sepa(sessions, gw, world, bar.members[0], default=default)
            for product in ("Café", "Thé", "Sandwich"):
                await sell(sessions, bar, product)
            async with transaction(sessions) as session:
                await close_day(session, await session.get(Site, world.site_id), closed_by="e2e")
            [batch_id] = await cut_off(sessions, key="2026-11", site_ids=[world.site_id])
            return member, batch_id, await bill(sessions, gw, batch_id)
        finally:
            await gw.aclose()

    return db_call(e2e.settings, go)


def state(e2e, batch_id: int, aux_code: str):
    """The batch, the member's 411 account per journal, and the emails about the batch."""
    async def go(sessions):
        async with sessions() as session:
            batch = await session.get(Batch, batch_id)
            rows = (await session.execute(
                select(Entry.journal_code, func.sum(Posting.amount)).join(Entry, Entry.id == Posting.entry_id)
                .where(Posting.account_number == "411", Posting.aux_code == aux_code)
                .group_by(Entry.journal_code).order_by(Entry.journal_code))).all()
            mails = (await session.execute(select(Email.dedupe_key, Email.body_text)
                                           .where(Email.dedupe_key.like(f"bar-batch:{batch_id}:%")).order_by(Email.id))).all()
            return batch, [tuple(r) for r in rows], {key: body for key, body in mails}

    return db_call(e2e.settings, go)


def test_a_tab_debited_by_sepa_is_in_transit_for_days_then_paid(e2e):
    member, batch_id, status = tab_billed(e2e)
    assert status == "billed"
    batch, rows, mails = state(e2e, batch_id, member.aux_code)
    assert batch.method == "payment_intent" and batch.stripe_payment_intent_id.startswith("pi_")
    assert rows == [("CA", 900)]  # in transit: the receivable stays open, nothing on 5115
    assert re.search(r"Elle sera prélevée le \d\d/\d\d/\d{4} sur le compte bancaire de votre\s+mandat SEPA",
                     mails[f"bar-batch:{batch_id}:debit"])
    books_match_stripe(e2e)

    advance(e2e, SETTLES)

    def paid():
        batch, rows, mails = state(e2e, batch_id, member.aux_code)
        return (batch, rows, mails) if batch.status == "paid" and len(rows) == 2 else None

    batch, rows, mails = wait_for(paid, timeout=30, what="the debit settled and booked")
    assert rows == [("CA", 900), ("ST", -900)]  # the member's account is back to zero
    assert "prélèvement SEPA" in mails[f"bar-batch:{batch_id}:paid"]
    books_match_stripe(e2e)


def test_a_tab_debit_failing_late_makes_it_due_and_the_member_is_told_why(e2e):
    member, batch_id, status = tab_billed(e2e)
    assert status == "billed"
    books_match_stripe(e2e)
    arm_sepa_failure(e2e, "insufficient_funds")
    advance(e2e, SETTLES)

    def due():
        batch, rows, mails = state(e2e, batch_id, member.aux_code)
        return (batch, rows, mails) if batch.status == "due" and f"bar-batch:{batch_id}:due" in mails else None

    batch, rows, mails = wait_for(due, timeout=30, what="the batch due after the late failure")
    assert batch.last_error == "insufficient_funds" and rows == [("CA", 900)]  # still owed
    body = mails[f"bar-batch:{batch_id}:due"]
    assert "Votre banque a rejeté le prélèvement SEPA" in body
    assert "le compte n'était pas assez approvisionné" in body.replace("&#39;", "'")
    books_match_stripe(e2e)

    with member_client(e2e, member.id) as client:  # the member area offers to pay it (by card, on Checkout)
        page = client.get("/bar/ardoise").text
        assert "à régler" in page and f"/bar/ardoise/{batch_id}/regler" in page
    assert list(mails) == [f"bar-batch:{batch_id}:debit", f"bar-batch:{batch_id}:due"]  # told once of each


def test_a_bank_account_with_a_mandate_but_not_the_default_is_debited_too(e2e):
    """No default method, no card: the customer's bank account whose mandate is active is found."""
    member, batch_id, status = tab_billed(e2e, default=False)
    assert status == "billed"
    batch, rows, mails = state(e2e, batch_id, member.aux_code)
    charge = sandbox_get(e2e, f"/v1/payment_intents/{batch.stripe_payment_intent_id}?expand[]=latest_charge")["latest_charge"]
    assert charge["status"] == "pending" and charge["payment_method_details"]["sepa_debit"]["last4"] == "2606"
    assert rows == [("CA", 900)] and f"bar-batch:{batch_id}:debit" in mails
    books_match_stripe(e2e)
