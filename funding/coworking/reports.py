"""Staff views' queries: members with their plan, status, access and what they owe; a
member's history; revenue invoiced in advance across a year-end (for the 487 adjustment)."""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding import csvout
from funding.auth.models import User
from funding.clock import PARIS, local_day
from funding.coworking.lifecycle import Access, access_for, overdue_filter, shown_subscriptions, with_pass
from funding.coworking.models import (
    LIVE_STATUSES,
    Invoice,
    InvoiceStatus,
    Member,
    Pass,
    PassDay,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from funding.db import AnySelect, utcnow
from funding.orgs.models import Organisation, Site
from funding.payments.models import Payment
from funding.payments.purposes import split_vat

STATUS_FILTERS = ("active", "trialing", "past_due", "unpaid", "canceled", "none")


class ListedMember(NamedTuple):
    """What the list shows of a member, read as columns (the list is read-only: no ORM row to load)."""

    id: int
    company_name: str | None
    siren: str | None
    vat_number: str | None
    created_at: dt.datetime


@dataclass
class MemberRow:
    member: ListedMember
    name: str
    email: str
    site: str
    plan: str | None
    status: str  # the subscription's, or "none"
    access: Access
    since: dt.datetime
    overdue: int
    currency: str = "EUR"


class _Held(NamedTuple):
    """A shown subscription of a listed member, the columns the list reads."""

    id: int
    kind: str
    status: str
    plan_id: int | None
    started_at: dt.datetime
    past_due_since: dt.datetime | None
    plan: str | None


def _pick(subs: list[_Held]) -> _Held | None:
    live = [s for s in subs if s.status in LIVE_STATUSES or s.status == SubscriptionStatus.INCOMPLETE]  # incomplete: debit processing
    pool = live or subs
    return max(pool, key=lambda s: (s.started_at, s.id)) if pool else None


def _search(like: object) -> ColumnElement[bool]:
    return or_(func.lower(User.name).like(like), func.lower(User.email).like(like),
               func.lower(func.coalesce(Member.company_name, "")).like(like))


def _members_query(site_id: int | None, q: str) -> AnySelect:
    query = (select(Member, User.name, User.email, Site.name).join(User, User.id == Member.user_id)
             .join(Site, Site.id == Member.site_id).order_by(User.name, Member.id))  # stable: a page never shifts
    if site_id:
        query = query.where(Member.site_id == site_id)
    if q.strip():
        query = query.where(_search(f"%{q.strip().lower()}%"))
    return query


async def member_count(session: AsyncSession, *, site_id: int | None = None, q: str = "") -> int:
    """How many members the list shows without its status and plan filters (they are computed)."""
    query = _members_query(site_id, q).order_by(None)
    return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)


@functools.cache
def _list_query(by_site: bool, searched: bool, paged: bool) -> AnySelect:
    """The list's one statement, built once for each shape (values as parameters: ``site_id``, ``like``,
    ``offset``, ``limit``, ``day``). Paged, the page's members are picked first on the narrow sort (ids,
    and the whole list's count as a window over that same scan; a member's user and site are there by
    their foreign keys, so the site is not joined for it), then only those are joined to their details,
    their shown subscriptions with their plans, what they owe (open after a failed attempt, or given up),
    the plan of a pass with days left and a pass day counted today. A member with several subscriptions
    comes back on several rows, one per subscription."""
    filters = ([Member.site_id == bindparam("site_id")] if by_site else []) + ([_search(bindparam("like"))] if searched else [])
    owed = (select(func.coalesce(func.sum(Invoice.amount_remaining), 0))
            .where(Invoice.member_id == Member.id, overdue_filter()).scalar_subquery())
    pass_plan = (select(Plan.name).join(Pass, Pass.plan_id == Plan.id)
                 .where(Pass.member_id == Member.id, Pass.days_used < Pass.days_total)
                 .order_by(Pass.plan_id).limit(1).scalar_subquery())
    on_pass = select(PassDay.id).where(PassDay.member_id == Member.id, PassDay.day == bindparam("day")).exists()
    if paged:
        page = (select(Member.id, func.count().over().label("total")).join(User, User.id == Member.user_id).where(*filters)
                .order_by(User.name, Member.id).offset(bindparam("offset")).limit(bindparam("limit")).subquery("page"))
        query = select(Member.id, page.c.total).select_from(page).join(Member, Member.id == page.c.id)
    else:  # the whole list: its length is the count
        query = select(Member.id, literal(0).label("total")).where(*filters)
    return (query.join(User, User.id == Member.user_id).join(Site, Site.id == Member.site_id)
            .outerjoin(Subscription, and_(Subscription.member_id == Member.id, shown_subscriptions()))
            .outerjoin(Plan, Plan.id == Subscription.plan_id)
            .add_columns(Member.company_name, Member.siren, Member.vat_number, Member.created_at, User.name, User.email,
                         Site.name, Subscription.id, Subscription.kind, Subscription.status, Subscription.plan_id,
                         Subscription.started_at, Subscription.past_due_since, Plan.name, owed.label("owed"),
                         pass_plan.label("pass_plan"), on_pass.label("on_pass"))
            .order_by(User.name, Member.id))


async def member_page(session: AsyncSession, *, site_id: int | None = None, q: str = "", now: dt.datetime | None = None,
                      grace_days: int = 7, offset: int = 0, limit: int | None = None) -> tuple[int, list[MemberRow]]:
    """One page of the list and how many members the whole list has, read together."""
    total, rows = await _read(session, site_id=site_id, q=q, now=now, grace_days=grace_days, offset=offset, limit=limit)
    if not rows and offset:  # past the end: no row came back to carry the count
        total = await member_count(session, site_id=site_id, q=q)
    return total, rows


async def member_rows(session: AsyncSession, *, site_id: int | None = None, status: str = "", plan_id: int | None = None,
                      q: str = "", now: dt.datetime | None = None, grace_days: int = 7, offset: int = 0,
                      limit: int | None = None) -> list[MemberRow]:
    return (await _read(session, site_id=site_id, status=status, plan_id=plan_id, q=q, now=now, grace_days=grace_days,
                        offset=offset, limit=limit))[1]


async def _read(session: AsyncSession, *, site_id: int | None, q: str, now: dt.datetime | None, grace_days: int,
                offset: int, limit: int | None, status: str = "", plan_id: int | None = None) -> tuple[int, list[MemberRow]]:
    """One round trip whatever the page (:func:`_list_query`), its rows grouped by member: a page is
    ``limit`` members however many subscriptions they hold."""
    searched = q.strip().lower()
    params: dict[str, object] = {"day": local_day(now or utcnow())}
    if site_id:
        params["site_id"] = site_id
    if searched:
        params["like"] = f"%{searched}%"
    if limit is not None:
        params.update(offset=offset, limit=limit)
    result = await session.execute(_list_query(bool(site_id), bool(searched), limit is not None), params)
    found: dict[int, tuple] = {}
    subs: dict[tuple[int, str], list[_Held]] = defaultdict(list)
    for (member_id, total, company, siren, vat, created, name, email, site_name, sub_id, kind, sub_status, sub_plan,
         started, past_due, plan_name, owed, pass_plan, on_pass) in result:
        if member_id not in found:
            found[member_id] = (ListedMember(member_id, company, siren, vat, created), name, email, site_name, total, owed,
                                pass_plan, on_pass)
        if sub_id is not None:
            subs[(member_id, kind)].append(_Held(sub_id, kind, sub_status, sub_plan, started, past_due, plan_name))
    rows = []
    for member, name, email, site_name, _total, owed, pass_plan, on_pass in found.values():
        workspace = _pick(subs.get((member.id, "workspace"), []))
        sub = workspace or _pick(subs.get((member.id, "membership"), []))  # a membership fee alone: shown, no desk
        access = access_for(workspace.status, workspace.past_due_since, now=now, grace_days=grace_days) if workspace \
            else Access(False, "none")
        row = MemberRow(member=member, name=name, email=email, site=site_name, plan=sub.plan if sub else pass_plan,
                        status=sub.status if sub else "none", access=with_pass(access, bool(on_pass)),
                        since=sub.started_at if sub else member.created_at, overdue=int(owed or 0))
        if status and row.status != status:
            continue
        if plan_id and (sub is None or sub.plan_id != plan_id):
            continue
        rows.append(row)
    if limit is None:
        return len(found), rows
    return (int(next(iter(found.values()))[4]) if found else 0), rows


CSV_HEADER = ["membre", "email", "entreprise", "siren", "tva", "lieu", "formule", "statut", "acces", "depuis",
              "impaye_centimes", "impaye"]


def members_csv(rows: list[MemberRow]) -> str:
    from funding.money import format_plain

    out = io.StringIO()
    writer = csvout.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow([r.name, r.email, r.member.company_name or "", r.member.siren or "", r.member.vat_number or "",
                         r.site, r.plan or "", r.status, "oui" if r.access.granted else "non", r.since.date().isoformat(),
                         r.overdue, format_plain(r.overdue, r.currency)])
    return out.getvalue()


# --- revenue invoiced in advance (487) -----------------------------------------------------


@dataclass
class DeferredLine:
    invoice: str
    member: str
    account: str
    description: str
    start: dt.date
    end: dt.date
    base: int
    deferred: int
    currency: str


@dataclass
class DeferredReport:
    year_end: dt.date
    lines: list[DeferredLine] = field(default_factory=list)

    @property
    def by_account(self) -> list[tuple[str, str, int]]:
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for line in self.lines:
            totals[(line.account, line.currency)] += line.deferred
        return [(account, currency, amount) for (account, currency), amount in sorted(totals.items())]


def fiscal_year_end(year: int, start_month: int) -> dt.date:
    """The last day of the fiscal year that ends in ``year``."""
    if start_month == 1:
        return dt.date(year, 12, 31)
    return dt.date(year, start_month, 1) - dt.timedelta(days=1)


def _unix_at_paris_midnight(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), PARIS).timestamp())


def _paris_day(unix: int) -> dt.date:
    return dt.datetime.fromtimestamp(unix, PARIS).date()


async def deferred_revenue(session: AsyncSession, org_id: int, year: int) -> DeferredReport:
    """Revenue booked by the year-end for a service after it: invoices in the books (issued by
    then, not void: accrual books them when issued, paid or not) whose lines' service period
    runs past the year-end, the share of each line's base (HT) after it, pro rata temporis; and
    passes bought by then, not expired, for the days not yet used at the year-end. Rounded half
    up to the cent."""
    org = await session.get(Organisation, org_id)
    year_end = fiscal_year_end(year, org.fiscal_year_start_month if org else 1)
    cutoff = _unix_at_paris_midnight(year_end + dt.timedelta(days=1))
    report = DeferredReport(year_end)
    rows = (await session.execute(
        select(Invoice, User.name, Member.company_name).join(Member, Member.id == Invoice.member_id)
        .join(User, User.id == Member.user_id).join(Site, Site.id == Invoice.site_id)
        .where(Site.org_id == org_id,
               Invoice.status.in_((InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)),
               Invoice.issued_at < dt.datetime.fromtimestamp(cutoff, dt.UTC).replace(tzinfo=None))
        .order_by(Invoice.issued_at, Invoice.id))).all()
    for invoice, name, company in rows:
        for line in json.loads(invoice.lines or "[]"):
            start, end, base = line.get("period_start"), line.get("period_end"), int(line.get("base") or 0)
            if line.get("account") in (None, "467") or not start or not end or end <= cutoff or end <= start or not base:
                continue
            after = end - max(start, cutoff)
            deferred = (base * after * 2 + (end - start)) // (2 * (end - start)) if base > 0 else \
                -((-base * after * 2 + (end - start)) // (2 * (end - start)))
            if deferred:
                report.lines.append(DeferredLine(
                    invoice=invoice.number or invoice.stripe_invoice_id, member=company or name, account=line["account"],
                    description=line.get("description") or "", start=_paris_day(start), end=_paris_day(end),
                    base=base, deferred=deferred, currency=invoice.currency))
    report.lines += await _unused_passes(session, org_id, year_end)
    return report


async def _unused_passes(session: AsyncSession, org_id: int, year_end: dt.date) -> list[DeferredLine]:
    """A pass is a number of days: what it was sold for (HT), in proportion to the days still
    unused at the year-end, belongs to the next year (unless it has expired by then)."""
    cutoff = dt.datetime.combine(year_end + dt.timedelta(days=1), dt.time())
    used_by_then = (select(PassDay.pass_id, func.count(PassDay.id).label("used")).where(PassDay.day <= year_end)
                    .group_by(PassDay.pass_id).subquery())
    rows = (await session.execute(
        select(Pass, Payment.amount, Payment.currency, Plan.vat_rate, Plan.account, Plan.name, User.name, Member.company_name,
               func.coalesce(used_by_then.c.used, 0))
        .join(Payment, Payment.id == Pass.payment_id).join(Plan, Plan.id == Pass.plan_id)
        .join(Member, Member.id == Pass.member_id).join(User, User.id == Member.user_id).join(Site, Site.id == Pass.site_id)
        .outerjoin(used_by_then, used_by_then.c.pass_id == Pass.id)
        .where(Site.org_id == org_id, Pass.purchased_at < cutoff, Pass.expires_on > year_end)
        .order_by(Pass.purchased_at, Pass.id))).all()
    out = []
    for held, amount, currency, vat_rate, account, plan_name, name, company, used in rows:
        base = split_vat(amount, vat_rate)[0] if vat_rate else amount
        unused = held.days_total - min(int(used), held.days_total)
        deferred = (base * unused * 2 + held.days_total) // (2 * held.days_total)
        if deferred:
            out.append(DeferredLine(invoice=f"pass-{held.id}", member=company or name, account=account,
                                    description=f"{plan_name} : {unused} jour(s) sur {held.days_total} à utiliser",
                                    start=local_day(held.purchased_at), end=held.expires_on, base=base, deferred=deferred,
                                    currency=currency))
    return out


def deferred_csv(report: DeferredReport) -> str:
    from funding.money import format_plain

    out = io.StringIO()
    writer = csvout.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["facture", "membre", "compte", "libelle", "debut", "fin", "base_ht", "constate_d_avance", "devise"])
    for line in report.lines:
        writer.writerow([line.invoice, line.member, line.account, line.description, line.start.isoformat(),
                         line.end.isoformat(), format_plain(line.base, line.currency),
                         format_plain(line.deferred, line.currency), line.currency])
    return out.getvalue()
