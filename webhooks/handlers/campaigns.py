"""Campaign pledges: cards saved through Checkout (setup mode), off-session charges,
refunds, and the campaign tag of every ledger entry a pledge's money produces.

Keep-it-all payments settle through their Payment (the checkout handler and the paid
hook) and every charge is booked by the charges handler through the ``pledge`` purpose;
here the payload only says which object to fetch, and only pledges are looked at.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns import settle
from funding.campaigns.books import charge_txns, tag_stripe
from funding.campaigns.models import EntryKind
from funding.ledger.service import EntryDraft
from funding.stripe_gateway import StripeGateway
from webhooks.events import Event, StripeDict
from webhooks.handlers import Handler, Prepared


def _ours(obj: StripeDict) -> bool:
    return (obj.get("metadata") or {}).get("purpose") == "pledge"


# checkout.session.completed / .expired: an all-or-nothing card saved, a keep-it-all page paid or abandoned.
async def prepare_checkout(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    if not _ours(obj):
        return Prepared()
    return Prepared(objects=[await gw.retrieve("checkout.sessions", obj["id"],
                                               expand=["setup_intent", "payment_intent.latest_charge"])])


async def apply_checkout(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    for checkout in prepared.objects:
        pledge_id = settle.pledge_id_of(checkout)
        if checkout.get("mode") == "setup":
            await settle.settle_setup_session(session, checkout)
        elif pledge_id is not None:
            if checkout.get("status") == "expired":
                await settle.expire(session, pledge_id, "session de paiement expirée")
            pi = checkout.get("payment_intent")
            paid, _refunds = charge_txns(pi.get("latest_charge") if isinstance(pi, dict) else None)
            await tag_stripe(session, pledge_id, paid, EntryKind.PAYMENT)
    return []


# payment_intent.*: an all-or-nothing charge succeeded, needs authentication or was declined.
async def prepare_payment_intent(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    if not _ours(obj):
        return Prepared()
    return Prepared(objects=[await gw.retrieve("payment_intents", obj["id"], expand=["latest_charge"])])


async def apply_payment_intent(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    for pi in prepared.objects:
        await settle.settle_charge(session, pi)  # ignores keep-it-all payments (they carry a payment_id)
        pledge_id = settle.pledge_id_of(pi)
        if pledge_id is not None and pi.get("status") == "succeeded":
            paid, _refunds = charge_txns(pi.get("latest_charge"))
            await tag_stripe(session, pledge_id, paid, EntryKind.PAYMENT)
    return []


async def _pledge_charge(gw: StripeGateway, charge_id: str, expand: list[str]) -> StripeDict | None:
    """The charge as Stripe has it now, with its PaymentIntent's metadata (an off-session charge
    carries ours there) under its own; None if it is not a pledge's."""
    charge = await gw.retrieve("charges", charge_id, expand=expand)
    meta = dict(charge.get("metadata") or {})
    pi = charge.get("payment_intent")
    if "pledge_id" not in meta and isinstance(pi, dict):
        meta = {**(pi.get("metadata") or {}), **meta}
    return {**charge, "metadata": meta} if meta.get("purpose") == "pledge" else None


# charge.*, refund.*: tags for the charge's and refunds' balance transactions (they may appear
# late), and Stripe's refunded total of a pledge's charge (it only grows).
async def prepare_charge(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    charge_id = obj["id"] if obj.get("object") == "charge" else obj.get("charge")
    if isinstance(charge_id, dict):
        charge_id = charge_id.get("id")
    if not charge_id:
        return Prepared()
    purpose = (obj.get("metadata") or {}).get("purpose") if obj.get("object") == "charge" else None
    if purpose not in (None, "pledge"):  # another domain's charge: no need to read it from Stripe
        return Prepared()
    charge = await _pledge_charge(gw, charge_id, ["payment_intent", "refunds"])
    return Prepared(objects=[charge]) if charge else Prepared()


async def apply_charge(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    for charge in prepared.objects:
        pledge_id = settle.pledge_id_of(charge)
        if pledge_id is None:
            continue
        paid, refunds = charge_txns(charge)
        # The pledge's rows first, its entries' tags after, as every other path does (the return
        # page, the PaymentIntent and Checkout handlers): the other way round, a return page and
        # this handler deadlocked on PostgreSQL (tag insert against the pledge's lock).
        await settle.apply_refund(session, pledge_id, int(charge.get("amount_refunded") or 0))
        if charge.get("status") == "succeeded":
            await tag_stripe(session, pledge_id, paid, EntryKind.PAYMENT)
        await tag_stripe(session, pledge_id, refunds, EntryKind.REFUND)
    return []


# charge.dispute.*: the dispute's balance transactions carry the campaign's tag; a lost
# chargeback takes the money back as a refund would (totals down, the gift's receipt voided
# or reissued for what remains). A dispute is final once lost, so Stripe's refunded total
# plus the lost amount only ever grows, whichever of the charge or dispute events comes first.
async def prepare_dispute(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    charge_id = obj.get("charge")
    charge_id = charge_id.get("id") if isinstance(charge_id, dict) else charge_id
    if not charge_id:
        return Prepared()
    charge = await _pledge_charge(gw, charge_id, ["payment_intent"])
    if charge is None:
        return Prepared()
    return Prepared(objects=[charge, await gw.retrieve("disputes", obj["id"])])


async def apply_dispute(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    if not prepared.objects:
        return []
    charge, dispute = prepared.objects
    pledge_id = settle.pledge_id_of(charge)
    if pledge_id is None:
        return []
    refs = (bt.get("id") if isinstance(bt, dict) else bt for bt in dispute.get("balance_transactions") or [])
    txns = [t for t in refs if t]  # as tag_stripe would: an id, never an empty reference
    await tag_stripe(session, pledge_id, txns, EntryKind.DISPUTE)
    if dispute.get("status") == "lost":
        taken_back = int(charge.get("amount_refunded") or 0) + int(dispute.get("amount") or 0)
        await settle.apply_refund(session, pledge_id, taken_back, reason="litige perdu")
    return []


CHECKOUT = Handler(prepare_checkout, apply_checkout)
DISPUTE = Handler(prepare_dispute, apply_dispute)
PAYMENT_INTENT = Handler(prepare_payment_intent, apply_payment_intent)
CHARGE = Handler(prepare_charge, apply_charge)

HANDLERS = {
    **{t: CHECKOUT for t in ("checkout.session.completed", "checkout.session.expired")},
    **{t: PAYMENT_INTENT for t in ("payment_intent.succeeded", "payment_intent.payment_failed",
                                   "payment_intent.requires_action", "payment_intent.canceled")},
    **{t: CHARGE for t in ("charge.succeeded", "charge.updated", "charge.refunded", "charge.refund.updated",
                           "refund.created", "refund.updated")},
    **{t: DISPUTE for t in ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
                            "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated")},
}
