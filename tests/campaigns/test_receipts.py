"""Tax receipts: gifts only, general interest only, one gap-free series per organisation and year."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from funding.campaigns import receipts, settle
from funding.campaigns.models import TaxReceipt
from funding.db import transaction
from funding.mail.models import Email
from funding.orgs.models import Organisation
from tests.support.campaigns import make_campaign, paid_pledge, tiers_of
from tests.support.world import make_world


async def all_receipts(sessions) -> list[TaxReceipt]:
    async with sessions() as session:
        return list((await session.scalars(select(TaxReceipt).order_by(TaxReceipt.id))).all())


async def test_each_paid_gift_gets_the_next_number_and_sales_get_none(sessions, world):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 8000, "kind": "reward", "value": 4500, "vat": 200}])
    (knife,) = await tiers_of(sessions, campaign.id)
    await paid_pledge(sessions, campaign.id, amount="50", name="Ana Martin", address="3 rue Durolle, 63300 Thiers")
    await paid_pledge(sessions, campaign.id, tier=str(knife.id), amount="")  # a sale: no receipt
    third = await paid_pledge(sessions, campaign.id, amount="120,50", name="Paul Mercier", email="paul@example.org")
    found = await all_receipts(sessions)
    assert [(r.number, r.amount, r.donor_name) for r in found] == [(1, 5000, "Ana Martin"), (2, 12050, "Paul Mercier")]
    assert found[0].donor_address == "3 rue Durolle, 63300 Thiers" and found[1].pledge_id == third.id
    async with sessions() as session:
        view = await receipts.view(session, found[1].id)
        mail = await session.scalar(select(Email).where(Email.dedupe_key == f"campaign-pledge:{third.id}:paid"))
    assert view.amount_words == "cent vingt euros et cinquante centimes"
    assert view.code == f"{found[1].year}-000002"
    assert "reçu fiscal n°" in mail.body_text and f"/contributions/{third.access_token}/recu" in mail.body_text


async def test_no_receipt_when_the_organisation_is_not_of_general_interest(sessions, world):
    async with transaction(sessions) as session:
        await session.execute(update(Organisation).where(Organisation.id == world.org_id).values(general_interest=False))
    campaign = await make_campaign(sessions, world)
    await paid_pledge(sessions, campaign.id)
    assert await all_receipts(sessions) == []


async def test_each_organisation_has_its_own_series(sessions, world):
    other = await make_world(sessions, name="Autre association")
    mine = await make_campaign(sessions, world)
    theirs = await make_campaign(sessions, other, slug="theirs")
    await paid_pledge(sessions, mine.id)
    await paid_pledge(sessions, theirs.id)
    await paid_pledge(sessions, mine.id)
    assert [(r.org_id, r.number) for r in await all_receipts(sessions)] == [(world.org_id, 1), (other.org_id, 1), (world.org_id, 2)]


async def test_the_database_refuses_a_gap_a_duplicate_a_change_and_a_deletion_even_as_the_owner(sessions, owner_sessions,
                                                                                                   world):
    campaign = await make_campaign(sessions, world)
    paid = await paid_pledge(sessions, campaign.id)
    (receipt,) = await all_receipts(sessions)
    row = {c: getattr(receipt, c) for c in ("org_id", "year", "pledge_id", "campaign_id", "donor_name", "donor_address",
                                            "donor_email", "amount", "currency", "paid_on", "method", "issued_at")}
    with pytest.raises((DBAPIError, IntegrityError)):
        async with transaction(owner_sessions) as session:
            await session.execute(insert(TaxReceipt).values(**row, number=3, revision=2))
    with pytest.raises((DBAPIError, IntegrityError)):
        async with transaction(owner_sessions) as session:
            await session.execute(insert(TaxReceipt).values(**row, number=1, revision=2))
    with pytest.raises(DBAPIError, match="receipts:"):
        async with transaction(owner_sessions) as session:
            await session.execute(update(TaxReceipt).where(TaxReceipt.id == receipt.id).values(amount=1))
    with pytest.raises(DBAPIError, match="receipts:"):
        async with transaction(owner_sessions) as session:
            await session.execute(delete(TaxReceipt).where(TaxReceipt.id == receipt.id))
    assert [(r.number, r.amount) for r in await all_receipts(sessions)] == [(1, paid.amount)]


async def test_a_refund_voids_the_receipt_and_a_partial_one_reissues_it(sessions, world):
    campaign = await make_campaign(sessions, world)
    paid = await paid_pledge(sessions, campaign.id, amount="100")
    async with transaction(sessions) as session:
        await settle.apply_refund(session, paid.id, 4000)
    first, second = await all_receipts(sessions)
    assert first.voided_at is not None and "remboursement" in first.void_reason
    assert (second.number, second.amount, second.revision, second.voided_at) == (2, 6000, 2, None)
    with pytest.raises(DBAPIError, match="receipts:"):  # voided once, for good
        async with transaction(sessions) as session:
            await session.execute(update(TaxReceipt).where(TaxReceipt.id == first.id).values(void_reason="autre"))
    async with transaction(sessions) as session:
        await settle.apply_refund(session, paid.id, 10000)
    found = await all_receipts(sessions)
    assert len(found) == 2 and all(r.voided_at is not None for r in found)
    async with sessions() as session:
        summary = await receipts.donor_year(session, world.org_id, paid.email, found[0].year)
    assert summary.total == 0 and summary.receipts == []


async def test_the_yearly_summary_adds_up_a_donors_receipts_in_force(sessions, world):
    campaign = await make_campaign(sessions, world)
    other = await make_campaign(sessions, world, slug="autre")
    await paid_pledge(sessions, campaign.id, amount="30", email="jeanne@example.org", name="Jeanne Roux")
    await paid_pledge(sessions, other.id, amount="45,50", email="jeanne@example.org", name="Jeanne Roux")
    await paid_pledge(sessions, campaign.id, amount="10", email="karim@example.org", name="Karim Benali")
    year = (await all_receipts(sessions))[0].year
    async with sessions() as session:
        jeanne = await receipts.donor_year(session, world.org_id, "jeanne@example.org", year)
        donors = await receipts.donors_of_year(session, world.org_id, year)
    assert (jeanne.total, [r.number for r in jeanne.receipts]) == (7550, [1, 2])
    assert donors == [("jeanne@example.org", "Jeanne Roux", 2, 7550), ("karim@example.org", "Karim Benali", 1, 1000)]


async def test_yearly_summaries_are_emailed_once_per_donor(sessions, world, settings):
    from funding.campaigns.summaries import send_year

    campaign = await make_campaign(sessions, world)
    await paid_pledge(sessions, campaign.id, amount="30", email="jeanne@example.org")
    year = (await all_receipts(sessions))[0].year
    for expected in (1, 0):
        async with transaction(sessions) as session:
            assert await send_year(session, settings, year) == expected
    async with sessions() as session:
        mail = await session.scalar(select(Email).where(Email.dedupe_key.like("tax-summary:%")))
    assert mail.to_addr == "jeanne@example.org" and "/recus/annuel/" in mail.body_text and "30,00" in mail.body_text
