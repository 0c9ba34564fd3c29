"""The sandbox's objects have the top-level fields of 2026-10-28.endive: those stripe-python
16.1.0's resource classes annotate for that version (a missing or an extra field fails)."""

from __future__ import annotations

import pytest
import stripe

RESOURCES = {
    "customer": stripe.Customer,
    "checkout.session": stripe.checkout.Session,
    "payment_intent": stripe.PaymentIntent,
    "setup_intent": stripe.SetupIntent,
    "invoice": stripe.Invoice,
    "subscription": stripe.Subscription,
}


# Fields Stripe returns only when asked (``expand[]``/includable), or only on a deleted object.
NOT_BY_DEFAULT = {
    "customer": {"cash_balance", "invoice_credit_balance", "sources", "subscriptions", "tax", "tax_ids", "deleted"},
    "checkout.session": {"line_items"},
    "invoice": {"confirmation_secret", "payments", "deleted"},
}


def _fields(cls) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("stripe.") and klass.__name__ not in ("StripeObject", "APIResource"):
            names |= {n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_") and n != "OBJECT_NAME"}
    return {n for n in names if not isinstance(getattr(cls, n, None), type)}


def _objects(client, server):
    customer = client.v1.customers.create(params={"email": "shape@example.org", "payment_method": "pm_card_visa",
                                                  "invoice_settings": {"default_payment_method": "pm_card_visa"}})
    session = client.v1.checkout.sessions.create(params={
        "mode": "setup", "customer": customer["id"], "currency": "eur", "allowed_payment_method_types": ["card"],
        "success_url": server.root + "/ok", "cancel_url": server.root + "/ko"})
    intent = client.v1.payment_intents.create(params={"amount": 1000, "currency": "eur"})
    setup = client.v1.setup_intents.create(params={"customer": customer["id"]})
    price = client.v1.prices.create(params={"currency": "eur", "unit_amount": 9000, "recurring": {"interval": "month"},
                                            "product_data": {"name": "Poste nomade"}})
    sub = client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": price["id"]}]})
    invoice = client.v1.invoices.retrieve(sub["latest_invoice"])
    return {"invoice": invoice, "subscription": sub, "customer": customer, "checkout.session": session, "payment_intent": intent, "setup_intent": setup}


@pytest.mark.parametrize("kind", sorted(RESOURCES))
def test_top_level_fields_are_endive_s(stripe_client, server, kind):
    obj = _objects(stripe_client, server)[kind]
    expected = _fields(RESOURCES[kind]) - NOT_BY_DEFAULT.get(kind, set())
    actual = set(obj.to_dict())
    assert (sorted(expected - actual), sorted(actual - expected)) == ([], [])
