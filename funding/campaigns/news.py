"""Campaigns that travel: news from the campaign's staff, and reminders before an all-or-nothing deadline.

- **Updates**: staff publish a title and a text (the description's safe formatting); it shows
  on the campaign's page, newest first, and is emailed once to every backer who ticked "send
  me the campaign's news" (one email per address, however many pledges it made; around the
  staff's words, in the backer's language).
- **Reminders**: a visitor of a live all-or-nothing campaign leaves an address to be told 48
  hours before the end (one email, in the language of the page they asked from; asking twice
  changes nothing, and the answer is the same whether or not the address had asked).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns.models import (
    COUNTED,
    Campaign,
    CampaignReminder,
    CampaignStatus,
    CampaignUpdate,
    Mode,
    Pledge,
    PledgeStatus,
)
from funding.db import Sessions, dialect_insert, dialect_of, rowcount, transaction, utcnow
from funding.errors import FundingError
from funding.i18n import gettext as _
from funding.mail.compose import recipient_locales, render
from funding.mail.service import enqueue_many
from funding.settings import Settings

REMIND_BEFORE = dt.timedelta(hours=48)
MAX_TITLE = 200
MAX_BODY = 20_000
# Who hears the news: backers whose contribution counts or was paid (not an abandoned checkout).
NEWS_STATES = (*COUNTED, PledgeStatus.PAID)


def readers(campaign_id: int) -> Select[str]:
    """The addresses that hear a campaign's news, once each."""
    return (select(Pledge.email).where(Pledge.campaign_id == campaign_id, Pledge.wants_updates.is_(True),
                                       Pledge.status.in_(NEWS_STATES)).distinct())


class NewsError(FundingError):
    status = 400


async def publish_update(session: AsyncSession, settings: Settings, campaign: Campaign, *, title: str, body: str,
                         author: str, now: dt.datetime | None = None) -> CampaignUpdate:
    """Publish an update and queue its email to the backers who agreed."""
    title = " ".join((title or "").split())
    body = (body or "").replace("\r\n", "\n").strip()
    if not title:
        raise NewsError(_("Donnez un titre à la nouvelle."))
    if len(title) > MAX_TITLE:
        raise NewsError(_("Le titre est trop long (200 caractères au plus)."))
    if not body:
        raise NewsError(_("Écrivez le texte de la nouvelle."))
    if len(body) > MAX_BODY:
        raise NewsError(_("Le texte est trop long (20 000 caractères au plus)."))
    if campaign.status == CampaignStatus.DRAFT:
        raise NewsError(_("Publiez d'abord la campagne : une nouvelle s'adresse à ses contributeurs."))
    now = now or utcnow()
    addresses = (await session.scalars(readers(campaign.id).order_by(Pledge.email))).all()
    news = CampaignUpdate(campaign_id=campaign.id, title=title, body=body, author=author, published_at=now,
                          recipients=len(addresses))
    session.add(news)
    await session.flush()
    page = f"{settings.base_url}/campagnes/{campaign.slug}#nouvelles"
    locales = await recipient_locales(session, addresses)
    await enqueue_many(session, [{
        "to": email, "dedupe_key": f"campaign-update:{news.id}:{email}", "org_id": campaign.org_id,
        **render("campaigns/update", locales.get(email.lower(), "fr"), campaign=campaign.title, title=title, body=body, url=page),
    } for email in addresses])
    return news


async def updates_of(session: AsyncSession, campaign_id: int, *, limit: int = 20) -> list[CampaignUpdate]:
    return list((await session.scalars(select(CampaignUpdate).where(CampaignUpdate.campaign_id == campaign_id)
                                       .order_by(CampaignUpdate.published_at.desc(), CampaignUpdate.id.desc())
                                       .limit(limit))).all())


def can_remind(campaign: Campaign, now: dt.datetime) -> bool:
    """A reminder still makes sense: a live all-or-nothing campaign more than 48 hours from its end."""
    return (campaign.status == CampaignStatus.LIVE and campaign.mode == Mode.ALL_OR_NOTHING
            and campaign.ends_at - now > REMIND_BEFORE)


async def ask_reminder(session: AsyncSession, campaign: Campaign, email: str, locale: str,
                       now: dt.datetime | None = None) -> None:
    """Remember to remind ``email`` (already checked); asking again changes nothing."""
    now = now or utcnow()
    if not can_remind(campaign, now):
        raise NewsError(_("Cette campagne se termine dans moins de 48 heures : il est temps de contribuer !"))
    insert = dialect_insert(dialect_of(session))
    await session.execute(insert(CampaignReminder.__table__).values(
        campaign_id=campaign.id, email=email, locale=locale, created_at=now).on_conflict_do_nothing(
        index_elements=["campaign_id", "email"]))


async def send_reminders(sessions: Sessions, settings: Settings, gw=None, *, now: dt.datetime | None = None) -> int:
    """The worker's job: queue the reminders of all-or-nothing campaigns ending within 48 hours."""
    now = now or utcnow()
    async with sessions() as session:
        due = (await session.execute(
            select(CampaignReminder.id, CampaignReminder.email, CampaignReminder.locale, Campaign)
            .join(Campaign, Campaign.id == CampaignReminder.campaign_id)
            .where(CampaignReminder.sent_at.is_(None), Campaign.status == CampaignStatus.LIVE,
                   Campaign.ends_at > now, Campaign.ends_at <= now + REMIND_BEFORE)
            .order_by(CampaignReminder.id).limit(500))).all()
    sent = 0
    for reminder_id, email, locale, campaign in due:
        async with transaction(sessions) as session:
            claimed = await session.execute(update(CampaignReminder).where(
                CampaignReminder.id == reminder_id, CampaignReminder.sent_at.is_(None)).values(sent_at=now))
            if rowcount(claimed) != 1:
                continue  # another worker sent it
            page = f"{settings.base_url}/campagnes/{campaign.slug}#contribuer"
            await enqueue_many(session, [{
                "to": email, "dedupe_key": f"campaign-reminder:{reminder_id}", "org_id": campaign.org_id,
                **render("campaigns/reminder", locale, campaign=campaign.title, url=page)}])
            sent += 1
    return sent
