"""Subscriptions, invoices, invoice items, prorations, dunning and the billing portal, on the sandbox clock."""

from __future__ import annotations

import httpx
import pytest
import stripe

from stripe_sandbox.billing import prorate
from tests.support.sandbox import authenticate, card_form, subscription_checkout, types

DAY = 86_400
IGNORED = {"payout.created", "payout.paid"}


def _core(events):
    return [t for t in types(events) if t not in IGNORED]


def _subscribed(client, server):
    session, response = subscription_checkout(client, server)
    assert response.status_code == 200
    session = client.v1.checkout.sessions.retrieve(session["id"])
    return session, client.v1.subscriptions.retrieve(session["subscription"])


def test_subscription_through_checkout_then_a_renewal(stripe_client, sb, server):
    session, sub = _subscribed(stripe_client, server)
    assert session["payment_status"] == "paid" and session["invoice"] == sub["latest_invoice"]
    assert sub["status"] == "active" and sub["metadata"]["membership_id"] == "7"
    item = sub["items"]["data"][0]
    assert item["price"]["unit_amount"] == 2000 and item["plan"]["interval"] == "month"
    assert 28 * DAY <= item["current_period_end"] - item["current_period_start"] <= 31 * DAY
    first = stripe_client.v1.invoices.retrieve(sub["latest_invoice"], params={"expand": ["payments.data.payment.payment_intent"]})
    assert first["billing_reason"] == "subscription_create" and first["status"] == "paid" and first["amount_paid"] == 2000
    assert first["parent"]["type"] == "subscription_details" and first["parent"]["subscription_details"]["subscription"] == sub["id"]
    assert first["parent"]["subscription_details"]["metadata"]["membership_id"] == "7"
    payment = first["payments"]["data"][0]
    assert payment["object"] == "invoice_payment" and payment["status"] == "paid" and payment["amount_paid"] == 2000
    assert payment["payment"]["payment_intent"]["status"] == "succeeded"
    assert first["number"].endswith("000001") and first["status_transitions"]["paid_at"]
    assert httpx.get(first["hosted_invoice_url"]).status_code == 200
    pdf = httpx.get(first["invoice_pdf"])
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert sb.events[-1]["type"] == "checkout.session.completed" and sb.events[-1]["data"]["object"]["payment_status"] == "paid"
    assert _core(sb.events) == [
        "product.created", "customer.created", "payment_method.attached", "customer.subscription.created", "invoice.created",
        "payment_intent.created", "invoice.finalized", "charge.succeeded", "payment_intent.succeeded", "invoice_payment.paid",
        "invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated", "checkout.session.completed",
    ]

    events = sb.advance_clock(32 * DAY)
    assert _core(events) == [  # announced 7 days before (the account's "upcoming renewal events"), then renewed
        "invoice.upcoming", "invoice.created", "customer.subscription.updated", "payment_intent.created", "invoice.finalized", "charge.succeeded",
        "payment_intent.succeeded", "invoice_payment.paid", "invoice.paid", "invoice.payment_succeeded",
    ]
    updated = next(e for e in events if e["type"] == "customer.subscription.updated")
    assert "items" in updated["data"]["previous_attributes"] and "latest_invoice" in updated["data"]["previous_attributes"]
    renewed = stripe_client.v1.subscriptions.retrieve(sub["id"], params={"expand": ["latest_invoice"]})
    invoice = renewed["latest_invoice"]
    assert invoice["billing_reason"] == "subscription_cycle" and invoice["status"] == "paid" and invoice["amount_paid"] == 2000
    assert invoice["number"].endswith("000002")
    assert invoice["lines"]["data"][0]["period"]["start"] == item["current_period_end"]
    assert renewed["items"]["data"][0]["current_period_start"] == item["current_period_end"]
    assert invoice["period_end"] == item["current_period_end"]
    listed = stripe_client.v1.invoices.list(params={"subscription": sub["id"]})["data"]
    assert [i["id"] for i in listed] == [invoice["id"], first["id"]]


def test_failing_card_goes_past_due_then_unpaid(stripe_client, sb, server):
    _, sub = _subscribed(stripe_client, server)
    bad = stripe_client.v1.payment_methods.attach("pm_card_chargeCustomerFail", params={"customer": sub["customer"]})
    stripe_client.v1.subscriptions.update(sub["id"], params={"default_payment_method": bad["id"]})
    events = sb.advance_clock(32 * DAY)
    assert "invoice.payment_failed" in types(events)
    sub = stripe_client.v1.subscriptions.retrieve(sub["id"], params={"expand": ["latest_invoice"]})
    invoice = sub["latest_invoice"]
    assert sub["status"] == "past_due" and invoice["status"] == "open" and invoice["attempt_count"] == 1
    first_failure = invoice["status_transitions"]["finalized_at"]
    assert invoice["next_payment_attempt"] == first_failure + 3 * DAY
    sb.advance_clock(3 * DAY)
    invoice = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert invoice["attempt_count"] == 2 and invoice["next_payment_attempt"] == first_failure + 5 * DAY
    events = sb.advance_clock(4 * DAY + 60)
    assert types(events).count("invoice.payment_failed") == 2
    invoice = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert invoice["attempt_count"] == 4 and invoice["next_payment_attempt"] is None
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["status"] == "unpaid"
    changes = [e["data"] for e in sb.events if e["type"] == "customer.subscription.updated" and "status" in e["data"].get("previous_attributes", {})]
    assert [(c["previous_attributes"]["status"], c["object"]["status"]) for c in changes][-2:] == [("active", "past_due"), ("past_due", "unpaid")]
    # the member pays with a good card: the subscription is active again
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": sub["customer"]})
    paid = stripe_client.v1.invoices.pay(invoice["id"], params={"payment_method": good["id"]})
    assert paid["status"] == "paid"
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["status"] == "active"


def test_a_cancellation_stops_the_automatic_collection_of_the_customer_s_open_invoices(stripe_client, sb, server):
    """Stripe: "upon subscription cancellation, Stripe stops automatic collection of all finalized
    invoices for the customer" — a donor who stops after a failed attempt is never retried."""
    _, sub = _subscribed(stripe_client, server)
    bad = stripe_client.v1.payment_methods.attach("pm_card_chargeCustomerFail", params={"customer": sub["customer"]})
    stripe_client.v1.subscriptions.update(sub["id"], params={"default_payment_method": bad["id"]})
    sb.advance_clock(32 * DAY)
    invoice = stripe_client.v1.subscriptions.retrieve(sub["id"], params={"expand": ["latest_invoice"]})["latest_invoice"]
    assert invoice["status"] == "open" and invoice["attempt_count"] == 1 and invoice["next_payment_attempt"]
    stripe_client.v1.subscriptions.cancel(sub["id"])
    invoice = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert (invoice["status"], invoice["auto_advance"], invoice["next_payment_attempt"]) == ("open", False, None)
    assert "invoice.updated" in types(sb.events[-3:])
    events = sb.advance_clock(60 * DAY)
    assert "invoice.payment_failed" not in types(events) and "charge.failed" not in types(events)
    assert stripe_client.v1.invoices.retrieve(invoice["id"])["attempt_count"] == 1
    # still payable by hand (the customer may settle it)
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": sub["customer"]})
    assert stripe_client.v1.invoices.pay(invoice["id"], params={"payment_method": good["id"]})["status"] == "paid"


def test_failing_card_can_cancel_instead(stripe_client, server):
    from tests.support.sandbox import make_client, make_sandbox

    sb = make_sandbox(server, after_last_failure="canceled")
    client = make_client(server)
    customer = client.v1.customers.create(params={"email": "m@example.org"})
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer["id"]})
    price = client.v1.prices.create(params={"currency": "eur", "unit_amount": 3000, "recurring": {"interval": "month"}, "product_data": {"name": "Bureau"}})
    sub = client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}], "default_payment_method": pm["id"]})
    assert sub["status"] == "active"
    client.v1.payment_methods.detach(pm["id"])
    client.v1.subscriptions.update(sub["id"], params={"default_payment_method": ""})
    sb.advance_clock(45 * DAY)
    assert client.v1.subscriptions.retrieve(sub["id"])["status"] == "canceled"
    assert "customer.subscription.deleted" in types(sb.events)
    assert [e["data"]["object"]["status"] for e in sb.events if e["type"].startswith("customer.subscription.")][-2:] == ["past_due", "canceled"]


def test_authentication_card_renewal_needs_the_member(stripe_client, sb, server):
    session, response = subscription_checkout(stripe_client, server, card="4000 0027 6000 3184")
    assert response.status_code == 200 and "Authentifier" in response.text  # 3-D Secure at sign-up
    authenticate(str(response.url))
    sub = stripe_client.v1.subscriptions.retrieve(stripe_client.v1.checkout.sessions.retrieve(session["id"])["subscription"])
    assert sub["status"] == "active"
    events = sb.advance_clock(32 * DAY)
    assert "invoice.payment_action_required" in types(events) and "invoice.payment_failed" in types(events)
    invoice = stripe_client.v1.invoices.retrieve(stripe_client.v1.subscriptions.retrieve(sub["id"])["latest_invoice"])
    paid = stripe_client.v1.invoices.retrieve(invoice["id"], params={"expand": ["payments"]})
    pi = stripe_client.v1.payment_intents.retrieve(paid["payments"]["data"][0]["payment"]["payment_intent"])
    assert pi["status"] == "requires_action"
    page = httpx.get(invoice["hosted_invoice_url"])
    assert 'id="authenticate-payment"' in page.text
    done = authenticate(pi["next_action"]["redirect_to_url"]["url"])
    assert str(done.url).startswith(invoice["hosted_invoice_url"])
    assert stripe_client.v1.invoices.retrieve(invoice["id"])["status"] == "paid"
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["status"] == "active"


def test_invoice_item_lands_on_the_next_invoice(stripe_client, sb, server):
    _, sub = _subscribed(stripe_client, server)
    item = stripe_client.v1.invoice_items.create(
        params={"customer": sub["customer"], "subscription": sub["id"], "amount": 750, "currency": "eur",
                "description": "Ardoise bar — semaine 12", "metadata": {"tab_batch": "12"}},
        options={"idempotency_key": "tab-batch-12"},
    )
    assert item["invoice"] is None and item["parent"]["subscription_details"]["subscription"] == sub["id"]
    assert [i["id"] for i in stripe_client.v1.invoice_items.list(params={"customer": sub["customer"], "pending": True})["data"]] == [item["id"]]
    events = sb.advance_clock(32 * DAY)
    finalized = next(e["data"]["object"] for e in events if e["type"] == "invoice.finalized")
    line = next(item for item in finalized["lines"]["data"] if item["parent"]["type"] == "invoice_item_details")
    assert line["parent"]["invoice_item_details"]["invoice_item"] == item["id"] and line["metadata"] == {"tab_batch": "12"}
    assert finalized["amount_due"] == 2750
    invoice = stripe_client.v1.invoices.retrieve(finalized["id"])
    assert invoice["status"] == "paid" and invoice["amount_paid"] == 2750
    assert stripe_client.v1.invoice_items.retrieve(item["id"])["invoice"] == invoice["id"]
    assert stripe_client.v1.invoice_items.list(params={"customer": sub["customer"], "pending": True})["data"] == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoice_items.create(params={"customer": sub["customer"], "subscription": sub["id"], "amount": 100, "currency": "usd"})


def test_plan_change_with_prorations_preview_then_next_invoice(stripe_client, sb, server):
    _, sub = _subscribed(stripe_client, server)
    sb.advance_clock(10 * DAY)
    bigger = stripe_client.v1.prices.create(params={"currency": "eur", "unit_amount": 5000, "recurring": {"interval": "month"},
                                                    "product_data": {"name": "Bureau fixe"}})
    item = sub["items"]["data"][0]
    moment = sb.now()
    start, end = item["current_period_start"], item["current_period_end"]
    credit, debit = -prorate(2000, end - moment, end - start), prorate(5000, end - moment, end - start)
    change = {"items": [{"id": item["id"], "price": bigger["id"]}], "proration_behavior": "create_prorations", "proration_date": moment}
    preview = stripe_client.v1.invoices.create_preview(params={"subscription": sub["id"], "subscription_details": change})
    amounts = [item["amount"] for item in preview["lines"]["data"]]
    assert amounts == [credit, debit, 5000] and preview["amount_due"] == credit + debit + 5000
    assert preview["id"].startswith("upcoming_")
    immediate = stripe_client.v1.invoices.create_preview(
        params={"subscription": sub["id"], "subscription_details": change | {"proration_behavior": "always_invoice"}})
    assert [item["amount"] for item in immediate["lines"]["data"]] == [credit, debit]
    updated = stripe_client.v1.subscriptions.update(sub["id"], params={"items": [{"id": item["id"], "price": bigger["id"]}],
                                                                       "proration_behavior": "create_prorations", "proration_date": moment})
    assert updated["items"]["data"][0]["price"]["id"] == bigger["id"]
    pending = stripe_client.v1.invoice_items.list(params={"customer": sub["customer"], "pending": True})["data"]
    assert sorted(i["amount"] for i in pending) == sorted([credit, debit]) and all(i["proration"] for i in pending)
    events = sb.advance_clock(25 * DAY)
    finalized = next(e["data"]["object"] for e in events if e["type"] == "invoice.finalized")
    assert finalized["amount_due"] == credit + debit + 5000


def test_always_invoice_bills_the_change_now_and_none_bills_nothing(stripe_client, sb, server):
    _, sub = _subscribed(stripe_client, server)
    sb.advance_clock(5 * DAY)
    bigger = stripe_client.v1.prices.create(params={"currency": "eur", "unit_amount": 4000, "recurring": {"interval": "month"},
                                                    "product_data": {"name": "Grand bureau"}})
    item = sub["items"]["data"][0]
    start = len(sb.events)
    updated = stripe_client.v1.subscriptions.update(sub["id"], params={"items": [{"id": item["id"], "price": bigger["id"]}],
                                                                       "proration_behavior": "always_invoice"})
    invoice = stripe_client.v1.invoices.retrieve(stripe_client.v1.subscriptions.retrieve(sub["id"])["latest_invoice"])
    assert invoice["billing_reason"] == "subscription_update" and invoice["status"] == "paid" and invoice["amount_paid"] > 0
    assert types(sb.events[start:]) == [
        "invoiceitem.created", "invoiceitem.created", "customer.subscription.updated", "invoice.created", "payment_intent.created",
        "invoice.finalized", "charge.succeeded", "payment_intent.succeeded", "invoice_payment.paid", "invoice.paid", "invoice.payment_succeeded",
    ]
    assert [item["amount"] < 0 for item in invoice["lines"]["data"]] == [True, False]
    assert updated["items"]["data"][0]["current_period_end"] == item["current_period_end"]
    again = stripe_client.v1.subscriptions.update(sub["id"], params={"items": [{"id": item["id"], "quantity": 2}], "proration_behavior": "none"})
    assert again["items"]["data"][0]["quantity"] == 2
    assert stripe_client.v1.invoice_items.list(params={"customer": sub["customer"], "pending": True})["data"] == []


def test_cancel_at_period_end_then_cancel_now(stripe_client, sb, server):
    _, sub = _subscribed(stripe_client, server)
    end = sub["items"]["data"][0]["current_period_end"]
    flagged = stripe_client.v1.subscriptions.update(sub["id"], params={"cancel_at_period_end": True})
    assert flagged["cancel_at_period_end"] is True and flagged["cancel_at"] == end and flagged["status"] == "active"
    assert sb.events[-1]["data"]["previous_attributes"]["cancel_at_period_end"] is False
    preview_error = None
    try:
        stripe_client.v1.invoices.create_preview(params={"subscription": sub["id"]})
    except stripe.InvalidRequestError as exc:
        preview_error = exc
    assert preview_error is not None and preview_error.code == "invoice_upcoming_none"
    events = sb.advance_clock(32 * DAY)
    assert _core(events) == ["customer.subscription.deleted"]
    ended = stripe_client.v1.subscriptions.retrieve(sub["id"])
    assert ended["status"] == "canceled" and ended["ended_at"] == end
    assert stripe_client.v1.subscriptions.list(params={"customer": sub["customer"]})["data"] == []
    assert len(stripe_client.v1.subscriptions.list(params={"customer": sub["customer"], "status": "all"})["data"]) == 1
    _, other = _subscribed(stripe_client, server)
    canceled = stripe_client.v1.subscriptions.cancel(other["id"])
    assert canceled["status"] == "canceled" and sb.events[-1]["type"] == "customer.subscription.deleted"


def test_trial_then_first_payment(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "t@example.org"})
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer["id"]})
    stripe_client.v1.customers.update(customer["id"], params={"invoice_settings": {"default_payment_method": pm["id"]}})
    price = stripe_client.v1.prices.create(params={"currency": "eur", "unit_amount": 1200, "recurring": {"interval": "month"},
                                                   "product_data": {"name": "Essai"}})
    sub = stripe_client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}], "trial_period_days": 7})
    assert sub["status"] == "trialing" and sub["trial_end"] == sub["items"]["data"][0]["current_period_end"]
    assert stripe_client.v1.invoices.retrieve(sub["latest_invoice"])["amount_due"] == 0
    events = sb.advance_clock(5 * DAY)
    assert types(events) == ["customer.subscription.trial_will_end"]
    events = sb.advance_clock(3 * DAY)
    assert "invoice.paid" in types(events)
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["status"] == "active"


def test_default_incomplete_then_the_member_confirms(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "c@example.org"})
    price = stripe_client.v1.prices.create(params={"currency": "eur", "unit_amount": 900, "recurring": {"interval": "month"},
                                                   "product_data": {"name": "Casier"}})
    sub = stripe_client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}],
                                                        "payment_behavior": "default_incomplete", "expand": ["latest_invoice.payments"]})
    pi_id = sub["latest_invoice"]["payments"]["data"][0]["payment"]["payment_intent"]
    pi = stripe_client.v1.payment_intents.confirm(pi_id, params={"payment_method": "pm_card_visa"})
    assert pi["status"] == "succeeded"
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["status"] == "active"
    items = stripe_client.v1.subscription_items.list(params={"subscription": sub["id"]})["data"]
    assert [i["id"] for i in items] == [sub["items"]["data"][0]["id"]]


def test_incomplete_subscription_expires_after_23_hours(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "i@example.org"})
    price = stripe_client.v1.prices.create(params={"currency": "eur", "unit_amount": 900, "recurring": {"interval": "month"},
                                                   "product_data": {"name": "Casier"}})
    sub = stripe_client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}],
                                                        "payment_behavior": "default_incomplete",
                                                        "expand": ["latest_invoice.confirmation_secret"]})
    assert sub["status"] == "incomplete"
    assert sub["latest_invoice"]["confirmation_secret"]["client_secret"].startswith("pi_")
    events = sb.advance_clock(23 * 3600)
    assert "invoice.voided" in types(events) and "customer.subscription.deleted" in types(events)
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["status"] == "incomplete_expired"
    with pytest.raises(stripe.CardError):
        failing = stripe_client.v1.payment_methods.attach("pm_card_chargeCustomerFail", params={"customer": customer["id"]})
        stripe_client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}],
                                                      "payment_behavior": "error_if_incomplete", "default_payment_method": failing["id"]})


@pytest.mark.stripe_refusal
def test_a_refused_subscription_leaves_no_invoice_item_behind(stripe_client):
    customer = stripe_client.v1.customers.create(params={"email": "refus@example.org"})
    price = stripe_client.v1.prices.create(params={"currency": "eur", "unit_amount": 900, "recurring": {"interval": "month"},
                                                   "product_data": {"name": "Casier"}})
    once = stripe_client.v1.prices.create(params={"currency": "eur", "unit_amount": 2000, "product_data": {"name": "Badge"}})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}],
                                                      "add_invoice_items": [{"price": once["id"]}], "payment_behavior": "sometimes"})
    assert refused.value.param == "payment_behavior"
    assert stripe_client.v1.invoice_items.list(params={"customer": customer["id"]})["data"] == []


def test_standalone_invoice_finalize_pay_and_void(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "tab@example.org"})
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer["id"]})
    stripe_client.v1.invoice_items.create(params={"customer": customer["id"], "amount": 1850, "currency": "eur", "description": "Ardoise"})
    draft = stripe_client.v1.invoices.create(params={"customer": customer["id"], "pending_invoice_items_behavior": "include"})
    assert draft["status"] == "draft" and draft["number"] is None and draft["amount_due"] == 1850 and draft["parent"] is None
    final = stripe_client.v1.invoices.finalize_invoice(draft["id"])
    assert final["status"] == "open" and final["number"]
    paid = stripe_client.v1.invoices.pay(final["id"], params={"payment_method": pm["id"]})
    assert paid["status"] == "paid"
    other = stripe_client.v1.invoices.create(params={"customer": customer["id"]})
    stripe_client.v1.invoice_items.create(params={"customer": customer["id"], "amount": 300, "currency": "eur", "invoice": other["id"]})
    opened = stripe_client.v1.invoices.finalize_invoice(other["id"], params={"auto_advance": False})
    voided = stripe_client.v1.invoices.void_invoice(opened["id"])
    assert voided["status"] == "void" and voided["status_transitions"]["voided_at"]
    numbers = [int(i["number"].rsplit("-", 1)[1]) for i in stripe_client.v1.invoices.list(params={"customer": customer["id"]})["data"]]
    assert numbers == sorted(numbers, reverse=True) and numbers[0] - numbers[-1] == len(numbers) - 1


def test_an_invoice_too_large_to_charge_stays_a_draft_and_says_why(stripe_client, sb):
    # It used to be marked open (and numbered) before its PaymentIntent was refused, so it was an
    # open invoice without a PaymentIntent: paying it answered 500.
    customer = stripe_client.v1.customers.create(params={"email": "big@example.org"})
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer["id"]})
    item = stripe_client.v1.invoice_items.create(params={"customer": customer["id"], "amount": 100_000_000, "currency": "eur"})
    draft = stripe_client.v1.invoices.create(params={"customer": customer["id"], "pending_invoice_items_behavior": "include"})
    start = len(sb.events)
    for attempt in (stripe_client.v1.invoices.finalize_invoice, stripe_client.v1.invoices.pay):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            attempt(draft["id"])
        assert (refused.value.http_status, refused.value.code) == (400, "amount_too_large")
    still = stripe_client.v1.invoices.retrieve(draft["id"])
    assert still["status"] == "draft" and still["number"] is None
    assert still["last_finalization_error"]["code"] == "amount_too_large"
    assert types(sb.events[start:]) == ["invoice.finalization_failed"] * 2
    stripe_client.v1.invoice_items.update(item["id"], params={"amount": 5_000})
    final = stripe_client.v1.invoices.finalize_invoice(draft["id"])
    assert final["status"] == "open" and final["number"].endswith("-000001") and final["last_finalization_error"] is None
    assert stripe_client.v1.invoices.pay(final["id"], params={"payment_method": pm["id"]})["status"] == "paid"


def test_a_failed_automatic_finalization_does_not_stop_the_clock(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "auto@example.org"})
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer["id"]})
    stripe_client.v1.customers.update(customer["id"], params={"invoice_settings": {"default_payment_method": pm["id"]}})
    big = stripe_client.v1.invoices.create(params={"customer": customer["id"], "auto_advance": True})
    stripe_client.v1.invoice_items.create(params={"customer": customer["id"], "amount": 100_000_000, "currency": "eur", "invoice": big["id"]})
    small = stripe_client.v1.invoices.create(params={"customer": customer["id"], "auto_advance": True})
    stripe_client.v1.invoice_items.create(params={"customer": customer["id"], "amount": 2_500, "currency": "eur", "invoice": small["id"]})
    sb.advance_clock(2 * 3_600)
    big, small = stripe_client.v1.invoices.retrieve(big["id"]), stripe_client.v1.invoices.retrieve(small["id"])
    assert big["status"] == "draft" and big["last_finalization_error"]["code"] == "amount_too_large"
    assert big["automatically_finalizes_at"] is None  # not retried on every tick
    assert small["status"] == "paid"
    sb.advance_clock(DAY)
    assert types(sb.events).count("invoice.finalization_failed") == 1


def test_billing_portal_cancel_and_change_card(stripe_client, sb, server):
    _, sub = _subscribed(stripe_client, server)
    portal = stripe_client.v1.billing_portal.sessions.create(params={"customer": sub["customer"], "return_url": server.root + "/account"})
    assert portal["object"] == "billing_portal.session" and portal["url"].startswith(server.base + "/portal/bps_")
    page = httpx.get(portal["url"])
    assert page.status_code == 200 and "Poste nomade" in page.text and f'id="cancel-{sub["id"]}"' in page.text
    form_url = portal["url"].split("?")[0]
    answer = httpx.post(form_url, data={"action": "cancel", "subscription": sub["id"]})
    assert answer.status_code == 200 and f'id="resume-{sub["id"]}"' in answer.text
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["cancel_at_period_end"] is True
    answer = httpx.post(form_url, data={"action": "update-card"} | card_form("5555 5555 5555 4444", email=None))
    assert answer.status_code == 200 and "4444" in answer.text
    customer = stripe_client.v1.customers.retrieve(sub["customer"], params={"expand": ["invoice_settings.default_payment_method"]})
    assert customer["invoice_settings"]["default_payment_method"]["card"]["last4"] == "4444"
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["default_payment_method"] == customer["invoice_settings"]["default_payment_method"]["id"]
    refused = httpx.post(form_url, data={"action": "update-card"} | card_form("4000 0000 0000 9995", email=None))
    assert refused.status_code == 402
    sb.advance_clock(2 * 3600)
    assert httpx.get(portal["url"]).status_code == 410
