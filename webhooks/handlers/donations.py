"""One-off gifts (/soutenir): Stripe's total taken back from a gift's charge — refunds, and a
lost chargeback's amount — voids its tax receipt (what remains given gets a new one) and
the donor is told. The charges handler books the money; here only gifts are looked at, and
the charge is read from Stripe as it is now (the event says which one)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.db import row_id
from funding.donations.service import PURPOSE, apply_taken_back
from funding.ledger.service import EntryDraft
from funding.stripe_gateway import StripeGateway
from webhooks.events import Event, StripeDict
from webhooks.handlers import Handler, Prepared


def _payment_id(charge: StripeDict) -> int | None:
    raw = str((charge.get("metadata") or {}).get("payment_id") or "")
    return row_id(raw)


async def _gift_charge(gw: StripeGateway, charge_id: str) -> StripeDict | None:
    """The charge with its PaymentIntent's metadata (Checkout puts ours there) under its own;
    None if it is not a gift's."""
    charge = await gw.retrieve("charges", charge_id, expand=["payment_intent"])
    meta = dict(charge.get("metadata") or {})
    pi = charge.get("payment_intent")
    if "payment_id" not in meta and isinstance(pi, dict):
        meta = {**(pi.get("metadata") or {}), **meta}
    return {**charge, "metadata": meta} if meta.get("purpose") == PURPOSE else None


def _charge_id(obj: StripeDict) -> str | None:
    charge_id = obj["id"] if obj.get("object") == "charge" else obj.get("charge")
    return charge_id.get("id") if isinstance(charge_id, dict) else charge_id


# charge.refunded, refund.*: Stripe's refunded total of a gift's charge (it only grows).
async def prepare_charge(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    charge_id = _charge_id(obj)
    purpose = (obj.get("metadata") or {}).get("purpose") if obj.get("object") == "charge" else None
    if not charge_id or purpose not in (None, PURPOSE):  # another domain's charge: not read from Stripe
        return Prepared()
    charge = await _gift_charge(gw, charge_id)
    return Prepared(objects=[charge]) if charge else Prepared()


async def apply_charge(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    for charge in prepared.objects:
        payment_id = _payment_id(charge)
        if payment_id is not None and charge.get("amount_refunded"):
            await apply_taken_back(session, payment_id, int(charge["amount_refunded"]))
    return []


# charge.dispute.*: a lost chargeback takes the money back as a refund would.
async def prepare_dispute(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    charge_id = _charge_id(obj)
    if not charge_id:
        return Prepared()
    charge = await _gift_charge(gw, charge_id)
    if charge is None:
        return Prepared()
    return Prepared(objects=[charge, await gw.retrieve("disputes", obj["id"])])


async def apply_dispute(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    if not prepared.objects:
        return []
    charge, dispute = prepared.objects
    payment_id = _payment_id(charge)
    if payment_id is not None and dispute.get("status") == "lost":
        taken_back = int(charge.get("amount_refunded") or 0) + int(dispute.get("amount") or 0)
        await apply_taken_back(session, payment_id, taken_back, reason="litige perdu")
    return []


CHARGE = Handler(prepare_charge, apply_charge)
DISPUTE = Handler(prepare_dispute, apply_dispute)

HANDLERS = {
    **{t: CHARGE for t in ("charge.refunded", "charge.refund.updated", "refund.created", "refund.updated")},
    **{t: DISPUTE for t in ("charge.dispute.closed", "charge.dispute.updated", "charge.dispute.funds_withdrawn")},
}
