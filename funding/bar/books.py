"""How the bar's money reaches the ledger.

- Sales on members' tabs, one entry per site and closed day (posted with the day's
  closing, keyed ``bar:day:<site>:<date>``):
  [CA] D 411 (one line per member, on the member's auxiliary account) · C 707 per VAT
  rate · C 445713 / 445712 / 445711 (VAT at 5,5 / 10 / 20 %).
- Walk-in sales paid on the spot through Checkout (purpose ``bar_sale``), from the
  charge's balance transaction: [ST] D 5115 net · D 627 fee · C 707 per rate · C 4457x.
- A tab's settlement (purpose ``bar_tab``: an off-session charge or the member's own
  Checkout payment) like an invoice payment: [ST] D 5115 net · D 627 fee · C 411 member.
  A batch billed on a subscription invoice is settled by that invoice's charge (the
  coworking ``invoice`` purpose credits the same 411 auxiliary account).

An organisation that is not VAT-liable books the whole amount on 707.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.auth.models import User
from funding.bar.models import Batch, SaleLine, Ticket
from funding.db import digits, must_get
from funding.ledger.chart import vat_account
from funding.ledger.models import FundingSource
from funding.ledger.service import EntryDraft, Line
from funding.orgs.models import Organisation, Site
from funding.payments import purposes
from funding.payments.purposes import split_vat

RATE_LABELS = {200: "20 %", 100: "10 %", 55: "5,5 %"}
REVENUE = "707"
RECEIVABLE = "411"


def day_key(site_id: int, day: dt.date, part: int = 1) -> str:
    return f"bar:day:{site_id}:{day.isoformat()}" + (f":{part}" if part > 1 else "")


async def member_account(session: AsyncSession, site: Site, user_id: int) -> tuple[str, str]:
    """(auxiliary code, label) of a tab holder under 411: the coworking member's account,
    so that the tab, the invoices and the payments that settle it meet on one account.
    A member who only ever used the bar gets a member record there on first need."""
    from funding.coworking.members import Details, enrol
    from funding.coworking.service import ensure_aux_account, member_for_user

    user = await must_get(session, User, user_id)
    member = await member_for_user(session, user_id)
    if member is None:
        member, _created = await enrol(session, site, Details(name=user.name, email=user.email))
    label = member.company_name or user.name
    return await ensure_aux_account(session, site.org_id, member, label), label


def revenue_lines(by_rate: dict[int, int], currency: str, *, vat_liable: bool, label: str) -> list[Line]:
    """C 707 and C VAT per rate for TTC amounts per rate (any sign: a net refund debits them)."""
    lines = []
    for rate, ttc in sorted(by_rate.items(), reverse=True):
        if not ttc:
            continue
        base, vat = split_vat(ttc, rate) if vat_liable else (ttc, 0)
        lines.append(Line(REVENUE, -base, currency, label=f"{label} TVA {RATE_LABELS[rate]}"))
        if vat:
            lines.append(Line(vat_account(rate), -vat, currency, label=f"TVA collectée {RATE_LABELS[rate]}"))
    return [line for line in lines if line.amount]


async def day_draft(session: AsyncSession, site: Site, day: dt.date, *, after: dt.datetime | None = None,
                    part: int = 1) -> EntryDraft | None:
    """The [CA] entry of the tab sales of one site and day (``part`` 2, 3…: those rung after the
    day's earlier closing, at ``after``), or None when they net to zero."""
    recorded = (SaleLine.recorded_at > after,) if after is not None else ()
    rows = (await session.execute(
        select(SaleLine.member_id, SaleLine.vat_rate, SaleLine.currency, func.sum(SaleLine.amount))
        .where(SaleLine.site_id == site.id, SaleLine.day == day, SaleLine.member_id.is_not(None), *recorded)
        .group_by(SaleLine.member_id, SaleLine.vat_rate, SaleLine.currency)
        .order_by(SaleLine.member_id, SaleLine.vat_rate))).all()
    if not rows:
        return None
    org = await must_get(session, Organisation, site.org_id)
    per_member: dict[tuple[int, str], int] = defaultdict(int)
    per_rate: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for member_id, rate, currency, total in rows:
        per_member[(cast("int", member_id), currency)] += int(total)  # not NULL: the query keeps tab lines only
        per_rate[currency][rate] += int(total)
    lines = []
    for (member_id, currency), total in sorted(per_member.items()):
        if total:
            code, label = await member_account(session, site, member_id)
            lines.append(Line(RECEIVABLE, total, currency, aux=code, label=f"Ardoise {label}"[:200]))
    for currency, by_rate in sorted(per_rate.items()):
        lines += revenue_lines(by_rate, currency, vat_liable=org.vat_liable, label="Ventes bar")
    if len(lines) < 2:
        return None
    return EntryDraft(
        org_id=site.org_id, site_id=site.id, journal="CA", entry_date=day, piece_date=day,
        label=f"Ventes bar sur ardoises du {day.strftime('%d/%m/%Y')} — {site.name}"[:200],
        piece_ref=(f"Z-{site.slug}-{day.isoformat()}" + (f"-{part}" if part > 1 else ""))[:100],
        funding_source=FundingSource.SELF, lines=lines, source_key=day_key(site.id, day, part),
    )


def _share(total: int, parts: dict[int, int]) -> dict[int, int]:
    """Split ``total`` over ``parts`` in proportion, to the cent (largest remainder)."""
    whole = sum(parts.values())
    if whole == total or whole == 0:
        return dict(parts) if whole == total else {}
    sign = -1 if total < 0 else 1
    exact = {k: abs(total) * v for k, v in parts.items()}
    shares = {k: e // whole for k, e in exact.items()}
    left = abs(total) - sum(shares.values())
    for k in sorted(parts, key=lambda k: (-(exact[k] % whole), k))[:left]:
        shares[k] += 1
    return {k: sign * v for k, v in shares.items()}


async def allocate_walk_in(session: AsyncSession, metadata: dict, amount: int, currency: str) -> purposes.Allocation | None:
    """Purpose ``bar_sale``: a walk-in ticket paid by card; a refund reverses it pro rata."""
    raw = str(metadata.get("ticket_id", ""))
    ticket = await session.get(Ticket, int(raw)) if digits(raw) else None
    if ticket is None:
        return None
    site = await must_get(session, Site, ticket.site_id)
    org = await must_get(session, Organisation, site.org_id)
    rows = (await session.execute(select(SaleLine.vat_rate, func.sum(SaleLine.amount))
                                  .where(SaleLine.ticket_id == ticket.id).group_by(SaleLine.vat_rate))).all()
    by_rate = _share(amount, {rate: int(total) for rate, total in rows if int(total)})
    if not by_rate:
        return None
    return purposes.Allocation(org_id=site.org_id, site_id=site.id, funding_source=FundingSource.SELF,
                               label=f"Vente bar comptoir n° {ticket.id} — {site.name}"[:200],
                               lines=revenue_lines(by_rate, currency, vat_liable=org.vat_liable, label="Ventes bar"))


async def allocate_tab(session: AsyncSession, metadata: dict, amount: int, currency: str) -> purposes.Allocation | None:
    """Purpose ``bar_tab``: a tab batch paid by card settles the member's 411 account."""
    raw = str(metadata.get("bar_batch_id", ""))
    batch = await session.get(Batch, int(raw)) if digits(raw) else None
    if batch is None:
        return None
    site = await must_get(session, Site, batch.site_id)
    code, label = await member_account(session, site, batch.member_id)
    return purposes.Allocation(org_id=site.org_id, site_id=site.id, funding_source=FundingSource.SELF,
                               label=f"Règlement ardoise bar n° {batch.id} — {label}"[:200],
                               lines=[Line(RECEIVABLE, -amount, currency, aux=code, label=f"Ardoise {label}"[:200])])
