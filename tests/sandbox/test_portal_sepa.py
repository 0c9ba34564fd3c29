"""The sandbox's Billing Portal for a customer who pays by SEPA Direct Debit (issue 18): like
Stripe's customer portal, it collects a new bank account and its mandate (IBAN, holder, the
mandate's text accepted by saving), makes it the default, with the events Stripe sends; a card
customer is not offered it."""

from __future__ import annotations

import httpx

from tests.support.sandbox import card_form, types_since

DAY = 86_400
ACCEPTANCE = {"customer_acceptance": {"type": "online", "online": {"ip_address": "203.0.113.7", "user_agent": "Firefox"}}}


def _subscribed_by_sepa(client):
    customer = client.v1.customers.create(params={"email": "elise@example.org", "name": "Élise Martin"})
    pm = client.v1.payment_methods.create(params={"type": "sepa_debit", "sepa_debit": {"iban": "FR1420041010050500013M02606"},
                                                  "billing_details": {"name": "Élise Martin", "email": "elise@example.org"}})
    client.v1.setup_intents.create(params={"customer": customer["id"], "payment_method": pm["id"], "confirm": True,
                                           "allowed_payment_method_types": ["sepa_debit"], "mandate_data": ACCEPTANCE})
    price = client.v1.prices.create(params={"currency": "eur", "unit_amount": 2000, "recurring": {"interval": "month"},
                                            "product_data": {"name": "Don mensuel"}})
    return client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}],
                                                  "default_payment_method": pm["id"]})


def _portal(client, server, customer: str) -> str:
    return client.v1.billing_portal.sessions.create(params={"customer": customer, "return_url": server.root + "/x"})["url"]


def test_a_sepa_customer_replaces_their_account_in_the_portal_and_the_renewal_debits_it(stripe_client, sb, server):
    sub = _subscribed_by_sepa(stripe_client)
    sb.advance_clock(8 * DAY)  # the first debit settled: the subscription is active
    url = _portal(stripe_client, server, sub["customer"])
    page = httpx.get(url)
    assert "Prélèvement SEPA — compte se terminant par 2606 (banque 20041)" in page.text
    assert 'id="update-sepa"' in page.text and "vous autorisez" in page.text  # the mandate's text beside the form
    form_url = url.split("?")[0]
    before = len(sb.events)
    bad = httpx.post(form_url, data={"action": "update-sepa", "iban": "FR1420041010050500013M02607",
                                     "account-holder-name": "Élise Martin"})
    assert bad.status_code == 400 and "Cet IBAN est invalide" in bad.text and len(sb.events) == before
    first = len(sb.events)
    saved = httpx.post(form_url, data={"action": "update-sepa", "iban": "DE89 3704 0044 0532 0130 00",
                                       "account-holder-name": "Élise Martin"})
    assert saved.status_code == 200 and "Votre compte bancaire est enregistré (mandat " in saved.text
    assert "compte se terminant par 3000" in saved.text
    assert types_since(sb, first) == ["setup_intent.created", "payment_method.attached", "setup_intent.succeeded",
                                      "customer.updated", "customer.subscription.updated"]
    customer = stripe_client.v1.customers.retrieve(sub["customer"], params={"expand": ["invoice_settings.default_payment_method"]})
    new = customer["invoice_settings"]["default_payment_method"]
    assert (new["type"], new["sepa_debit"]["last4"], new["customer"]) == ("sepa_debit", "3000", sub["customer"])
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["default_payment_method"] == new["id"]
    seti = stripe_client.v1.setup_intents.list(params={"customer": sub["customer"], "payment_method": new["id"]})["data"][0]
    mandate = stripe_client.v1.mandates.retrieve(seti["mandate"])
    assert mandate["status"] == "active" and mandate["customer_acceptance"]["type"] == "online"

    sb.advance_clock(24 * DAY)  # the renewal is debited from the new account
    charges = stripe_client.v1.charges.list(params={"customer": sub["customer"]})["data"]
    renewal = [c for c in charges if c["payment_method"] == new["id"]]
    assert renewal and renewal[0]["payment_method_details"]["sepa_debit"]["mandate"] == mandate["id"]


def test_a_card_customer_is_not_offered_a_bank_account(stripe_client, sb, server):
    customer = stripe_client.v1.customers.create(params={"email": "paul@example.org"})
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer["id"]})
    price = stripe_client.v1.prices.create(params={"currency": "eur", "unit_amount": 2000, "recurring": {"interval": "month"},
                                                   "product_data": {"name": "Don mensuel"}})
    stripe_client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}],
                                                  "default_payment_method": pm["id"]})
    url = _portal(stripe_client, server, customer["id"])
    page = httpx.get(url)
    assert 'id="update-sepa"' not in page.text and "Visa se terminant par 4242" in page.text
    refused = httpx.post(url.split("?")[0], data={"action": "update-sepa", "iban": "DE89370400440532013000",
                                                  "account-holder-name": "Paul"})
    assert refused.status_code == 400
    assert httpx.post(url.split("?")[0], data={"action": "update-card"} | card_form("5555 5555 5555 4444", email=None)).status_code == 200
