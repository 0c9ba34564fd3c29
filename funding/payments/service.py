"""One-off payments through Stripe Checkout, settled by whichever path sees them first.

The webhook, the worker's sync and the backer's return to the thank-you page all call
``settle_session``; the transition to ``paid`` is a conditional UPDATE, so its effects
(the receipt email, the domain's hook) happen once.
"""

from __future__ import annotations

import json
import logging
from typing import Awaitable, Callable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from funding.db import transaction, utcnow
from funding.payments import purposes
from funding.payments.calls import create_once
from funding.payments.models import Payment, StripeEvent
from funding.stripe_gateway import GatewayError, StripeGateway, StripeUnknown

log = logging.getLogger("funding.payments")

PaidHook = Callable[[AsyncSession, Payment], Awaitable[None]]
_on_paid: dict[str, PaidHook] = {}


def on_paid(purpose: str, hook: PaidHook) -> None:
    _on_paid[purpose] = hook


async def start_checkout(
    sessions: async_sessionmaker,
    gw: StripeGateway,
    *,
    purpose: str,
    org_id: int,
    site_id: int,
    amount: int,
    currency: str,
    description: str,
    success_url: str,
    cancel_url: str,
    email: str | None = None,
    name: str | None = None,
    ref: str | None = None,
    metadata: dict | None = None,
) -> tuple[Payment, str]:
    """Record the payment, then open a Checkout session for it. Returns (payment, url)."""
    async with transaction(sessions) as session:
        payment = Payment(org_id=org_id, site_id=site_id, purpose=purpose, ref=ref, amount=amount, currency=currency,
                          description=description[:200], email=email, name=name, status="created",
                          extra=json.dumps(metadata or {}, sort_keys=True))
        session.add(payment)
        await session.flush()
    meta = {**(metadata or {}), "purpose": purpose, "payment_id": str(payment.id), "org_id": str(org_id),
            "site_id": str(site_id)}
    if ref:
        meta["ref"] = ref
    params = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {"currency": currency.lower(), "unit_amount": amount,
                                                      "product_data": {"name": description[:200]}}}],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": meta,
        "payment_intent_data": {"metadata": meta, "description": description[:200]},
        "locale": "fr",
    }
    if email:
        params["customer_email"] = email
    try:
        session_obj = await create_once(sessions, gw, ref=f"payment:{payment.id}", resource="checkout.sessions", params=params)
    except StripeUnknown:
        async with transaction(sessions) as session:
            await session.execute(update(Payment).where(Payment.id == payment.id, Payment.status == "created")
                                  .values(status="unknown"))
        raise
    async with transaction(sessions) as session:
        await session.execute(
            update(Payment).where(Payment.id == payment.id, Payment.status.in_(("created", "unknown")))
            .values(status="open", checkout_session_id=session_obj["id"])
        )
    payment.checkout_session_id = session_obj["id"]
    return payment, session_obj["url"]


async def settle_session(session: AsyncSession, checkout: dict) -> Payment | None:
    """Apply a Checkout session's current state to its payment. Idempotent, monotonic."""
    meta = checkout.get("metadata") or {}
    payment = None
    if checkout.get("id"):
        payment = await session.scalar(select(Payment).where(Payment.checkout_session_id == checkout["id"]))
    if payment is None and str(meta.get("payment_id", "")).isdigit():
        payment = await session.get(Payment, int(meta["payment_id"]))
    if payment is None:
        return None
    pi = checkout.get("payment_intent")
    pi_id = pi.get("id") if isinstance(pi, dict) else pi
    if checkout.get("payment_status") == "paid":
        await mark_paid(session, payment, checkout_session_id=checkout.get("id"), payment_intent_id=pi_id)
    elif checkout.get("status") == "expired":
        await session.execute(update(Payment).where(Payment.id == payment.id, Payment.status.in_(("created", "open", "unknown")))
                              .values(status="expired", checkout_session_id=checkout.get("id")))
    return payment


async def mark_paid(session: AsyncSession, payment: Payment, *, checkout_session_id: str | None = None,
                    payment_intent_id: str | None = None) -> bool:
    """created/open/failed/expired/unknown → paid, once; runs the purpose's hook on that transition."""
    values = {"status": "paid", "paid_at": utcnow()}
    if checkout_session_id:
        values["checkout_session_id"] = checkout_session_id
    if payment_intent_id:
        values["payment_intent_id"] = payment_intent_id
    result = await session.execute(update(Payment).where(Payment.id == payment.id, Payment.status != "paid").values(**values))
    if result.rowcount != 1:
        return False
    await session.refresh(payment)
    purposes.load_domains()
    hook = _on_paid.get(payment.purpose)
    if hook is not None:
        await hook(session, payment)
    return True


async def settle_payment_intent(session: AsyncSession, pi: dict) -> Payment | None:
    """A succeeded PaymentIntent pays its payment (found by its id or our metadata), once."""
    meta = pi.get("metadata") or {}
    payment_id = int(meta["payment_id"]) if str(meta.get("payment_id", "")).isdigit() else None
    match = Payment.payment_intent_id == pi["id"]
    if payment_id is not None:
        match = match | (Payment.id == payment_id)
    if pi.get("status") != "succeeded":
        return await session.scalar(select(Payment).where(match))
    # One conditional UPDATE: the transition happens once, whichever path runs it first.
    paid = (await session.execute(
        update(Payment).where(match, Payment.status != "paid")
        .values(status="paid", paid_at=utcnow(), payment_intent_id=pi["id"]).returning(Payment)
        .execution_options(synchronize_session=False)
    )).scalar_one_or_none()
    if paid is None:
        return None
    purposes.load_domains()
    hook = _on_paid.get(paid.purpose)
    if hook is not None:
        await hook(session, paid)
    return paid


async def record_refunds(session: AsyncSession, charge: dict) -> None:
    """Keep the refunded total of a payment; Stripe's figure only ever grows."""
    pi = charge.get("payment_intent")
    pi_id = pi.get("id") if isinstance(pi, dict) else pi
    if not pi_id or not charge.get("amount_refunded"):
        return
    await session.execute(
        update(Payment).where(Payment.payment_intent_id == pi_id, Payment.amount_refunded < int(charge.get("amount_refunded") or 0))
        .values(amount_refunded=int(charge.get("amount_refunded") or 0))
    )


async def reset_event(session: AsyncSession, event_id: str) -> bool:
    """Make a stored webhook event due now, whatever its state (replay of a dead letter)."""
    result = await session.execute(update(StripeEvent).where(StripeEvent.id == event_id).values(
        status="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None, last_error=None))
    return result.rowcount == 1


async def settle_return(sessions: async_sessionmaker, gw: StripeGateway, session_id: str, *,
                        purpose: str | None = None) -> Payment | None:
    """The payer's return from Checkout: settle their payment from Stripe's current state and
    book its charge now (the webhook may come later, or came earlier: either way, once).
    Returns the payment, or None for an unknown session or one of another ``purpose``."""
    from funding.payments import books

    if not session_id.startswith("cs_"):
        return None
    try:
        checkout = await gw.retrieve("checkout.sessions", session_id, expand=["payment_intent.latest_charge"])
    except GatewayError:
        return None
    if purpose is not None and (checkout.get("metadata") or {}).get("purpose") != purpose:
        return None
    async with transaction(sessions) as session:
        payment = await settle_session(session, checkout)
    pi = checkout.get("payment_intent")
    charge = pi.get("latest_charge") if isinstance(pi, dict) else None
    bt = charge.get("balance_transaction") if isinstance(charge, dict) else None
    if bt:
        try:
            await books.ingest(sessions, gw, [bt if isinstance(bt, str) else bt["id"]])
        except Exception:  # noqa: BLE001 - the webhook or the worker books it anyway
            log.info("return page: charge of checkout %s left to the webhook", session_id, exc_info=True)
    return payment
