"""The staff journal a page at a time (issue 19, staff lists): the page's entries picked first on
the narrow sort, the whole list's count and each entry's amount and currency joined to those
only, in one statement; the filters and the organisation wall as before."""

from __future__ import annotations

import datetime as dt

from funding.db import transaction
from funding.ledger.journal import journal_page
from funding.ledger.service import EntryDraft, credit, debit, post
from funding.scoping import OrgScope, set_scope
from tests.support.db import counted
from tests.support.world import gift, make_world, post_gift


async def test_a_page_of_the_journal_is_one_statement_newest_first_with_amounts_and_count(sessions, world):
    for n in range(7):
        await post_gift(sessions, world, key=f"j{n}", amount=1000 * (n + 1), fee=10, day=dt.date(2026, 3, n + 1),
                        site_id=world.other_site_id if n == 3 else None)
    async with transaction(sessions) as session:  # an entry in another currency, on the other site
        await post(session, EntryDraft(org_id=world.org_id, site_id=world.other_site_id, journal="OD",
                                       entry_date=dt.date(2026, 3, 9), label="Don en francs suisses", piece_ref="CHF-1",
                                       funding_source="self", lines=[debit("512", 4200, currency="CHF"),
                                                                     credit("75411", 4200, currency="CHF")]))
    async with sessions() as session:
        with counted(sessions) as sent:
            total, rows = await journal_page(session, offset=2, limit=3)
        assert len(sent) == 1, sent
        assert total == 8
        # newest validated first: the franc gift (8), then 7, 6; this page: 6, 5, 4
        assert [r.number for r in rows] == [6, 5, 4]
        assert [(r.amount, r.currency, r.site_name, r.siren) for r in rows] == [
            (6000, "EUR", "Thiers", world.siren), (5000, "EUR", "Thiers", world.siren),
            (4000, "EUR", "Courpière", world.siren)]
        assert rows[0].label == "Don par carte" and rows[0].journal_code == "ST" and rows[0].piece_ref == "j5"
        assert rows[0].entry_date == dt.date(2026, 3, 6) and rows[0].funding_source == "crowdfunding"
        first = (await journal_page(session, offset=0, limit=1))[1][0]
        assert (first.number, first.amount, first.currency) == (8, 4200, "CHF")
        assert await journal_page(session, site_id=world.other_site_id, offset=0, limit=50) == (
            2, [r for r in (await journal_page(session, offset=0, limit=50))[1] if r.number in (8, 4)])
        dated = await journal_page(session, start=dt.date(2026, 3, 2), end=dt.date(2026, 3, 3), offset=0, limit=50)
        assert [r.number for r in dated[1]] == [3, 2] and dated[0] == 2
        assert (await journal_page(session, source="self", offset=0, limit=50))[0] == 1
        assert (await journal_page(session, org_id=world.org_id + 1000, offset=0, limit=50)) == (0, [])
        assert await journal_page(session, offset=40, limit=3) == (8, [])  # past the end: still counted


async def test_the_journal_stays_behind_the_organisation_wall(sessions, world):
    other = await make_world(sessions, name="Autre association")
    await post_gift(sessions, world, key="mine")
    async with transaction(sessions) as session:
        await post(session, gift(other, key="theirs"))
    async with sessions() as session:
        set_scope(session, OrgScope(frozenset({world.org_id})))
        total, rows = await journal_page(session, offset=0, limit=50)
        assert total == 1 and [r.piece_ref for r in rows] == ["mine"]
