"""One-off payments through Stripe Checkout, settled by whichever path sees them first.

The webhook, the worker's sync and the backer's return to the thank-you page all call
``settle_session``; the transition to ``paid`` is a conditional UPDATE, so its effects
(the receipt email, the domain's hook) happen once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from funding.db import Sessions, dialect_of, digits, rowcount, transaction, utcnow
from funding.payments import purposes
from funding.payments.calls import create_once
from funding.payments.models import EventStatus, Payment, PaymentStatus, StripeEvent
from funding.payments.verify import check_row
from funding.stripe_gateway import GatewayError, StripeGateway, StripeUnknown

log = logging.getLogger("funding.payments")

PaidHook = Callable[[AsyncSession, Payment], Awaitable[None]]
PaidManyHook = Callable[[AsyncSession, list[Payment]], Awaitable[None]]
_on_paid: dict[str, PaidHook] = {}
_on_paid_many: dict[str, PaidManyHook] = {}
# The query of a Checkout's success_url: Stripe puts the session's id in place of the
# braces, so they stay as they are (never URL-encoded).
CHECKOUT_RETURN = "session_id={CHECKOUT_SESSION_ID}"
# A Checkout session lives 30 minutes, Stripe's minimum (24 hours otherwise): what it holds (a
# reward's unit) comes back soon after an abandoned page. A minute more covers the way to Stripe.
CHECKOUT_LIFETIME = dt.timedelta(minutes=31)


def checkout_expiry(opened_at: dt.datetime | None = None) -> int:
    """``expires_at`` of a Checkout session opened at ``opened_at`` (naive UTC, default now).
    Stripe wants it 30 minutes to 24 hours after the session's creation, whenever the row behind
    it was made (a retry minutes later, a demo backer who gave last month); a retry under the same
    idempotency key sends the parameters of its first attempt (``create_once``)."""
    return int(((opened_at or utcnow()) + CHECKOUT_LIFETIME).replace(tzinfo=dt.UTC).timestamp())


def on_paid(purpose: str, hook: PaidHook, *, many: PaidManyHook | None = None) -> None:
    """``hook`` runs once for each payment of ``purpose`` that becomes paid; ``many``, when
    given, does the same for several payments at once (a batch of webhook events)."""
    _on_paid[purpose] = hook
    if many is not None:
        _on_paid_many[purpose] = many


async def _paid_hooks(session: AsyncSession, payments: list[Payment]) -> None:
    purposes.load_domains()
    by_purpose: dict[str, list[Payment]] = {}
    for payment in payments:
        by_purpose.setdefault(payment.purpose, []).append(payment)
    for purpose, group in by_purpose.items():
        many, hook = _on_paid_many.get(purpose), _on_paid.get(purpose)
        if many is not None and len(group) > 1:
            await many(session, group)
        elif hook is not None:
            for payment in group:
                await hook(session, payment)


async def start_checkout(
    sessions: Sessions,
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
    metadata: dict[str, Any] | None = None,
    tax_rates: list[str] | None = None,
    customer: str | None = None,
    invoice_metadata: dict[str, str] | None = None,
    donor: dict[str, str | None] | None = None,
    donor_link: Callable[[int], str] | None = None,
    opened_at: dt.datetime | None = None,
) -> tuple[Payment, str]:
    """Record the payment, then open a Checkout session for it. Returns (payment, url).
    ``tax_rates``: the Stripe Tax Rates (inclusive) of what is sold, stated on the receipt.
    ``invoice_metadata``: Stripe also issues the paid invoice (``invoice_creation``), with it;
    ``customer``: the Stripe customer it is for (else the email).
    ``donor``: a gift's donor for its tax receipt (``donor_address``, ``company_name``,
    ``company_siren``), kept here, never sent to Stripe; ``donor_link``: the donor's signed
    page, from the payment's id. ``opened_at``: when the session opens for Stripe (naive UTC,
    default now), which dates its expiry: a customer on a Test Clock lives at the clock's time."""
    async with transaction(sessions) as session:
        payment = Payment(org_id=org_id, site_id=site_id, purpose=purpose, ref=ref, amount=amount, currency=currency,
                          description=description[:200], email=email, name=name, status=PaymentStatus.CREATED,
                          extra=json.dumps(metadata or {}, sort_keys=True), **(donor or {}))
        session.add(payment)
        await session.flush()
        if donor_link is not None:
            payment.donor_link = donor_link(payment.id)
    meta = {**(metadata or {}), "purpose": purpose, "payment_id": str(payment.id), "org_id": str(org_id),
            "site_id": str(site_id)}
    if ref:
        meta["ref"] = ref
    params = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {"currency": currency.lower(), "unit_amount": amount,
                                                      "product_data": {"name": description[:200]}},
                        **({"tax_rates": tax_rates} if tax_rates else {})}],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": meta,
        "payment_intent_data": {"metadata": meta, "description": description[:200]},
        "locale": "fr",
        "expires_at": checkout_expiry(opened_at),
    }
    if customer:
        params["customer"] = customer
    elif email:
        params["customer_email"] = email
    if invoice_metadata is not None:
        params["invoice_creation"] = {"enabled": True, "invoice_data": {"metadata": invoice_metadata,
                                                                        "description": description[:200]}}
    try:
        session_obj = await create_once(sessions, gw, ref=f"payment:{payment.id}", resource="checkout.sessions", params=params)
    except StripeUnknown:
        async with transaction(sessions) as session:
            await session.execute(update(Payment).where(Payment.id == payment.id, Payment.status == PaymentStatus.CREATED)
                                  .values(status=PaymentStatus.UNKNOWN))
        raise
    async with transaction(sessions) as session:
        await session.execute(
            update(Payment).where(Payment.id == payment.id, Payment.status.in_((PaymentStatus.CREATED, PaymentStatus.UNKNOWN)))
            .values(status=PaymentStatus.OPEN, checkout_session_id=session_obj["id"])
        )
    payment.checkout_session_id = session_obj["id"]
    return payment, session_obj["url"]


def stripe_paid_at(obj: Any) -> dt.datetime | None:
    """When Stripe took the money (naive UTC): the creation of the charge of a Checkout session,
    a PaymentIntent or a charge, as far as the object says it (expanded or not; a PaymentIntent
    without its charge: its own creation). None: it does not say. A gift's receipt states this
    day, and the books date the charge by Stripe too: a webhook processed after midnight, or a
    customer on a Test Clock, must not move a gift to another day or year."""
    if not isinstance(obj, dict):
        return None
    kind = obj.get("object")
    if kind == "checkout.session":
        return stripe_paid_at(obj.get("payment_intent"))
    if kind == "payment_intent":
        found = stripe_paid_at(obj.get("latest_charge"))
        if found is not None:
            return found
    created = obj.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        return None
    return dt.datetime.fromtimestamp(created, dt.UTC).replace(tzinfo=None)


async def settle_session(session: AsyncSession, checkout: dict[str, Any]) -> Payment | None:
    """Apply a Checkout session's current state to its payment. Idempotent, monotonic."""
    meta = checkout.get("metadata") or {}
    payment = None
    if checkout.get("id"):
        payment = await session.scalar(select(Payment).where(Payment.checkout_session_id == checkout["id"]))
    if payment is None and digits(str(meta.get("payment_id", ""))):
        payment = await session.get(Payment, int(meta["payment_id"]))
    if payment is None:
        return None
    pi = checkout.get("payment_intent")
    pi_id = pi.get("id") if isinstance(pi, dict) else pi
    if checkout.get("id") and payment.checkout_session_id is None:  # paid first through its charge's event
        await session.execute(update(Payment).where(Payment.id == payment.id, Payment.checkout_session_id.is_(None))
                              .values(checkout_session_id=checkout["id"]))
        set_committed_value(payment, "checkout_session_id", checkout["id"])  # written just above
    if checkout.get("payment_status") == "paid":
        if payment.status != PaymentStatus.PAID:
            check_row(payment.id, payment.amount, payment.currency, checkout)
        await mark_paid(session, payment, checkout_session_id=checkout.get("id"), payment_intent_id=pi_id,
                        paid_at=stripe_paid_at(checkout))
    elif checkout.get("status") == "expired":
        await session.execute(update(Payment)
                              .where(Payment.id == payment.id,
                                     Payment.status.in_((PaymentStatus.CREATED, PaymentStatus.OPEN, PaymentStatus.UNKNOWN)))
                              .values(status=PaymentStatus.EXPIRED, checkout_session_id=checkout.get("id")))
    return payment


async def mark_paid(session: AsyncSession, payment: Payment, *, checkout_session_id: str | None = None,
                    payment_intent_id: str | None = None, paid_at: dt.datetime | None = None) -> bool:
    """created/open/failed/expired/unknown → paid, once; runs the purpose's hook on that transition.
    ``paid_at``: when Stripe took the money (:func:`stripe_paid_at`), default now."""
    values = {"status": PaymentStatus.PAID, "paid_at": paid_at or utcnow()}
    if checkout_session_id:
        values["checkout_session_id"] = checkout_session_id
    if payment_intent_id:
        values["payment_intent_id"] = payment_intent_id
    result = await session.execute(update(Payment).where(Payment.id == payment.id, Payment.status != PaymentStatus.PAID).values(**values))
    if rowcount(result) != 1:
        return False
    await session.refresh(payment)
    await _paid_hooks(session, [payment])
    return True


async def settle_payment_intent(session: AsyncSession, pi: dict[str, Any]) -> Payment | None:
    """A succeeded PaymentIntent pays its payment (found by its id or our metadata), once."""
    meta = pi.get("metadata") or {}
    payment_id = int(meta["payment_id"]) if digits(str(meta.get("payment_id", ""))) else None
    match = Payment.payment_intent_id == pi["id"]
    if payment_id is not None:
        match = match | (Payment.id == payment_id)
    if pi.get("status") != "succeeded":
        return await session.scalar(select(Payment).where(match))
    for row in (await session.execute(select(Payment.id, Payment.amount, Payment.currency)
                                      .where(match, Payment.status != PaymentStatus.PAID))).all():
        check_row(row.id, row.amount, row.currency, pi)
    # One conditional UPDATE: the transition happens once, whichever path runs it first.
    paid = (await session.execute(
        update(Payment).where(match, Payment.status != PaymentStatus.PAID)
        .values(status=PaymentStatus.PAID, paid_at=stripe_paid_at(pi) or utcnow(), payment_intent_id=pi["id"]).returning(Payment)
        .execution_options(synchronize_session=False)
    )).scalar_one_or_none()
    if paid is None:
        return None
    await _paid_hooks(session, [paid])
    return paid


async def settle_payment_intents(session: AsyncSession, pis: list[dict[str, Any]]) -> list[Payment]:
    """``settle_payment_intent`` for several PaymentIntents, in a fixed number of statements:
    the payments still to settle are read and locked (FOR UPDATE on PostgreSQL; SQLite has one
    writer), so the transition to ``paid`` — and its hook — still happens once whichever path
    (webhook, return page, sweep) gets there first. Returns the payments paid now."""
    succeeded = list({pi["id"]: pi for pi in pis if pi.get("status") == "succeeded"}.values())
    if len(succeeded) < 2:
        return [p for p in [await settle_payment_intent(session, pi) for pi in succeeded] if p is not None]
    by_payment: dict[int, str] = {}
    for pi in succeeded:
        raw = str((pi.get("metadata") or {}).get("payment_id", ""))
        if digits(raw):
            by_payment[int(raw)] = pi["id"]
    pi_ids = {pi["id"] for pi in succeeded}
    query = select(Payment.id, Payment.payment_intent_id, Payment.amount, Payment.currency).where(
        (Payment.payment_intent_id.in_(pi_ids) | Payment.id.in_(list(by_payment))), Payment.status != PaymentStatus.PAID)
    if dialect_of(session) == "postgresql":
        query = query.with_for_update()
    todo = []
    for row in (await session.execute(query)).all():
        pi_id = row.payment_intent_id if row.payment_intent_id in pi_ids else by_payment.get(row.id)
        if pi_id is not None:
            check_row(row.id, row.amount, row.currency, next(pi for pi in succeeded if pi["id"] == pi_id))
            pi = next(pi for pi in succeeded if pi["id"] == pi_id)
            todo.append({"b_id": row.id, "b_pi": pi_id, "b_paid_at": stripe_paid_at(pi) or utcnow()})
    if not todo:
        return []
    table = Payment.__table__
    await session.execute(update(table).where(table.c.id == bindparam("b_id"), table.c.status != PaymentStatus.PAID)
                          .values(status=PaymentStatus.PAID, paid_at=bindparam("b_paid_at"), payment_intent_id=bindparam("b_pi")), todo)
    paid = list((await session.scalars(select(Payment).where(Payment.id.in_([t["b_id"] for t in todo]))
                                       .order_by(Payment.id).execution_options(populate_existing=True))).all())
    await _paid_hooks(session, paid)
    return paid


async def record_refunds(session: AsyncSession, charge: dict[str, Any]) -> None:
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
        status=EventStatus.PENDING, attempts=0, next_attempt_at=utcnow(), lease_until=None, last_error=None))
    return rowcount(result) == 1


async def settle_return(sessions: Sessions, gw: StripeGateway, session_id: str, *,
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
        except Exception:
            log.info("return page: charge of checkout %s left to the webhook", session_id, exc_info=True)
    return payment
