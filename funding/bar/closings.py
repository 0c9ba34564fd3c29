"""Closings of a site's till (ACCOUNTING.md §5): day, month and fiscal year, then the
yearly archive. Each closing stores the period's totals per VAT rate, the fiscal-year
running total and the perpetual grand total, is chained to the site's previous closing
(the database checks the link) and never changes. A day's closing also posts the day's
tab sales to the ledger ([CA], see funding.bar.books) in the same transaction.

Closings happen in order: closing a day first closes the earlier days that have sales;
closing a month first closes its days; closing a fiscal year first closes its months,
then archives it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from funding.bar import books
from funding.bar.canonical import archive_hash, closing_hash, sha256
from funding.bar.figures import fiscal_year_bounds, fiscal_year_label, fiscal_year_start, period_figures
from funding.bar.models import Archive, SaleLine, TillClosing, TillClosingKind, TillHead
from funding.bar.till import BarError, local_today, lock_head
from funding.db import digits, must_get, utcnow
from funding.i18n import day as i18n_day
from funding.i18n import gettext as _
from funding.ledger.models import SealKind
from funding.ledger.service import post
from funding.orgs.models import Organisation, Site
from funding.payments.books import dated_for_open_period

log = logging.getLogger("funding.bar")


def month_bounds(period: str) -> tuple[dt.date, dt.date]:
    try:
        year, month = (int(x) for x in period.split("-"))
        start = dt.date(year, month, 1)
    except (ValueError, TypeError, OverflowError):
        raise BarError(_("Mois invalide : %(value)s (attendu AAAA-MM, par exemple 2026-11).", value=period)) from None
    return start, dt.date(year, month, calendar.monthrange(year, month)[1])


async def _start_month(session: AsyncSession, site: Site) -> int:
    org = await session.get(Organisation, site.org_id)
    return org.fiscal_year_start_month if org else 1


async def _record(session: AsyncSession, site: Site, head: TillHead, *, kind: str, period: str, start: dt.date,
                  end: dt.date, closed_by: str, now: dt.datetime, entry_key: str | None = None,
                  earlier: TillClosing | None = None) -> TillClosing:
    is_day = kind == TillClosingKind.DAY
    figures = await period_figures(session, site.id, start, end,
                                   fy_start=fiscal_year_start(end, await _start_month(session, site)),
                                   with_cancellations=is_day, after=earlier.closed_at if earlier is not None else None,
                                   upto=now if is_day else None)
    closing = TillClosing(site_id=site.id, org_id=site.org_id, kind=kind, period=period, start_date=start, end_date=end,
                          entry_key=entry_key, closed_at=now, closed_by=closed_by[:200], prev_hash=head.last_closing_hash,
                          hash="", **figures)
    closing.hash = closing_hash(closing)
    session.add(closing)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise BarError(_("Cette période est déjà clôturée.")) from exc
    set_committed_value(head, "last_closing_hash", closing.hash)
    if kind == TillClosingKind.DAY:
        set_committed_value(head, "closed_through", end)
    return closing


async def _day_closings(session: AsyncSession, site_id: int, day: dt.date) -> list[TillClosing]:
    """The closings of one day, in order: the first, then one per closing made again after
    lines were rung on that day after the previous one."""
    return list((await session.scalars(select(TillClosing).where(
        TillClosing.site_id == site_id, TillClosing.kind == TillClosingKind.DAY, TillClosing.start_date == day)
        .order_by(TillClosing.id))).all())


async def _rung_since(session: AsyncSession, site_id: int, day: dt.date, moment: dt.datetime) -> bool:
    """Lines of ``day`` recorded after ``moment`` (a closing of that day made before its end)."""
    return await session.scalar(select(SaleLine.id).where(SaleLine.site_id == site_id, SaleLine.day == day,
                                                          SaleLine.recorded_at > moment).limit(1)) is not None


async def _pending_days(session: AsyncSession, site: Site, head: TillHead, through: dt.date) -> list[dt.date]:
    """Days up to ``through`` with lines no closing covers yet: the days after the last closed
    one, and that day itself when lines were rung after its closing (before its midnight)."""
    query = select(SaleLine.day).distinct().where(SaleLine.site_id == site.id, SaleLine.day <= through)
    if head.closed_through is not None:
        query = query.where(SaleLine.day > head.closed_through)
    days = sorted((await session.scalars(query)).all())
    last = head.closed_through
    if last is not None and last <= through:
        closings = await _day_closings(session, site.id, last)
        if closings and await _rung_since(session, site.id, last, closings[-1].closed_at):
            days.insert(0, last)
    return days


async def close_day(session: AsyncSession, site: Site, day: dt.date | None = None, *, closed_by: str = "",
                    now: dt.datetime | None = None) -> list[TillClosing]:
    """Close ``day`` (today by default), after any earlier day with sales still open.
    Returns the closings made, the requested day last."""
    now = now or utcnow()
    today = local_today(now)
    day = day or today
    if day > today:
        raise BarError(_("Le %(day)s n'est pas encore arrivé : on ne clôture pas une journée future.",
                         day=i18n_day(day)))
    head = await lock_head(session, site)
    days = await _pending_days(session, site, head, day)
    if head.closed_through is not None and day <= head.closed_through and day not in days:
        raise BarError(_("La journée du %(day)s est déjà clôturée.", day=i18n_day(day)))
    if day not in days:
        days.append(day)
    return [await _close_one_day(session, site, head, d, closed_by, now) for d in days]


async def _close_one_day(session, site, head, day, closed_by, now) -> TillClosing:
    """The day's closing, or a further one for the lines rung on that day since its last
    closing (period ``2026-12-05/2``…), each with its own entry for the tab sales it covers."""
    earlier_closings = await _day_closings(session, site.id, day)
    earlier = earlier_closings[-1] if earlier_closings else None
    part = len(earlier_closings) + 1
    draft = await books.day_draft(session, site, day, after=earlier.closed_at if earlier else None, part=part)
    if draft is not None:
        await post(session, await dated_for_open_period(session, [draft]), now=now)
    period = day.isoformat() + (f"/{part}" if part > 1 else "")
    closing = await _record(session, site, head, kind=TillClosingKind.DAY, period=period, start=day, end=day,
                            closed_by=closed_by, now=now, entry_key=draft.source_key if draft else None, earlier=earlier)
    await _seal(session, site, head, closing, now)
    return closing


async def _seal(session, site: Site, head: TillHead, closing: TillClosing, now: dt.datetime) -> None:
    """Every closing of the till seals the organisation's heads and this till's (funding.ledger.seals)."""
    from funding.ledger.seals import SealError, seal

    try:
        # A day closed again seals under its day (seals are numbered; the closing's hash tells them apart).
        await seal(session, site.org_id, kind=SealKind(f"bar-{closing.kind}"), period=closing.period.split("/")[0], site=site,
                   till_head=head, now=now)
    except SealError as exc:
        raise BarError(str(exc)) from None


async def _closed(session: AsyncSession, site_id: int, kind: str, period: str) -> bool:
    return await session.scalar(select(TillClosing.id).where(TillClosing.site_id == site_id, TillClosing.kind == kind,
                                                             TillClosing.period == period)) is not None


async def _months_with_sales(session: AsyncSession, site_id: int, start: dt.date, end: dt.date) -> list[str]:
    days = (await session.scalars(select(SaleLine.day).distinct().where(
        SaleLine.site_id == site_id, SaleLine.day >= start, SaleLine.day <= end))).all()
    return sorted({d.strftime("%Y-%m") for d in days})


async def close_month(session: AsyncSession, site: Site, period: str, *, closed_by: str = "",
                      now: dt.datetime | None = None) -> TillClosing:
    """Close a month once it is over: its days first, earlier unclosed months before it."""
    now = now or utcnow()
    _start, end = month_bounds(period)
    if end >= local_today(now):
        raise BarError(_("Le mois %(period)s n'est pas terminé.", period=period))
    head = await lock_head(session, site)
    if await _closed(session, site.id, TillClosingKind.MONTH, period):
        raise BarError(_("Le mois %(period)s est déjà clôturé.", period=period))
    return await _close_month(session, site, head, period, closed_by, now)


async def _close_month(session, site, head, period, closed_by, now) -> TillClosing:
    start, end = month_bounds(period)
    first = await session.scalar(select(SaleLine.day).where(SaleLine.site_id == site.id).order_by(SaleLine.day).limit(1))
    if first is not None and first < start:
        for earlier in await _months_with_sales(session, site.id, first, start - dt.timedelta(days=1)):
            if not await _closed(session, site.id, TillClosingKind.MONTH, earlier):
                await _close_month(session, site, head, earlier, closed_by, now)
    for day in await _pending_days(session, site, head, end):
        await _close_one_day(session, site, head, day, closed_by, now)
    closing = await _record(session, site, head, kind=TillClosingKind.MONTH, period=period, start=start, end=end, closed_by=closed_by,
                            now=now)
    await _seal(session, site, head, closing, now)
    return closing


async def close_year(session: AsyncSession, site: Site, period: str, *, closed_by: str = "",
                     now: dt.datetime | None = None) -> tuple[TillClosing, Archive]:
    """Close a fiscal year once it is over (its months first), then archive it."""
    now = now or utcnow()
    if not digits(period) or len(period) != 4:
        raise BarError(_("Exercice invalide : %(value)s (l'année où il commence, par exemple 2026).", value=period))
    start, end = fiscal_year_bounds(period, await _start_month(session, site))
    if end >= local_today(now):
        raise BarError(_("L'exercice %(period)s n'est pas terminé (il finit le %(end)s).", period=period,
                         end=i18n_day(end)))
    head = await lock_head(session, site)
    if await _closed(session, site.id, TillClosingKind.YEAR, period):
        raise BarError(_("L'exercice %(period)s est déjà clôturé.", period=period))
    for month in await _months_with_sales(session, site.id, start, end):
        if not await _closed(session, site.id, TillClosingKind.MONTH, month):
            await _close_month(session, site, head, month, closed_by, now)
    closing = await _record(session, site, head, kind=TillClosingKind.YEAR, period=period, start=start, end=end, closed_by=closed_by,
                            now=now)
    archive = await archive_year(session, site, head, period, start, end, created_by=closed_by, now=now)
    await _seal(session, site, head, closing, now)  # after the archive: the year's seal holds it too
    return closing, archive


# --- the yearly archive -------------------------------------------------------------------

LINE_FIELDS = ("seq", "day", "recorded_at", "kind", "member_id", "ticket_id", "product_id", "label", "category",
               "unit_price", "quantity", "amount", "vat_rate", "currency", "reason", "recorded_by", "prev_hash", "hash")
CLOSING_FIELDS = ("kind", "period", "start_date", "end_date", "first_seq", "last_seq", "line_count", "cancel_count",
                  "totals", "by_mode", "cancellations", "period_total", "fiscal_year_total", "grand_total", "entry_key",
                  "closed_at", "closed_by", "prev_hash", "hash")


def _plain(value):
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


async def archive_document(session: AsyncSession, site: Site, period: str, start: dt.date, end: dt.date,
                           now: dt.datetime) -> tuple[bytes, int]:
    """The fiscal year's lines and closings as an indented, readable JSON document."""
    org = await must_get(session, Organisation, site.org_id)
    original = SaleLine.__table__.alias("original")
    rows = (await session.execute(
        select(SaleLine, original.c.seq).outerjoin(original, original.c.id == SaleLine.cancels_id)
        .where(SaleLine.site_id == site.id, SaleLine.day >= start, SaleLine.day <= end).order_by(SaleLine.seq))).all()
    lines = [{**{f: _plain(getattr(line, f)) for f in LINE_FIELDS}, "cancels_seq": cancels} for line, cancels in rows]
    closings = (await session.scalars(select(TillClosing).where(
        TillClosing.site_id == site.id, TillClosing.start_date >= start, TillClosing.end_date <= end)
        .order_by(TillClosing.id))).all()
    doc = {
        "format": "entrelab-bar-archive/1",
        "organisation": {"name": org.name, "siren": org.siren, "vat_number": org.vat_number},
        "site": {"id": site.id, "slug": site.slug, "name": site.name, "town": site.town},
        "fiscal_year": period, "start": start.isoformat(), "end": end.isoformat(), "generated_at": _plain(now),
        "amounts": "integer minor units (cents); VAT rates per mille (55 = 5,5 %)",
        "lines": lines,
        "closings": [{f: (json.loads(getattr(c, f)) if f in ("totals", "by_mode", "cancellations", "period_total",
                                                           "fiscal_year_total", "grand_total") else _plain(getattr(c, f)))
                      for f in CLOSING_FIELDS} for c in closings],
    }
    return (json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=False) + "\n").encode(), len(lines)


async def archive_year(session: AsyncSession, site: Site, head: TillHead, period: str, start: dt.date, end: dt.date, *,
                       created_by: str, now: dt.datetime) -> Archive:
    content, count = await archive_document(session, site, period, start, end, now)
    archive = Archive(site_id=site.id, org_id=site.org_id, period=period, filename=f"bar-{site.slug}-{period}.json",
                      content=content.decode(), sha256=sha256(content), line_count=count, created_at=now,
                      created_by=created_by[:200], prev_hash=head.last_archive_hash, hash="")
    archive.hash = archive_hash(archive)
    session.add(archive)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise BarError(_("L'exercice %(period)s est déjà archivé.", period=period)) from exc
    set_committed_value(head, "last_archive_hash", archive.hash)
    log.info("bar archive %s of %s: %s lines, sha256 %s, by %s", period, site.slug, count, archive.sha256, created_by)
    return archive


# --- what the worker closes by itself ---------------------------------------------------------


async def close_due(session: AsyncSession, site: Site, *, now: dt.datetime | None = None, closed_by: str = "auto") -> int:
    """Days before today, months and fiscal years that are over: closed if they had sales."""
    now = now or utcnow()
    today = local_today(now)
    if not await _anything_due(session, site, today):
        return 0  # the usual answer: no lock taken, the till is not held up
    head = await lock_head(session, site)
    made = 0
    yesterday = today - dt.timedelta(days=1)
    if await _pending_days(session, site, head, yesterday):
        made += len(await close_day(session, site, yesterday, closed_by=closed_by, now=now))
    first = await session.scalar(select(SaleLine.day).where(SaleLine.site_id == site.id).order_by(SaleLine.day).limit(1))
    if first is None:
        return made
    last_month_end = today.replace(day=1) - dt.timedelta(days=1)
    for month in await _months_with_sales(session, site.id, first, last_month_end):
        if not await _closed(session, site.id, TillClosingKind.MONTH, month):
            await _close_month(session, site, head, month, closed_by, now)
            made += 1
    start_month = await _start_month(session, site)
    label = fiscal_year_label(first, start_month)
    while True:
        start, end = fiscal_year_bounds(label, start_month)
        if end >= today:
            break
        if await _months_with_sales(session, site.id, start, end) and not await _closed(session, site.id, TillClosingKind.YEAR, label):
            await close_year(session, site, label, closed_by=closed_by, now=now)
            made += 1
        label = str(int(label) + 1)
    return made


async def _anything_due(session: AsyncSession, site: Site, today: dt.date) -> bool:
    """A day before today still open, or a month or fiscal year over and not closed (read without locking)."""
    head = await session.get(TillHead, site.id)
    if head is None:
        return False
    if await _pending_days(session, site, head, today - dt.timedelta(days=1)):
        return True
    last_closed = await session.scalar(select(TillClosing.end_date).where(
        TillClosing.site_id == site.id, TillClosing.kind == TillClosingKind.MONTH).order_by(TillClosing.end_date.desc()).limit(1))
    first = await session.scalar(select(SaleLine.day).where(SaleLine.site_id == site.id,
                                                            SaleLine.day > (last_closed or dt.date.min))
                                 .order_by(SaleLine.day).limit(1))
    if first is not None and first < today.replace(day=1):
        return True  # a month with sales is over and not closed
    start_month = await _start_month(session, site)
    last_year = await session.scalar(select(TillClosing.end_date).where(
        TillClosing.site_id == site.id, TillClosing.kind == TillClosingKind.YEAR).order_by(TillClosing.end_date.desc()).limit(1))
    first = await session.scalar(select(SaleLine.day).where(SaleLine.site_id == site.id,
                                                            SaleLine.day > (last_year or dt.date.min))
                                 .order_by(SaleLine.day).limit(1))
    return first is not None and fiscal_year_bounds(fiscal_year_label(first, start_month), start_month)[1] < today


def closing_view(closing: TillClosing) -> dict:
    """A closing's JSON fields, read for a page or a command."""
    return {"totals": json.loads(closing.totals), "by_mode": json.loads(closing.by_mode),
            "cancellations": json.loads(closing.cancellations), "period_total": json.loads(closing.period_total),
            "fiscal_year_total": json.loads(closing.fiscal_year_total), "grand_total": json.loads(closing.grand_total)}

