"""A subscription's item price changed without proration, and its payment collection paused
(``pause_collection``), as Stripe documents them (docs.stripe.com/billing/subscriptions/pause-payment):
invoices generated while paused are voided at once (``void``), kept as drafts (``keep_as_draft``)
or marked uncollectible; at ``resumes_at`` Stripe unsets ``pause_collection`` by itself."""

from __future__ import annotations

import pytest
import stripe

from tests.support.sandbox import subscription_checkout, types

DAY = 86_400


def _subscribed(client, server):
    session, response = subscription_checkout(client, server)
    assert response.status_code == 200
    session = client.v1.checkout.sessions.retrieve(session["id"])
    return client.v1.subscriptions.retrieve(session["subscription"])


def _invoices(client, sub_id):
    return list(reversed(client.v1.invoices.list(params={"subscription": sub_id})["data"]))


def test_a_new_price_without_proration_bills_nothing_now_and_the_new_amount_from_the_next_renewal(stripe_client, sb, server):
    sub = _subscribed(stripe_client, server)
    item = sub["items"]["data"][0]
    price = stripe_client.v1.prices.create(params={"currency": "eur", "unit_amount": 3500, "recurring": {"interval": "month"},
                                                   "product": item["price"]["product"]})
    events_before = len(sb.events)
    changed = stripe_client.v1.subscriptions.update(sub["id"], params={"items": [{"id": item["id"], "price": price["id"]}],
                                                                       "proration_behavior": "none"})
    new_item = changed["items"]["data"][0]
    assert new_item["id"] == item["id"] and new_item["price"]["unit_amount"] == 3500
    assert new_item["current_period_end"] == item["current_period_end"]  # same cycle
    assert types(sb.events[events_before:]) == ["customer.subscription.updated"]  # no invoice, no invoice item
    assert stripe_client.v1.invoice_items.list(params={"customer": sub["customer"]})["data"] == []
    sb.advance_clock(32 * DAY)
    first, renewal = _invoices(stripe_client, sub["id"])
    assert first["amount_paid"] == 2000 and renewal["status"] == "paid" and renewal["amount_paid"] == 3500


def test_pause_collection_void_voids_the_renewal_then_resumes_by_itself_at_resumes_at(stripe_client, sb, server):
    sub = _subscribed(stripe_client, server)
    end = sub["items"]["data"][0]["current_period_end"]
    paused = stripe_client.v1.subscriptions.update(sub["id"], params={"pause_collection": {"behavior": "void", "resumes_at": end + DAY}})
    assert paused["pause_collection"].to_dict() == {"behavior": "void", "resumes_at": end + DAY}
    assert paused["status"] == "active"  # pausing collection leaves the status alone
    update = sb.events[-1]
    assert update["type"] == "customer.subscription.updated" and update["data"]["previous_attributes"] == {"pause_collection": None}

    events = sb.advance_clock(end - sb.now() + 3600)  # the renewal, while paused
    skipped = _invoices(stripe_client, sub["id"])[-1]
    assert skipped["billing_reason"] == "subscription_cycle" and skipped["status"] == "void"
    assert skipped["amount_paid"] == 0 and skipped["amount_remaining"] == 0 and skipped["status_transitions"]["voided_at"]
    assert "invoice.voided" in types(events) and "invoice.paid" not in types(events) and "charge.succeeded" not in types(events)
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["status"] == "active"

    events = sb.advance_clock(DAY)  # past resumes_at: collection resumes by itself
    resumed = stripe_client.v1.subscriptions.retrieve(sub["id"])
    assert resumed["pause_collection"] is None and resumed["status"] == "active"
    update = next(e for e in events if e["type"] == "customer.subscription.updated")
    assert update["data"]["previous_attributes"] == {"pause_collection": {"behavior": "void", "resumes_at": end + DAY}}

    sb.advance_clock(31 * DAY)  # the next renewal is collected again
    invoices = _invoices(stripe_client, sub["id"])
    assert [(i["status"], i["amount_paid"]) for i in invoices] == [("paid", 2000), ("void", 0), ("paid", 2000)]


@pytest.mark.parametrize(("behavior", "status", "auto_advance"), [("keep_as_draft", "draft", False),
                                                                   ("mark_uncollectible", "uncollectible", False)])
def test_the_other_pause_behaviors_keep_the_renewal_as_draft_or_uncollectible(stripe_client, sb, server, behavior, status, auto_advance):
    sub = _subscribed(stripe_client, server)
    stripe_client.v1.subscriptions.update(sub["id"], params={"pause_collection": {"behavior": behavior}})  # no resumes_at: until unset
    sb.advance_clock(32 * DAY)
    renewal = _invoices(stripe_client, sub["id"])[-1]
    assert renewal["status"] == status and renewal["amount_paid"] == 0 and renewal["auto_advance"] is auto_advance
    sb.advance_clock(3 * DAY)
    assert _invoices(stripe_client, sub["id"])[-1]["status"] == status  # never collected while paused
    unset = stripe_client.v1.subscriptions.update(sub["id"], params={"pause_collection": ""})
    assert unset["pause_collection"] is None


@pytest.mark.stripe_refusal
def test_a_pause_is_refused_with_a_past_resumes_at_or_an_unknown_behavior_and_changes_nothing(raw_client, sb, server):
    sub = _subscribed(raw_client, server)
    with pytest.raises(stripe.InvalidRequestError) as past:
        raw_client.v1.subscriptions.update(sub["id"], params={"pause_collection": {"behavior": "void", "resumes_at": sb.now() - 10}})
    assert past.value.param == "pause_collection[resumes_at]"
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.subscriptions.update(sub["id"], params={"pause_collection": {"behavior": "skip"}})
    assert raw_client.v1.subscriptions.retrieve(sub["id"])["pause_collection"] is None
