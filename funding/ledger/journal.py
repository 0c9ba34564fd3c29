"""The staff journal, a page at a time: validated entries, newest first, with the organisation's
SIREN, the site, each entry's amount (what its debits add up to) and currency, and how many
entries the whole list has.

One statement whatever the page: the page's entries are picked first on the narrow sort (their
ids, and the list's count as a window over that same scan), then only those are joined to their
details and their postings' totals. Read as columns (the page is read-only), through the ORM so
the organisation wall applies; the statement is built once for each combination of filters."""

from __future__ import annotations

import datetime as dt
import functools
from typing import NamedTuple

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.db import AnySelect
from funding.ledger.models import Entry, Posting
from funding.orgs.models import Organisation, Site


class JournalRow(NamedTuple):
    id: int
    number: int
    entry_date: dt.date
    journal_code: str
    label: str
    piece_ref: str
    funding_source: str
    site_name: str
    siren: str
    amount: int
    currency: str


def _filters(by_org: bool, by_site: bool, since: bool, until: bool, by_source: bool) -> list[ColumnElement[bool]]:
    return [Entry.number.is_not(None),
            *([Entry.org_id == bindparam("org_id")] if by_org else []),
            *([Entry.site_id == bindparam("site_id")] if by_site else []),
            *([Entry.entry_date >= bindparam("start")] if since else []),
            *([Entry.entry_date <= bindparam("end")] if until else []),
            *([Entry.funding_source == bindparam("source")] if by_source else [])]


@functools.cache
def _page_query(by_org: bool, by_site: bool, since: bool, until: bool, by_source: bool) -> AnySelect:
    newest_first = (Entry.validated_at.desc(), Entry.id.desc())
    page = (select(Entry.id, func.count().over().label("total")).where(*_filters(by_org, by_site, since, until, by_source))
            .order_by(*newest_first).offset(bindparam("offset")).limit(bindparam("limit")).subquery("page"))
    amount = (select(func.coalesce(func.sum(Posting.amount), 0)).where(Posting.entry_id == Entry.id, Posting.amount > 0)
              .scalar_subquery())
    currency = select(func.min(Posting.currency)).where(Posting.entry_id == Entry.id).scalar_subquery()
    return (select(Entry.id, Entry.number, Entry.entry_date, Entry.journal_code, Entry.label, Entry.piece_ref,
                   Entry.funding_source, Site.name, Organisation.siren, amount.label("amount"), currency.label("currency"),
                   page.c.total)
            .select_from(page).join(Entry, Entry.id == page.c.id).join(Site, Site.id == Entry.site_id)
            .join(Organisation, Organisation.id == Entry.org_id).order_by(*newest_first))


async def journal_page(session: AsyncSession, *, org_id: int | None = None, site_id: int | None = None,
                       start: dt.date | None = None, end: dt.date | None = None, source: str = "", offset: int = 0,
                       limit: int = 50) -> tuple[int, list[JournalRow]]:
    """The entries of one page and how many the whole list has (counted apart only past its end)."""
    shape = (bool(org_id), bool(site_id), start is not None, end is not None, bool(source))
    values = {"org_id": org_id, "site_id": site_id, "start": start, "end": end, "source": source}
    params: dict[str, object] = {k: v for k, v, wanted in zip(values, values.values(), shape, strict=True) if wanted}
    found = (await session.execute(_page_query(*shape), {**params, "offset": offset, "limit": limit})).all()
    rows = [JournalRow(entry_id, number, day, journal, label, piece, source_, site, siren, int(amount or 0), currency or "EUR")
            for entry_id, number, day, journal, label, piece, source_, site, siren, amount, currency, _total in found]
    if found:
        return int(found[0].total), rows
    if not offset:
        return 0, []
    counted = select(func.count()).select_from(Entry).where(*_filters(*shape))
    return int(await session.scalar(counted, params) or 0), []
