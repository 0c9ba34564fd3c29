"""The sandbox's objects have the top-level fields of 2026-10-28.endive: those stripe-python
16.1.0's resource classes annotate for that version (a missing or an extra field fails), for every
object type the product reads, retrieved and as the product expands them; nested hashes hold no
field the version lacks."""

from __future__ import annotations

import typing

import stripe

DAY = 86_400

RESOURCES = {
    "customer": stripe.Customer,
    "checkout.session": stripe.checkout.Session,
    "payment_intent": stripe.PaymentIntent,
    "setup_intent": stripe.SetupIntent,
    "invoice": stripe.Invoice,
    "subscription": stripe.Subscription,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "dispute": stripe.Dispute,
    "balance_transaction": stripe.BalanceTransaction,
    "payout": stripe.Payout,
    "credit_note": stripe.CreditNote,
    "credit_note_line_item": stripe.CreditNoteLineItem,
    "price": stripe.Price,
    "product": stripe.Product,
    "payment_method": stripe.PaymentMethod,
    "event": stripe.Event,
    "test_helpers.test_clock": stripe.test_helpers.TestClock,
    "invoice_payment": stripe.InvoicePayment,
    "line_item": stripe.InvoiceLineItem,
    "invoiceitem": stripe.InvoiceItem,
    "subscription_item": stripe.SubscriptionItem,
    "tax_rate": stripe.TaxRate,
}


# Fields Stripe returns only when asked (``expand[]``/includable), only on a deleted object, or only
# when something the product never does happened (Stripe's OpenAPI spec does not mark them required).
NOT_BY_DEFAULT = {
    "customer": {"cash_balance", "invoice_credit_balance", "sources", "subscriptions", "tax", "tax_ids", "deleted"},
    "checkout.session": {"line_items"},
    "invoice": {"confirmation_secret", "payments", "deleted"},
    # includable: refunds; the others only on a destination charge (transfer), with level 3 data, a presentment
    # currency, Radar options given, or when the network's authorization code is exposed
    "charge": {"refunds", "authorization_code", "level3", "presentment_details", "radar_options", "transfer"},
    # only on a network that gives a reason code, or once a submission method was chosen
    "dispute": {"intended_submission_method", "network_reason_code"},
    "event": {"account", "context"},  # Connect / organisation events only
    # only on a failed, pending, non-card or presentment-currency refund
    "refund": {"description", "failure_balance_transaction", "failure_reason", "instructions_email", "next_action",
               "pending_reason", "presentment_details"},
    "price": {"currency_options", "tiers", "deleted"},  # includable
    "product": {"tax_details", "deleted"},
    "invoiceitem": {"frozen_fields", "invoicing_rules", "proration_details", "deleted"},
    "subscription_item": {"billed_until", "current_trial", "deleted"},
    "test_helpers.test_clock": {"deleted"},
    # a payment method has the hash of its own type only (and radar_options when given)
    "payment_method": {"radar_options"} | set(typing.get_args(typing.get_args(stripe.PaymentMethod.__annotations__["type"])[0])) - {"card"},
}


def _fields(cls) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("stripe.") and klass.__name__ not in ("StripeObject", "APIResource"):
            names |= {n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_") and n != "OBJECT_NAME"}
    return {n for n in names if not isinstance(getattr(cls, n, None), type)}


def _objects(client, server, sb):
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
    # Money: a paid charge, a refund, a dispute, the balance transactions and a payout (as the product reads them).
    paid = client.v1.payment_intents.create(params={"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True})
    charge = client.v1.charges.retrieve(paid["latest_charge"])
    refund = client.v1.refunds.create(params={"payment_intent": paid["id"], "amount": 1000})
    disputed = client.v1.payment_intents.create(params={"amount": 3000, "currency": "eur", "payment_method": "pm_card_createDispute", "confirm": True})
    dispute = client.v1.disputes.list(params={"payment_intent": disputed["id"]})["data"][0]
    txn = client.v1.balance_transactions.retrieve(charge["balance_transaction"])
    sb.advance_clock(4 * DAY)
    payout = client.v1.payouts.list()["data"][0]
    # Billing: a credit note on the paid invoice, its invoice payment, lines and items.
    line = invoice["lines"]["data"][0]
    note = client.v1.credit_notes.create(params={"invoice": invoice["id"], "out_of_band_amount": 100,
                                                 "lines": [{"type": "invoice_line_item", "invoice_line_item": line["id"], "amount": 100}]})
    invoice_payment = client.v1.invoice_payments.list(params={"invoice": invoice["id"]})["data"][0]
    rate = client.v1.tax_rates.create(params={"display_name": "TVA", "percentage": 20, "inclusive": False})
    item = client.v1.invoice_items.create(params={"customer": customer["id"], "amount": 500, "currency": "eur", "tax_rates": [rate["id"]]})
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": sb.now(), "name": "Formes"})
    event = client.v1.events.retrieve(client.v1.events.list(params={"limit": 1})["data"][0]["id"])
    return {
        "invoice": client.v1.invoices.retrieve(invoice["id"]), "subscription": sub, "customer": customer, "checkout.session": session,
        "payment_intent": intent, "setup_intent": setup, "charge": charge, "refund": refund, "dispute": dispute,
        "balance_transaction": txn, "payout": payout, "credit_note": note, "credit_note_line_item": note["lines"]["data"][0],
        "price": client.v1.prices.retrieve(price["id"]), "product": client.v1.products.retrieve(price["product"]),
        "payment_method": client.v1.payment_methods.retrieve(paid["payment_method"]), "event": event,
        "test_helpers.test_clock": client.v1.test_helpers.test_clocks.retrieve(clock["id"]), "invoice_payment": invoice_payment,
        "line_item": line, "invoiceitem": item, "subscription_item": sub["items"]["data"][0], "tax_rate": rate,
    }


def _expanded(client, objects):
    """The objects the product reads through ``expand[]``/includable fields, as (kind, object)."""
    paid = client.v1.payment_intents.retrieve(objects["charge"]["payment_intent"], params={"expand": ["latest_charge.balance_transaction"]})
    charge = client.v1.charges.retrieve(objects["charge"]["id"], params={"expand": ["payment_intent", "refunds"]})
    txn = client.v1.balance_transactions.retrieve(objects["balance_transaction"]["id"], params={"expand": ["source"]})
    customer = client.v1.customers.retrieve(objects["customer"]["id"], params={"expand": ["invoice_settings.default_payment_method"]})
    invoice = client.v1.invoices.retrieve(objects["invoice"]["id"], params={"expand": ["payments"]})
    sub = client.v1.subscriptions.retrieve(objects["subscription"]["id"], params={"expand": ["latest_invoice"]})
    return [
        ("charge", paid["latest_charge"]), ("balance_transaction", paid["latest_charge"]["balance_transaction"]),
        ("payment_intent", charge["payment_intent"]), ("refund", charge["refunds"]["data"][0]), ("charge", txn["source"]),
        ("payment_method", customer["invoice_settings"]["default_payment_method"]), ("invoice_payment", invoice["payments"]["data"][0]),
        ("invoice", sub["latest_invoice"]),
    ]


def _shape_wrong(kind, obj) -> tuple[list[str], list[str]] | None:
    expected = _fields(RESOURCES[kind]) - NOT_BY_DEFAULT.get(kind, set())
    assert obj is not None, kind
    actual = set(obj.to_dict())
    return None if expected == actual else (sorted(expected - actual), sorted(actual - expected))


def test_top_level_fields_are_endive_s(stripe_client, server, sb):
    objects = _objects(stripe_client, server, sb)
    assert set(objects) == set(RESOURCES)
    wrong = {kind: _shape_wrong(kind, obj) for kind, obj in objects.items()}
    wrong |= {f"{kind} (expanded {n})": _shape_wrong(kind, obj) for n, (kind, obj) in enumerate(_expanded(stripe_client, objects))}
    wrong = {kind: diff for kind, diff in wrong.items() if diff}
    assert wrong == {}, "\n".join(f"{k}: missing {m} extra {e}" for k, (m, e) in wrong.items())


def _nested_class(annotation):
    """The StripeObject class a field holds (itself, in an Optional, or in a List), if it has one."""
    for arg in (annotation, *typing.get_args(annotation)):
        for inner in (arg, *typing.get_args(arg)):
            if isinstance(inner, type) and issubclass(inner, stripe.StripeObject) and inner.__qualname__.count(".") >= 1:
                return inner
    return None


def _nested_wrong(cls, value, path, wrong):
    hints = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("stripe."):
            hints.update(getattr(klass, "__annotations__", {}))
    for name, annotation in hints.items():
        inner = _nested_class(annotation)
        if inner is None or not isinstance(value, dict):
            continue
        for item in (value.get(name) if isinstance(value.get(name), list) else [value.get(name)]):
            if isinstance(item, dict):
                expected, actual = _fields(inner), set(item)
                if expected != actual:
                    wrong[f"{path}.{name}"] = (sorted(expected - actual), sorted(actual - expected))
                _nested_wrong(inner, item, f"{path}.{name}", wrong)


def test_nested_objects_have_no_field_endive_lacks(stripe_client, server, sb):
    """Nested hashes with a class of their own (an outcome, a card's details, an invoice's parent…) hold
    no field the version does not have; fields they lack are not checked: most appear only for some
    payment method types, networks or events."""
    objects = _objects(stripe_client, server, sb)
    wrong: dict[str, tuple[list[str], list[str]]] = {}
    for kind, cls in sorted(RESOURCES.items()):
        _nested_wrong(cls, objects[kind].to_dict(), kind, wrong)
    extra = {path: actual for path, (_, actual) in wrong.items() if actual}
    assert extra == {}


def test_a_failed_refund_has_endive_s_fields_and_its_failure(stripe_client, sb):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 3000, "currency": "eur", "payment_method": "pm_card_refundFail", "confirm": True})
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi["id"], "amount": 1000})
    sb.advance_clock(2 * 3_600)
    failed = stripe_client.v1.refunds.retrieve(refund["id"])
    assert failed["status"] == "failed"
    expected = _fields(stripe.Refund) - NOT_BY_DEFAULT["refund"] | {"failure_balance_transaction", "failure_reason"}
    assert set(failed.to_dict()) == expected
