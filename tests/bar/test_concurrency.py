"""PostgreSQL: 50 sale lines rung concurrently while cut-offs run — every line billed exactly once."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import func, select

from funding.bar.models import Batch, BatchLine, SaleLine
from funding.bar.settlement import cut_off
from funding.db import create_engine
from funding.ledger.verify import verify_org
from tests.support.bar import make_bar, sell
from tests.support.db import sealed_sessions
from tests.support.world import make_world

pytestmark = pytest.mark.postgres_only


async def test_fifty_concurrent_sale_lines_and_concurrent_cut_offs_bill_every_line_exactly_once(pg_url):
    engine = create_engine(pg_url)
    sessions = sealed_sessions(engine)
    try:
        world = await make_world(sessions)
        bar = await make_bar(sessions, world, members=5)
        start = asyncio.Event()
        rng = random.Random(6)
        menu = list(bar.products)

        async def ring(n: int):
            await start.wait()
            await asyncio.sleep(rng.random() * 0.3)
            return await sell(sessions, bar, menu[n % len(menu)], member=bar.members[n % 5], limit=10**9)

        async def cut(key: str, delay: float):
            await start.wait()
            await asyncio.sleep(delay)
            return await cut_off(sessions, key=key, site_ids=[world.site_id])

        rings = [asyncio.create_task(ring(n)) for n in range(50)]
        # two workers cut the same period at once, a third a moment later, while lines keep coming
        cuts = [asyncio.create_task(cut("2026-11", 0.1)), asyncio.create_task(cut("2026-11", 0.1)),
                asyncio.create_task(cut("2026-11-bis", 0.2))]
        await asyncio.sleep(0.05)
        start.set()
        lines = await asyncio.gather(*rings)
        made = [batch for batches in await asyncio.gather(*cuts) for batch in batches]
        assert made, "the cut-offs ran while lines were rung and claimed some"
        made += await cut_off(sessions, key="final", site_ids=[world.site_id])  # whatever came after

        async with sessions() as session:
            claims = (await session.execute(select(BatchLine.sale_line_id, BatchLine.batch_id))).all()
            batches = {b.id: b for b in (await session.scalars(select(Batch))).all()}
            per_member_key = (await session.execute(
                select(Batch.member_id, Batch.key, func.count()).group_by(Batch.member_id, Batch.key))).all()
        ids = sorted(line.id for line in lines)
        claimed = sorted(line_id for line_id, _ in claims)
        assert claimed == ids  # every line billed, none twice, none lost
        assert sorted(batches) == sorted(made)
        by_line = {line.id: line for line in lines}
        for batch in batches.values():
            mine = [by_line[line_id] for line_id, batch_id in claims if batch_id == batch.id]
            assert batch.amount == sum(line.amount for line in mine) and batch.line_count == len(mine)
            assert {line.member_id for line in mine} == {batch.member_id}
        assert sum(b.amount for b in batches.values()) == sum(line.amount for line in lines)
        assert all(count == 1 for _, _, count in per_member_key)  # one batch per member and cut-off
        assert sorted(line.seq for line in lines) == list(range(1, 51))
        async with engine.connect() as conn:
            report = await verify_org(conn, world.org_id)
        assert report.ok and report.counts["bar sale lines"] == 50, report.problems
        async with sessions() as session:
            assert await session.scalar(select(func.count(SaleLine.id))) == 50
    finally:
        await engine.dispose()



async def test_a_sale_at_another_site_waits_for_the_members_open_sale_then_sees_the_limit(pg_url):
    """Each site's head serialises its own lines only: the member's row serialises the limit,
    so a sale at Courpière waits for the one being rung at Thiers, then counts it."""
    from funding.bar.catalog import BarError, add_product
    from funding.bar.till import ring_up
    from funding.db import transaction
    from funding.orgs.models import Site
    from tests.support.bar import LIMIT, MENU

    engine = create_engine(pg_url)
    sessions = sealed_sessions(engine)
    try:
        world = await make_world(sessions)
        bar = await make_bar(sessions, world)
        async with transaction(sessions) as session:
            other = await session.get(Site, world.other_site_id)
            name, category, price, rate = next(m for m in MENU if m[0] == "Sandwich")
            elsewhere = (await add_product(session, other, name=name, category=category, price=price, vat_rate=rate)).id
        for _ in range(8):
            await sell(sessions, bar, "Sandwich")  # 44,00 € owed at Thiers
        member = bar.members[0]

        async def at_courpiere():
            async with transaction(sessions) as session:
                site = await session.get(Site, world.other_site_id)
                return await ring_up(session, site, product_id=elsewhere, member_id=member, limit=LIMIT)

        async with transaction(sessions) as session:  # a 5,50 € sale at Thiers, not committed yet
            site = await session.get(Site, world.site_id)
            await ring_up(session, site, product_id=bar.products["Sandwich"], member_id=member, limit=LIMIT)
            other_sale = asyncio.create_task(at_courpiere())
            await asyncio.sleep(0.5)
            assert not other_sale.done()  # waiting on the member, not racing past the limit
        with pytest.raises(BarError, match="Plafond d'ardoise atteint"):
            await other_sale  # 49,50 € + 5,50 € would pass 50 €
        async with sessions() as session:
            owed = await session.scalar(select(func.sum(SaleLine.amount)).where(SaleLine.member_id == member))
        assert owed == 9 * 550
    finally:
        await engine.dispose()
