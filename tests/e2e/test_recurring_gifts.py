"""A monthly gift through the sandbox: Checkout in subscription mode, three months on the
sandbox's clock, each instalment booked once as a gift with Stripe's fee; stopped by the donor;
its amount changed and a month skipped by the donor."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import func, select

from funding.campaigns.models import TaxReceipt
from funding.clock import local_day
from funding.db import transaction
from funding.donations import annual
from funding.donations.models import GiftStatus, RecurringGift
from funding.payments.models import Payment, StripeRequest
from tests.support.e2e import (
    DAY,
    FAILS,
    GOOD,
    HOUR,
    advance,
    books_match_stripe,
    db_call,
    donate,
    pay_on_hosted_page,
    sandbox_get,
    sandbox_post,
    wait_for,
)
from tests.support.gifts import (
    change_emails,
    change_gift_card,
    donor_client,
    gift_action,
    gift_changes,
    gift_facts,
    give_recurring,
    instalments_booked,
    subscribe,
)
from tests.support.web import csrf_of
from tests.support.world import make_world


def test_a_monthly_gift_for_three_months_books_each_instalment_once_with_its_fee(e2e):
    world = db_call(e2e.settings, make_world)
    thanks = subscribe(e2e, world, other="20")
    assert thanks.status_code == 200 and "Merci" in thanks.text and "20,00" in thanks.text

    facts = instalments_booked(e2e, 1)
    books_match_stripe(e2e)
    assert facts.gift.status == GiftStatus.ACTIVE and facts.gift.amount == 2000 and facts.gift.interval == "month"
    sub = sandbox_get(e2e, f"/v1/subscriptions/{facts.gift.stripe_subscription_id}")
    assert sub["metadata"]["purpose"] == "recurring_gift" and sub["items"]["data"][0]["price"]["unit_amount"] == 2000

    for month in (2, 3):
        advance(e2e, 31 * DAY + 2 * HOUR)
        facts = instalments_booked(e2e, month)
        [eur] = books_match_stripe(e2e)  # payouts included: each month's took the previous instalments to the bank
        assert eur.currency == "EUR"

    assert [i.amount for i in facts.instalments] == [2000, 2000, 2000]
    assert len({i.stripe_invoice_id for i in facts.instalments}) == 3
    assert len(facts.entries) == 3  # one entry per instalment, whatever the events' order and repeats
    for _piece, key, lines in facts.entries:
        txn = sandbox_get(e2e, f"/v1/balance_transactions/{key.removeprefix('stripe:')}")
        assert txn["amount"] == 2000 and txn["fee"] > 0
        assert lines == [("5115", txn["net"]), ("627", txn["fee"]), ("75411", -2000)]
    assert facts.emails == [f"recurring-gift:{facts.gift.id}:thanks"]  # thanked once, not per instalment

    # Every webhook delivered: still one entry per instalment.
    wait_for(lambda: all((e.get("sandbox_delivery") or {}).get("delivered_at")
                         for e in sandbox_get(e2e, "/_admin/events")["data"]), what="every webhook delivered")
    assert len(gift_facts(e2e).entries) == 3

    # The annual receipt of each year the instalments fall in (three months may straddle a new year):
    # one per donor and year, for the year's total, numbered in the one series.
    years: dict[int, int] = {}
    for instalment in facts.instalments:
        years[local_day(instalment.paid_at).year] = years.get(local_day(instalment.paid_at).year, 0) + instalment.amount

    async def issue(sessions):
        issued = []
        for year in sorted(years):
            async with transaction(sessions) as session:
                issued += [(r.annual_year, r.amount, r.donor_email, r.number)
                           for r in await annual.issue_year(session, year, now=dt.datetime(year + 1, 1, 10, 9))]
        return issued

    assert db_call(e2e.settings, issue) == [(year, total, "ana@example.org", 1) for year, total in sorted(years.items())]
    assert db_call(e2e.settings, issue) == []  # once


def test_a_failing_card_emails_the_donor_per_attempt_and_the_donor_stops_the_gift(e2e):
    world = db_call(e2e.settings, make_world)
    subscribe(e2e, world, other="15", email="lea@example.org", name="Léa Roche")
    gift = instalments_booked(e2e, 1).gift
    with donor_client(e2e, "lea@example.org") as client:
        space = client.get("/mes-contributions")
        assert space.status_code == 200 and "Dons réguliers" in space.text and "15,00" in space.text
        change_gift_card(e2e, client, gift.id, FAILS)
        advance(e2e, 31 * DAY + 2 * HOUR)

        def failed():
            facts = gift_facts(e2e)
            return facts if facts.gift.status == "past_due" and any(":failed:1" in e for e in facts.emails) else None

        facts = wait_for(failed, timeout=30, what="the failed attempt's email")
        assert len(facts.instalments) == 1 and len(facts.entries) == 1  # nothing paid, nothing booked
        advance(e2e, 3 * DAY + HOUR)  # Stripe's retry fails again: one more email, for attempt 2
        wait_for(lambda: any(":failed:2" in e for e in gift_facts(e2e).emails), timeout=30, what="the second attempt's email")

        stopped = client.post(f"/mes-contributions/dons-reguliers/{gift.id}/arreter",
                              data={"csrf_token": csrf_of(client.get("/mes-contributions").text)})
        assert stopped.status_code == 303
        assert "plus rien ne sera prélevé" in client.get("/mes-contributions").text
    assert gift_facts(e2e).gift.status == GiftStatus.CANCELED
    assert sandbox_get(e2e, f"/v1/subscriptions/{gift.stripe_subscription_id}")["status"] == "canceled"
    advance(e2e, 62 * DAY)
    facts = gift_facts(e2e)
    assert len(facts.instalments) == 1 and len(facts.entries) == 1
    failures = [e for e in facts.emails if ":failed:" in e]
    assert sorted(e.rsplit(":", 1)[-1] for e in failures) == ["1", "2"]  # once per attempt, never twice


def test_bad_recurring_input_is_refused_and_creates_nothing(e2e):
    world = db_call(e2e.settings, make_world)
    with httpx.Client(base_url=e2e.url, timeout=20) as client:
        chosen = client.get(f"/soutenir?site={world.site_slug}&frequence=month")  # the link on a site's coworking page
        assert 'name="frequency" value="month" checked' in chosen.text
        low = give_recurring(client, world, other="4")  # below 5 € a month
        assert low.status_code == 400 and "compris entre" in low.text
        low_year = give_recurring(client, world, frequency="year", other="15")  # below 20 € a year
        assert low_year.status_code == 400
        odd = give_recurring(client, world, frequency="weekly", other="50")
        assert odd.status_code == 400 and "mensuel ou annuel" in odd.text
        foreign = give_recurring(client, world, other="20 USD")
        assert foreign.status_code == 400

    async def nothing(sessions):
        async with sessions() as session:
            return (await session.scalar(select(func.count(RecurringGift.id))),
                    await session.scalar(select(func.count(StripeRequest.id))))

    assert db_call(e2e.settings, nothing) == (0, 0)
    assert sandbox_get(e2e, "/v1/checkout/sessions")["data"] == []


def past_next_billing(e2e, sub_path: str) -> None:
    """The sandbox's clock two hours past the subscription's next billing date."""
    end = sandbox_get(e2e, sub_path)["items"]["data"][0]["current_period_end"]
    advance(e2e, end - e2e.sandbox.now() + 2 * HOUR)


def test_the_donor_changes_the_amount_then_skips_a_month_and_only_paid_instalments_are_booked(e2e):
    world = db_call(e2e.settings, make_world)
    subscribe(e2e, world, other="20")
    gift = instalments_booked(e2e, 1).gift
    books_match_stripe(e2e)
    sub_path = f"/v1/subscriptions/{gift.stripe_subscription_id}"

    with donor_client(e2e, "ana@example.org") as client:
        space = client.get("/mes-contributions").text
        assert "Changer le montant" in space and "Sauter le prochain versement" in space
        # Bad input: said clearly, and nothing changes, here or at Stripe.
        for amount, says in (("abc", "Indiquez le nouveau montant"), ("4", "compris entre"), ("20 USD", "Indiquez le nouveau montant"),
                             ("20", "déjà de")):
            refused = gift_action(client, gift.id, "montant", amount=amount)
            assert refused.status_code == 303
            assert says in client.get("/mes-contributions").text, amount
        assert gift_action(client, gift.id + 1000, "montant", amount="30").status_code == 404  # no one's (or someone else's)
        assert gift_changes(e2e) == [] and gift_facts(e2e).gift.amount == 2000
        assert sandbox_get(e2e, sub_path)["items"]["data"][0]["price"]["unit_amount"] == 2000

        # 35 € from the next instalment on.
        assert gift_action(client, gift.id, "montant", amount="35").status_code == 303
        assert "votre don passe à 35,00" in client.get("/mes-contributions").text
        assert gift_facts(e2e).gift.amount == 3500
        sub = sandbox_get(e2e, sub_path)
        assert sub["items"]["data"][0]["price"]["unit_amount"] == 3500
        books_match_stripe(e2e)  # nothing booked for a change

        # Then the next instalment skipped.
        assert gift_action(client, gift.id, "sauter").status_code == 303
        page = client.get("/mes-contributions").text
        assert "ne sera pas prélevé" in page and "sauté" in page
        assert "Sauter le prochain versement" not in page  # once is enough
        skipped_at = gift_facts(e2e).gift.skipped_instalment_at
        assert skipped_at is not None
        assert sandbox_get(e2e, sub_path)["pause_collection"]["behavior"] == "void"
        books_match_stripe(e2e)

        # Three months on the sandbox's clock, to just past each billing date (a payout still in transit
        # would stand between the books and Stripe's balance): the skipped month voided, the others paid at 35 €.
        past_next_billing(e2e, sub_path)
        wait_for(lambda: any(i["status"] == "void" for i in sandbox_get(e2e, f"/v1/invoices?subscription={gift.stripe_subscription_id}")["data"]),
                 what="the skipped instalment's invoice voided")
        books_match_stripe(e2e)
        for month in (2, 3):
            past_next_billing(e2e, sub_path)
            instalments_booked(e2e, month)
            books_match_stripe(e2e)
        assert "sauté" not in client.get("/mes-contributions").text  # resumed by itself

    facts = gift_facts(e2e)
    assert facts.gift.collection_resumes_at is None and facts.gift.status == GiftStatus.ACTIVE
    assert [i.amount for i in facts.instalments] == [2000, 3500, 3500]
    invoices = list(reversed(sandbox_get(e2e, f"/v1/invoices?subscription={gift.stripe_subscription_id}")["data"]))
    assert [(i["status"], i["amount_paid"]) for i in invoices] == [("paid", 2000), ("void", 0), ("paid", 3500), ("paid", 3500)]
    void = invoices[1]
    assert void["lines"]["data"][0]["period"]["start"] == int(skipped_at.replace(tzinfo=dt.UTC).timestamp())  # the month skipped
    assert {i.stripe_invoice_id for i in facts.instalments} == {i["id"] for i in invoices if i["status"] == "paid"}
    # One entry per paid instalment, none for the skipped month.
    assert [next(amount for account, amount in lines if account == "75411") for _p, _k, lines in facts.entries] == [-2000, -3500, -3500]
    changes = gift_changes(e2e)
    assert [(c.kind, c.status) for c in changes] == [("amount", "applied"), ("skip", "applied")]
    assert facts.emails == [f"recurring-gift:{gift.id}:thanks"]
    amount_mail, skip_mail = change_emails(e2e)  # one email per change
    assert amount_mail[0] == f"recurring-gift-change:{changes[0].id}" and "35,00" in amount_mail[1]
    assert skip_mail[0] == f"recurring-gift-change:{changes[1].id}" and "ne sera pas prélevé" in skip_mail[2]

    # The annual receipts sum what was paid: 20 + 35 + 35, the skipped month counting for nothing.
    years: dict[int, int] = {}
    for instalment in facts.instalments:
        years[local_day(instalment.paid_at).year] = years.get(local_day(instalment.paid_at).year, 0) + instalment.amount

    async def issue(sessions):
        issued = []
        for year in sorted(years):
            async with transaction(sessions) as session:
                issued += [(r.annual_year, r.amount) for r in await annual.issue_year(session, year, now=dt.datetime(year + 1, 1, 10, 9))]
        return issued

    receipts = db_call(e2e.settings, issue)
    assert receipts == sorted(years.items()) and sum(amount for _year, amount in receipts) == 9000


def test_a_one_off_gift_joins_the_annual_receipt_and_a_later_refund_corrects_it(e2e):
    """Ana gives 20 € a month and 50 € once on /soutenir: the one-off gets its receipt at once; in
    January one receipt states both (the one-off's voided, naming it); a refund of 20 € of the
    one-off through Stripe afterwards voids it and the corrected one states 50 €."""
    world = db_call(e2e.settings, make_world)
    subscribe(e2e, world, other="20")
    facts = instalments_booked(e2e, 1)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        paid = pay_on_hosted_page(client, donate(client, world, amount="50"), GOOD, email=None)
        assert paid.status_code in (302, 303), paid.text[:300]

    async def one_off(sessions):
        async with sessions() as session:
            payment = await session.scalar(select(Payment).where(Payment.purpose == "donation", Payment.status == "paid"))
            if payment is None:
                return None
            return payment, await session.scalar(select(TaxReceipt).where(TaxReceipt.payment_id == payment.id))

    payment, own = wait_for(lambda: db_call(e2e.settings, one_off), what="the one-off gift paid, with its receipt")
    assert own is not None and own.amount == 5000 and own.voided_at is None
    year = local_day(facts.instalments[0].paid_at).year
    assert local_day(payment.paid_at).year == year  # paid minutes apart (the test never runs across a new year's midnight)

    async def january(sessions):
        async with transaction(sessions) as session:
            return await annual.issue_year(session, year, now=dt.datetime(year + 1, 1, 10, 9))

    (receipt,) = db_call(e2e.settings, january)
    assert receipt.amount == 2000 + 5000

    async def receipts_of_year(sessions):
        async with sessions() as session:
            return (await session.scalars(select(TaxReceipt).where(TaxReceipt.org_id == world.org_id).order_by(TaxReceipt.id))).all()

    before = db_call(e2e.settings, receipts_of_year)
    assert [(r.payment_id, r.annual_year, r.voided_at is None, r.replaced_by_id) for r in before] == [
        (payment.id, None, False, receipt.id), (None, year, True, None)]

    sandbox_post(e2e, "/v1/refunds", {"payment_intent": payment.payment_intent_id, "amount": "2000"})
    after = wait_for(lambda: (rows := db_call(e2e.settings, receipts_of_year)) and len(rows) == 3 and rows,
                     what="the annual receipt corrected after the refund")
    assert [(r.annual_year, r.amount, r.voided_at is None, r.revision) for r in after[1:]] == [(year, 7000, False, 1), (year, 5000, True, 2)]
    assert after[1].void_reason == "remboursement de 20,00\xa0€"
    books_match_stripe(e2e)
