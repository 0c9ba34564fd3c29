"""Charges, refunds and PaymentIntents: the money in, and back out."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.ledger.service import EntryDraft
from funding.payments import books, mirror
from funding.payments.service import record_refunds, settle_payment_intent, settle_payment_intents
from funding.payments.verify import StripeMismatch, claims_money
from funding.stripe_gateway import StripeGateway, StripeRefused, stripe_id
from webhooks.events import Event, StripeDict
from webhooks.handlers import Handler, Prepared, version


async def charge_contexts(gw: StripeGateway, charge: StripeDict) -> list[books.TxnContext]:
    txns = []
    if charge.get("balance_transaction"):
        bt = charge["balance_transaction"]
        txns.append(bt["id"] if isinstance(bt, dict) else bt)
    for refund in ((charge.get("refunds") or {}).get("data") or []):
        if refund.get("balance_transaction"):
            bt = refund["balance_transaction"]
            txns.append(bt["id"] if isinstance(bt, dict) else bt)
    return [await books.fetch_context(gw, t) for t in txns]


def settled_charge(event: Event) -> StripeDict | None:
    """The charge of a ``charge.succeeded``/``captured``/``updated`` event when the payload
    serves as is: a succeeded charge's facts that we book (amount, metadata, balance
    transaction) never change once set. None when something may have changed since
    (refunds, a balance transaction still missing): then the charge is fetched."""
    charge = (event.get("data") or {}).get("object") or {}
    if event.get("type") in ("charge.succeeded", "charge.captured", "charge.updated") and charge.get("object") == "charge" \
            and charge.get("status") == "succeeded" and isinstance(charge.get("balance_transaction"), str) \
            and not charge.get("amount_refunded"):
        return charge
    return None


def _vouched_by_stripe(charge: StripeDict, contexts: list[books.TxnContext]) -> None:
    """A settled charge taken from its payload is only booked if Stripe's balance transaction
    for it, read from Stripe, is this charge's, for its amount: else the payload is refused."""
    txn = next((c.txn for c in contexts if c.txn.get("id") == charge["balance_transaction"]), None)
    source = stripe_id((txn or {}).get("source"))
    if txn is None or source != charge["id"] or txn.get("type") not in ("charge", "payment"):
        raise StripeMismatch(f"charge {charge['id']} : sa transaction {charge['balance_transaction']} chez Stripe "
                             f"n'est pas la sienne ({source})")
    same_money = str(txn.get("currency")).lower() == str(charge.get("currency")).lower() and not txn.get("exchange_rate")
    if same_money and int(txn.get("amount") or 0) != int(charge.get("amount") or 0):
        raise StripeMismatch(f"charge {charge['id']} : {charge.get('amount')} dans l'événement, "
                             f"{txn.get('amount')} chez Stripe")



# charge.succeeded, charge.updated (its balance transaction may appear late), charge.refunded…
async def prepare_charge(gw: StripeGateway, event: Event) -> Prepared:
    """A settled charge's payload serves for its booking once Stripe's balance transaction vouches
    for it, but it settles no payment (its checkout or PaymentIntent, always fetched, does); any
    other charge is fetched, and settles its payment as Stripe holds it."""
    payload = event["data"]["object"]
    charge = settled_charge(event)
    if charge is not None:
        try:
            contexts = await charge_contexts(gw, charge)
        except StripeRefused as exc:
            if exc.http_status == 404:
                raise StripeMismatch(f"charge {charge['id']} : Stripe ne connaît pas sa transaction "
                                     f"{charge['balance_transaction']}") from exc
            raise
        _vouched_by_stripe(charge, contexts)
        return Prepared(contexts=contexts)
    try:
        charge = await gw.retrieve("charges", payload["id"], expand=["refunds"])
    except StripeRefused as exc:
        if exc.http_status == 404 and claims_money(payload):
            raise StripeMismatch(f"charge {payload['id']} : inconnue chez Stripe") from exc
        raise
    return Prepared(contexts=await charge_contexts(gw, charge), objects=[charge])


async def apply_charges(session: AsyncSession, items: list[tuple[Event, Prepared]]) -> list[EntryDraft]:
    """Settle the payments of the succeeded charges as Stripe holds them (one batch of statements
    for all), then record refunded totals (a refund needs its payment settled first), then the drafts."""
    charges = [obj for _event, prepared in items for obj in prepared.objects]
    pis = []
    for charge in charges:
        if charge.get("status") == "succeeded" and charge.get("payment_intent"):
            pi = charge["payment_intent"]
            pis.append(pi if isinstance(pi, dict) else {
                "id": pi, "object": "payment_intent", "status": "succeeded", "metadata": charge.get("metadata") or {},
                "amount_received": charge.get("amount_captured") or charge.get("amount"), "currency": charge.get("currency"),
                "latest_charge": {"object": "charge", "created": charge.get("created")}})
    await settle_payment_intents(session, pis)
    for charge in charges:
        await record_refunds(session, charge)
    return await books.drafts_for(session, [ctx for _event, prepared in items for ctx in prepared.contexts])


async def apply_charge(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    return await apply_charges(session, [(event, prepared)])


# refund.created / refund.updated / refund.failed: a refund's own balance transaction.
async def prepare_refund(gw: StripeGateway, event: Event) -> Prepared:
    refund = await gw.retrieve("refunds", event["data"]["object"]["id"])
    txns = []
    for key in ("balance_transaction", "failure_balance_transaction"):
        bt = refund.get(key)
        if bt:
            txns.append(bt["id"] if isinstance(bt, dict) else bt)
    return Prepared(contexts=[await books.fetch_context(gw, t) for t in txns], objects=[refund])


async def apply_refund(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    """Its state is kept (staff see failed refunds); a failed one's money back is the reversal of its entry."""
    for refund in prepared.objects:
        await mirror.apply_state(session, refund, version(event, prepared))
    return await books.drafts_for(session, prepared.contexts)


# payment_intent.*: mirror the state; a success settles its payment and books its charge.
async def prepare_payment_intent(gw: StripeGateway, event: Event) -> Prepared:
    pi = await gw.retrieve("payment_intents", event["data"]["object"]["id"], expand=["latest_charge"])
    charge = pi.get("latest_charge")
    contexts = await charge_contexts(gw, charge) if isinstance(charge, dict) else []
    return Prepared(contexts=contexts, objects=[pi])


async def apply_payment_intent(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    pi = prepared.objects[0]
    await mirror.apply_state(session, {**pi, "latest_charge": None}, version(event, prepared))
    await settle_payment_intent(session, pi)
    return await books.drafts_for(session, prepared.contexts)


CHARGE = Handler(prepare_charge, apply_charge, apply_charges)
REFUND = Handler(prepare_refund, apply_refund)
PAYMENT_INTENT = Handler(prepare_payment_intent, apply_payment_intent)

HANDLERS = {
    **{t: CHARGE for t in ("charge.succeeded", "charge.updated", "charge.captured", "charge.refunded",
                           "charge.refund.updated")},
    **{t: REFUND for t in ("refund.created", "refund.updated", "refund.failed")},
    **{t: PAYMENT_INTENT for t in ("payment_intent.succeeded", "payment_intent.payment_failed",
                                   "payment_intent.canceled", "payment_intent.requires_action",
                                   "payment_intent.processing")},
}
