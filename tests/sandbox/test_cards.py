"""Test cards and test payment methods behave as Stripe documents them."""

from __future__ import annotations

import pytest
import stripe

from tests.support.sandbox import authenticate, types_since


def _charge(client, pm, **extra):
    params = {"amount": 5000, "currency": "eur", "payment_method": pm, "confirm": True} | extra
    return client.v1.payment_intents.create(params=params)


def _saved_card(client, pm_token):
    customer = client.v1.customers.create(params={"email": "backer@example.org"})
    seti = client.v1.setup_intents.create(params={"customer": customer["id"], "payment_method": pm_token, "confirm": True, "usage": "off_session"})
    return customer, seti


def test_visa_succeeds(stripe_client, sb):
    pi = _charge(stripe_client, "pm_card_visa")
    assert pi["status"] == "succeeded" and pi["amount_received"] == 5000
    assert {"payment_intent.succeeded", "charge.succeeded"} <= set(types_since(sb, 0))
    assert stripe_client.v1.charges.retrieve(pi["latest_charge"])["balance_transaction"].startswith("txn_")


def test_insufficient_funds_is_a_card_error_and_the_intent_waits_for_another_card(stripe_client, sb):
    with pytest.raises(stripe.CardError) as declined:
        _charge(stripe_client, "pm_card_chargeDeclinedInsufficientFunds")
    error = declined.value
    assert error.http_status == 402 and error.code == "card_declined"
    assert error.json_body["error"]["decline_code"] == "insufficient_funds"
    pi = error.json_body["error"]["payment_intent"]
    assert pi["status"] == "requires_payment_method"
    assert pi["last_payment_error"]["decline_code"] == "insufficient_funds"
    charge = stripe_client.v1.charges.retrieve(pi["latest_charge"])
    assert charge["status"] == "failed" and charge["balance_transaction"] is None
    assert types_since(sb, 0)[-2:] == ["charge.failed", "payment_intent.payment_failed"]


def test_always_authenticate_card_off_session_needs_the_backer(stripe_client, sb):
    customer, seti = _saved_card(stripe_client, "pm_card_authenticationRequired")
    assert seti["status"] == "requires_action"  # setting it up needs 3-D Secure too
    assert authenticate(seti["next_action"]["redirect_to_url"]["url"]).status_code == 200
    seti = stripe_client.v1.setup_intents.retrieve(seti["id"])
    assert seti["status"] == "succeeded"
    start = len(sb.events)
    with pytest.raises(stripe.CardError) as declined:
        _charge(stripe_client, seti["payment_method"], customer=customer["id"], off_session=True, metadata={"pledge_id": "3"})
    body = declined.value.json_body["error"]
    assert declined.value.code == "authentication_required" and body["decline_code"] == "authentication_required"
    assert body["payment_intent"]["status"] == "requires_payment_method"
    assert "payment_intent.payment_failed" in types_since(sb, start)
    # the backer confirms on session: 3-D Secure challenge, then success
    pi = stripe_client.v1.payment_intents.confirm(body["payment_intent"]["id"], params={"payment_method": seti["payment_method"], "return_url": "https://merchant.example/pledges/3"})
    assert pi["status"] == "requires_action" and pi["next_action"]["type"] == "redirect_to_url"
    answer = authenticate(pi["next_action"]["redirect_to_url"]["url"], follow=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("https://merchant.example/pledges/3?payment_intent=" + pi["id"])
    assert "redirect_status=succeeded" in answer.headers["location"]
    assert stripe_client.v1.payment_intents.retrieve(pi["id"])["status"] == "succeeded"


def test_3155_needs_authentication_on_session_but_not_off_session_once_set_up(stripe_client):
    on_session = _charge(stripe_client, "pm_card_authenticationRequiredOnSetup")
    assert on_session["status"] == "requires_action"
    authenticate(on_session["next_action"]["redirect_to_url"]["url"], ok=False)
    failed = stripe_client.v1.payment_intents.retrieve(on_session["id"])
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    customer, seti = _saved_card(stripe_client, "pm_card_authenticationRequiredOnSetup")
    authenticate(seti["next_action"]["redirect_to_url"]["url"])
    pm = stripe_client.v1.setup_intents.retrieve(seti["id"])["payment_method"]
    later = _charge(stripe_client, pm, customer=customer["id"], off_session=True)
    assert later["status"] == "succeeded"


def test_0341_sets_up_fine_then_every_charge_fails(stripe_client):
    customer, seti = _saved_card(stripe_client, "pm_card_chargeCustomerFail")
    assert seti["status"] == "succeeded"
    pm = stripe_client.v1.payment_methods.retrieve(seti["payment_method"])
    assert pm["customer"] == customer["id"] and pm["card"]["last4"] == "0341"
    for _ in range(2):
        with pytest.raises(stripe.CardError) as declined:
            _charge(stripe_client, pm["id"], customer=customer["id"], off_session=True)
        assert declined.value.code == "card_declined"


def test_declining_cards_fail_at_setup_and_attach(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "x@example.org"})
    with pytest.raises(stripe.CardError) as refused:
        stripe_client.v1.setup_intents.create(params={"customer": customer["id"], "payment_method": "pm_card_chargeDeclinedInsufficientFunds", "confirm": True})
    assert refused.value.json_body["error"]["setup_intent"]["status"] == "requires_payment_method"
    assert "setup_intent.setup_failed" in types_since(sb, 0)
    with pytest.raises(stripe.CardError):
        stripe_client.v1.payment_methods.attach("pm_card_chargeDeclined", params={"customer": customer["id"]})


def test_payment_method_must_belong_to_the_intents_customer(stripe_client):
    alice = stripe_client.v1.customers.create(params={"email": "alice@example.org"})
    bob = stripe_client.v1.customers.create(params={"email": "bob@example.org"})
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": alice["id"]})
    with pytest.raises(stripe.InvalidRequestError):
        _charge(stripe_client, pm["id"], customer=bob["id"], off_session=True)
    detached = stripe_client.v1.payment_methods.detach(pm["id"])
    assert detached["customer"] is None


def test_tokens_and_raw_test_numbers(stripe_client):
    pm = stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_visa"}})
    assert pm["card"]["brand"] == "visa"
    pi = _charge(stripe_client, None, payment_method="pm_card_mastercard")
    assert pi["status"] == "succeeded"
    with pytest.raises(stripe.CardError) as bad:
        stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"number": "4242424242424241", "exp_month": 12, "exp_year": 2040}})
    assert bad.value.code == "incorrect_number"


def test_cancel_a_waiting_intent(stripe_client, sb):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 1500, "currency": "eur"})
    assert pi["status"] == "requires_payment_method"
    canceled = stripe_client.v1.payment_intents.cancel(pi["id"], params={"cancellation_reason": "abandoned"})
    assert canceled["status"] == "canceled" and canceled["cancellation_reason"] == "abandoned"
    with pytest.raises(stripe.InvalidRequestError) as error:
        stripe_client.v1.payment_intents.confirm(pi["id"], params={"payment_method": "pm_card_visa"})
    assert error.value.code == "payment_intent_unexpected_state"
