"""A monthly gift by SEPA Direct Debit through the sandbox: the first debit processing for days
(the gift shown "en cours de prélèvement", nothing booked), then each month's instalment booked once
with its fee when the bank settles it; a later debit that fails late emails the donor with the
bank's reason; a first debit that fails late ends the gift before it started."""

from __future__ import annotations

import datetime as dt

import httpx

from funding.clock import local_date, local_day
from funding.db import transaction
from funding.donations import annual
from tests.support.e2e import (
    DAY,
    HOUR,
    advance,
    books_match_stripe,
    db_call,
    pay_by_sepa_on_hosted_page,
    sandbox_get,
    wait_for,
)
from tests.support.gifts import (
    SEPA_DISPUTED,
    SEPA_FAILS,
    SEPA_SUCCEEDS,
    arm_sepa_failure,
    donor_client,
    gift_emails,
    gift_facts,
    give_recurring,
    instalments_booked,
    subscribe_sepa,
)
from tests.support.world import make_world


def _until(e2e, predicate, *, days: int = 10, what: str):
    """Day by day on the sandbox's clock until ``predicate`` holds (a debit settles after 5 business days)."""
    for _day in range(days):
        found = predicate()
        if found:
            return found
        advance(e2e, DAY)
    return wait_for(predicate, timeout=30, what=what)


def _past_next_billing(e2e, gift) -> None:
    end = sandbox_get(e2e, f"/v1/subscriptions/{gift.stripe_subscription_id}")["items"]["data"][0]["current_period_end"]
    advance(e2e, end - e2e.sandbox.now() + 2 * HOUR)


def _booked(e2e, count: int):
    def ready():
        facts = gift_facts(e2e)
        return facts if len(facts.instalments) >= count and len(facts.entries) >= count else None
    return ready


def test_a_monthly_gift_by_sepa_is_booked_only_when_each_debit_settles(e2e):
    world = db_call(e2e.settings, make_world)
    thanks = subscribe_sepa(e2e, world, other="20")
    assert thanks.status_code == 200 and "Le premier prélèvement est en cours" in thanks.text, thanks.text[:800]
    session = sandbox_get(e2e, "/v1/checkout/sessions")["data"][0]
    assert session["allowed_payment_method_types"] == ["card", "sepa_debit"] and session["payment_status"] == "unpaid"

    # The first debit processing: the gift waits (not active, not failed), nothing is booked.
    facts = wait_for(lambda: (f := gift_facts(e2e)).gift.status == "incomplete" and f, what="the gift incomplete")
    assert facts.instalments == [] and facts.entries == []
    books_match_stripe(e2e)
    gift = facts.gift
    # The first debit, not announced by invoice.upcoming: pre-notified when it starts, with its day.
    [(_key, subject, body)] = wait_for(lambda: gift_emails(e2e, "recurring-gift:in_%:debit:pi_%"), what="the first debit's notice")
    assert subject.startswith("Votre prochain prélèvement de 20,00\u00a0€ le ") and "2606" in body
    charges = sandbox_get(e2e, f"/v1/charges?customer={gift.stripe_customer_id}")["data"]
    assert [c["status"] for c in charges] == ["pending"] and charges[0]["balance_transaction"] is None
    mandate = sandbox_get(e2e, f"/v1/mandates/{charges[0]['payment_method_details']['sepa_debit']['mandate']}")
    reference = mandate["payment_method_details"]["sepa_debit"]["reference"]
    with donor_client(e2e, "ana@example.org") as client:
        space = client.get("/mes-contributions").text
        assert "en cours de prélèvement" in space and "Le premier prélèvement est en cours" in space
        assert "20041 •••• 2606" in space and reference in space  # the mandate, read from Stripe
        assert "Changer le montant" not in space and "Arrêter ce don" in space

        # Settled: the gift starts, its instalment booked with Stripe's fee.
        facts = _until(e2e, _booked(e2e, 1), what="the first instalment booked")
        books_match_stripe(e2e)
        facts = wait_for(lambda: (f := gift_facts(e2e)).gift.status == "active" and f, what="the gift active")
        assert [e for e in facts.emails if ":debit:" not in e] == [f"recurring-gift:{gift.id}:thanks"]
        space = client.get("/mes-contributions").text
        assert "en cours de prélèvement" not in space and "en cours</span>" in space and reference in space
        assert "Changer le montant" in space and "Changer de compte ou de carte" in space

    for month in (2, 3):
        # 7 days before the debit (Stripe's invoice.upcoming), the donor is told its amount and day, once.
        end = sandbox_get(e2e, f"/v1/subscriptions/{gift.stripe_subscription_id}")["items"]["data"][0]["current_period_end"]
        advance(e2e, end - 6 * DAY - e2e.sandbox.now())
        key = f"sepa-notice:{gift.stripe_subscription_id}:{end}"
        [(_key, subject, body)] = wait_for(lambda key=key: gift_emails(e2e, key), what=f"month {month}'s debit announced")
        day = local_date(end + HOUR).strftime("%d/%m/%Y")
        assert subject == f"Votre prochain prélèvement de 20,00\u00a0€ le {day}"
        assert f"Votre don mensuel n° {gift.id} de 20,00\u00a0€ sera prélevé le {day}." in body and "2606" in body
        _past_next_billing(e2e, facts.gift)
        # The month's debit processing: the gift stays active, the instalment is not booked yet.
        wait_for(lambda: any(c["status"] == "pending" for c in sandbox_get(e2e, f"/v1/charges?customer={gift.stripe_customer_id}")["data"]),
                 what=f"month {month}'s debit processing")
        books_match_stripe(e2e)
        facts = gift_facts(e2e)
        assert len(facts.instalments) == month - 1 and len(facts.entries) == month - 1 and facts.gift.status == "active"
        facts = _until(e2e, _booked(e2e, month), what=f"month {month}'s instalment booked")
        books_match_stripe(e2e)

    facts = instalments_booked(e2e, 3)
    assert len(gift_emails(e2e, "recurring-gift:in_%:debit:pi_%")) == 1  # the renewals were announced days before, once
    assert [i.amount for i in facts.instalments] == [2000, 2000, 2000]
    assert len({i.stripe_invoice_id for i in facts.instalments}) == 3
    assert len(facts.entries) == 3  # one entry per instalment
    for _piece, key, lines in facts.entries:
        txn = sandbox_get(e2e, f"/v1/balance_transactions/{key.removeprefix('stripe:')}")
        assert txn["amount"] == 2000 and txn["fee"] > 0
        assert lines == [("5115", txn["net"]), ("627", txn["fee"]), ("75411", -2000)]
    assert facts.gift.status == "active"
    assert [e for e in facts.emails if ":debit:" not in e] == [f"recurring-gift:{gift.id}:thanks"]
    assert len(gift_emails(e2e, f"sepa-notice:{gift.stripe_subscription_id}:%")) == 2  # months 2 and 3, once each


def test_a_later_debit_failing_late_emails_the_donor_with_the_reason(e2e):
    world = db_call(e2e.settings, make_world)
    subscribe_sepa(e2e, world, other="15", email="lea@example.org", name="Léa Roche", holder="Léa Roche")
    facts = _until(e2e, _booked(e2e, 1), what="the first instalment booked")
    books_match_stripe(e2e)
    gift = facts.gift

    arm_sepa_failure(e2e, "account_closed")
    _past_next_billing(e2e, gift)

    def failed():
        mails = gift_emails(e2e, "recurring-gift:in_%:failed:%")
        return mails if gift_facts(e2e).gift.status == "past_due" and mails else None

    [(key, subject, body)] = _until(e2e, failed, what="the failed debit's email")
    assert key.endswith(":failed:1") and "n'a pas pu être prélevé" in subject
    assert "ce compte bancaire est fermé" in body  # the bank's reason, in plain French
    facts = gift_facts(e2e)
    assert len(facts.instalments) == 1 and len(facts.entries) == 1  # nothing settled, nothing booked
    books_match_stripe(e2e)
    assert gift_emails(e2e, "recurring-gift:in_%:failed:%") == [(key, subject, body)]  # once for this attempt


def test_a_first_debit_failing_late_ends_the_gift_before_it_starts(e2e):
    world = db_call(e2e.settings, make_world)
    subscribe_sepa(e2e, world, SEPA_FAILS, other="30")
    gift = wait_for(lambda: (f := gift_facts(e2e)).gift.status == "incomplete" and f, what="the gift incomplete").gift

    def ended():
        facts = gift_facts(e2e)
        return facts if facts.gift.status == "incomplete_expired" and any(":not-started" in e for e in facts.emails) else None

    facts = _until(e2e, ended, what="the gift ended and the donor told")
    assert facts.instalments == [] and facts.entries == []
    books_match_stripe(e2e)
    [(key, subject, body)] = gift_emails(e2e, f"recurring-gift:{gift.id}:%")
    assert key == f"recurring-gift:{gift.id}:not-started" and "n'a pas pu démarrer" in subject
    assert "pas assez approvisionné" in body and "30,00" in body
    advance(e2e, 40 * DAY)  # no other debit, no other email
    assert gift_emails(e2e, f"recurring-gift:{gift.id}:%") == [(key, subject, body)]
    assert gift_facts(e2e).instalments == []
    with donor_client(e2e, "ana@example.org") as client:
        space = client.get("/mes-contributions").text
        assert "non abouti" in space and "ne se poursuivra pas" in space


def test_a_disputed_debit_is_booked_as_a_dispute_and_taken_off_the_year(e2e):
    world = db_call(e2e.settings, make_world)
    subscribe_sepa(e2e, world, SEPA_DISPUTED, other="25")
    facts = _until(e2e, _booked(e2e, 1), what="the first instalment booked")
    gift = facts.gift
    [charge] = sandbox_get(e2e, f"/v1/charges?customer={gift.stripe_customer_id}")["data"]
    assert charge["disputed"] and charge["status"] == "succeeded"
    books_match_stripe(e2e)  # the instalment and the dispute's withdrawal (and its fee), as Stripe holds them

    # The donor's bank took the debit back, for good: the year's receipt counts nothing of it.
    taken = wait_for(lambda: (i := gift_facts(e2e).instalments[0]).amount_refunded == 2500 and i, timeout=30, what="the instalment taken back")
    year = local_day(taken.paid_at).year

    async def issue(sessions):
        async with transaction(sessions) as session:
            return [(r.annual_year, r.amount) for r in await annual.issue_year(session, year, now=dt.datetime(year + 1, 1, 10, 9))]

    assert all(amount == 0 for _year, amount in db_call(e2e.settings, issue))


def test_an_invalid_iban_or_one_outside_sepa_is_refused_on_the_page_and_creates_nothing(e2e):
    """On Checkout's SEPA form: a wrong check digit, then a Brazilian IBAN (valid, outside SEPA):
    each refused beside the field, the form kept; no payment method, mandate or subscription at
    Stripe, the gift never starts, nothing booked. Then a good IBAN on the same page goes through."""
    world = db_call(e2e.settings, make_world)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        started = give_recurring(client, world, other="20")
        assert started.status_code == 303, started.text[:500]
        checkout = started.headers["location"]
        for iban, message in (("FR76 3000 6000 0112 3456 7890 188", "Cet IBAN est invalide"),
                              ("BR18 0036 0305 0000 1000 9795 493C 1", "ne font pas partie de la zone SEPA")):
            refused = pay_by_sepa_on_hosted_page(client, checkout, iban)
            assert refused.status_code in (200, 400) and message in refused.text, refused.text[:800]
            assert iban in refused.text  # the form keeps what was typed
        for kind in ("payment_method", "mandate", "subscription", "setup_intent", "payment_intent"):
            assert list(e2e.sandbox.store.all(kind)) == [], kind
        facts = gift_facts(e2e)
        assert facts.gift.status not in ("active", "incomplete") and facts.instalments == [] and facts.entries == []
        books_match_stripe(e2e)

        paid = pay_by_sepa_on_hosted_page(client, checkout, SEPA_SUCCEEDS)
        assert paid.status_code in (302, 303), paid.text[:500]
    wait_for(lambda: gift_facts(e2e).gift.status == "incomplete", what="the gift's first debit processing")
