"""The figures a closing stores, computed from the sale lines (also by verify, to check them).

Integer arithmetic only: the VAT of a rate is split from the period's total TTC at that
rate (funding.payments.purposes.split_vat), so a closing, its ledger entry and a
recomputation always agree to the cent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

from sqlalchemy import case, func, select

from funding.bar.models import LineKind, SaleLine
from funding.payments.purposes import split_vat

_L = SaleLine.__table__.c


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def fiscal_year_start(day: dt.date, start_month: int) -> dt.date:
    year = day.year if day.month >= start_month else day.year - 1
    return dt.date(year, start_month, 1)


def fiscal_year_bounds(label: str, start_month: int) -> tuple[dt.date, dt.date]:
    """``"2026"`` → the fiscal year starting in 2026 (1 January, or the organisation's month)."""
    start = dt.date(int(label), start_month, 1)
    end = dt.date(start.year + 1, start_month, 1) - dt.timedelta(days=1)
    return start, end


def fiscal_year_label(day: dt.date, start_month: int) -> str:
    return str(fiscal_year_start(day, start_month).year)


async def sums(conn, site_id: int, start: dt.date | None, end: dt.date, *, upto: dt.datetime | None = None) -> dict[str, int]:
    """Net TTC per currency of the lines dated in [start, end] (from the first line if no start),
    recorded by ``upto`` when given (a day closed before its midnight)."""
    query = select(_L.currency, func.sum(_L.amount)).where(_L.site_id == site_id, _L.day <= end).group_by(_L.currency)
    if start is not None:
        query = query.where(_L.day >= start)
    if upto is not None:
        query = query.where(_L.recorded_at <= upto)
    return {cur: int(total) for cur, total in (await conn.execute(query)).all()}


async def period_figures(conn, site_id: int, start: dt.date, end: dt.date, *, fy_start: dt.date,
                         with_cancellations: bool, after: dt.datetime | None = None,
                         upto: dt.datetime | None = None) -> dict:
    """Everything a closing of [start, end] stores, except its chain fields. A day's closing
    covers that day's lines recorded by its closing (``upto``) and, for a further closing of the
    same day, after the previous one (``after``): lines rung after a closing made before midnight
    still belong to their day."""
    in_period: tuple = (_L.site_id == site_id, _L.day >= start, _L.day <= end)
    if upto is not None:
        in_period += (_L.recorded_at <= upto,)
    if after is not None:
        in_period += (_L.recorded_at > after,)
    rows = (await conn.execute(
        select(_L.currency, _L.vat_rate, func.sum(_L.amount),
               func.sum(case((_L.member_id.is_not(None), _L.amount), else_=0)),
               func.sum(case((_L.kind == LineKind.CANCEL, _L.amount), else_=0)))
        .where(*in_period).group_by(_L.currency, _L.vat_rate))).all()
    totals: dict = defaultdict(dict)
    # "cancelled" is a key of the closings' hashed figures (a file format since the first closing): it stays.
    by_mode: dict = defaultdict(lambda: {"tab": 0, "walkin": 0, "cancelled": 0})
    period_total: dict = defaultdict(int)
    for currency, rate, total, tab, cancelled in rows:
        total, tab, cancelled = int(total), int(tab), int(cancelled)
        base, vat = split_vat(total, rate)
        totals[currency][str(rate)] = [total, base, vat]
        by_mode[currency]["tab"] += tab
        by_mode[currency]["walkin"] += total - tab
        by_mode[currency]["cancelled"] += cancelled
        period_total[currency] += total
    counts = (await conn.execute(
        select(func.count(_L.id), func.coalesce(func.sum(case((_L.kind == LineKind.CANCEL, 1), else_=0)), 0),
               func.min(_L.seq), func.max(_L.seq)).where(*in_period))).one()
    cancellations = []
    if with_cancellations:
        original = SaleLine.__table__.alias("original")
        for row in (await conn.execute(
            select(_L.seq, original.c.seq, _L.label, _L.quantity, _L.amount, _L.currency, _L.reason, _L.recorded_by)
            .join(original, original.c.id == _L.cancels_id).where(*in_period, _L.kind == LineKind.CANCEL).order_by(_L.seq)
        )).all():
            cancellations.append({"n": row[0], "cancels": row[1], "label": row[2], "q": row[3], "amount": row[4],
                                  "currency": row[5], "reason": row[6], "by": row[7]})
    return {
        "line_count": int(counts[0]), "cancel_count": int(counts[1]), "first_seq": counts[2], "last_seq": counts[3],
        "totals": dumps(totals), "by_mode": dumps(by_mode), "cancellations": dumps(cancellations),
        "period_total": dumps(period_total),
        "fiscal_year_total": dumps(await sums(conn, site_id, fy_start, end, upto=upto)),
        "grand_total": dumps(await sums(conn, site_id, None, end, upto=upto)),
    }


def day_bounds(closing, earlier) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(after, upto) of a day's closing: ``earlier`` is the closing of the same day made before
    it (None for the day's first); month and year closings take whole days."""
    if closing.kind != "day":
        return None, None
    return (earlier.closed_at if earlier is not None else None), closing.closed_at
