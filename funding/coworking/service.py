"""Coworking: the service other domains use, and the payment purposes it registers.

Purposes (how a Stripe balance transaction is booked, see funding.payments.purposes):

- ``invoice`` — a charge paying a member's Stripe invoice (subscriptions, and anything
  billed on them): [ST] D 5115 net · D 627 fee · C 411 (the member's auxiliary account).
  The invoice's own sale entry ([VT] D 411 · C 706/7561/7562 · C 4457x) is posted first.
- ``pass`` — a day pass or a 10-day pass paid through Checkout ``payment`` mode, with no
  invoice: [ST] D 5115 net · D 627 fee · C 706 (base) · C 445711 (VAT).

For other domains (the bar's tabs build on this):

- ``get_member(session, member_id)``, ``member_for_user(session, user_id)``,
  ``member_by_customer(session, "cus_…")``;
- ``stripe_customer_id(member)`` (None until the member first paid through Stripe) and
  ``ensure_customer(sessions, gw, member_id)`` (creates it once);
- ``active_subscription(session, member)``: the live monthly subscription invoice items
  can be attached to (``InvoiceItem.create(customer, subscription, …)``), or None;
- ``has_access(session, member, grace_days=…)`` / ``member_access`` (the access rule);
- ``ensure_aux_account(session, org_id, member)``: the member's 411 auxiliary code;
- ``register_member_panel(loader)``: add a section (e.g. the bar tab) to the member area
  and to the staff's member history.

Invoice items another domain adds to a member's invoice are left out of the sale entry
when their metadata says ``entrelab_booked=1`` (their revenue is already in the books,
e.g. the bar's [CA] entries on 411), or booked on ``account`` at ``vat_rate`` (per mille)
when their metadata names them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.clock import paris_today
from funding.coworking.lifecycle import (  # noqa: F401  (the service's public API)
    DEFAULT_GRACE_DAYS,
    Access,
    access_of,
    current_subscription,
    member_access,
    overdue_amount,
    settle_invoice_charge,
)
from funding.coworking.members import (  # noqa: F401
    ensure_aux_account,
    ensure_customer,
    get_member,
    joined_member,
    member_by_customer,
    member_for_user,
)
from funding.coworking.models import RUNNING, Member, Pass, PassDay, Plan, Subscription
from funding.coworking.plans import pass_expiry
from funding.db import digits, insert_ignore, must_get, rowcount, utcnow
from funding.errors import FundingError
from funding.i18n import gettext as _
from funding.ledger.chart import vat_account
from funding.ledger.models import FundingSource
from funding.ledger.service import Line
from funding.mail.compose import recipient_locale, render
from funding.mail.service import enqueue
from funding.orgs.models import Site
from funding.payments import purposes
from funding.payments.models import Payment, PaymentPurpose
from funding.payments.service import on_paid

PASS_PURPOSE = PaymentPurpose.PASS
INVOICE_PURPOSE = PaymentPurpose.INVOICE

MemberPanel = Callable[[AsyncSession, Member], Awaitable[tuple[str, dict] | None]]
_panels: list[MemberPanel] = []


def register_member_panel(loader: MemberPanel) -> None:
    """``loader(session, member)`` returns (template name, context) to show, or None."""
    if loader not in _panels:
        _panels.append(loader)


async def member_panels(session: AsyncSession, member: Member) -> list[tuple[str, dict]]:
    shown = []
    for loader in _panels:
        panel = await loader(session, member)
        if panel is not None:
            shown.append(panel)
    return shown


def stripe_customer_id(member: Member) -> str | None:
    return member.stripe_customer_id


async def active_subscription(session: AsyncSession, member: Member) -> Subscription | None:
    """The member's live workspace subscription (active, trialing or past due), if any."""
    sub = await current_subscription(session, member.id)
    return sub if sub is not None and sub.status in RUNNING else None


async def has_access(session: AsyncSession, member: Member, *, now: dt.datetime | None = None,
                     grace_days: int = DEFAULT_GRACE_DAYS) -> bool:
    return (await member_access(session, member.id, now=now, grace_days=grace_days)).granted


# --- passes ------------------------------------------------------------------------------


async def allocate_pass(session: AsyncSession, metadata: dict, amount: int, currency: str) -> purposes.Allocation | None:
    plan_id = str(metadata.get("plan_id", ""))
    plan = await session.get(Plan, int(plan_id)) if digits(plan_id) else None
    if plan is None:
        return None
    site = await must_get(session, Site, plan.site_id)
    rate = int(metadata["vat_rate"]) if digits(str(metadata.get("vat_rate", ""))) else plan.vat_rate
    account = str(metadata.get("account") or plan.account)
    base, vat = purposes.split_vat(amount, rate) if rate else (amount, 0)
    lines = [Line(account, -base, currency)]
    if vat:
        lines.append(Line(vat_account(rate), -vat, currency))
    return purposes.Allocation(org_id=site.org_id, site_id=site.id, funding_source=FundingSource.SELF,
                               label=f"{plan.name} — {site.name} (paiement n° {metadata.get('payment_id', '?')})"[:200],
                               lines=lines)


async def pass_paid(session: AsyncSession, payment: Payment) -> None:
    """A pass's payment went through: the member gets its days (once: unique payment id)."""
    extra = json.loads(payment.extra or "{}")
    if not digits(str(extra.get("plan_id", ""))):
        return
    if digits(str(extra.get("member_id", ""))):
        member = await session.get(Member, int(extra["member_id"]))
    elif digits(str(extra.get("join_id", ""))):  # a join paid by its pass: its account is made now
        member = await joined_member(session, int(extra["join_id"]))
    else:
        return
    plan = await session.get(Plan, int(extra["plan_id"]))
    if member is None or plan is None or not plan.pass_days:
        return
    inserted = await insert_ignore(session, Pass, {
        "member_id": member.id, "plan_id": plan.id, "site_id": plan.site_id, "payment_id": payment.id,
        "days_total": plan.pass_days, "days_used": 0, "purchased_at": utcnow(), "expires_on": pass_expiry(paris_today()),
    }, ["payment_id"])
    if inserted is None or not payment.email:
        return
    site = await must_get(session, Site, plan.site_id)
    await enqueue(session, to=payment.email, user_id=member.user_id, org_id=member.org_id, dedupe_key=f"payment:{payment.id}:receipt",
                  **render("coworking/pass_receipt", await recipient_locale(session, user_id=member.user_id),
                           name=payment.name or "", amount=payment.amount, currency=payment.currency, plan=plan.name,
                           days=plan.pass_days, site=site.name))


async def passes_of(session: AsyncSession, member_id: int) -> list[Pass]:
    return list((await session.scalars(select(Pass).where(Pass.member_id == member_id).order_by(Pass.purchased_at.desc()))).all())


purposes.register(INVOICE_PURPOSE, settle_invoice_charge)
purposes.register(PASS_PURPOSE, allocate_pass)
on_paid(PASS_PURPOSE, pass_paid)


class PassError(FundingError):
    """A pass day that cannot be counted; the message is for a person."""


async def use_pass_day(session: AsyncSession, member: Member, *, day: dt.date, recorded_by: str = "") -> Pass:
    """Count one day of the member's pass that expires first. Once per member and day (a
    unique constraint), never beyond the days bought (a conditional update)."""
    found = await session.scalar(select(Pass).where(Pass.member_id == member.id, Pass.days_used < Pass.days_total,
                                                    Pass.expires_on >= day).order_by(Pass.expires_on, Pass.id).limit(1))
    if found is None:
        raise PassError(_("Aucun pass en cours pour ce membre."))
    if await insert_ignore(session, PassDay, {"pass_id": found.id, "member_id": member.id, "day": day,
                                              "recorded_by": recorded_by[:200], "created_at": utcnow()},
                           ["member_id", "day"]) is None:
        raise PassError(_("Cette journée est déjà décomptée."))
    result = await session.execute(update(Pass).where(Pass.id == found.id, Pass.days_used < Pass.days_total)
                                   .values(days_used=Pass.days_used + 1))
    if rowcount(result) != 1:
        raise PassError(_("Ce pass est épuisé."))
    await session.refresh(found)
    return found
