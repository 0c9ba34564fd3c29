"""SEPA Direct Debit in the sandbox (issue 18): IBANs checked as Stripe checks them, the mandate the
customer accepts, debits ``processing`` for business days on the sandbox's clock, then succeeded,
failed late (with the bank's reason; the mandate ends where the account or the authorisation is
gone) or disputed; and an invoice that stays open while its debit is in flight."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import stripe

from stripe_sandbox import sepa
from tests.support.sandbox import types_since

DAY = 86_400
SUCCEEDS, FAILS, DISPUTED = "FR1420041010050500013M02606", "FR8420041010050500013M02607", "FR7920041010050500013M02600"
ACCEPTANCE = {"customer_acceptance": {"type": "online", "online": {"ip_address": "203.0.113.7", "user_agent": "Firefox"}}}
HOLDER = {"name": "Élise Martin", "email": "elise@example.org"}


def _pm(client, iban=SUCCEEDS, **details):
    return client.v1.payment_methods.create(params={"type": "sepa_debit", "sepa_debit": {"iban": iban},
                                                    "billing_details": details or HOLDER})


def _debit(client, iban=SUCCEEDS, amount=4500, **extra):
    return client.v1.payment_intents.create(params={
        "amount": amount, "currency": "eur", "payment_method": _pm(client, iban)["id"], "confirm": True,
        "mandate_data": ACCEPTANCE, "allowed_payment_method_types": ["sepa_debit"], "expand": ["latest_charge"], **extra})


def _balance(client):
    balance = client.v1.balance.retrieve()
    return sum(b["amount"] for b in balance["available"]) + sum(b["amount"] for b in balance["pending"])


def test_a_sepa_payment_method_is_made_from_a_valid_iban_and_the_holder(stripe_client, sb):
    pm = _pm(stripe_client, "FR14 2004 1010 0505 0001 3M02 606")
    assert pm["type"] == "sepa_debit" and pm["billing_details"]["name"] == "Élise Martin"
    assert pm["sepa_debit"].to_dict() == {
        "bank_code": "20041", "branch_code": "01005", "country": "FR", "fingerprint": pm["sepa_debit"]["fingerprint"],
        "generated_from": {"charge": None, "setup_attempt": None}, "last4": "2606"}


@pytest.mark.parametrize(("iban", "details", "param", "code"), [
    ("FR1420041010050500013M02607", HOLDER, "sepa_debit[iban]", "invalid_bank_account_iban"),  # checksum
    ("FR142004101005", HOLDER, "sepa_debit[iban]", "invalid_bank_account_iban"),  # too short
    ("TR330006100519786457841326", HOLDER, "sepa_debit[iban]", "invalid_bank_account_iban"),  # valid, outside SEPA
    (SUCCEEDS, {"email": "elise@example.org"}, "billing_details[name]", "parameter_missing"),
    (SUCCEEDS, {"name": "Élise Martin"}, "billing_details[email]", "parameter_missing"),
])
def test_a_bad_iban_or_a_missing_holder_is_refused_and_nothing_is_stored(stripe_client, sb, iban, details, param, code):
    before = len(list(sb.store.all("payment_method")))
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _pm(stripe_client, iban, **details)
    assert (refused.value.param, refused.value.code) == (param, code)
    assert len(list(sb.store.all("payment_method"))) == before


def test_a_debit_needs_the_mandate_and_is_processing_until_it_settles_five_business_days_later(stripe_client, sb):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.create(params={"amount": 4500, "currency": "eur", "confirm": True,
                                                        "payment_method": _pm(stripe_client)["id"]})
    assert refused.value.param == "mandate_data"
    first = len(sb.events)
    pi = _debit(stripe_client)
    assert pi["status"] == "processing"
    charge = pi["latest_charge"]
    assert (charge["status"], charge["paid"], charge["balance_transaction"]) == ("pending", False, None)
    details = charge["payment_method_details"]["sepa_debit"]
    assert details["last4"] == "2606" and details["mandate"].startswith("mandate_")
    assert details["expected_debit_date"] == dt.datetime.fromtimestamp(sepa.settlement_time(pi["created"]), dt.UTC).date().isoformat()
    mandate = stripe_client.v1.mandates.retrieve(details["mandate"])
    assert (mandate["status"], mandate["type"], mandate["payment_method_details"]["type"]) == ("active", "multi_use", "sepa_debit")
    assert mandate["customer_acceptance"]["online"]["ip_address"] == "203.0.113.7"
    assert types_since(sb, first)[-2:] == ["charge.pending", "payment_intent.processing"]
    assert _balance(stripe_client) == 0  # money in transit is not in the balance

    sb.advance_clock(3 * DAY)  # not yet: five business days
    assert stripe_client.v1.payment_intents.retrieve(pi["id"])["status"] == "processing"
    settled_at = sepa.settlement_time(pi["created"])
    sb.advance_clock(settled_at - sb.now() + 60)
    pi = stripe_client.v1.payment_intents.retrieve(pi["id"], params={"expand": ["latest_charge.balance_transaction"]})
    assert pi["status"] == "succeeded" and pi["amount_received"] == 4500
    assert pi["latest_charge"]["status"] == "succeeded" and pi["latest_charge"]["paid"] is True
    assert pi["latest_charge"]["balance_transaction"]["amount"] == 4500
    assert _balance(stripe_client) == pi["latest_charge"]["balance_transaction"]["net"]
    kinds = types_since(sb, first)
    assert kinds.index("payment_intent.processing") < kinds.index("charge.succeeded") < kinds.index("payment_intent.succeeded")


def test_business_days_skip_the_weekend():
    friday = int(dt.datetime(2026, 12, 4, 10, tzinfo=dt.UTC).timestamp())
    assert dt.datetime.fromtimestamp(sepa.settlement_time(friday), dt.UTC) == dt.datetime(2026, 12, 11, 10, tzinfo=dt.UTC)
    assert dt.datetime.fromtimestamp(sepa.settlement_time(friday, 1), dt.UTC).weekday() == 0  # Monday


def test_the_failing_iban_fails_late_with_the_bank_s_reason_and_keeps_its_mandate(stripe_client, sb):
    pi = _debit(stripe_client, FAILS)
    assert pi["status"] == "processing"
    first = len(sb.events)
    sb.advance_clock(8 * DAY)
    pi = stripe_client.v1.payment_intents.retrieve(pi["id"], params={"expand": ["latest_charge"]})
    assert pi["status"] == "requires_payment_method" and pi["last_payment_error"]["code"] == "insufficient_funds"
    assert (pi["latest_charge"]["status"], pi["latest_charge"]["failure_code"]) == ("failed", "insufficient_funds")
    assert types_since(sb, first)[:2] == ["charge.failed", "payment_intent.payment_failed"]
    mandate = pi["latest_charge"]["payment_method_details"]["sepa_debit"]["mandate"]
    assert stripe_client.v1.mandates.retrieve(mandate)["status"] == "active"  # the account is still there
    assert _balance(stripe_client) == 0


@pytest.mark.parametrize("reason", ["account_closed", "debit_not_authorized"])
def test_a_debit_failing_because_the_account_or_the_authorisation_is_gone_ends_the_mandate(stripe_client, sb, server, reason):
    armed = httpx.post(f"{server.base}/_admin/sepa/fail", data={"failure_code": reason})
    assert armed.status_code == 200 and armed.json()["sepa_failures"] == [reason]
    customer = stripe_client.v1.customers.create(params={"email": "elise@example.org"})
    pi = _debit(stripe_client, SUCCEEDS, customer=customer["id"], setup_future_usage="off_session")
    first = len(sb.events)
    sb.advance_clock(8 * DAY)
    pi = stripe_client.v1.payment_intents.retrieve(pi["id"], params={"expand": ["latest_charge"]})
    assert pi["last_payment_error"]["code"] == reason and pi["latest_charge"]["failure_code"] == reason
    mandate = stripe_client.v1.mandates.retrieve(pi["latest_charge"]["payment_method_details"]["sepa_debit"]["mandate"])
    assert mandate["status"] == "inactive" and "mandate.updated" in types_since(sb, first)
    # No new debit on that mandate.
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.create(params={
            "amount": 4500, "currency": "eur", "customer": customer["id"], "payment_method": mandate["payment_method"],
            "confirm": True, "off_session": True})
    assert httpx.post(f"{server.base}/_admin/sepa/fail", data={"failure_code": "bogus"}).status_code == 400


def test_the_disputed_iban_succeeds_then_is_disputed(stripe_client, sb):
    pi = _debit(stripe_client, DISPUTED)
    first = len(sb.events)
    sb.advance_clock(8 * DAY)
    kinds = types_since(sb, first)
    assert kinds.index("payment_intent.succeeded") < kinds.index("charge.dispute.created")
    assert stripe_client.v1.disputes.list()["data"][0]["charge"] == pi["latest_charge"]["id"]


def test_a_later_debit_off_session_uses_the_mandate_already_accepted(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "elise@example.org"})
    first_debit = _debit(stripe_client, customer=customer["id"], setup_future_usage="off_session")
    pm = first_debit["payment_method"]
    again = stripe_client.v1.payment_intents.create(params={
        "amount": 1500, "currency": "eur", "customer": customer["id"], "payment_method": pm, "confirm": True,
        "off_session": True, "expand": ["latest_charge"]})
    assert again["status"] == "processing"
    assert again["latest_charge"]["payment_method_details"]["sepa_debit"]["mandate"] == \
        first_debit["latest_charge"]["payment_method_details"]["sepa_debit"]["mandate"]


def test_sepa_takes_euros_only_and_only_where_the_payment_intent_allows_it(stripe_client, sb):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _debit(stripe_client, currency="usd")
    assert refused.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _debit(stripe_client, allowed_payment_method_types=["card"])
    assert refused.value.param == "payment_method"
    assert list(sb.store.all("charge")) == []


def test_a_renewal_paid_by_debit_stays_open_while_processing_then_is_paid(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "elise@example.org"})
    card = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer["id"]})
    price = stripe_client.v1.prices.create(params={"currency": "eur", "unit_amount": 18000, "recurring": {"interval": "month"},
                                                   "product_data": {"name": "Poste nomade"}})
    sub = stripe_client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}],
                                                        "default_payment_method": card["id"]})
    debit_pm = _debit(stripe_client, customer=customer["id"], setup_future_usage="off_session")["payment_method"]
    stripe_client.v1.subscriptions.update(sub["id"], params={"default_payment_method": debit_pm})
    first = len(sb.events)
    sb.advance_clock(31 * DAY + 2 * 3_600)  # the renewal is finalised an hour after it is made, then collected
    renewal = stripe_client.v1.invoices.list(params={"subscription": sub["id"]})["data"][0]
    assert renewal["billing_reason"] == "subscription_cycle"
    assert renewal["status"] == "open" and renewal["next_payment_attempt"] is None  # in flight: nothing to retry
    assert "invoice.payment_failed" not in types_since(sb, first)
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["status"] == "active"
    sb.advance_clock(8 * DAY)
    assert stripe_client.v1.invoices.retrieve(renewal["id"])["status"] == "paid"
    assert "invoice.paid" in types_since(sb, first)


def _fields(cls) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("stripe.") and klass.__name__ not in ("StripeObject", "APIResource"):
            names |= {n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_") and n != "OBJECT_NAME"}
    return {n for n in names if not isinstance(getattr(cls, n, None), type)}


def test_the_sepa_hashes_have_endive_s_fields(stripe_client, sb):
    pi = _debit(stripe_client)
    pm = stripe_client.v1.payment_methods.retrieve(pi["payment_method"])
    details = pi["latest_charge"]["payment_method_details"]["sepa_debit"]
    mandate = stripe_client.v1.mandates.retrieve(details["mandate"])
    assert set(pm["sepa_debit"].to_dict()) == _fields(stripe.PaymentMethod.SepaDebit)
    assert set(details.to_dict()) == _fields(stripe.Charge.PaymentMethodDetails.SepaDebit)
    assert set(mandate["payment_method_details"]["sepa_debit"].to_dict()) == _fields(stripe.Mandate.PaymentMethodDetails.SepaDebit)
    assert set(mandate["customer_acceptance"].to_dict()) == _fields(stripe.Mandate.CustomerAcceptance)
    # Connect-only and single-use fields aside, the mandate has endive's fields.
    assert set(mandate.to_dict()) == _fields(stripe.Mandate) - {"on_behalf_of", "single_use"}


def test_an_off_session_debit_may_name_the_mandate_it_is_made_under_and_only_a_live_one_of_its_method(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "elise@example.org"})
    first = _debit(stripe_client, customer=customer["id"], setup_future_usage="off_session")
    pm, mandate = first["payment_method"], first["latest_charge"]["payment_method_details"]["sepa_debit"]["mandate"]
    base = {"amount": 1500, "currency": "eur", "customer": customer["id"], "payment_method": pm,
            "allowed_payment_method_types": ["sepa_debit"]}
    again = stripe_client.v1.payment_intents.create(params={**base, "confirm": True, "off_session": True, "mandate": mandate,
                                                            "expand": ["latest_charge"]})
    assert again["status"] == "processing"
    assert again["latest_charge"]["payment_method_details"]["sepa_debit"]["mandate"] == mandate
    other = _debit(stripe_client, customer=customer["id"], setup_future_usage="off_session")
    refusals = [
        ({**base, "mandate": mandate}, "mandate", None),  # without confirm=true
        ({**base, "confirm": True, "mandate": "mandate_nope"}, "mandate", "resource_missing"),
        ({**base, "confirm": True, "mandate": other["latest_charge"]["payment_method_details"]["sepa_debit"]["mandate"]},
         "mandate", None),  # another method's mandate
        ({**base, "confirm": True, "mandate": mandate, "mandate_data": ACCEPTANCE}, "mandate", None),
    ]
    before = len(list(sb.store.all("payment_intent")))
    for params, param, code in refusals:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            stripe_client.v1.payment_intents.create(params=params)
        assert refused.value.param == param and (code is None or refused.value.code == code)
    assert len(list(sb.store.all("payment_intent"))) == before
    sepa.end_mandate(sb, sb.store.get("mandate", mandate))
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.create(params={**base, "confirm": True, "off_session": True, "mandate": mandate})
    assert (refused.value.param, refused.value.code) == ("mandate", "payment_method_unexpected_state")
