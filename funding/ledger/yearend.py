"""Year-end entries: what a fiscal year's last day books for grants and fixed assets.

All of them are dated the fiscal year's end, in the OD journal, and computed as *target
balances*: for each grant or asset, what an account should hold at the year-end, less what
it holds already (its entries up to that day, the à-nouveaux of journal AN left out). Posting
them twice posts nothing new; an entry reversed by hand is booked again. Their source keys
are ``yearend:{org}:{YYYYMMDD}:{what}:{id}`` (``{what}-2``… if the same year-end is run again
after more was recorded):

- ``deferral`` — a multi-year grant is income of its ``years`` fiscal years (from its
  convention's) in equal parts; at each year-end, the part of later years sits in 487
  "produits constatés d'avance" (741 → 487), and comes back to 741 at the year-ends that follow.
- ``dedicated`` — a restricted grant's part not yet spent at a year-end (spent: the charges,
  60 to 67, of the entries that name the grant) becomes fonds dédiés: 6894 debit, 194 credit;
  spent in a later year, it comes back from 194 through 7894.
- ``depreciation`` — a fixed asset is depreciated straight-line over its useful life, prorata
  temporis **in days** in its first fiscal year (days owned over the days of that year), then a
  full year's part each year, never beyond its cost: 6811 debit, 28x credit. Its entries carry
  the asset's piece reference ``IMMO-{id}``, by which its 28x balance is read.
- ``release`` — an investment grant (131) is carried to the result as the assets it funded
  depreciate, in the same proportion (its amount over their cost, at most all of it): 139
  debit, 777 credit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from fractions import Fraction

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.db import must_get
from funding.ledger.chart import DEPRECIATION_ACCOUNTS
from funding.ledger.models import Entry, FixedAsset, FundingSource, Grant, GrantNature, Posting
from funding.ledger.service import YEAR_END, EntryDraft, Line, PostResult, credit, debit, fiscal_year_start, post
from funding.orgs.models import Organisation


def _round(value: Fraction) -> int:
    """Half up, to the minor unit (amounts here are never negative)."""
    return int(value + Fraction(1, 2))


def _year_end(fy_start: dt.date) -> dt.date:
    following = dt.date(fy_start.year + 1, fy_start.month, 1)
    return following - dt.timedelta(days=1)


def multi_year_recognised(grant: Grant, years_elapsed: int) -> int:
    """What a multi-year grant has brought to income after ``years_elapsed`` of its fiscal years."""
    done = min(max(years_elapsed, 0), grant.years)
    return grant.amount * done // grant.years


def depreciated(asset: FixedAsset, fy_start: dt.date, start_month: int) -> int:
    """The asset's depreciation accumulated at the end of the fiscal year starting ``fy_start``."""
    first_start = fiscal_year_start(asset.acquired_on, start_month)
    first_end = _year_end(first_start)
    if fy_start < first_start:
        return 0
    first_part = Fraction((first_end - asset.acquired_on).days + 1, (first_end - first_start).days + 1)
    later = fy_start.year - first_start.year
    return min(asset.cost, _round(asset.cost * (first_part + later) / asset.useful_life))


async def _balance(session: AsyncSession, org_id: int, account: str | Sequence[str], fy_end: dt.date, *,
                   grant_id: int | None = None, piece_ref: str | None = None, charges: bool = False) -> int:
    """Signed balance (debit > 0) of validated entries up to ``fy_end``, à-nouveaux left out."""
    query = (select(func.coalesce(func.sum(Posting.amount), 0)).join(Entry, Entry.id == Posting.entry_id)
             .where(Entry.org_id == org_id, Entry.number.is_not(None), Entry.entry_date <= fy_end,
                    Entry.journal_code != "AN"))
    if charges:
        query = query.where(Posting.account_number.like("6%"), Posting.account_number.not_like("68%"))
    elif isinstance(account, str):
        query = query.where(Posting.account_number == account)
    else:
        query = query.where(Posting.account_number.in_(account))
    if grant_id is not None:
        query = query.where(Entry.grant_id == grant_id)
    if piece_ref is not None:
        query = query.where(Entry.piece_ref == piece_ref)
    return int(await session.scalar(query) or 0)


def asset_piece(asset: FixedAsset) -> str:
    return f"IMMO-{asset.id}"


async def asset_balance(session: AsyncSession, asset: FixedAsset, account: str, day: dt.date | None = None) -> int:
    """The asset's balance on ``account`` (its 28x: minus the depreciation booked) up to ``day``."""
    return await _balance(session, asset.org_id, account, day or dt.date.max, piece_ref=asset_piece(asset))


async def year_end_drafts(session: AsyncSession, org_id: int, fy_start: dt.date, fy_end: dt.date) -> list[EntryDraft]:
    """The entries that bring the grants' and assets' accounts to their balances at ``fy_end``
    (none when they are there already)."""
    org = await must_get(session, Organisation, org_id)
    start_month = org.fiscal_year_start_month
    used = set((await session.scalars(
        select(Entry.source_key).where(Entry.org_id == org_id, Entry.source_key.like(f"yearend:{org_id}:{fy_end:%Y%m%d}:%"))
    )).all())
    drafts: list[EntryDraft] = []

    def add(what: str, row_id: int, site_id: int, label: str, piece: str, source: str, lines: list[Line],
            grant_id: int | None = None) -> None:
        key, n = f"yearend:{org_id}:{fy_end:%Y%m%d}:{what}:{row_id}", 1
        while key in used:
            n += 1
            key = f"yearend:{org_id}:{fy_end:%Y%m%d}:{what}-{n}:{row_id}"
        used.add(key)
        drafts.append(EntryDraft(org_id=org_id, site_id=site_id, journal="OD", entry_date=fy_end, label=label[:200],
                                 piece_ref=piece[:100], funding_source=source, lines=lines, source_key=key,
                                 grant_id=grant_id, created_by="year-end"))

    grants = (await session.scalars(
        select(Grant).where(Grant.org_id == org_id, Grant.convention_date <= fy_end).order_by(Grant.id)
    )).all()
    assets = (await session.scalars(
        select(FixedAsset).where(FixedAsset.org_id == org_id, FixedAsset.acquired_on <= fy_end).order_by(FixedAsset.id)
    )).all()

    for asset in assets:
        account = DEPRECIATION_ACCOUNTS[asset.account_number]
        target = -depreciated(asset, fy_start, start_month)
        delta = target - await _balance(session, org_id, account, fy_end, piece_ref=asset_piece(asset))
        if delta:
            lines = ([debit("6811", -delta, asset.currency), credit(account, -delta, asset.currency)] if delta < 0 else
                     [debit(account, delta, asset.currency), credit("6811", delta, asset.currency)])
            add("depreciation", asset.id, asset.site_id, f"Amortissement {fy_end.year} : {asset.label}",
                asset_piece(asset), FundingSource.SELF, lines)

    for grant in grants:
        cur = grant.currency
        years_elapsed = fy_start.year - fiscal_year_start(grant.convention_date, start_month).year + 1
        if grant.nature == GrantNature.MULTI_YEAR:
            target = -(grant.amount - multi_year_recognised(grant, years_elapsed))
            delta = target - await _balance(session, org_id, "487", fy_end, grant_id=grant.id)
            if delta:
                lines = ([debit("741", -delta, cur), credit("487", -delta, cur)] if delta < 0 else
                         [debit("487", delta, cur), credit("741", delta, cur)])
                what = "Produits constatés d'avance" if delta < 0 else "Reprise des produits constatés d'avance"
                add("deferral", grant.id, grant.site_id, f"{what} : subvention {grant.reference}", grant.reference,
                    FundingSource.PUBLIC, lines, grant.id)
        elif grant.nature == GrantNature.RESTRICTED:
            spent = await _balance(session, org_id, (), fy_end, grant_id=grant.id, charges=True)
            target = -max(grant.amount - spent, 0)
            delta = target - await _balance(session, org_id, "194", fy_end, grant_id=grant.id)
            if delta:
                lines = ([debit("6894", -delta, cur), credit("194", -delta, cur)] if delta < 0 else
                         [debit("194", delta, cur), credit("7894", delta, cur)])
                what = "Engagement à réaliser (fonds dédiés)" if delta < 0 else "Report des fonds dédiés utilisés"
                add("dedicated", grant.id, grant.site_id, f"{what} : subvention {grant.reference}", grant.reference,
                    FundingSource.PUBLIC, lines, grant.id)
        elif grant.nature == GrantNature.INVESTMENT:
            funded = [a for a in assets if a.grant_id == grant.id]
            cost = sum(a.cost for a in funded)
            if not cost:
                continue
            share = min(Fraction(grant.amount, cost), Fraction(1))
            target = min(grant.amount, _round(share * sum(depreciated(a, fy_start, start_month) for a in funded)))
            delta = target - await _balance(session, org_id, "139", fy_end, grant_id=grant.id)
            if delta:
                lines = ([debit("139", delta, cur), credit("777", delta, cur)] if delta > 0 else
                         [debit("777", -delta, cur), credit("139", -delta, cur)])
                add("release", grant.id, grant.site_id, f"Quote-part virée au résultat : subvention {grant.reference}",
                    grant.reference, FundingSource.PUBLIC, lines, grant.id)
    return drafts


async def post_year_end(session: AsyncSession, org_id: int, fy_start: dt.date, fy_end: dt.date,
                        now: dt.datetime | None = None) -> PostResult:
    """Post the year-end entries of the fiscal year ``fy_start``–``fy_end`` (see the module)."""
    drafts = await year_end_drafts(session, org_id, fy_start, fy_end)
    return await post(session, drafts, now=now) if drafts else PostResult()


YEAR_END.append(post_year_end)
