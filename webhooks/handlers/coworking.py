"""Coworking: members' subscriptions, invoices and subscription checkouts.

Each handler fetches the current object (the event is only a notification) and applies it
through funding.coworking.lifecycle, where every effect is keyed by a Stripe id: a replay,
a duplicate or an older event arriving late changes nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.coworking.billing import apply_checkout
from funding.coworking.credit_notes import apply_credit_note, note_intents, with_all_note_lines
from funding.coworking.lifecycle import (
    apply_invoice,
    apply_subscription,
    invoice_effects,
)
from funding.coworking.mandates import debit_of_invoice
from funding.coworking.models import InvoiceStatus
from funding.ledger.service import EntryDraft
from funding.payments import books
from funding.payments.verify import StripeMismatch, claims_money
from funding.stripe_gateway import StripeGateway, StripeRefused, stripe_id
from webhooks.events import Event
from webhooks.handlers import Handler, Prepared, version


async def _current(gw: StripeGateway, resource: str, event: Event, *, expand: list[str] | None = None) -> Prepared:
    obj = event["data"]["object"]
    try:
        return Prepared(objects=[await gw.retrieve(resource, obj["id"], expand=expand)])
    except StripeRefused as exc:
        if exc.http_status == 404 and claims_money(obj):  # a paid object Stripe does not know: refused
            raise StripeMismatch(f"{obj.get('object')} {obj['id']} : l'événement le dit payé, Stripe ne le connaît pas") from exc
        if exc.http_status == 404:  # gone from Stripe (a deleted draft): the payload, at the event's time
            return Prepared(objects=[obj], fetched_at=0)
        raise


# customer.subscription.*: status, price and period, moved only forwards.
async def prepare_subscription(gw: StripeGateway, event: Event) -> Prepared:
    return await _current(gw, "subscriptions", event)


async def apply_subscription_event(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    await apply_subscription(session, prepared.objects[0], version(event, prepared))
    return []


# invoice.*: the member's invoice list; once paid, its sale entry then its settlement
# (from the charge's balance transaction); failed attempts and 3-D Secure requests email the member.
async def prepare_invoice(gw: StripeGateway, event: Event) -> Prepared:
    prepared = await _current(gw, "invoices", event, expand=["payments"])
    invoice = await books.with_all_lines(gw, prepared.objects[0])
    prepared.objects[0] = invoice
    prepared.contexts += await books.paid_invoice_contexts(gw, invoice)
    debit = await debit_of_invoice(gw, invoice)  # a SEPA debit in flight: the member is told its amount and day
    if debit is not None:
        prepared.objects.append(debit)
    return prepared


async def apply_invoice_event(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    row = await apply_invoice(session, prepared.objects[0], version(event, prepared))
    if row is None:
        return []
    debit = prepared.objects[1] if len(prepared.objects) > 1 else None
    drafts = await invoice_effects(session, event["type"], event["data"]["object"], row, prepared.objects[0], debit=debit)
    if row.status == InvoiceStatus.PAID and prepared.contexts:
        drafts += await books.drafts_for(session, prepared.contexts)
    return drafts


# checkout.session.*: a member's subscription checkout (payment-mode passes are the payments service's).
async def prepare_checkout(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    if obj.get("mode") != "subscription" or (obj.get("metadata") or {}).get("purpose") != "coworking":
        return Prepared()
    return await _current(gw, "checkout.sessions", event, expand=["subscription"])


async def apply_checkout_event(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    if prepared.objects:
        await apply_checkout(session, prepared.objects[0], version(event, prepared))
    return []


# refund.* / charge.dispute.closed: a refund or a lost dispute on a member's invoice calls for a
# credit note (recorded here, issued by the worker); the money itself is the charges' handlers'.
async def prepare_credit_cause(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    if event["type"].startswith("refund."):
        source = await gw.retrieve("refunds", obj["id"])
        txns = [source.get("balance_transaction")] if source.get("status") in ("succeeded", "pending") else []
    else:
        source = await gw.retrieve("disputes", obj["id"])
        txns = list(source.get("balance_transactions") or [])[:1] if source.get("status") == "lost" else []
    return Prepared(contexts=[await books.fetch_context(gw, stripe_id(txn) or "") for txn in txns if stripe_id(txn)])


async def apply_credit_cause(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    await note_intents(session, prepared.contexts)
    return []


# credit_note.*: a credit note on a member's invoice, ours or made in the Dashboard: mirrored, booked, sent.
async def prepare_credit_note(gw: StripeGateway, event: Event) -> Prepared:
    return Prepared(objects=[await with_all_note_lines(gw, await gw.retrieve("credit_notes", event["data"]["object"]["id"]))])


async def apply_credit_note_event(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    await apply_credit_note(session, prepared.objects[0])
    return []


SUBSCRIPTION = Handler(prepare_subscription, apply_subscription_event)
INVOICE = Handler(prepare_invoice, apply_invoice_event)
CHECKOUT = Handler(prepare_checkout, apply_checkout_event)
CREDIT_CAUSE = Handler(prepare_credit_cause, apply_credit_cause)
CREDIT_NOTE = Handler(prepare_credit_note, apply_credit_note_event)

HANDLERS = {
    **{t: SUBSCRIPTION for t in ("customer.subscription.created", "customer.subscription.updated",
                                 "customer.subscription.deleted", "customer.subscription.paused",
                                 "customer.subscription.resumed")},
    **{t: INVOICE for t in ("invoice.finalized", "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed",
                            "invoice.payment_action_required", "invoice.voided", "invoice.marked_uncollectible",
                            "invoice.updated")},
    **{t: CHECKOUT for t in ("checkout.session.completed", "checkout.session.expired")},
    **{t: CREDIT_CAUSE for t in ("refund.created", "refund.updated", "charge.dispute.closed")},
    **{t: CREDIT_NOTE for t in ("credit_note.created", "credit_note.updated", "credit_note.voided")},
}
