"""What each tab owes (bar_tabs, migration 0044): kept by the database as lines are rung,
cancelled and claimed by a cut-off, whichever way they are written; read by the tab limit and the
tab's balance in one row whatever the member's history; never written by the service, and
recomputed by ``ledger verify``."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from funding.bar.catalog import add_product
from funding.bar.models import Tab
from funding.bar.settlement import cut_off
from funding.bar.till import cancel, open_ticket, owed_in_org, tab_balance
from funding.db import transaction
from funding.ledger.verify import verify_org
from funding.orgs.models import Site
from funding.orgs.service import create_site
from tests.support.bar import PRICES, make_bar, sell, site_of


async def tabs(sessions) -> dict[tuple[int, int], int]:
    async with sessions() as session:
        return {(t.site_id, t.member_id): t.owed for t in (await session.scalars(select(Tab))).all()}


async def test_a_tab_owes_its_unbilled_lines_through_sales_cancellations_and_cut_offs(sessions, world, engine):
    bar = await make_bar(sessions, world, members=2)
    first, second = bar.members
    async with transaction(sessions) as session:
        other = await create_site(session, org_id=world.org_id, slug="peripherique", name="Tiers-lieu de Courpière")
    coffee = await sell(sessions, bar, "Café", quantity=2)
    await sell(sessions, bar, "Bière locale")
    await sell(sessions, bar, "Sandwich", member=second)
    async with transaction(sessions) as session:  # a mistake, corrected by its mirror image
        await cancel(session, await site_of(session, world), line_id=coffee.id, reason="erreur de saisie")
    async with transaction(sessions) as session:  # a walk-in's ticket is paid on the spot: no tab
        ticket = await open_ticket(session, await site_of(session, world))
    await sell(sessions, bar, "Sandwich", ticket=ticket.id)
    assert await tabs(sessions) == {(world.site_id, first): PRICES["Bière locale"],
                                    (world.site_id, second): PRICES["Sandwich"]}

    await cut_off(sessions, key="2026-12", site_ids=[world.site_id])  # both tabs become batches
    await sell(sessions, bar, "Thé")  # after the cut-off: the next month's tab
    async with transaction(sessions) as session:  # the same member at another site of the organisation
        juice = await add_product(session, await session.get(Site, other.id), name="Jus", category="", price="3,00",
                                  vat_rate="5,5")
    bar.products["Jus"] = juice.id
    await sell(sessions, bar, "Jus", site_id=other.id)

    assert await tabs(sessions) == {(world.site_id, first): PRICES["Thé"], (world.site_id, second): 0,
                                    (other.id, first): 300}
    async with sessions() as session:
        assert await tab_balance(session, world.site_id, first) == PRICES["Thé"]
        assert await tab_balance(session, world.site_id, 999_999) == 0
        assert await owed_in_org(session, world.org_id, first) == PRICES["Thé"] + 300
    async with engine.connect() as conn:
        report = await verify_org(conn, world.org_id)
    assert report.ok, report.problems


async def test_the_service_never_writes_a_tab_and_verify_names_one_that_was_changed(sessions, world, engine, owner_engine,
                                                                                      database_url):
    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Sandwich")
    if database_url.startswith("postgresql"):  # SQLite has no roles: there, only verify stands guard
        for sql in ("UPDATE bar_tabs SET owed = 0", "DELETE FROM bar_tabs",
                    f"INSERT INTO bar_tabs (site_id, member_id, org_id, owed) VALUES ({world.site_id}, "
                    f"{world.users['staff']}, {world.org_id}, -500)"):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with engine.begin() as conn:
                    await conn.execute(text(sql))
    async with owner_engine.begin() as conn:  # past the walls: a restored dump, a hand in the database
        await conn.execute(text("UPDATE bar_tabs SET owed = 0"))
    async with engine.connect() as conn:
        report = await verify_org(conn, world.org_id)
    assert not report.ok
    assert any(f"tab of member {bar.members[0]}: says 0 owed, its unbilled lines come to {PRICES['Sandwich']}" in p
               for p in report.problems), report.problems
