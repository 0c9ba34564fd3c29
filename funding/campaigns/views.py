"""What a campaign page, the API and the widget show, read from the running totals.

Five small indexed reads whatever the number of pledges: the campaign row (totals
included), its site, its match, its tiers and the last names of the wall.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns.models import COUNTED, Campaign, CampaignStatus, Match, Mode, Pledge, PledgeStatus, Tier
from funding.campaigns.pledges import match_total
from funding.db import must_get
from funding.i18n import N_, ngettext
from funding.i18n import gettext as _
from funding.orgs.models import Site

WALL_SIZE = 30
PUBLIC_STATES = (CampaignStatus.LIVE, CampaignStatus.SUCCEEDED, CampaignStatus.FAILED, CampaignStatus.CLOSED)
STATUS_LABELS = {
    CampaignStatus.DRAFT: N_("Brouillon"), CampaignStatus.LIVE: N_("En cours"), CampaignStatus.SUCCEEDED: N_("Réussie"),
    CampaignStatus.FAILED: N_("Objectif non atteint"), CampaignStatus.CLOSED: N_("Terminée"),
}
PLEDGE_LABELS = {
    PledgeStatus.PENDING: N_("en attente de paiement"), PledgeStatus.ACTIVE: N_("carte enregistrée"),
    PledgeStatus.CHARGING: N_("paiement en cours"), PledgeStatus.ACTION_REQUIRED: N_("authentification demandée"),
    PledgeStatus.CARD_DECLINED: N_("carte refusée"), PledgeStatus.RETRY: N_("nouvelle carte à débiter"),
    PledgeStatus.PAID: N_("payée"), PledgeStatus.FAILED: N_("échouée"), PledgeStatus.CANCELED: N_("annulée"),
    PledgeStatus.EXPIRED: N_("abandonnée"), PledgeStatus.VOID: N_("non débitée (objectif manqué)"),
}
MODE_LABELS = {Mode.ALL_OR_NOTHING: N_("Tout ou rien"), Mode.KEEP_IT_ALL: N_("Tout reste acquis")}


@dataclass
class Progress:
    crowd: int
    match: int
    goal: int
    currency: str
    backers: int

    @property
    def total(self) -> int:
        return self.crowd + self.match

    @property
    def percent(self) -> int:
        """Whole percent of the goal reached (may exceed 100)."""
        return self.total * 100 // self.goal if self.goal else 0

    @property
    def crowd_width(self) -> int:
        return min(100, self.crowd * 100 // self.goal) if self.goal else 0

    @property
    def match_width(self) -> int:
        return min(100 - self.crowd_width, self.match * 100 // self.goal) if self.goal else 0


def progress_of(campaign: Campaign, match: Match | None) -> Progress:
    return Progress(campaign.crowd_total, match_total(campaign, match), campaign.goal, campaign.currency, campaign.backers_count)


def time_left(campaign: Campaign, now: dt.datetime) -> str:
    if campaign.status != CampaignStatus.LIVE or now >= campaign.ends_at:
        return _("Campagne terminée")
    if now < campaign.starts_at:
        days = (campaign.starts_at - now).days
        return ngettext("Ouvre demain", "Ouvre dans %(num)s jours", max(days, 1)) if days >= 1 else _("Ouvre aujourd'hui")
    left = campaign.ends_at - now
    if left.days >= 1:
        return ngettext("Plus qu'un jour", "Plus que %(num)s jours", left.days)
    hours = left.seconds // 3600
    if hours >= 1:
        return ngettext("Plus qu'une heure", "Plus que %(num)s heures", hours)
    return _("Moins d'une heure pour contribuer")


@dataclass
class TierView:
    tier: Tier
    sold_out: bool


@dataclass
class PublicCampaign:
    campaign: Campaign
    site: Site
    match: Match | None
    tiers: list[TierView]
    progress: Progress
    open: bool
    time_left: str


async def load(session: AsyncSession, slug: str, now: dt.datetime, *,
               include_draft: Callable[[int], bool] = lambda org_id: False) -> PublicCampaign | None:
    """The campaign's public page; a draft only for whom ``include_draft(its org_id)`` allows."""
    campaign = await session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None or (campaign.status == CampaignStatus.DRAFT and not include_draft(campaign.org_id)):
        return None
    site = await must_get(session, Site, campaign.site_id)
    match = await session.scalar(select(Match).where(Match.campaign_id == campaign.id))
    tiers = (await session.scalars(select(Tier).where(Tier.campaign_id == campaign.id, Tier.active)
                                   .order_by(Tier.position, Tier.id))).all()
    is_open = campaign.status == CampaignStatus.LIVE and campaign.starts_at <= now < campaign.ends_at
    return PublicCampaign(campaign, site, match, [TierView(t, t.remaining == 0) for t in tiers], progress_of(campaign, match),
                          is_open, time_left(campaign, now))


async def wall(session: AsyncSession, campaign_id: int, limit: int = WALL_SIZE) -> list[tuple[str | None, str, dt.datetime]]:
    """The latest backers: (public name or None when anonymous, message, date)."""
    rows = (await session.execute(
        select(Pledge.public_name, Pledge.message, Pledge.created_at)
        .where(Pledge.campaign_id == campaign_id, Pledge.status.in_(COUNTED))
        .order_by(Pledge.id.desc()).limit(limit)
    )).all()
    return [(r.public_name, r.message, r.created_at) for r in rows]


async def public_list(session: AsyncSession) -> list[tuple[Campaign, Site, Progress]]:
    rows = (await session.execute(
        select(Campaign, Site).join(Site, Site.id == Campaign.site_id).where(Campaign.status.in_(PUBLIC_STATES))
        .order_by((Campaign.status == CampaignStatus.LIVE).desc(), Campaign.ends_at.desc()).limit(100)
    )).all()
    matches = {m.campaign_id: m for m in (await session.scalars(
        select(Match).where(Match.campaign_id.in_([c.id for c, _s in rows])))).all()} if rows else {}
    return [(c, s, progress_of(c, matches.get(c.id))) for c, s in rows]


# --- the staff list of a campaign's pledges --------------------------------------------------


class PledgeRow(NamedTuple):
    """What the owner's view shows of a pledge, read as columns (the list is read-only)."""

    id: int
    created_at: dt.datetime
    name: str
    amount: int
    currency: str
    amount_refunded: int
    tier_title: str | None
    nature: str
    status: str


_PLEDGE_PAGE = (select(Pledge.id, Pledge.created_at, Pledge.name, Pledge.amount, Pledge.currency, Pledge.amount_refunded,
                       Tier.title, Pledge.nature, Pledge.status)
                .outerjoin(Tier, Tier.id == Pledge.tier_id).where(Pledge.campaign_id == bindparam("campaign_id"))
                .order_by(Pledge.id.desc()).limit(bindparam("limit")))
_OLDER_PAGE = _PLEDGE_PAGE.where(Pledge.id < bindparam("before"))


async def pledge_page(session: AsyncSession, campaign_id: int, *, before: int | None = None,
                      limit: int = 50) -> tuple[list[PledgeRow], int | None]:
    """A campaign's pledges, newest first, ``limit`` of them older than ``before`` (keyset on the
    campaign's index of pledges: as fast at the last page as at the first), with their tier's title, in
    one statement; and the id to ask the next (older) page from, when there is one."""
    params = {"campaign_id": campaign_id, "limit": limit + 1, **({"before": before} if before is not None else {})}
    found = [PledgeRow(*row) for row in await session.execute(_PLEDGE_PAGE if before is None else _OLDER_PAGE, params)]
    return found[:limit], (found[limit - 1].id if len(found) > limit else None)
