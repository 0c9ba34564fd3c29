"""Money comes from Stripe, not from a payload's word.

A webhook's signature says the event came from Stripe; it does not make its payload the
truth about money (an old or forged payload, a replay aimed at another row). Before an
event moves a payment, a pledge, a total or a receipt, the handler works from the object
as Stripe holds it now (re-fetched through the gateway, or the balance transaction read
from Stripe for a settled charge), and that object must agree with our own row: amount,
currency, our metadata. Any disagreement is a :class:`StripeMismatch`: nothing is applied,
and the event becomes a dead letter at once (no retry would change Stripe's answer), shown
to staff on the Stripe page with what disagreed.
"""

from __future__ import annotations

from typing import Any

from funding.errors import Conflict
from funding.stripe_gateway import stripe_id

# The event families whose objects move money state.
MONEY_EVENTS = ("charge.", "payment_intent.", "checkout.session.", "invoice.")
# Facts of an object that a payload claiming money must share with Stripe's copy.
FACTS = ("object", "amount", "amount_total", "amount_paid", "currency", "customer", "payment_intent", "balance_transaction",
         "subscription")
# Our metadata keys: what names the row an object pays.
OUR_KEYS = ("purpose", "payment_id", "pledge_id", "org_id", "site_id", "bar_batch_id", "campaign_id", "ref")


class StripeMismatch(Conflict):
    """An event or object that disagrees with Stripe or with our row: refused, applied never."""



def claims_money(obj: dict[str, Any]) -> bool:
    """Does this object say money was received (a succeeded charge or PaymentIntent, a paid invoice or Checkout)?"""
    return obj.get("status") in ("succeeded", "paid") or obj.get("payment_status") == "paid" or obj.get("paid") is True


def _what(obj: dict[str, Any]) -> str:
    return f"{obj.get('object') or 'objet'} {obj.get('id') or '?'}"


def check_payload(payload: dict[str, Any], current: dict[str, Any]) -> None:
    """A payload that claims money must say what Stripe's current copy says, on every fact we act on."""
    if not claims_money(payload):
        return
    if not claims_money(current):
        state = current.get("payment_status") or current.get("status")
        raise StripeMismatch(f"{_what(payload)} : l'événement le dit payé, Stripe le dit « {state} »")
    for key in FACTS:
        mine, theirs = stripe_id(payload.get(key)), stripe_id(current.get(key))
        if mine is not None and theirs is not None and mine != theirs:
            raise StripeMismatch(f"{_what(payload)} : {key} vaut {mine!r} dans l'événement, {theirs!r} chez Stripe")
    ours, theirs_meta = payload.get("metadata") or {}, current.get("metadata") or {}
    for key in OUR_KEYS:
        if key in ours and str(ours[key]) != str(theirs_meta.get(key)):
            raise StripeMismatch(f"{_what(payload)} : metadata {key} vaut {ours[key]!r} dans l'événement, "
                                 f"{theirs_meta.get(key)!r} chez Stripe")


def stripe_copy(payload: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Stripe's copy of the payload's object among what the handlers fetched (or one level down)."""
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        if obj.get("id") == payload.get("id") and obj is not payload:
            return obj
        for value in obj.values():
            if isinstance(value, dict) and value.get("id") == payload.get("id"):
                return value
    return None


def received(obj: dict[str, Any]) -> int | None:
    """The amount Stripe says was paid, whatever the object."""
    kind = obj.get("object")
    if kind == "checkout.session":
        return obj.get("amount_total")
    if kind == "payment_intent":
        return obj.get("amount_received") or obj.get("amount")
    if kind == "invoice":
        return obj.get("amount_paid")
    if kind == "charge":
        return obj.get("amount_captured") or obj.get("amount")
    return obj.get("amount")


def check_row(row_id: int, amount: int, currency: str, obj: dict[str, Any], *, id_key: str = "payment_id",
              what: str = "paiement", customer: str | None = None) -> None:
    """Stripe's object ``obj`` must pay exactly our row: same amount, same currency, the row's
    Stripe customer (when it has one), and our metadata naming this row (when it names one)."""
    theirs = stripe_id(obj.get("customer"))
    if customer and theirs and theirs != customer:
        raise StripeMismatch(f"{_what(obj)} : client {theirs} chez Stripe, {customer} pour le {what} {row_id}")
    paid = received(obj)
    if paid is not None and int(paid) != amount:
        raise StripeMismatch(f"{_what(obj)} : {int(paid)} reçus chez Stripe pour le {what} {row_id} de {amount}")
    if obj.get("currency") and str(obj["currency"]).lower() != currency.lower():
        raise StripeMismatch(f"{_what(obj)} : devise {obj['currency']} chez Stripe, {currency} pour le {what} {row_id}")
    named = str((obj.get("metadata") or {}).get(id_key) or "")
    if named and named != str(row_id):
        raise StripeMismatch(f"{_what(obj)} : metadata {id_key}={named} chez Stripe, pas le {what} {row_id}")
