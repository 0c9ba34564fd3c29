"""Issue 17: closing the bar's day at noon filed the afternoon's sales under tomorrow. A day's
closing covers that Paris day's lines up to the closing; later lines still belong to the same
day until midnight in Paris, and a further closing of that day covers them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from funding.bar.closings import close_day, close_due, closing_view
from funding.bar.models import TillClosing
from funding.db import transaction
from funding.ledger.models import Entry, Posting
from funding.ledger.verify import verify_org
from tests.support.bar import make_bar, sell, site_of

DAY = dt.timedelta(days=1)


def paris(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """Naive UTC of ``hour`` in Paris on ``day`` (a winter day: UTC+1)."""
    return dt.datetime.combine(day, dt.time(hour, minute)) - dt.timedelta(hours=1)


async def test_the_afternoon_after_a_noon_closing_stays_on_its_day_and_is_closed_with_it(sessions, world, engine):
    bar = await make_bar(sessions, world)
    day = dt.date(dt.date.today().year - 1, 12, 10)
    await sell(sessions, bar, "Café", now=paris(day, 10))
    async with transaction(sessions) as session:
        [noon] = await close_day(session, await site_of(session, world), day, closed_by="Louis", now=paris(day, 12))
    afternoon = await sell(sessions, bar, "Thé", now=paris(day, 15))
    late = await sell(sessions, bar, "Café", now=paris(day, 23, 30))
    assert afternoon.day == day and late.day == day  # not tomorrow
    tomorrow = await sell(sessions, bar, "Thé", now=paris(day + DAY, 0, 30))
    assert tomorrow.day == day + DAY

    # The worker, after midnight: the rest of the day gets its closing; tomorrow stays open.
    async with transaction(sessions) as session:
        assert await close_due(session, await site_of(session, world), now=paris(day + DAY, 1)) >= 1
    async with sessions() as session:
        days = (await session.scalars(select(TillClosing).where(TillClosing.kind == "day").order_by(TillClosing.id))).all()
    assert [c.start_date for c in days] == [day, day]
    first, rest = days
    assert first.id == noon.id and (first.line_count, first.last_seq) == (1, 1)
    assert (rest.line_count, rest.first_seq, rest.last_seq) == (2, 2, 3)
    assert closing_view(first)["period_total"] == {"EUR": 150}
    assert closing_view(rest)["period_total"] == {"EUR": 350} and closing_view(rest)["grand_total"] == {"EUR": 500}

    # Each closing booked its own tab sales, once.
    async with sessions() as session:
        entries = (await session.scalars(select(Entry).where(Entry.journal_code == "CA").order_by(Entry.id))).all()
        totals = [sum(p.amount for p in (await session.scalars(select(Posting).where(Posting.entry_id == e.id))).all()
                      if p.amount > 0) for e in entries]
    assert totals == [150, 350] and all(e.entry_date == day for e in entries)

    async with engine.connect() as conn:
        report = await verify_org(conn, world.org_id)
    assert report.ok, report.problems


async def test_closing_the_day_twice_without_new_sales_is_still_refused(sessions, world):
    import pytest

    from funding.bar.till import BarError

    bar = await make_bar(sessions, world)
    day = dt.date(dt.date.today().year - 1, 12, 11)
    await sell(sessions, bar, "Café", now=paris(day, 10))
    async with transaction(sessions) as session:
        await close_day(session, await site_of(session, world), day, now=paris(day, 12))
    async with transaction(sessions) as session:
        with pytest.raises(BarError, match="déjà clôturée"):
            await close_day(session, await site_of(session, world), day, now=paris(day, 13))
