"""Recurring gifts: their Checkout sessions, subscriptions and invoices (funding.donations.recurring).

Each handler fetches the current object (the event is only a notification) and looks at gifts
only (metadata ``purpose=recurring_gift``, on the subscription); every effect is keyed by a
Stripe id — the instalment by its invoice, the failure email by invoice and attempt, the
entry by its balance transaction — so a replay, a duplicate or an older event changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from funding.coworking.mandates import debit_of_invoice
from funding.donations import annual, recurring
from funding.ledger.service import EntryDraft
from funding.payments import books
from funding.stripe_gateway import StripeGateway, StripeRefused, stripe_id
from webhooks.events import Event
from webhooks.handlers import Handler, Prepared, version


async def prepare_checkout(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    if obj.get("mode") != "subscription" or not recurring.is_gift(obj):
        return Prepared()
    return Prepared(objects=[await gw.retrieve("checkout.sessions", obj["id"], expand=["subscription"])])


async def apply_checkout(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    if prepared.objects:
        await recurring.apply_checkout(session, prepared.objects[0], version(event, prepared))
    return []


async def prepare_subscription(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    if not recurring.is_gift(obj):
        return Prepared()
    try:
        return Prepared(objects=[await gw.retrieve("subscriptions", obj["id"])])
    except StripeRefused as exc:
        if exc.http_status == 404:
            return Prepared(objects=[obj], fetched_at=0)
        raise


async def apply_subscription(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    if prepared.objects:
        await recurring.apply_subscription(session, prepared.objects[0], version(event, prepared))
    return []


async def prepare_invoice(gw: StripeGateway, event: Event) -> Prepared:
    _sub, meta = recurring.subscription_of_invoice(event["data"]["object"])
    if meta.get("purpose") != recurring.PURPOSE:
        return Prepared()
    invoice = await gw.retrieve("invoices", event["data"]["object"]["id"], expand=["payments"])
    prepared = Prepared(objects=[invoice])
    pi_id = recurring.invoice_payment_intent(invoice) if event["type"] == "invoice.payment_failed" else None
    if pi_id:  # the bank's reason, for the donor's email
        prepared.objects.append(await gw.retrieve("payment_intents", pi_id))
    debit = await debit_of_invoice(gw, invoice)  # a SEPA debit in flight: the donor is told its amount and day
    if debit is not None:
        prepared.objects.append(debit)
    prepared.contexts += await books.paid_invoice_contexts(gw, invoice)
    return prepared


async def apply_invoice(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    if not prepared.objects:
        return []
    invoice = prepared.objects[0]
    attempt = int(event["data"]["object"].get("attempt_count") or invoice.get("attempt_count") or 0)
    fetched = {obj.get("object"): obj for obj in prepared.objects[1:]}
    reason = recurring.failure_reason(fetched["payment_intent"]) if "payment_intent" in fetched else None
    gift = await recurring.apply_invoice(session, event["type"], invoice, attempt, reason, debit=fetched.get("entrelab.sepa_debit"))
    if gift is None or not prepared.contexts:
        return []
    for context in prepared.contexts:  # taken back before its instalment was recorded (its events came first)
        await _taken_back_already(session, context.charge)
    return await books.drafts_for(session, prepared.contexts)


async def _taken_back_already(session: AsyncSession, charge: dict[str, Any] | None) -> None:
    """What the charge already shows taken back: refunds, and a SEPA debit's dispute (final, the whole amount)."""
    if not charge or not charge.get("payment_intent"):
        return
    total, reason = int(charge.get("amount_refunded") or 0), "remboursement"
    if charge.get("disputed") and (charge.get("payment_method_details") or {}).get("type") == "sepa_debit":
        total, reason = total + int(charge.get("amount") or 0), "prélèvement contesté"
    if total > 0:
        await annual.taken_back(session, str(stripe_id(charge["payment_intent"])), total, reason=reason)


# charge.refunded, refund.*, charge.dispute.closed (and funds_withdrawn, for a SEPA debit): what Stripe took back of an instalment (the charges'
# handlers book the money; here the instalment and its year's receipt follow).
async def prepare_taken_back(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    if obj.get("object") == "charge" and (obj.get("metadata") or {}).get("purpose"):
        return Prepared()  # a charge of ours that is no invoice's (invoices' charges carry no metadata)
    charge_id = obj["id"] if obj.get("object") == "charge" else stripe_id(obj.get("charge"))
    if not charge_id:
        return Prepared()
    charge = await gw.retrieve("charges", charge_id)
    if not charge.get("payment_intent") or (charge.get("metadata") or {}).get("purpose"):
        return Prepared()
    objects = [charge]
    if obj.get("object") == "dispute":
        objects.append(await gw.retrieve("disputes", obj["id"]))
    return Prepared(objects=objects)


async def apply_taken_back(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    if not prepared.objects:
        return []
    charge = prepared.objects[0]
    total, reason = int(charge.get("amount_refunded") or 0), "remboursement"
    dispute = prepared.objects[1] if len(prepared.objects) > 1 else {}
    if dispute.get("status") == "lost":
        total, reason = total + int(dispute.get("amount") or 0), "litige perdu"
    elif dispute.get("status") in FINAL_DEBIT_DISPUTE and (charge.get("payment_method_details") or {}).get("type") == "sepa_debit":
        # A SEPA Direct Debit disputed by the donor's bank cannot be won back: the money is gone when it is withdrawn.
        total, reason = total + int(dispute.get("amount") or 0), "prélèvement contesté"
    if total > 0:
        await annual.taken_back(session, str(stripe_id(charge["payment_intent"])), total, reason=reason)
    return []


# A SEPA debit's dispute (the donor asked their bank for the money back: "SEPA Direct Debit disputes are final and
# there's no process for appeal", Stripe): taken back as soon as the funds are withdrawn, whatever its status says.
FINAL_DEBIT_DISPUTE = ("needs_response", "under_review", "lost")

CHECKOUT = Handler(prepare_checkout, apply_checkout)
SUBSCRIPTION = Handler(prepare_subscription, apply_subscription)
INVOICE = Handler(prepare_invoice, apply_invoice)
TAKEN_BACK = Handler(prepare_taken_back, apply_taken_back)

HANDLERS = {
    **{t: CHECKOUT for t in ("checkout.session.completed", "checkout.session.expired")},
    **{t: SUBSCRIPTION for t in ("customer.subscription.created", "customer.subscription.updated",
                                 "customer.subscription.deleted", "customer.subscription.paused",
                                 "customer.subscription.resumed")},
    **{t: INVOICE for t in ("invoice.finalized", "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed", "invoice.updated")},
    **{t: TAKEN_BACK for t in ("charge.refunded", "refund.created", "refund.updated", "charge.dispute.closed",
                               "charge.dispute.funds_withdrawn")},
}
