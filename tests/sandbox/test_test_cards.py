"""Stripe's documented test payment methods that the CLI's trigger recipes use: the bypass-pending
cards (funds available at once) and a PaymentIntent's ``shipping``, echoed on its charge."""

from __future__ import annotations

import pytest
import stripe


def _balance(client):
    balance = client.v1.balance.retrieve()
    return sum(b["amount"] for b in balance["available"]), sum(b["amount"] for b in balance["pending"])


@pytest.mark.parametrize("pm", ["pm_card_bypassPending", "pm_card_bypassPendingInternational"])
def test_a_bypass_pending_card_puts_the_funds_straight_into_the_available_balance(stripe_client, sb, pm):
    pi = stripe_client.v1.payment_intents.create(params={
        "amount": 5000, "currency": "eur", "payment_method": pm, "confirm": True,
        "expand": ["latest_charge.balance_transaction"],
    })
    assert pi["status"] == "succeeded"
    txn = pi["latest_charge"]["balance_transaction"]
    assert txn["status"] == "available" and txn["available_on"] <= txn["created"]
    assert _balance(stripe_client) == (txn["net"], 0)


def test_a_plain_visa_stays_pending_for_stripe_s_delay(stripe_client, sb):
    stripe_client.v1.payment_intents.create(params={"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True})
    available, pending = _balance(stripe_client)
    assert available == 0 and pending > 0


def test_a_token_for_the_bypass_card_is_known(stripe_client, sb):
    pm = stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_bypassPending"}})
    assert pm["card"]["last4"] == "0077"


SHIPPING = {
    "name": "Jenny Rosen", "carrier": "La Poste", "tracking_number": "6A12345678901",
    "address": {"line1": "12 rue de la Coutellerie", "postal_code": "63300", "city": "Thiers", "country": "FR"},
}


def test_shipping_on_a_payment_intent_is_kept_and_copied_onto_its_charge(stripe_client, sb):
    pi = stripe_client.v1.payment_intents.create(params={
        "amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True,
        "shipping": SHIPPING, "expand": ["latest_charge"],
    })
    assert pi["shipping"]["name"] == "Jenny Rosen"
    assert pi["shipping"]["address"].to_dict() == {
        "city": "Thiers", "country": "FR", "line1": "12 rue de la Coutellerie", "line2": None, "postal_code": "63300", "state": None,
    }
    assert pi["latest_charge"]["shipping"].to_dict(recursive=True) == pi["shipping"].to_dict(recursive=True)


def test_shipping_can_be_set_and_cleared_by_an_update(stripe_client, sb):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 2000, "currency": "eur"})
    assert pi["shipping"] is None
    pi = stripe_client.v1.payment_intents.update(pi["id"], params={"shipping": SHIPPING})
    assert pi["shipping"]["carrier"] == "La Poste"
    pi = stripe_client.v1.payment_intents.update(pi["id"], params={"shipping": ""})
    assert pi["shipping"] is None


@pytest.mark.stripe_refusal  # the version's validation refuses an unknown key: counted, and expected here
@pytest.mark.parametrize(("shipping", "param"), [
    ({"address": {"city": "Thiers"}}, "shipping[name]"),
    ({"name": "Jenny Rosen"}, "shipping[address]"),
    ({"name": "Jenny Rosen", "address": {"town": "Thiers"}}, "shipping[address][town]"),
])
def test_an_incomplete_shipping_is_refused_as_stripe_refuses_it(stripe_client, sb, shipping, param):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.create(params={"amount": 2000, "currency": "eur", "shipping": shipping})
    assert refused.value.param == param
    assert stripe_client.v1.payment_intents.list()["data"] == []
