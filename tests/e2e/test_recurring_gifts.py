"""A monthly gift through the sandbox: Checkout in subscription mode, three months on the
sandbox's clock, each instalment booked once as a gift with Stripe's fee; stopped by the donor."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import func, select

from funding.clock import local_day
from funding.db import transaction
from funding.donations import annual
from funding.donations.models import GiftStatus, RecurringGift
from funding.payments.models import StripeRequest
from tests.support.e2e import DAY, FAILS, HOUR, advance, books_match_stripe, db_call, sandbox_get, wait_for
from tests.support.gifts import change_gift_card, donor_client, gift_facts, give_recurring, instalments_booked, subscribe
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
