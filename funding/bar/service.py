"""The bar's public API and what it registers at start.

Purposes (how a Stripe balance transaction is booked, see funding.bar.books):
``bar_sale`` (a walk-in ticket paid on the spot) and ``bar_tab`` (a tab batch paid by
card). Paid hooks: a ticket's or a batch's payment marks it paid, once. The member's
tab is shown in the coworking member area (``register_member_panel``) and on /bar/ardoise.

Pages and commands use: ``ring_up``, ``cancel`` (funding.bar.till), ``close_day`` and
friends (funding.bar.closings), ``cut_off`` / ``settle_departure`` / ``bill``
(funding.bar.settlement), and the checkout helpers below.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from funding.auth.models import User
from funding.bar import books
from funding.bar.models import Batch, BatchMethod, BatchStatus, Ticket, TicketStatus
from funding.bar.settlement import PURPOSE as TAB_PURPOSE
from funding.bar.settlement import mark
from funding.bar.till import BarError, tab_balance, ticket_total
from funding.db import digits, rowcount, transaction, utcnow
from funding.i18n import gettext as _
from funding.orgs.models import Site
from funding.payments import purposes
from funding.payments.models import Payment, PaymentPurpose, PaymentStatus
from funding.payments.service import on_paid, start_checkout
from funding.stripe_gateway import StripeGateway

log = logging.getLogger("funding.bar")
SALE_PURPOSE = PaymentPurpose.BAR_SALE


def _extra(payment: Payment) -> dict:
    return json.loads(payment.extra or "{}")


async def ticket_paid(session: AsyncSession, payment: Payment) -> None:
    raw = str(_extra(payment).get("ticket_id", ""))
    if not digits(raw):
        return
    result = await session.execute(update(Ticket).where(Ticket.id == int(raw), Ticket.status == TicketStatus.OPEN)
                                   .values(status=TicketStatus.PAID, paid_at=utcnow(), payment_id=payment.id))
    if rowcount(result) != 1:
        log.warning("bar ticket %s paid by payment %s but not open: check it at the till", raw, payment.id)


async def tab_paid(session: AsyncSession, payment: Payment) -> None:
    raw = str(_extra(payment).get("bar_batch_id", ""))
    batch = await session.get(Batch, int(raw)) if digits(raw) else None
    if batch is not None:
        await mark(session, batch, (BatchStatus.READY, BatchStatus.BILLED, BatchStatus.DUE), BatchStatus.PAID,
                   method=BatchMethod.CHECKOUT, payment_id=payment.id)


async def start_walk_in_payment(sessions: async_sessionmaker, gw: StripeGateway, site: Site, ticket_id: int, *,
                                base_url: str) -> tuple[Payment, str]:
    """Open a Checkout for a walk-in ticket's total; the till shows its address as a QR code."""
    async with sessions() as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None or ticket.site_id != site.id:
            raise BarError(_("Vente comptoir inconnue."))
        if ticket.status != TicketStatus.OPEN:
            raise BarError(_("Cette vente comptoir est close."))
        total, currency = await ticket_total(session, ticket.id)
    if total <= 0:
        raise BarError(_("Rien à encaisser : ajoutez des produits à la vente."))
    # The customer's own phone comes back here: public pages, never the staff-only till.
    back = f"{base_url}/bar/{site.slug}/comptoir/{ticket_id}"
    payment, url = await start_checkout(
        sessions, gw, purpose=SALE_PURPOSE, org_id=site.org_id, site_id=site.id, amount=total, currency=currency,
        description=f"Bar {site.name} — vente n° {ticket_id}",
        success_url=f"{back}/merci?session_id={{CHECKOUT_SESSION_ID}}", cancel_url=f"{back}/paiement-annule",
        ref=f"bar-ticket:{ticket_id}", metadata={"ticket_id": str(ticket_id)},
    )
    async with transaction(sessions) as session:
        await session.execute(update(Ticket).where(Ticket.id == ticket_id, Ticket.status == TicketStatus.OPEN)
                              .values(payment_id=payment.id))
    return payment, url


async def start_tab_payment(sessions: async_sessionmaker, gw: StripeGateway, user_id: int, batch_id: int, *,
                            base_url: str) -> str:
    """The member pays a due batch from their area (Checkout). Returns the Checkout address."""
    async with sessions() as session:
        batch = await session.get(Batch, batch_id)
        user = await session.get(User, user_id)
        if batch is None or batch.member_id != user_id:
            raise BarError(_("Ardoise introuvable."))
        if batch.status != BatchStatus.DUE:
            raise BarError(_("Cette ardoise n'est pas à régler ici (déjà réglée, ou facturée avec votre abonnement)."))
        if batch.payment_id is not None:
            payment = await session.get(Payment, batch.payment_id)
            if payment.status == PaymentStatus.OPEN and payment.checkout_session_id:
                checkout = await gw.retrieve("checkout.sessions", payment.checkout_session_id)
                if checkout.get("status") == "open" and checkout.get("url"):
                    return checkout["url"]
        site = await session.get(Site, batch.site_id)
    payment, url = await start_checkout(
        sessions, gw, purpose=TAB_PURPOSE, org_id=site.org_id, site_id=site.id, amount=batch.amount,
        currency=batch.currency, description=f"Ardoise du bar — {site.name} (n° {batch.id})", email=user.email,
        name=user.name, success_url=f"{base_url}/bar/ardoise/merci?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base_url}/bar/ardoise", ref=f"bar-batch:{batch.id}",
        metadata={"bar_batch_id": str(batch.id), "user_id": str(user_id)},
    )
    async with transaction(sessions) as session:
        await session.execute(update(Batch).where(Batch.id == batch.id, Batch.status == BatchStatus.DUE).values(payment_id=payment.id))
    return url


async def member_tabs(session: AsyncSession, user_id: int) -> dict:
    """A member's open tabs per site and their batches, for their area."""
    sites = (await session.scalars(select(Site).order_by(Site.is_central.desc(), Site.name))).all()
    tabs = [(site, balance) for site in sites if (balance := await tab_balance(session, site.id, user_id))]
    batches = (await session.scalars(select(Batch).where(Batch.member_id == user_id, Batch.status != BatchStatus.EMPTY)
                                     .order_by(Batch.created_at.desc()).limit(24))).all()
    return {"tabs": tabs, "batches": batches, "sites": {s.id: s for s in sites}}


async def member_panel(session: AsyncSession, member) -> tuple[str, dict] | None:
    """The bar's section in the coworking member area and staff history."""
    data = await member_tabs(session, member.user_id)
    if not data["tabs"] and not data["batches"]:
        return None
    return "bar/_member_panel.html", data


purposes.register(SALE_PURPOSE, books.allocate_walk_in)
purposes.register(TAB_PURPOSE, books.allocate_tab)
on_paid(SALE_PURPOSE, ticket_paid)
on_paid(TAB_PURPOSE, tab_paid)
try:
    from funding.coworking.service import register_member_panel
except ImportError:  # pragma: no cover - the coworking domain is part of the product
    pass
else:
    register_member_panel(member_panel)
