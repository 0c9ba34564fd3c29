"""Campaigns as staff manage them, and the database guards on published terms and statuses."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from funding.campaigns import service
from funding.campaigns.models import Campaign
from funding.campaigns.service import CampaignError, CampaignForm, MatchForm, TierForm
from funding.db import transaction
from tests.support.campaigns import active_pledge, campaign_row, make_campaign


def form(world, **kw) -> CampaignForm:
    today = dt.date.today()
    values = {"site": world.site_slug, "slug": "four-a-pain", "title": "Un four à pain", "description": "Du pain **partagé**.",
              "goal": "6 000", "mode": "keep_it_all", "starts_at": today.isoformat(),
              "ends_at": (today + dt.timedelta(days=30)).isoformat()}
    values.update(kw)
    return CampaignForm(**values)


async def create(sessions, world, **kw) -> Campaign:
    async with transaction(sessions) as session:
        return await service.create_campaign(session, form(world, **kw), created_by="test")


async def test_a_campaign_is_created_as_a_draft_with_amounts_and_paris_dates(sessions, world):
    campaign = await create(sessions, world, starts_at="2026-12-01 09:30", ends_at="2026-12-24")
    assert (campaign.status, campaign.goal, campaign.min_amount, campaign.max_amount) == ("draft", 600_000, 100, 1_000_000)
    assert campaign.starts_at == dt.datetime(2026, 12, 1, 8, 30)  # 09:30 in Paris is 08:30 UTC in winter
    assert campaign.ends_at == dt.datetime(2026, 12, 24, 22, 59)  # the end date lasts until 23:59 in Paris


@pytest.mark.parametrize("changes, message", [
    ({"site": "nowhere"}, "Lieu inconnu"),
    ({"slug": "Pas Bon!"}, "Adresse de campagne invalide"),
    ({"slug": "recus"}, "Adresse de campagne invalide"),
    ({"title": "  "}, "Donnez un titre"),
    ({"goal": "0"}, "L'objectif doit être positif"),
    ({"goal": "six mille"}, "montant invalide"),
    ({"mode": "lottery"}, "Choisissez le mode"),
    ({"starts_at": "2026-13-01"}, "Date invalide"),
    ({"starts_at": "2026-12-10", "ends_at": "2026-12-01"}, "doit venir après son début"),
    ({"starts_at": "2026-01-01", "ends_at": "2026-06-01"}, "au plus 90 jours"),
    ({"min_amount": "0,10"}, "ne peut pas être inférieure à 0,50"),
    ({"min_amount": "50", "max_amount": "10"}, "inférieure à la minimale"),
    ({"currency": "EURO"}, "devise inconnue"),
    ({"image_url": "javascript:alert(1)"}, "Image"),
])
async def test_bad_campaign_input_is_refused_and_creates_nothing(sessions, world, changes, message):
    with pytest.raises(CampaignError, match=message):
        await create(sessions, world, **changes)
    async with sessions() as session:
        assert await session.get(Campaign, 1) is None


async def test_a_slug_is_unique(sessions, world):
    await create(sessions, world)
    with pytest.raises(CampaignError, match="déjà l'adresse"):
        await create(sessions, world)


async def test_a_published_campaign_keeps_its_goal_mode_and_dates_but_its_texts_change(sessions, world):
    campaign = await create(sessions, world)
    async with transaction(sessions) as session:
        await service.publish(session, campaign.id)
    live = form(world, title="Un four à pain pour tous", description="Nouveau texte.")
    async with transaction(sessions) as session:
        updated = await service.update_campaign(session, campaign.id, live)
    assert (updated.title, updated.status) == ("Un four à pain pour tous", "live")
    for change in ({"goal": "7000"}, {"mode": "all_or_nothing"}, {"ends_at": (dt.date.today() + dt.timedelta(days=40)).isoformat()}):
        with pytest.raises(CampaignError, match="ne peuvent plus changer"):
            async with transaction(sessions) as session:
                await service.update_campaign(session, campaign.id, form(world, **change))
    assert (await campaign_row(sessions, campaign.id)).goal == 600_000


@pytest.mark.parametrize("column, value", [("goal", 1), ("mode", "all_or_nothing"), ("currency", "CHF"),
                                           ("ends_at", dt.datetime(2030, 1, 1))])
async def test_the_database_refuses_to_change_the_terms_of_a_published_campaign(sessions, world, column, value):
    campaign = await make_campaign(sessions, world)
    with pytest.raises(DBAPIError, match="campaigns:"):
        async with transaction(sessions) as session:
            await session.execute(update(Campaign).where(Campaign.id == campaign.id).values(**{column: value}))


@pytest.mark.parametrize("start, end", [("live", "draft"), ("succeeded", "live"), ("closed", "failed"), ("draft", "succeeded"),
                                        ("failed", "succeeded")])
async def test_the_database_only_lets_a_status_move_forwards(sessions, world, start, end):
    campaign = await make_campaign(sessions, world, status=start)
    with pytest.raises(DBAPIError, match="campaigns:"):
        async with transaction(sessions) as session:
            await session.execute(update(Campaign).where(Campaign.id == campaign.id).values(status=end))


async def test_publishing_needs_a_description_a_future_end_and_something_to_give(sessions, world):
    empty = await create(sessions, world, slug="vide", description="")
    with pytest.raises(CampaignError, match="Décrivez le projet"):
        async with transaction(sessions) as session:
            await service.publish(session, empty.id)
    tierless = await create(sessions, world, slug="sans-palier")
    async with transaction(sessions) as session:
        await session.execute(update(Campaign).where(Campaign.id == tierless.id).values(free_amount=False))
    with pytest.raises(CampaignError, match="Ajoutez une contrepartie"):
        async with transaction(sessions) as session:
            await service.publish(session, tierless.id)
    async with transaction(sessions) as session:
        await service.add_tier(session, tierless.id, TierForm(title="Merci", amount="10"))
        assert (await service.publish(session, tierless.id)).status == "live"
    with pytest.raises(CampaignError, match="Seul un brouillon"):
        async with transaction(sessions) as session:
            await service.publish(session, tierless.id)


@pytest.mark.parametrize("tier, message", [
    (TierForm(title="", amount="10"), "Donnez un titre"),
    (TierForm(title="X", amount="0,10"), "compris entre"),
    (TierForm(title="X", amount="10", kind="lot"), "Type de contrepartie inconnu"),
    (TierForm(title="X", amount="10", kind="reward"), "Valeur de la récompense"),
    (TierForm(title="X", amount="10", kind="reward", reward_value="5", vat_rate="19,6"), "Taux de TVA inconnu"),
    (TierForm(title="X", amount="10", stock="-3"), "Stock invalide"),
])
async def test_bad_tiers_are_refused(sessions, world, tier, message):
    campaign = await create(sessions, world)
    with pytest.raises(CampaignError, match=message):
        async with transaction(sessions) as session:
            await service.add_tier(session, campaign.id, tier)


async def test_a_match_is_set_before_publication_only(sessions, world):
    campaign = await create(sessions, world)
    good = MatchForm(funder="Thiers Dore et Montagne", funder_siret="20007065300015", reference="TDM-DEL-2026-112",
                     ratio="1:2", cap_per_pledge="50", total_cap="3 000")
    async with transaction(sessions) as session:
        match = await service.set_match(session, campaign.id, good)
    assert (match.ratio_num, match.ratio_den, match.cap_per_pledge, match.total_cap) == (1, 2, 5000, 300_000)
    for bad, message in ((MatchForm(**{**good.__dict__, "ratio": "0:1"}), "Ratio invalide"),
                         (MatchForm(**{**good.__dict__, "funder_siret": "123"}), "SIRET invalide"),
                         (MatchForm(**{**good.__dict__, "reference": ""}), "référence")):
        with pytest.raises(CampaignError, match=message):
            async with transaction(sessions) as session:
                await service.set_match(session, campaign.id, bad)
    async with transaction(sessions) as session:
        await service.publish(session, campaign.id)
    with pytest.raises(CampaignError, match="avant la publication"):
        async with transaction(sessions) as session:
            await service.set_match(session, campaign.id, good)


async def test_a_campaign_closes_only_when_its_money_is_settled(sessions, world):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing", status="live")
    await active_pledge(sessions, campaign.id)
    with pytest.raises(CampaignError, match="terminée"):
        async with transaction(sessions) as session:
            await service.archive(session, campaign.id)
    async with transaction(sessions) as session:
        await session.execute(update(Campaign).where(Campaign.id == campaign.id).values(status="succeeded"))
    with pytest.raises(CampaignError, match="encore en cours de paiement"):
        async with transaction(sessions) as session:
            await service.archive(session, campaign.id)
