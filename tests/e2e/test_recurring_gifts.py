"""A monthly gift through the sandbox: Checkout in subscription mode, three months on the
sandbox's clock, each instalment booked once as a gift with Stripe's fee; stopped by the donor."""

from __future__ import annotations

from funding.donations.models import GiftStatus
from tests.support.e2e import DAY, HOUR, advance, db_call, sandbox_get, wait_for
from tests.support.gifts import gift_facts, instalments_booked, subscribe
from tests.support.world import make_world


def test_a_monthly_gift_for_three_months_books_each_instalment_once_with_its_fee(e2e):
    world = db_call(e2e.settings, make_world)
    thanks = subscribe(e2e, world, other="20")
    assert thanks.status_code == 200 and "Merci" in thanks.text and "20,00" in thanks.text

    facts = instalments_booked(e2e, 1)
    assert facts.gift.status == GiftStatus.ACTIVE and facts.gift.amount == 2000 and facts.gift.interval == "month"
    sub = sandbox_get(e2e, f"/v1/subscriptions/{facts.gift.stripe_subscription_id}")
    assert sub["metadata"]["purpose"] == "recurring_gift" and sub["items"]["data"][0]["price"]["unit_amount"] == 2000

    for month in (2, 3):
        advance(e2e, 31 * DAY + 2 * HOUR)
        facts = instalments_booked(e2e, month)

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
