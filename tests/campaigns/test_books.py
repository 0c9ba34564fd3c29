"""Campaign money in the books: gifts, presales and their delivery, refunds, the public match."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from funding.campaigns import books
from funding.campaigns.models import CampaignEntry, Match, Pledge
from funding.db import transaction
from funding.ledger.models import Entry, Grant, Posting
from funding.ledger.service import Line
from tests.support.campaigns import (
    active_pledge,
    make_campaign,
    paid_pledge,
    set_status,
    tiers_of,
)


async def lines_of(sessions, source_key: str):
    async with sessions() as session:
        entry = await session.scalar(select(Entry).where(Entry.source_key == source_key))
        if entry is None:
            return None, []
        postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
        return entry, [(p.account_number, p.amount) for p in postings]


async def test_a_gift_is_credited_to_75411_and_a_presale_to_4191_with_its_vat(sessions, world):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 5000, "kind": "reward", "value": 3000, "vat": 200}])
    (tier,) = await tiers_of(sessions, campaign.id)
    gift = await paid_pledge(sessions, campaign.id, amount="50")
    sale = await paid_pledge(sessions, campaign.id, tier=str(tier.id), amount="")
    async with sessions() as session:
        gift_lines = await books.allocate(session, {"pledge_id": str(gift.id)}, 5000, "EUR")
        sale_lines = await books.allocate(session, {"pledge_id": str(sale.id)}, 5000, "EUR")
        refund_lines = await books.allocate(session, {"pledge_id": str(sale.id)}, -1000, "EUR")
        unknown = await books.allocate(session, {"pledge_id": "999999"}, 5000, "EUR")
    assert gift_lines.lines == [Line("75411", -5000, "EUR")]
    assert (gift_lines.funding_source, gift_lines.site_id, gift_lines.org_id) == ("crowdfunding", world.site_id, world.org_id)
    assert "Campagne « Campagne laser »" in gift_lines.label
    assert sale_lines.lines == [Line("4191", -4167, "EUR"), Line("445711", -833, "EUR", label="TVA sur prévente")]  # ACCOUNTING.md §2
    assert refund_lines.lines == [Line("4191", 833, "EUR"), Line("445711", 167, "EUR", label="TVA sur prévente")]
    assert unknown is None


async def test_delivering_a_reward_turns_the_advance_into_a_sale_once(sessions, world):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 5000, "kind": "reward", "value": 3000, "vat": 200}])
    (tier,) = await tiers_of(sessions, campaign.id)
    sale = await paid_pledge(sessions, campaign.id, tier=str(tier.id), amount="")
    gift = await paid_pledge(sessions, campaign.id, amount="20")
    for expected in (1, 0):
        async with transaction(sessions) as session:
            assert await books.deliver(session, [sale.id, gift.id]) == expected
    entry, lines = await lines_of(sessions, f"campaign-pledge:{sale.id}:delivery")
    assert lines == [("4191", 4167), ("707", -4167)]
    assert (entry.journal_code, entry.funding_source, entry.site_id) == ("OD", "crowdfunding", world.site_id)
    async with sessions() as session:
        tag = await session.scalar(select(CampaignEntry).where(CampaignEntry.source_key == entry.source_key))
        delivered = await session.get(Pledge, sale.id)
        after = await books.allocate(session, {"pledge_id": str(sale.id)}, -5000, "EUR")
    assert (tag.campaign_id, tag.kind) == (campaign.id, "delivery")
    assert after.lines[0] == Line("707", 4167, "EUR")  # a refund after delivery reverses the sale
    assert delivered.delivered_at is not None


async def test_the_match_is_booked_as_a_public_grant_capped_at_its_total_once_everything_is_settled(sessions, world):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", goal=5000,
                                   match={"cap": 3000, "total": 4000, "reference": "TDM-DEL-2026-112"})
    first = await active_pledge(sessions, campaign.id, amount="40")
    second = await active_pledge(sessions, campaign.id, amount="25")
    await set_status(sessions, campaign.id, "succeeded")
    async with transaction(sessions) as session:
        assert await books.release_match(session, campaign.id) is None  # the promises are not charged yet
    from funding.campaigns import settle

    async with transaction(sessions) as session:
        await session.execute(update(Pledge).where(Pledge.id.in_([first.id, second.id])).values(status="charging"))
        await settle.mark_paid(session, first.id)
        await settle.mark_paid(session, second.id)
    for expected in (4000, None):
        async with transaction(sessions) as session:
            assert await books.release_match(session, campaign.id) == expected
    entry, lines = await lines_of(sessions, f"campaign:{campaign.id}:match")
    assert lines == [("441", 4000), ("741", -4000)]  # 3000 + 2500 matched, capped at 4000
    assert (entry.funding_source, entry.journal_code, entry.site_id) == ("public", "OD", world.site_id)
    async with sessions() as session:
        grant = await session.get(Grant, entry.grant_id)
        match = await session.scalar(select(Match).where(Match.campaign_id == campaign.id))
    assert (grant.funder_name, grant.reference, grant.amount) == ("Thiers Dore et Montagne", "TDM-DEL-2026-112", 4000)
    assert (match.status, match.released_amount, match.grant_id) == ("released", 4000, grant.id)


async def test_no_match_for_a_campaign_that_did_not_succeed(sessions, world):
    campaign = await make_campaign(sessions, world, match={"cap": 3000, "total": 4000})
    await paid_pledge(sessions, campaign.id)
    await set_status(sessions, campaign.id, "failed")
    async with transaction(sessions) as session:
        assert await books.release_match(session, campaign.id) is None
    assert (await lines_of(sessions, f"campaign:{campaign.id}:match"))[0] is None


async def test_an_entry_for_a_closed_month_is_dated_on_the_first_open_day(sessions, world):
    from funding.ledger.service import close_month

    campaign = await make_campaign(sessions, world, tiers=[{"amount": 5000, "kind": "reward", "value": 3000, "vat": 200}])
    (tier,) = await tiers_of(sessions, campaign.id)
    sale = await paid_pledge(sessions, campaign.id, tier=str(tier.id), amount="")
    last_month = dt.date.today().replace(day=1) - dt.timedelta(days=1)
    async with transaction(sessions) as session:
        await close_month(session, world.org_id, last_month.strftime("%Y-%m"))
    async with transaction(sessions) as session:
        await books.deliver(session, [sale.id], today=last_month)
    entry, lines = await lines_of(sessions, f"campaign-pledge:{sale.id}:delivery")
    assert entry.entry_date == last_month + dt.timedelta(days=1) and lines == [("4191", 4167), ("707", -4167)]
