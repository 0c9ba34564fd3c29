"""Closings (ACCOUNTING.md §5), their ledger entry, the archive, and `ledger verify` over the till."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from funding.bar.canonical import sha256
from funding.bar.closings import close_day, close_month, close_year, closing_view
from funding.bar.models import TillClosing
from funding.bar.till import BarError, cancel, open_ticket
from funding.db import transaction, utcnow
from funding.ledger.models import Entry, Posting
from funding.ledger.verify import verify_org
from tests.support.bar import make_bar, sell, site_of
from tests.support.cli import funding
from tests.support.tamper import without_triggers

DAY = dt.timedelta(days=1)


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour))  # naive UTC: 13:00 or 14:00 in Paris, same day


async def _close(sessions, world, day=None, now=None):
    async with transaction(sessions) as session:
        return await close_day(session, await site_of(session, world), day, closed_by="Louis", now=now)


async def test_a_day_closing_shows_totals_per_rate_the_cancelling_line_and_running_totals(sessions, world):
    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Café", quantity=2)  # 3,00 at 10 %
    beer = await sell(sessions, bar, "Bière locale")  # 4,50 at 20 %
    await sell(sessions, bar, "Jus de pomme d'Auvergne", member=bar.members[1])  # 3,00 at 5,5 %
    async with transaction(sessions) as session:
        await cancel(session, await site_of(session, world), line_id=beer.id, reason="Erreur : c'était un thé",
                     recorded_by="Louis")
    await sell(sessions, bar, "Thé")  # 2,00 at 10 %
    [closing] = await _close(sessions, world)
    view = closing_view(closing)
    assert view["totals"]["EUR"] == {"100": [500, 455, 45], "200": [0, 0, 0], "55": [300, 284, 16]}
    assert view["period_total"] == {"EUR": 800} and view["grand_total"] == {"EUR": 800}
    assert view["fiscal_year_total"] == {"EUR": 800}
    assert closing.line_count == 5 and closing.cancel_count == 1 and (closing.first_seq, closing.last_seq) == (1, 5)
    [undo] = view["cancellations"]
    assert undo == {"n": 4, "cancels": 2, "label": "Bière locale", "q": -1, "amount": -450, "currency": "EUR",
                    "reason": "Erreur : c'était un thé", "by": "Louis"}
    assert view["by_mode"]["EUR"] == {"tab": 800, "walkin": 0, "cancelled": -450}
    assert closing.prev_hash == "0" * 64 and len(closing.hash) == 64

    async with sessions() as session:
        entry = await session.scalar(select(Entry).where(Entry.source_key == closing.entry_key))
        postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
    assert entry.journal_code == "CA" and entry.funding_source == "self"
    lines = [(p.account_number, p.aux_code is not None, p.amount) for p in postings]
    assert lines == [("411", True, 500), ("411", True, 300), ("707", False, -455), ("445712", False, -45),
                     ("707", False, -284), ("445713", False, -16)]


async def test_walk_in_sales_count_in_the_closing_but_not_in_the_tab_entry(sessions, world):
    bar = await make_bar(sessions, world)
    async with transaction(sessions) as session:
        ticket = await open_ticket(session, await site_of(session, world))
    await sell(sessions, bar, "Sandwich", ticket=ticket.id)
    await sell(sessions, bar, "Café")
    [closing] = await _close(sessions, world)
    assert closing_view(closing)["by_mode"]["EUR"] == {"tab": 150, "walkin": 550, "cancelled": 0}
    async with sessions() as session:
        entry = await session.scalar(select(Entry).where(Entry.source_key == closing.entry_key))
        total = sum(p.amount for p in (await session.scalars(select(Posting).where(Posting.entry_id == entry.id))).all()
                    if p.amount > 0)
    assert total == 150


async def test_closings_chain_and_days_close_in_order(sessions, world):
    bar = await make_bar(sessions, world)
    today = dt.date.today()
    await sell(sessions, bar, "Café")
    first = await _close(sessions, world)
    with pytest.raises(BarError, match="déjà clôturée"):
        await _close(sessions, world, today)
    with pytest.raises(BarError, match="journée future"):
        await _close(sessions, world, today + 7 * DAY)
    tomorrow = today + DAY
    await sell(sessions, bar, "Thé", now=at(tomorrow))  # rung after the closing: next business day
    second = await _close(sessions, world, tomorrow, now=at(tomorrow, 20))
    assert second[-1].prev_hash == first[-1].hash
    assert closing_view(second[-1])["grand_total"] == {"EUR": 350}


async def test_month_and_year_closings_then_a_chained_archive(sessions, world):
    bar = await make_bar(sessions, world)
    year = dt.date.today().year - 2
    days = [dt.date(year, 3, 30), dt.date(year, 3, 31), dt.date(year, 4, 2), dt.date(year + 1, 1, 5)]
    for day in days:
        # a till used in the past: each line rung and its day closed then
        await sell(sessions, bar, "Café", now=at(day))
    await _close(sessions, world, days[1], now=at(days[1], 20))  # closes 30 and 31 March
    async with transaction(sessions) as session:
        site = await site_of(session, world)
        march = await close_month(session, site, f"{year}-03", closed_by="Louis", now=at(days[2], 21))
        with pytest.raises(BarError, match="pas terminé"):
            await close_month(session, site, f"{year}-04", now=at(days[2], 21))
    assert closing_view(march)["period_total"] == {"EUR": 300}
    async with transaction(sessions) as session:
        site = await site_of(session, world)
        year_closing, archive = await close_year(session, site, str(year), closed_by="Louis", now=at(days[3], 21))
    async with sessions() as session:
        kinds = [(c.kind, c.period) for c in (await session.scalars(select(TillClosing).order_by(TillClosing.id))).all()]
    assert kinds == [("day", days[0].isoformat()), ("day", days[1].isoformat()), ("month", f"{year}-03"),
                     ("day", days[2].isoformat()), ("month", f"{year}-04"), ("year", str(year))]
    assert closing_view(year_closing)["fiscal_year_total"] == {"EUR": 450}
    doc = json.loads(archive.content)
    assert [line["seq"] for line in doc["lines"]] == [1, 2, 3] and len(doc["closings"]) == 6
    assert archive.sha256 == sha256(archive.content.encode()) and archive.prev_hash == "0" * 64
    # The next fiscal year's running total starts again; the grand total goes on.
    [jan] = await _close(sessions, world, days[3], now=at(days[3], 22))
    assert closing_view(jan)["fiscal_year_total"] == {"EUR": 150} and closing_view(jan)["grand_total"] == {"EUR": 600}
    async with engine_conn(sessions) as conn:
        report = await verify_org(conn, world.org_id)
    assert report.ok, report.problems
    assert report.counts == {"bar sale lines": 4, "bar closings": 7, "bar archives": 1, "seals": 7}


def engine_conn(sessions):
    return sessions.kw["bind"].connect()


@pytest.mark.parametrize("tamper, expected", [
    ("UPDATE bar_sale_lines SET unit_price = 100, amount = 100 WHERE seq = 2", "bar {slug} sale line 2: hash mismatch"),
    ("DELETE FROM bar_sale_lines WHERE seq = 3", "bar {slug} sale line 4: numbering gap"),
    ("UPDATE bar_closings SET grand_total = replace(grand_total, '4', '5')", "bar {slug} closing day"),
    ("UPDATE bar_archives SET content = content || ' '", "bar {slug} archive"),
])
async def test_a_till_record_altered_behind_the_applications_back_is_caught_by_ledger_verify(
        sessions, world, engine, settings, tamper, expected, owner_engine):
    bar = await make_bar(sessions, world)
    year = dt.date.today().year - 1
    for n in range(4):
        await sell(sessions, bar, "Café", now=at(dt.date(year, 6, 1 + n)))
    async with transaction(sessions) as session:
        await close_year(session, await site_of(session, world), str(year), closed_by="t", now=utcnow())
    async with engine.connect() as conn:
        assert (await verify_org(conn, world.org_id)).ok
    await without_triggers(owner_engine, [tamper])
    expected = expected.format(slug=world.site_slug)
    async with engine.connect() as conn:
        report = await verify_org(conn, world.org_id)
    assert not report.ok and report.problems[0].startswith(expected), report.problems
    result = await funding(settings, "ledger", "verify")
    assert result.exit_code == 1 and "BROKEN" in result.stdout and expected in result.stdout
    assert "Traceback" not in result.stderr


async def test_verify_counts_the_till_when_intact(sessions, world, settings):
    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Café")
    await _close(sessions, world)
    result = await funding(settings, "ledger", "verify")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "1 bar sale lines, 1 bar closings, 0 bar archives" in result.stdout


async def test_the_worker_closes_what_is_due_and_otherwise_leaves_the_till_alone(sessions, world):
    from funding.bar.closings import close_due

    bar = await make_bar(sessions, world)
    today = dt.date.today()
    last_month = (today.replace(day=1) - DAY).replace(day=3)
    await sell(sessions, bar, "Café", now=at(last_month))
    await sell(sessions, bar, "Thé", now=at(today))
    async with transaction(sessions) as session:
        assert await close_due(session, await site_of(session, world)) >= 2
    async with sessions() as session:
        closed = {(c.kind, c.period) for c in (await session.scalars(select(TillClosing))).all()}
    assert ("day", last_month.isoformat()) in closed and ("month", last_month.strftime("%Y-%m")) in closed
    assert ("day", today.isoformat()) not in closed  # the bar is open today
    async with transaction(sessions) as session:
        assert await close_due(session, await site_of(session, world)) == 0
