"""SEPA Direct Debit on SetupIntents (issue 18, second part): the mandate set up without a debit."""

from __future__ import annotations

import pytest
import stripe

from tests.support.sandbox import types_since

DAY = 86_400
SUCCEEDS, FAILS = "FR1420041010050500013M02606", "FR8420041010050500013M02607"
ACCEPTANCE = {"customer_acceptance": {"type": "online", "online": {"ip_address": "203.0.113.7", "user_agent": "Firefox"}}}
HOLDER = {"name": "Élise Martin", "email": "elise@example.org"}


def sepa_form(iban: str = SUCCEEDS, *, name: str = "Élise Martin", email: str | None = "elise@example.org") -> dict[str, str]:
    form = {"method": "sepa_debit", "iban": iban, "account-holder-name": name}
    if email is not None:
        form["sepa-email"] = email
    return form


def _session(client, server, mode="payment", currency="eur", types=("card", "sepa_debit"), **extra):
    params = {
        "mode": mode,
        "allowed_payment_method_types": list(types),
        "success_url": server.root + "/merchant/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": server.root + "/merchant/cancel",
    } | extra
    if mode == "payment":
        params["line_items"] = [{"price_data": {"currency": currency, "unit_amount": 4500, "product_data": {"name": "Don"}}, "quantity": 1}]
    elif mode == "subscription":
        params["line_items"] = [{"price_data": {"currency": currency, "unit_amount": 18000, "product_data": {"name": "Poste nomade"},
                                                "recurring": {"interval": "month"}}, "quantity": 1}]
    else:
        params["currency"] = currency
    return client.v1.checkout.sessions.create(params=params)


def _event(sb, kind):
    return next(e for e in reversed(sb.events) if e["type"] == kind)["data"]["object"]


# SetupIntents ------------------------------------------------------------------------------


def test_a_setup_intent_with_a_sepa_debit_method_needs_the_mandate_and_succeeds_at_once(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "elise@example.org"})
    pm = stripe_client.v1.payment_methods.create(params={"type": "sepa_debit", "sepa_debit": {"iban": SUCCEEDS}, "billing_details": HOLDER})
    seti = stripe_client.v1.setup_intents.create(params={"customer": customer["id"], "payment_method": pm["id"]})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.setup_intents.confirm(seti["id"])
    assert (refused.value.param, refused.value.code) == ("mandate_data", "parameter_missing")
    assert stripe_client.v1.setup_intents.retrieve(seti["id"])["status"] == "requires_confirmation"
    first = len(sb.events)
    seti = stripe_client.v1.setup_intents.confirm(seti["id"], params={"mandate_data": ACCEPTANCE})
    assert seti["status"] == "succeeded" and seti["mandate"].startswith("mandate_")
    mandate = stripe_client.v1.mandates.retrieve(seti["mandate"])
    assert (mandate["status"], mandate["type"], mandate["payment_method"]) == ("active", "multi_use", pm["id"])
    assert mandate["customer_acceptance"]["online"]["ip_address"] == "203.0.113.7"
    assert stripe_client.v1.payment_methods.retrieve(pm["id"])["customer"] == customer["id"]
    assert "setup_intent.succeeded" in types_since(sb, first)
    assert list(sb.store.all("charge")) == []  # setting up debits nothing
    # A later debit off session uses that mandate.
    pi = stripe_client.v1.payment_intents.create(params={
        "amount": 1500, "currency": "eur", "customer": customer["id"], "payment_method": pm["id"], "confirm": True,
        "off_session": True, "expand": ["latest_charge"]})
    assert pi["status"] == "processing"
    assert pi["latest_charge"]["payment_method_details"]["sepa_debit"]["mandate"] == seti["mandate"]


def test_a_setup_intent_created_and_confirmed_in_one_call_and_one_that_does_not_allow_sepa(stripe_client, sb):
    seti = stripe_client.v1.setup_intents.create(params={
        "payment_method_data": {"type": "sepa_debit", "sepa_debit": {"iban": SUCCEEDS}, "billing_details": HOLDER},
        "allowed_payment_method_types": ["sepa_debit"], "confirm": True, "mandate_data": ACCEPTANCE})
    assert seti["status"] == "succeeded" and seti["mandate"] and seti["allowed_payment_method_types"] == ["sepa_debit"]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.setup_intents.create(params={
            "payment_method_data": {"type": "sepa_debit", "sepa_debit": {"iban": SUCCEEDS}, "billing_details": HOLDER},
            "allowed_payment_method_types": ["card"], "confirm": True, "mandate_data": ACCEPTANCE})
    assert refused.value.param == "payment_method"
