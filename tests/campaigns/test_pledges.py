"""Contributions: what is refused (and then nothing changes), gift or sale, stock, running totals."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from funding.campaigns import settle
from funding.campaigns.models import Campaign, Pledge, Tier
from funding.campaigns.pledges import ContributionError, is_sale, match_share, move
from funding.db import transaction
from funding.orgs.models import Organisation
from tests.support.campaigns import (
    active_pledge,
    campaign_row,
    make_campaign,
    paid_pledge,
    pledge,
    pledge_row,
    set_status,
    tiers_of,
)


async def _counts(sessions, campaign_id):
    async with sessions() as session:
        pledges = await session.scalar(select(func.count(Pledge.id)).where(Pledge.campaign_id == campaign_id))
        remaining = (await session.scalars(select(Tier.remaining).where(Tier.campaign_id == campaign_id).order_by(Tier.position))).all()
    return pledges, list(remaining)


@pytest.mark.parametrize("amount, value, sale", [(5000, 1250, False), (5000, 1251, True), (40000, 7300, False),
                                                   (40000, 7301, True), (2000, 0, False)])
def test_a_reward_above_the_gift_tolerance_makes_a_sale(amount, value, sale):
    tier = Tier(kind="reward", reward_value=value, amount=amount)
    assert is_sale(amount, tier) is sale  # 25 % of the gift, and at most 73 €
    assert is_sale(amount, Tier(kind="gift", reward_value=value, amount=amount)) is False


def test_the_match_share_follows_the_ratio_and_the_cap_per_contribution():
    from funding.campaigns.models import Match

    match = Match(ratio_num=1, ratio_den=2, cap_per_pledge=3000, total_cap=100_000, status="pledged")
    assert match_share(5000, match) == 2500
    assert match_share(10_000, match) == 3000
    assert match_share(5000, None) == 0


async def test_bad_contributions_are_refused_with_a_clear_message_and_change_nothing(sessions, world):
    campaign = await make_campaign(sessions, world, tiers=[{"title": "Couteau", "amount": 8000, "kind": "reward", "value": 4500,
                                                            "vat": 200, "stock": 1}], min_amount=500, max_amount=50_000)
    other = await make_campaign(sessions, world, slug="other", tiers=[{"amount": 1000}])
    draft = await make_campaign(sessions, world, slug="draft", status="draft")
    over = await make_campaign(sessions, world, slug="over", status="succeeded")
    (tier,) = await tiers_of(sessions, campaign.id)
    (foreign,) = await tiers_of(sessions, other.id)
    await pledge(sessions, campaign.id, tier=str(tier.id), amount="")  # takes the last unit
    before = await _counts(sessions, campaign.id)

    cases = [
        (campaign.id, {"amount": "4,99"}, "La contribution minimale est de 5,00"),
        (campaign.id, {"amount": "500,01"}, "Au-delà de 500,00"),
        (campaign.id, {"amount": "cinquante"}, "Montant invalide"),
        (campaign.id, {"amount": "-20"}, "Montant invalide"),
        (campaign.id, {"amount": "20", "tier": str(tier.id)}, "Cette contrepartie demande au moins 80,00"),
        (campaign.id, {"amount": "", "tier": str(tier.id)}, "épuisée"),
        (campaign.id, {"amount": "90", "tier": str(foreign.id)}, "n'existe pas pour cette campagne"),
        (campaign.id, {"amount": "90", "tier": "1 OR 1=1"}, "n'existe pas pour cette campagne"),
        (campaign.id, {"amount": "90", "tier": "99999999999999999999999"}, "n'existe pas pour cette campagne"),
        (campaign.id, {"amount": "20", "name": ""}, "Indiquez votre nom"),
        (campaign.id, {"amount": "20", "email": "pas-un-email"}, "e-mail invalide"),
        (campaign.id, {"amount": "20", "email": "mallory@example.org,eve"}, "une seule adresse"),
        (campaign.id, {"amount": "20", "message": "x" * 281}, "trop long"),
        (draft.id, {"amount": "20"}, "pas encore publiée"),
        (over.id, {"amount": "20"}, "Cette campagne est terminée"),
    ]
    for campaign_id, data, message in cases:
        fields = {"amount": "20", "name": "Léa Vidal", "email": "lea@example.org", **data}
        with pytest.raises(ContributionError, match=message):
            await pledge(sessions, campaign_id, **fields)
    from funding.campaigns.pledges import Contribution, create_pledge

    with pytest.raises(ContributionError, match="EUR uniquement"):
        async with transaction(sessions) as session:
            await create_pledge(session, campaign.id, Contribution(amount="20", currency="USD", name="A", email="a@example.org"),
                                secret_key="k" * 20, link_base="http://x")
    assert await _counts(sessions, campaign.id) == before
    assert await _counts(sessions, draft.id) == (0, [])


async def test_a_tier_only_campaign_wants_a_tier_and_a_tier_alone_sets_the_amount(sessions, world):
    campaign = await make_campaign(sessions, world, free_amount=False, tiers=[{"amount": 2500}])
    with pytest.raises(ContributionError, match="Choisissez une contrepartie"):
        await pledge(sessions, campaign.id, amount="30")
    (tier,) = await tiers_of(sessions, campaign.id)
    made = await pledge(sessions, campaign.id, tier=str(tier.id), amount="")
    more = await pledge(sessions, campaign.id, tier=str(tier.id), amount="40")
    assert (made.amount, more.amount) == (2500, 4000)


async def test_gift_or_sale_and_vat_are_decided_when_the_pledge_is_made(sessions, world):
    campaign = await make_campaign(sessions, world, tiers=[
        {"title": "Porte-clés", "amount": 2500, "kind": "reward", "value": 500, "vat": 200},
        {"title": "Couteau", "amount": 8000, "kind": "reward", "value": 4500, "vat": 200},
    ], match={"cap": 5000, "total": 300_000})
    keyring, knife = await tiers_of(sessions, campaign.id)
    gift = await pledge(sessions, campaign.id, tier=str(keyring.id), amount="")
    sale = await pledge(sessions, campaign.id, tier=str(knife.id), amount="")
    generous = await pledge(sessions, campaign.id, tier=str(knife.id), amount="200")  # 45 € ≤ 25 % of 200 €
    assert (gift.nature, gift.vat_per_mille, gift.match_amount) == ("gift", 0, 2500)
    assert (sale.nature, sale.vat_per_mille, sale.match_amount) == ("sale", 200, 5000)
    assert (generous.nature, generous.match_amount) == ("gift", 5000)
    async with transaction(sessions) as session:
        await session.execute(update(Organisation).where(Organisation.id == world.org_id).values(vat_liable=False))
    untaxed = await pledge(sessions, campaign.id, tier=str(knife.id), amount="")
    assert (untaxed.nature, untaxed.vat_per_mille) == ("sale", 0)


async def test_totals_move_with_each_transition_once(sessions, world):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 1000, "stock": 5}], match={"cap": 2000, "total": 2500})
    (tier,) = await tiers_of(sessions, campaign.id)
    first = await pledge(sessions, campaign.id, tier=str(tier.id), amount="30")
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.backers_count, row.match_uncapped) == (0, 0, 0)  # pending counts for nothing
    assert (await tiers_of(sessions, campaign.id))[0].remaining == 4  # but holds its unit

    for _ in range(2):  # the webhook and the return page both settle it
        async with transaction(sessions) as session:
            await settle.mark_paid(session, first.id)
    await paid_pledge(sessions, campaign.id, amount="15")
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.collected_total, row.backers_count, row.match_uncapped) == (4500, 4500, 2, 3500)
    (tier,) = await tiers_of(sessions, campaign.id)
    assert (tier.remaining, tier.backers_count) == (4, 1)

    from funding.campaigns.models import Match
    from funding.campaigns.pledges import match_total

    async with sessions() as session:
        match = await session.scalar(select(Match).where(Match.campaign_id == campaign.id))
    assert match_total(row, match) == 2500  # capped at the total

    abandoned = await pledge(sessions, campaign.id, tier=str(tier.id), amount="10")
    async with transaction(sessions) as session:
        assert await settle.expire(session, abandoned.id, "test") is not None
        assert await settle.expire(session, abandoned.id, "test") is None
    assert (await tiers_of(sessions, campaign.id))[0].remaining == 4


async def test_a_refund_brings_the_totals_and_the_match_share_down(sessions, world):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 1000}], match={"cap": 10_000, "total": 100_000})
    (tier,) = await tiers_of(sessions, campaign.id)
    paid = await paid_pledge(sessions, campaign.id, tier=str(tier.id), amount="60")
    async with transaction(sessions) as session:
        assert await settle.apply_refund(session, paid.id, 2000) == 2000
        assert await settle.apply_refund(session, paid.id, 2000) == 0  # the same refund seen again
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.collected_total, row.match_uncapped, row.backers_count) == (4000, 4000, 4000, 1)
    async with transaction(sessions) as session:
        await settle.apply_refund(session, paid.id, 6000)
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.collected_total, row.match_uncapped, row.backers_count) == (0, 0, 0, 0)
    assert (await tiers_of(sessions, campaign.id))[0].backers_count == 0
    assert (await pledge_row(sessions, paid.id)).amount_refunded == 6000


async def test_an_all_or_nothing_promise_counts_when_its_card_is_saved_and_can_be_withdrawn(sessions, world):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", tiers=[{"amount": 2000, "stock": 3}])
    (tier,) = await tiers_of(sessions, campaign.id)
    promise = await active_pledge(sessions, campaign.id, tier=str(tier.id), amount="")
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.collected_total, row.backers_count) == (2000, 0, 1)
    async with transaction(sessions) as session:
        assert await settle.cancel(session, promise.id) is not None
        assert await settle.cancel(session, promise.id) is None
    row = await campaign_row(sessions, campaign.id)
    assert (row.crowd_total, row.backers_count) == (0, 0)
    assert (await tiers_of(sessions, campaign.id))[0].remaining == 3


async def test_a_promise_cannot_be_withdrawn_after_the_deadline_or_on_keep_it_all(sessions, world):
    kia = await make_campaign(sessions, world, slug="kia")
    aon = await make_campaign(sessions, world, slug="aon", mode="all_or_nothing")
    paid = await paid_pledge(sessions, kia.id)
    promise = await active_pledge(sessions, aon.id)
    await set_status(sessions, aon.id, "succeeded")
    async with transaction(sessions) as session:
        assert await settle.cancel(session, paid.id) is None
        assert await settle.cancel(session, promise.id) is None
    assert (await pledge_row(sessions, promise.id)).status == "active"


async def test_a_transition_from_mixed_counted_and_uncounted_states_is_a_programming_error(sessions, world):
    campaign = await make_campaign(sessions, world)
    made = await pledge(sessions, campaign.id)
    with pytest.raises(ValueError):
        async with transaction(sessions) as session:
            await move(session, made.id, ("pending", "active"), "canceled")


async def test_a_payment_after_expiry_is_counted_and_takes_its_unit_back_if_any(sessions, world):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 1000, "stock": 1}])
    (tier,) = await tiers_of(sessions, campaign.id)
    late = await pledge(sessions, campaign.id, tier=str(tier.id), amount="")
    async with transaction(sessions) as session:
        await settle.expire(session, late.id, "test")
        await settle.mark_paid(session, late.id)
    assert (await pledge_row(sessions, late.id)).status == "paid"
    (tier,) = await tiers_of(sessions, campaign.id)
    assert (tier.remaining, tier.backers_count) == (0, 1)
    assert (await campaign_row(sessions, campaign.id)).crowd_total == 1000


async def test_the_campaign_row_refuses_negative_totals(sessions, world):
    campaign = await make_campaign(sessions, world)
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        async with transaction(sessions) as session:
            await session.execute(update(Campaign).where(Campaign.id == campaign.id).values(crowd_total=-1))
