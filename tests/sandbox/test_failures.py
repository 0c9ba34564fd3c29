"""What fails in real life: payouts the bank sends back, refunds the card network refuses,
and balance transactions that Stripe will not filter by a manual payout."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.support.sandbox import types_since

DAY = 86_400


def _paid(client, amount=5000, pm="pm_card_visa"):
    pi = client.v1.payment_intents.create(params={"amount": amount, "currency": "eur", "payment_method": pm, "confirm": True})
    return pi


def test_a_payout_armed_to_fail_comes_back_to_the_balance_with_a_payout_failure_transaction(stripe_client, sb, server):
    _paid(stripe_client, 5000)  # net 4900
    armed = httpx.post(f"{server.base}/_admin/payouts/fail", data={"failure_code": "no_account"})
    assert armed.status_code == 200 and armed.json()["payout_failures"] == ["no_account"]
    first = len(sb.events)
    sb.advance_clock(4 * DAY)
    kinds = types_since(sb, first)
    payout = stripe_client.v1.payouts.list()["data"][-1]
    assert payout["status"] == "failed" and payout["failure_code"] == "no_account"
    assert payout["failure_message"].startswith("The bank account details on file are probably incorrect")
    failure = stripe_client.v1.balance_transactions.retrieve(payout["failure_balance_transaction"])
    assert (failure["type"], failure["reporting_category"], failure["amount"], failure["net"], failure["source"]) == \
        ("payout_failure", "payout_reversal", 4900, 4900, payout["id"])
    assert "payout.failed" in kinds and "payout.paid" not in kinds
    failed_event = next(e for e in sb.events if e["type"] == "payout.failed")
    assert failed_event["data"]["previous_attributes"]["status"] == "in_transit"
    # The money is back in the balance; the next day's payout takes it (and succeeds).
    sb.advance_clock(2 * DAY)
    payouts = stripe_client.v1.payouts.list()["data"]
    assert [p["status"] for p in payouts] == ["paid", "failed"] and payouts[0]["amount"] == 4900
    swept = stripe_client.v1.balance_transactions.list(params={"payout": payouts[0]["id"]})["data"]
    assert {t["type"] for t in swept} == {"payout", "payout_failure"}


def test_a_paid_payout_can_still_fail_and_bad_switches_are_refused(stripe_client, sb, server):
    _paid(stripe_client, 2000)
    sb.advance_clock(4 * DAY)
    payout = stripe_client.v1.payouts.list()["data"][0]
    assert payout["status"] == "paid"
    assert httpx.post(f"{server.base}/_admin/payouts/fail", data={"payout": payout["id"], "failure_code": "nope"}).status_code == 400
    assert httpx.post(f"{server.base}/_admin/payouts/fail", data={"payout": "po_missing"}).status_code == 404
    failed = httpx.post(f"{server.base}/_admin/payouts/fail", data={"payout": payout["id"], "failure_code": "account_closed"})
    assert failed.status_code == 200 and failed.json()["payout"]["status"] == "failed"
    again = httpx.post(f"{server.base}/_admin/payouts/fail", data={"payout": payout["id"]})
    assert again.status_code == 400  # a failed payout fails once
    assert stripe_client.v1.balance.retrieve()["available"][0]["amount"] == payout["amount"]


def test_a_refund_on_the_refund_fail_card_fails_some_time_later(stripe_client, sb):
    pi = _paid(stripe_client, 3000, pm="pm_card_refundFail")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi["id"], "amount": 1000})
    assert refund["status"] == "succeeded" and refund["balance_transaction"]
    first = len(sb.events)
    sb.advance_clock(2 * 3_600)
    kinds = types_since(sb, first)
    assert {"refund.updated", "refund.failed", "charge.refund.updated"} <= set(kinds)
    refund = stripe_client.v1.refunds.retrieve(refund["id"])
    assert refund["status"] == "failed" and refund["failure_reason"] == "expired_or_canceled_card"
    txn = stripe_client.v1.balance_transactions.retrieve(refund["failure_balance_transaction"])
    assert (txn["type"], txn["reporting_category"], txn["amount"], txn["source"]) == ("refund_failure", "refund_failure", 1000, refund["id"])
    charge = stripe_client.v1.charges.retrieve(pi["latest_charge"])
    assert charge["amount_refunded"] == 0 and charge["refunded"] is False


def test_the_admin_switch_fails_any_refund_once(stripe_client, sb, server):
    pi = _paid(stripe_client, 3000)
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi["id"]})
    failed = httpx.post(f"{server.base}/_admin/refunds/fail", data={"refund": refund["id"], "failure_reason": "lost_or_stolen_card"})
    assert failed.status_code == 200 and failed.json()["refund"]["failure_reason"] == "lost_or_stolen_card"
    assert httpx.post(f"{server.base}/_admin/refunds/fail", data={"refund": refund["id"]}).status_code == 400
    assert httpx.post(f"{server.base}/_admin/refunds/fail", data={"refund": "re_missing"}).status_code == 404
    assert stripe_client.v1.charges.retrieve(pi["latest_charge"])["amount_refunded"] == 0


def test_balance_transactions_cannot_be_filtered_by_a_manual_payout(server):
    from tests.support.sandbox import make_client, make_sandbox

    sb = make_sandbox(server, payout_schedule="manual")
    client = make_client(server, max_network_retries=0)
    _paid(client, 5000)
    sb.advance_clock(3 * DAY)
    payout = client.v1.payouts.create(params={"amount": 4900, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.balance_transactions.list(params={"payout": payout["id"]})
    assert refused.value.http_status == 400 and refused.value.param == "payout"
    assert "only be filtered on automatic" in str(refused.value.user_message)
