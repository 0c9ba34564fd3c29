"""Fees, balance transactions, refunds, disputes and payouts."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import money
from tests.support.sandbox import types_since

DAY = 86_400


def _paid(client, amount=5000, pm="pm_card_visa", currency="eur"):
    pi = client.v1.payment_intents.create(params={"amount": amount, "currency": currency, "payment_method": pm, "confirm": True,
                                                  "expand": ["latest_charge.balance_transaction"]})
    return pi, pi["latest_charge"], pi["latest_charge"]["balance_transaction"]


def test_fee_is_one_and_a_half_percent_plus_25_cents(stripe_client):
    _, charge, txn = _paid(stripe_client, 5000)
    assert (txn["amount"], txn["fee"], txn["net"]) == (5000, 100, 4900)
    assert [d.to_dict() for d in txn["fee_details"]] == [{"amount": 100, "application": None, "currency": "eur",
                                                          "description": "Stripe processing fees", "type": "stripe_fee"}]
    assert txn["reporting_category"] == "charge" and txn["type"] == "charge" and txn["source"] == charge["id"]
    assert txn["available_on"] == txn["created"] + 2 * DAY and txn["status"] == "pending"


def test_fee_rounding_is_integer_half_up_and_zero_decimal_currencies_are_not_scaled():
    assert money.processing_fee(5000, "eur") == 100
    assert money.processing_fee(1234, "eur") == 19 + 25  # 18.51 -> 19
    assert money.processing_fee(100, "eur") == 2 + 25  # 1.5 -> 2 (half up)
    assert money.processing_fee(1000, "jpy") == 15  # 15 yen, no fixed part below one yen
    assert money.format_amount(123456, "eur") == "1\u202f234,56\u00a0€"
    assert money.format_amount(500, "jpy") == "500\u00a0¥"


def test_jpy_charge_keeps_minor_units(stripe_client):
    _, _, txn = _paid(stripe_client, 1000, currency="jpy")
    assert (txn["amount"], txn["fee"], txn["net"], txn["currency"]) == (1000, 15, 985, "jpy")


def test_partial_refunds_then_a_refund_larger_than_what_remains_is_refused(stripe_client, sb):
    pi, charge, _ = _paid(stripe_client, 5000)
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi["id"], "amount": 2000, "metadata": {"reason": "tab"}},
                                             options={"idempotency_key": "refund-1"})
    assert refund["status"] == "succeeded" and refund["charge"] == charge["id"]
    txn = stripe_client.v1.balance_transactions.retrieve(refund["balance_transaction"])
    assert (txn["amount"], txn["fee"], txn["net"], txn["reporting_category"], txn["type"]) == (-2000, 0, -2000, "refund", "refund")
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_client.v1.refunds.create(params={"charge": charge["id"], "amount": 3001})
    assert too_much.value.code == "amount_too_large" and too_much.value.param == "amount"
    rest = stripe_client.v1.refunds.create(params={"charge": charge["id"]})
    assert rest["amount"] == 3000
    charge = stripe_client.v1.charges.retrieve(charge["id"], params={"expand": ["refunds"]})  # includable
    assert charge["amount_refunded"] == 5000 and charge["refunded"] is True
    assert [r["id"] for r in charge["refunds"]["data"]] == [rest["id"], refund["id"]]
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.refunds.create(params={"charge": charge["id"], "amount": 1})
    assert again.value.code == "charge_already_refunded"
    assert types_since(sb, 0).count("charge.refunded") == 2
    assert [r["id"] for r in stripe_client.v1.refunds.list(params={"payment_intent": pi["id"]})["data"]] == [rest["id"], refund["id"]]


def _disputed(client, sb):
    start = len(sb.events)
    pi, charge, _ = _paid(client, 5000, pm="pm_card_createDispute")
    assert pi["status"] == "succeeded"
    disputes = client.v1.disputes.list(params={"charge": charge["id"]})["data"]
    assert len(disputes) == 1
    dispute = disputes[0]
    assert dispute["status"] == "needs_response" and dispute["reason"] == "fraudulent"
    assert client.v1.charges.retrieve(charge["id"])["disputed"] is True
    assert types_since(sb, start)[-3:] == ["charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.updated"]
    withdrawn = dispute["balance_transactions"]
    assert len(withdrawn) == 1
    assert (withdrawn[0]["amount"], withdrawn[0]["fee"], withdrawn[0]["net"], withdrawn[0]["reporting_category"]) == (-5000, 2000, -7000, "dispute")
    assert withdrawn[0]["fee_details"][0]["type"] == "stripe_fee"
    return charge, dispute


def test_dispute_won_reinstates_the_funds(stripe_client, sb):
    charge, dispute = _disputed(stripe_client, sb)
    start = len(sb.events)
    won = stripe_client.v1.disputes.update(dispute["id"], params={"evidence": {"uncategorized_text": "winning_evidence"}})
    assert won["status"] == "won"
    assert [(t["amount"], t["fee"], t["net"], t["reporting_category"]) for t in won["balance_transactions"]] == [
        (-5000, 2000, -7000, "dispute"), (5000, 0, 5000, "dispute_reversal")]
    assert types_since(sb, start) == ["charge.dispute.updated", "charge.dispute.funds_reinstated", "charge.dispute.closed"]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create(params={"charge": charge["id"]})


def test_dispute_lost_keeps_the_withdrawal_and_fee(stripe_client, sb):
    _, dispute = _disputed(stripe_client, sb)
    start = len(sb.events)
    lost = stripe_client.v1.disputes.update(dispute["id"], params={"evidence": {"uncategorized_text": "losing_evidence"}})
    assert lost["status"] == "lost" and len(lost["balance_transactions"]) == 1
    assert types_since(sb, start) == ["charge.dispute.updated", "charge.dispute.closed"]


def test_closing_a_dispute_accepts_the_loss(stripe_client, sb):
    _, dispute = _disputed(stripe_client, sb)
    closed = stripe_client.v1.disputes.close(dispute["id"])
    assert closed["status"] == "lost"
    assert sb.events[-1]["type"] == "charge.dispute.closed"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.disputes.close(dispute["id"])


def test_inquiry_withdraws_nothing(stripe_client):
    _, charge, _ = _paid(stripe_client, 3000, pm="pm_card_createDisputeInquiry")
    dispute = stripe_client.v1.disputes.list(params={"charge": charge["id"]})["data"][0]
    assert dispute["status"] == "warning_needs_response" and dispute["balance_transactions"] == []
    assert stripe_client.v1.disputes.close(dispute["id"])["status"] == "warning_closed"


def test_daily_payouts_sum_the_nets_of_newly_available_transactions(stripe_client, sb):
    _paid(stripe_client, 5000)  # net 4900
    pi, _, _ = _paid(stripe_client, 2000)  # fee 30 + 25, net 1945
    stripe_client.v1.refunds.create(params={"payment_intent": pi["id"], "amount": 500})  # -500, available at once
    sb.advance_clock(DAY)
    assert stripe_client.v1.payouts.list()["data"] == []  # a negative day is carried over, the charges are pending
    _paid(stripe_client, 1000)  # a day later: net 960, its own payout day
    events = sb.advance_clock(5 * DAY)
    kinds = [e["type"] for e in events]
    assert kinds.count("payout.created") == 2 and kinds.count("payout.paid") == 2
    assert kinds.index("payout.created") < kinds.index("payout.paid")
    payouts = stripe_client.v1.payouts.list()["data"]
    assert [p["amount"] for p in payouts] == [960, 4900 + 1945 - 500]
    for payout in payouts:
        txns = stripe_client.v1.balance_transactions.list(params={"payout": payout["id"], "limit": 100})["data"]
        own = [t for t in txns if t["type"] == "payout"]
        assert len(own) == 1 and own[0]["amount"] == -payout["amount"] and own[0]["id"] == payout["balance_transaction"]
        assert own[0]["reporting_category"] == "payout"
        assert sum(t["net"] for t in txns if t["type"] != "payout") == payout["amount"]
        assert payout["status"] == "paid" and payout["automatic"] is True and payout["arrival_date"] > payout["created"]
    balance = stripe_client.v1.balance.retrieve()
    assert balance["available"][0]["amount"] == 0 and balance["pending"][0]["amount"] == 0
    by_type = stripe_client.v1.balance_transactions.list(params={"type": "payout"})["data"]
    assert {t["source"] for t in by_type} == {p["id"] for p in payouts}


def test_manual_payouts_only_on_a_manual_schedule(stripe_client, server):
    from tests.support.sandbox import make_client, make_sandbox

    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payouts.create(params={"amount": 100, "currency": "eur"})
    sb = make_sandbox(server, payout_schedule="manual")
    client = make_client(server)
    _paid(client, 5000)
    with pytest.raises(stripe.InvalidRequestError) as short:
        client.v1.payouts.create(params={"amount": 4900, "currency": "eur"})
    assert short.value.code == "balance_insufficient"
    sb.advance_clock(3 * DAY)
    assert client.v1.payouts.list()["data"] == []
    payout = client.v1.payouts.create(params={"amount": 4900, "currency": "eur"})
    assert payout["automatic"] is False and payout["status"] == "in_transit"
    assert client.v1.balance.retrieve()["available"][0]["amount"] == 0
