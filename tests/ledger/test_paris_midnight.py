"""Between Paris midnight and UTC's (23:00-24:00 UTC in winter, 22:00-24:00 in summer) it is
already tomorrow in Thiers: the day's entries are not "in the future", a reversal is dated the
Paris day, and the month that just ended in Paris may be closed. (Seen in the end-to-end tests
at 23:1x UTC on 2026-12-06: every Stripe event of the hour was refused, "date future refusée :
2026-12-07", and retried until UTC's midnight.)"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from funding.db import transaction
from funding.ledger.models import Entry
from funding.ledger.service import LedgerError, close_month, post, reverse
from tests.support.world import gift

LATE = dt.datetime(2026, 12, 31, 23, 30)  # naive UTC, as stored: 00:30 on 1 January 2027 in Paris
NEW_YEAR = dt.date(2027, 1, 1)


async def test_at_paris_midnight_the_paris_day_is_today(sessions, world):
    async with transaction(sessions) as session:  # a payment Stripe dates 1 January (Paris): booked
        posted = (await post(session, gift(world, key="ch_midnight", day=NEW_YEAR), now=LATE)).entries[0]
    with pytest.raises(LedgerError, match="date future refusée : 2027-01-02"):
        async with transaction(sessions) as session:
            await post(session, gift(world, key="ch_tomorrow", day=NEW_YEAR + dt.timedelta(days=1)), now=LATE)
    async with transaction(sessions) as session:  # a reversal made then is dated that Paris day
        mirror = await reverse(session, world.org_id, posted.number, reason="doublon", now=LATE)
    async with sessions() as session:
        assert await session.scalar(select(Entry.entry_date).where(Entry.number == mirror.number)) == NEW_YEAR


async def test_the_month_that_ended_in_paris_may_be_closed_before_utc_midnight(sessions, world):
    async with transaction(sessions) as session:
        await post(session, gift(world, key="ch_december", day=dt.date(2026, 12, 15)), now=LATE)
    async with transaction(sessions) as session:
        closing = await close_month(session, world.org_id, "2026-12", now=LATE)
    assert closing.period == "2026-12"
    with pytest.raises(LedgerError, match="pas terminé"):
        async with transaction(sessions) as session:
            await close_month(session, world.org_id, "2027-01", now=LATE)


@pytest.mark.parametrize("day, refused", [(NEW_YEAR, False), (NEW_YEAR + dt.timedelta(days=1), True)])
async def test_the_database_guard_takes_the_paris_day_of_the_validation(sessions, world, day, refused):
    """Past the service (a draft validated straight in the tables): validated at 23:30 UTC on 31
    December, an entry of 1 January (Paris) stands, one of 2 January is refused."""
    from sqlalchemy import update
    from sqlalchemy.exc import DBAPIError

    from funding.ledger.models import Posting

    async with sessions() as session:
        entry = Entry(org_id=world.org_id, site_id=world.site_id, journal_code="OD", entry_date=day, label="x",
                      piece_ref="x", piece_date=day, funding_source="self")
        session.add(entry)
        await session.flush()
        session.add_all([Posting(entry_id=entry.id, org_id=world.org_id, line_no=n, account_number=account, amount=amount,
                                 currency="EUR") for n, (account, amount) in enumerate((("512", 100), ("706", -100)), start=1)])
        await session.flush()
        validate = update(Entry).where(Entry.id == entry.id).values(number=1, prev_hash="0" * 64, hash="f" * 64,
                                                                      validated_at=LATE)
        if refused:
            with pytest.raises(DBAPIError, match="cannot be validated before its date"):
                await session.execute(validate)
        else:
            await session.execute(validate)


def test_stripe_sync_since_a_day_starts_at_paris_midnight():
    """``funding stripe sync --since 2027-01-01`` takes what Stripe made from 23:00 UTC on 31 December
    (00:00 in Paris; 22:00 UTC in summer), not from UTC's midnight an hour later."""
    from webhooks.cli import day_start

    assert day_start(NEW_YEAR).timestamp() == dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.UTC).timestamp()
    assert day_start(dt.date(2027, 7, 1)).timestamp() == dt.datetime(2027, 6, 30, 22, 0, tzinfo=dt.UTC).timestamp()
