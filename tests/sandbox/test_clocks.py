"""Test Clocks: a customer's own simulated time (``/v1/test_helpers/test_clocks``)."""

from __future__ import annotations

import time

import pytest
import stripe

from tests.support.sandbox import card_form, submit

DAY = 86_400


def _subscribe(client, server, customer: str) -> dict:
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer,
        "line_items": [{"price_data": {"currency": "eur", "unit_amount": 2000, "product_data": {"name": "Poste nomade"},
                                       "recurring": {"interval": "month"}}, "quantity": 1}],
        "success_url": server.root + "/merchant/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": server.root + "/merchant/cancel",
    })
    assert "merchant success" in submit(session["url"], card_form("4242424242424242")).text
    return client.v1.checkout.sessions.retrieve(session["id"])


def test_clock_lifecycle_as_the_sdk_sees_it(stripe_client, sb):
    frozen = int(time.time()) - 40 * DAY
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": frozen, "name": "Démo"})
    assert clock["object"] == "test_helpers.test_clock" and clock["id"].startswith("clock_")
    assert (clock["status"], clock["frozen_time"], clock["name"], clock["livemode"]) == ("ready", frozen, "Démo", False)
    assert clock["deletes_after"] > clock["created"]
    assert stripe_client.v1.test_helpers.test_clocks.retrieve(clock["id"])["frozen_time"] == frozen
    assert [c["id"] for c in stripe_client.v1.test_helpers.test_clocks.list()["data"]] == [clock["id"]]
    advancing = stripe_client.v1.test_helpers.test_clocks.advance(clock["id"], params={"frozen_time": frozen + DAY})
    assert advancing["status"] == "advancing" and advancing["status_details"]["advancing"]["target_frozen_time"] == frozen + DAY
    ready = stripe_client.v1.test_helpers.test_clocks.retrieve(clock["id"])
    assert (ready["status"], ready["frozen_time"]) == ("ready", frozen + DAY)
    kinds = [e["type"] for e in sb.events]
    assert kinds == ["test_helpers.test_clock.created", "test_helpers.test_clock.advancing", "test_helpers.test_clock.ready"]
    with pytest.raises(stripe.InvalidRequestError) as years:  # no subscription: two years at most
        stripe_client.v1.test_helpers.test_clocks.advance(clock["id"], params={"frozen_time": frozen + 800 * DAY})
    assert years.value.param == "frozen_time"
    with pytest.raises(stripe.InvalidRequestError) as back:
        stripe_client.v1.test_helpers.test_clocks.advance(clock["id"], params={"frozen_time": frozen})
    assert back.value.param == "frozen_time"
    deleted = stripe_client.v1.test_helpers.test_clocks.delete(clock["id"])
    assert deleted["deleted"] is True
    with pytest.raises(stripe.InvalidRequestError) as gone:
        stripe_client.v1.test_helpers.test_clocks.retrieve(clock["id"])
    assert gone.value.http_status == 404


def test_a_customer_on_a_clock_lives_on_its_time_not_the_global_one(stripe_client, sb, server):
    start = int(time.time()) - 62 * DAY
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": start})
    customer = stripe_client.v1.customers.create(params={"email": "julie@example.fr", "test_clock": clock["id"]})
    assert customer["test_clock"] == clock["id"] and customer["created"] == start
    session = _subscribe(stripe_client, server, customer["id"])
    sub = stripe_client.v1.subscriptions.retrieve(session["subscription"])
    assert sub["start_date"] == start and sub["items"]["data"][0]["current_period_start"] == start
    # The global clock moving on renews nothing on the clock.
    sb.advance_clock(40 * DAY)
    assert len(stripe_client.v1.invoices.list(params={"customer": customer["id"]})["data"]) == 1
    # Stripe bounds one advance to two intervals of the shortest subscription (two months here).
    with pytest.raises(stripe.InvalidRequestError) as too_far:
        stripe_client.v1.test_helpers.test_clocks.advance(clock["id"], params={"frozen_time": start + 70 * DAY})
    assert too_far.value.param == "frozen_time" and "two intervals" in str(too_far.value.user_message)
    # Advancing the clock (in two steps) renews twice, with invoices and charges dated by the clock.
    stripe_client.v1.test_helpers.test_clocks.advance(clock["id"], params={"frozen_time": start + 40 * DAY})
    stripe_client.v1.test_helpers.test_clocks.advance(clock["id"], params={"frozen_time": start + 61 * DAY + 7200})
    invoices = stripe_client.v1.invoices.list(params={"customer": customer["id"]})["data"]
    assert len(invoices) == 3 and all(i["status"] == "paid" for i in invoices)
    assert all(start <= i["created"] <= start + 61 * DAY + 7200 for i in invoices)
    charges = stripe_client.v1.charges.list(params={"customer": customer["id"]})["data"]
    assert len(charges) == 3 and max(c["created"] for c in charges) <= start + 61 * DAY + 7200
    renewal_events = [e for e in sb.events if e["type"] == "invoice.paid"]
    assert all(e["created"] <= start + 61 * DAY + 7200 for e in renewal_events)
    # The clock's charges are paid out by the global clock like any other.
    payouts = stripe_client.v1.payouts.list()["data"]
    assert sum(p["amount"] for p in payouts) > 0


def test_clock_customers_and_unknown_clocks(stripe_client):
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": int(time.time())})
    for n in range(3):
        stripe_client.v1.customers.create(params={"email": f"c{n}@example.fr", "test_clock": clock["id"]})
    with pytest.raises(stripe.InvalidRequestError) as full:
        stripe_client.v1.customers.create(params={"email": "c4@example.fr", "test_clock": clock["id"]})
    assert full.value.param == "test_clock"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.customers.create(params={"email": "x@example.fr", "test_clock": "clock_missing"})
    assert unknown.value.param == "test_clock" and unknown.value.code == "resource_missing"
    listed = stripe_client.v1.customers.list(params={"test_clock": clock["id"]})["data"]
    assert len(listed) == 3
    # An existing customer with no history can be attached at the clock's creation.
    loose = stripe_client.v1.customers.create(params={"email": "loose@example.fr"})
    other = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": int(time.time()) - DAY, "customer": loose["id"]})
    assert stripe_client.v1.customers.retrieve(loose["id"])["test_clock"] == other["id"]
    stripe_client.v1.test_helpers.test_clocks.delete(clock["id"])
    assert stripe_client.v1.customers.list(params={"test_clock": clock["id"]})["data"] == []


@pytest.mark.anyio
@pytest.mark.parametrize("days", [-20, 20])  # a clock in the past or in the future
async def test_a_clocks_events_are_dated_by_it_and_delivered_now(stripe_client, sb, server, days):
    start = int(time.time()) + days * DAY
    clock = stripe_client.v1.test_helpers.test_clocks.create(params={"frozen_time": start})
    customer = stripe_client.v1.customers.create(params={"email": "past@example.fr", "test_clock": clock["id"]})
    created = next(e for e in sb.events if e["type"] == "customer.created" and e["data"]["object"]["id"] == customer["id"])
    assert created["created"] == start
    assert await sb.deliver_pending() == len(sb.events)  # none waits for the global clock to reach the clock's time
    assert len(server.receiver.received) == len(sb.events)
