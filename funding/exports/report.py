"""The funding mix: where the revenue (class 7) came from, per period and site or for the
whole network — by funding source, by account, month by month — and the grants with what
was granted, received and remains. Charts are drawn here as SVG geometry in integers."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.ledger.models import FUNDING_SOURCES, Account, Entry, FundingSource, Grant, Posting
from funding.money import format_plain
from funding.orgs.models import Organisation, Site

CHART_WIDTH = 600
TREND_HEIGHT = 160
TREND_BAR = 28
TREND_GAP = 12


def share_tenths(part: int, whole: int) -> int:
    """Share in tenths of a percent, rounded half up, from integers only."""
    if whole <= 0:
        return 0
    return (max(part, 0) * 1000 * 2 + whole) // (2 * whole)


def share_text(part: int, whole: int, sep: str = ",") -> str:
    tenths = share_tenths(part, whole)
    return f"{tenths // 10}{sep}{tenths % 10}"


def decimal_point(amount: int, currency: str) -> str:
    return format_plain(amount, currency).replace(",", ".")


def month_range(start: dt.date, end: dt.date) -> list[str]:
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def last_twelve_months(today: dt.date) -> tuple[dt.date, dt.date]:
    index = today.year * 12 + today.month - 1 - 11
    return dt.date(index // 12, index % 12 + 1, 1), today


def year_bounds(year: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


@dataclass
class Segment:
    source: str
    amount: int
    x: int
    width: int


@dataclass
class TrendBar:
    month: str
    total: int
    x: int
    segments: list[tuple[str, int, int, int]]  # source, amount, y, height


@dataclass
class GrantRow:
    reference: str
    funder: str
    funder_siret: str | None
    convention_date: dt.date
    object: str
    site: str
    currency: str
    granted: int
    received: int
    pieces: list[str]
    payment_dates: list[dt.date]

    @property
    def remaining(self) -> int:
        return self.granted - self.received


@dataclass
class FundingMix:
    start: dt.date
    end: dt.date
    currency: str
    site: Site | None
    total: int = 0
    by_source: list[tuple[str, int]] = field(default_factory=list)
    by_account: list[tuple[str, str, str, int]] = field(default_factory=list)  # source, account, label, amount
    months: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    grants: list[GrantRow] = field(default_factory=list)
    contributions: int = 0  # crowdfunding entries (gifts, pledges), counted, never named

    @property
    def segments(self) -> list[Segment]:
        """The stacked bar: widths in integer SVG units summing to CHART_WIDTH."""
        positive = [(s, a) for s, a in self.by_source if a > 0]
        whole = sum(a for _, a in positive)
        out, x = [], 0
        for n, (source, amount) in enumerate(positive):
            width = CHART_WIDTH - x if n == len(positive) - 1 else amount * CHART_WIDTH // whole
            out.append(Segment(source, amount, x, width))
            x += width
        return out

    @property
    def trend(self) -> list[TrendBar]:
        peak = max((sum(max(v, 0) for v in amounts.values()) for _, amounts in self.months), default=0)
        bars = []
        for n, (month, amounts) in enumerate(self.months):
            x, y = n * (TREND_BAR + TREND_GAP), TREND_HEIGHT
            segments: list[tuple[str, int, int, int]] = []
            for source in FUNDING_SOURCES:
                amount = amounts.get(source, 0)
                if amount <= 0 or not peak:
                    continue
                height = amount * TREND_HEIGHT // peak
                y -= height
                segments.append((source, amount, y, height))
            bars.append(TrendBar(month, sum(amounts.values()), x, segments))
        return bars

    @property
    def trend_width(self) -> int:
        return max(len(self.months) * (TREND_BAR + TREND_GAP) - TREND_GAP, TREND_BAR)


async def funding_mix(session: AsyncSession, *, start: dt.date, end: dt.date, site: Site | None = None,
                      org_id: int | None = None, currency: str = "EUR", with_grants: bool = True) -> FundingMix:
    mix = FundingMix(start, end, currency, site)
    where = [Entry.number.is_not(None), Entry.entry_date >= start, Entry.entry_date <= end, Posting.currency == currency]
    if site is not None:
        where.append(Entry.site_id == site.id)
    if org_id is not None:
        where.append(Entry.org_id == org_id)
    rows = (await session.execute(
        select(Entry.funding_source, Posting.account_number, Entry.entry_date, func.sum(-Posting.amount))
        .join(Entry, Entry.id == Posting.entry_id)
        .where(*where, Posting.account_number.like("7%"))
        .group_by(Entry.funding_source, Posting.account_number, Entry.entry_date)
    )).all()
    by_source: dict[str, int] = defaultdict(int)
    by_account: dict[tuple[str, str], int] = defaultdict(int)
    by_month: dict[str, dict[str, int]] = {m: defaultdict(int) for m in month_range(start, end)}
    for source, account, day, amount in rows:
        amount = int(amount or 0)
        by_source[source] += amount
        by_account[(source, account)] += amount
        by_month[f"{day:%Y-%m}"][source] += amount
    order: dict[str, int] = {s: n for n, s in enumerate(FUNDING_SOURCES)}
    mix.by_source = sorted(((s, a) for s, a in by_source.items() if a), key=lambda r: (-r[1], order[r[0]]))
    mix.total = sum(a for _, a in mix.by_source)
    labels = dict((await session.execute(select(Account.number, func.min(Account.label)).group_by(Account.number))).all())
    mix.by_account = sorted(((s, acc, labels.get(acc, ""), a) for (s, acc), a in by_account.items() if a),
                            key=lambda r: (order[r[0]], r[1]))
    mix.months = [(m, dict(v)) for m, v in by_month.items()]
    mix.contributions = int(await session.scalar(
        select(func.count(func.distinct(Entry.id))).join(Posting, Posting.entry_id == Entry.id)
        .where(*where, Entry.funding_source == FundingSource.CROWDFUNDING, Entry.reverses_id.is_(None),
               Posting.account_number.like("7%"), Posting.amount < 0)
    ) or 0)
    if with_grants:
        mix.grants = await grant_rows(session, end=end, site=site, org_id=org_id)
    return mix


async def grant_rows(session: AsyncSession, *, end: dt.date | None = None, site: Site | None = None,
                     org_id: int | None = None) -> list[GrantRow]:
    """Every grant notified by ``end``: granted, received (credits of 441 on its entries), pieces."""
    query = select(Grant, Site.name).join(Site, Site.id == Grant.site_id).order_by(Grant.convention_date, Grant.reference)
    if end is not None:
        query = query.where(Grant.convention_date <= end)
    if site is not None:
        query = query.where(Grant.site_id == site.id)
    if org_id is not None:
        query = query.where(Grant.org_id == org_id)
    grants = (await session.execute(query)).all()
    if not grants:
        return []
    ids = [g.id for g, _ in grants]
    entry_filter: list[ColumnElement[bool]] = [Entry.grant_id.in_(ids), Entry.number.is_not(None)]
    if end is not None:
        entry_filter.append(Entry.entry_date <= end)
    received = dict((await session.execute(
        select(Entry.grant_id, func.sum(-Posting.amount)).join(Posting, Posting.entry_id == Entry.id)
        .where(*entry_filter, Posting.account_number == "441", Posting.amount < 0).group_by(Entry.grant_id)
    )).all())
    pieces: dict[int, list[str]] = defaultdict(list)
    payments: dict[int, list[dt.date]] = defaultdict(list)
    for grant_id, piece, day, paid in (await session.execute(
        select(Entry.grant_id, Entry.piece_ref, Entry.entry_date,
               func.sum(-Posting.amount).filter(and_(Posting.account_number == "441", Posting.amount < 0)))
        .join(Posting, Posting.entry_id == Entry.id).where(*entry_filter)
        .group_by(Entry.id, Entry.grant_id, Entry.piece_ref, Entry.entry_date).order_by(Entry.entry_date, Entry.id)
    )).all():
        grant = cast("int", grant_id)  # never NULL: the filter keeps the entries of these grants
        if piece not in pieces[grant]:
            pieces[grant].append(piece)
        if paid:
            payments[grant].append(day)
    return [
        GrantRow(g.reference, g.funder_name, g.funder_siret, g.convention_date, g.object, site_name, g.currency, g.amount,
                 int(received.get(g.id) or 0), pieces[g.id], payments[g.id])
        for g, site_name in grants
    ]


# --- open data ------------------------------------------------------------------------------

SCDL_COLUMNS = (
    "nomAttribuant", "idAttribuant", "dateConvention", "referenceDecision", "nomBeneficiaire", "idBeneficiaire",
    "rnaBeneficiaire", "objet", "montant", "nature", "conditionsVersement", "datesPeriodeVersement", "idRAE",
    "notificationUE", "pourcentageSubvention", "dispositifAide",
)


async def scdl_rows(session: AsyncSession) -> list[dict[str, str]]:
    """Grants received by the network's organisations, in the SCDL "subventions" schema (ACCOUNTING.md §7),
    every required field filled: the funder's SIRET (required since grants are recorded by their
    nature; a grant recorded before without it cannot make a valid row and is left out), and the
    dates of payment — those of the payment entries, or before any the period the grant covers
    (its convention's date to the end of its last fiscal year)."""
    orgs = {o.id: o for o in (await session.scalars(select(Organisation))).all()}
    grants = (await session.scalars(select(Grant).order_by(Grant.convention_date, Grant.reference))).all()
    details = {(g.reference, g.convention_date): g for g in await grant_rows(session)}
    out = []
    for g in grants:
        if not g.funder_siret:
            continue
        org = orgs[g.org_id]
        dates = sorted(set(details[(g.reference, g.convention_date)].payment_dates))
        if not dates:
            start_month = org.fiscal_year_start_month
            first = g.convention_date.year if g.convention_date.month >= start_month else g.convention_date.year - 1
            last = dt.date(first + g.years, start_month, 1) - dt.timedelta(days=1)
            period = f"{g.convention_date.isoformat()}/{last.isoformat()}"
        else:
            period = dates[0].isoformat() if len(dates) == 1 else f"{dates[0].isoformat()}/{dates[-1].isoformat()}"
        conditions = "échelonné" if len(dates) > 1 or g.years > 1 else {"unique": "unique", "échelonné": "échelonné"}.get(
            g.conditions, "autre")
        out.append({
            "nomAttribuant": g.funder_name, "idAttribuant": g.funder_siret, "dateConvention": g.convention_date.isoformat(),
            "referenceDecision": g.reference, "nomBeneficiaire": org.name, "idBeneficiaire": "",
            "rnaBeneficiaire": org.rna or "", "objet": g.object[:256], "montant": decimal_point(g.amount, g.currency),
            "nature": "aide en numéraire", "conditionsVersement": conditions, "datesPeriodeVersement": period,
            "idRAE": "", "notificationUE": "non", "pourcentageSubvention": "1", "dispositifAide": g.scheme or "",
        })
    return out


async def mix_by_month(session: AsyncSession, *, site: Site | None = None, currency: str = "EUR") -> list[dict]:
    """Per month (every month with revenue) and funding source: amount and share, for open data."""
    query = (
        select(Entry.entry_date, Entry.funding_source, func.sum(-Posting.amount))
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Entry.number.is_not(None), Posting.account_number.like("7%"), Posting.currency == currency)
        .group_by(Entry.entry_date, Entry.funding_source)
    )
    if site is not None:
        query = query.where(Entry.site_id == site.id)
    months: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, source, amount in (await session.execute(query)).all():
        months[f"{day:%Y-%m}"][source] += int(amount or 0)
    out = []
    for month in sorted(months):
        amounts = {s: a for s, a in months[month].items() if a}
        total = sum(amounts.values())
        out.append({"period": month, "site": site.slug if site else None, "currency": currency,
                    "total": decimal_point(total, currency), "total_minor": total,
                    "sources": {s: {"amount": decimal_point(a, currency), "amount_minor": a,
                                    "share": share_text(a, total, ".")}
                                for s, a in sorted(amounts.items(), key=lambda kv: FUNDING_SOURCES.index(kv[0]))}})
    return out

