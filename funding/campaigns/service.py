"""Campaigns as staff manage them: create, edit, tiers, public match, publish, archive.

Used by the admin pages and the command line alike; messages are for a person. A
published campaign keeps its goal, mode, currency and dates (the database refuses it
too). Importing this module registers the ``pledge`` payment purpose and its paid hook.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import overload

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns import backers as _backers  # noqa: F401  (lets backers log in to their space)
from funding.campaigns import books, settle
from funding.campaigns import receipt_pdf as _receipt_pdf  # noqa: F401  (registers the PDF attachment of receipts)
from funding.campaigns.models import MODES, Campaign, CampaignStatus, Match, MatchStatus, Pledge, Tier, TierKind
from funding.campaigns.pledges import lock_campaign
from funding.clock import PARIS
from funding.db import digits, rowcount, utcnow
from funding.errors import FundingError
from funding.i18n import gettext as _
from funding.i18n import money
from funding.ledger.models import Grant
from funding.money import MoneyError, check_currency, parse_amount
from funding.orgs.models import Site
from funding.orgs.service import OrgError, check_siret
from funding.payments import purposes
from funding.payments.service import on_paid

VAT_CHOICES = {"0": 0, "5,5": 55, "5.5": 55, "10": 100, "20": 200}
SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?")
MIN_CHARGE = 50  # Stripe's smallest card payment in euros: 0,50 €
RESERVED_SLUGS = {"new", "recus"}  # admin paths


class CampaignError(FundingError):
    """A refused change to a campaign; the message is for a person."""


# --- parsing what people type ------------------------------------------------------


def parse_moment(text: str, *, end_of_day: bool = False) -> dt.datetime:
    """``2026-12-24T18:00``, ``2026-12-24 18:00``, ``2026-12-24`` or ``24/12/2026`` in Paris time → naive UTC."""
    raw = (text or "").strip()
    value = None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M"):
        try:
            value = dt.datetime.strptime(raw, fmt)
            break
        except ValueError:
            pass
    if value is None:
        for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                day = dt.datetime.strptime(raw, fmt)
                value = day.replace(hour=23, minute=59) if end_of_day else day
                break
            except ValueError:
                pass
    if value is None:
        raise CampaignError(_("Date invalide : %(value)s (AAAA-MM-JJ ou AAAA-MM-JJ HH:MM)", value=raw or _("(vide)")))
    return value.replace(tzinfo=PARIS).astimezone(dt.UTC).replace(tzinfo=None)


@overload
def local(moment: dt.datetime) -> dt.datetime: ...
@overload
def local(moment: dt.datetime | None) -> dt.datetime | None: ...
def local(moment: dt.datetime | None) -> dt.datetime | None:
    """A stored naive-UTC moment in Paris time (naive), for forms and pages."""
    return moment.replace(tzinfo=dt.UTC).astimezone(PARIS).replace(tzinfo=None) if moment else None


def _amount(text: str, currency: str, what: str) -> int:
    try:
        value = parse_amount(text, currency)
    except MoneyError:
        raise CampaignError(_("%(what)s : montant invalide (%(value)s)", what=what, value=(text or "").strip() or _("(vide)"))) from None
    return value


def check_slug(value: str) -> str:
    slug = (value or "").strip().lower()
    if not SLUG_RE.fullmatch(slug) or slug in RESERVED_SLUGS:
        raise CampaignError(_("Adresse de campagne invalide : %(value)s (lettres minuscules, chiffres et tirets)",
                              value=value or _("(vide)")))
    return slug


def check_image(value: str) -> str | None:
    url = (value or "").strip()
    if not url:
        return None
    if len(url) > 500 or not re.fullmatch(r"(https://|/static/|/media/)[^\s\"'<>]+", url):
        raise CampaignError(_("Image : indiquez une adresse https:// (ou /static/…)."))
    return url


@dataclass
class CampaignForm:
    """A campaign as typed (form fields or command-line options)."""

    site: str = ""
    slug: str = ""
    title: str = ""
    summary: str = ""
    description: str = ""
    image_url: str = ""
    goal: str = ""
    currency: str = "EUR"
    mode: str = ""
    starts_at: str = ""
    ends_at: str = ""
    min_amount: str = ""
    max_amount: str = ""
    free_amount: bool = True


def _texts(form: CampaignForm) -> dict:
    title = " ".join((form.title or "").split())
    if not title:
        raise CampaignError(_("Donnez un titre à la campagne."))
    if len(title) > 200:
        raise CampaignError(_("Le titre est trop long (200 caractères au plus)."))
    summary = " ".join((form.summary or "").split())
    if len(summary) > 300:
        raise CampaignError(_("Le résumé est trop long (300 caractères au plus)."))
    description = (form.description or "").replace("\r\n", "\n")
    if len(description) > 20_000:
        raise CampaignError(_("La description est trop longue (20 000 caractères au plus)."))
    return {"title": title, "summary": summary, "description": description, "image_url": check_image(form.image_url)}


def _terms(form: CampaignForm) -> dict:
    try:
        currency = check_currency(form.currency or "EUR")
    except MoneyError as exc:
        raise CampaignError(str(exc)) from None
    if form.mode not in MODES:
        raise CampaignError(_("Choisissez le mode : tout ou rien, ou tout reste acquis."))
    goal = _amount(form.goal, currency, _("Objectif"))
    if goal <= 0:
        raise CampaignError(_("L'objectif doit être positif."))
    starts, ends = parse_moment(form.starts_at), parse_moment(form.ends_at, end_of_day=True)
    if ends <= starts:
        raise CampaignError(_("La fin de la campagne doit venir après son début."))
    if ends - starts > dt.timedelta(days=90):
        raise CampaignError(_("Une campagne dure au plus 90 jours."))
    minimum = _amount(form.min_amount, currency, _("Contribution minimale")) if (form.min_amount or "").strip() else 100
    maximum = _amount(form.max_amount, currency, _("Contribution maximale")) if (form.max_amount or "").strip() else 1_000_000
    if minimum < MIN_CHARGE:
        raise CampaignError(_("La contribution minimale ne peut pas être inférieure à %(min)s.", min=money(MIN_CHARGE, currency)))
    if maximum < minimum:
        raise CampaignError(_("La contribution maximale est inférieure à la minimale."))
    return {"goal": goal, "currency": currency, "mode": form.mode, "starts_at": starts, "ends_at": ends,
            "min_amount": minimum, "max_amount": maximum, "free_amount": bool(form.free_amount)}


async def create_campaign(session: AsyncSession, form: CampaignForm, *, created_by: str = "") -> Campaign:
    site = await session.scalar(select(Site).where(Site.slug == (form.site or "").strip().lower()))
    if site is None:
        raise CampaignError(_("Lieu inconnu : %(value)s", value=form.site or _("(vide)")))
    slug = check_slug(form.slug)
    values = {**_texts(form), **_terms(form)}
    if await session.scalar(select(Campaign.id).where(Campaign.slug == slug)):
        raise CampaignError(_("Une campagne utilise déjà l'adresse %(slug)s.", slug=slug))
    campaign = Campaign(org_id=site.org_id, site_id=site.id, slug=slug, status=CampaignStatus.DRAFT, created_by=created_by, **values)
    session.add(campaign)
    try:
        await session.flush()
    except IntegrityError:
        raise CampaignError(_("Une campagne utilise déjà l'adresse %(slug)s.", slug=slug)) from None
    return campaign


async def update_campaign(session: AsyncSession, campaign_id: int, form: CampaignForm) -> Campaign:
    """A draft changes freely; a published campaign only its texts and image."""
    campaign = await lock_campaign(session, campaign_id)
    if campaign.status == CampaignStatus.CLOSED:
        raise CampaignError(_("Cette campagne est close : elle ne change plus."))
    values = _texts(form)
    if campaign.status == CampaignStatus.DRAFT:
        values.update(_terms(form))
    else:
        terms = _terms(form)
        fixed = {k: getattr(campaign, k) for k in ("goal", "currency", "mode", "starts_at", "ends_at")}
        if any(terms[k] != v for k, v in fixed.items()):
            raise CampaignError(_("La campagne est publiée : son objectif, son mode, sa devise et ses dates ne peuvent plus changer."))
        values.update({k: terms[k] for k in ("min_amount", "max_amount", "free_amount")})
    await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(updated_at=utcnow(), **values))
    await session.refresh(campaign)
    return campaign


def form_of(campaign: Campaign, site_slug: str) -> CampaignForm:
    fmt = "%Y-%m-%dT%H:%M"
    from funding.money import format_plain

    return CampaignForm(
        site=site_slug, slug=campaign.slug, title=campaign.title, summary=campaign.summary, description=campaign.description,
        image_url=campaign.image_url or "", goal=format_plain(campaign.goal, campaign.currency), currency=campaign.currency,
        mode=campaign.mode, starts_at=local(campaign.starts_at).strftime(fmt), ends_at=local(campaign.ends_at).strftime(fmt),
        min_amount=format_plain(campaign.min_amount, campaign.currency),
        max_amount=format_plain(campaign.max_amount, campaign.currency), free_amount=campaign.free_amount,
    )


# --- tiers -------------------------------------------------------------------------


@dataclass
class TierForm:
    title: str = ""
    description: str = ""
    amount: str = ""
    kind: str = "gift"
    reward_value: str = ""
    vat_rate: str = "0"
    stock: str = ""


async def add_tier(session: AsyncSession, campaign_id: int, form: TierForm) -> Tier:
    """Tiers may be added while the campaign runs (never to a finished one)."""
    campaign = await lock_campaign(session, campaign_id)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.LIVE):
        raise CampaignError(_("La campagne est terminée : on ne lui ajoute plus de contrepartie."))
    title = " ".join((form.title or "").split())
    if not title or len(title) > 120:
        raise CampaignError(_("Donnez un titre à la contrepartie (120 caractères au plus)."))
    amount = _amount(form.amount, campaign.currency, _("Montant de la contrepartie"))
    if amount < campaign.min_amount or amount > campaign.max_amount:
        raise CampaignError(_("Le montant d'une contrepartie doit être compris entre %(min)s et %(max)s.",
                              min=money(campaign.min_amount, campaign.currency), max=money(campaign.max_amount, campaign.currency)))
    if form.kind not in tuple(TierKind):
        raise CampaignError(_("Type de contrepartie inconnu : don ou récompense."))
    value = 0
    vat = 0
    if form.kind == TierKind.REWARD:
        value = _amount(form.reward_value, campaign.currency, _("Valeur de la récompense"))
        if value <= 0:
            raise CampaignError(_("Indiquez la valeur de la récompense."))
        if form.vat_rate.strip() not in VAT_CHOICES:
            raise CampaignError(_("Taux de TVA inconnu : 0, 5,5, 10 ou 20."))
        vat = VAT_CHOICES[form.vat_rate.strip()]
    stock = None
    if (form.stock or "").strip():
        if not digits(form.stock.strip()) or not 0 < int(form.stock.strip()) <= 1_000_000:
            raise CampaignError(_("Stock invalide : un nombre entier positif, ou rien pour un stock illimité."))
        stock = int(form.stock.strip())
    description = (form.description or "").strip()
    if len(description) > 2000:
        raise CampaignError(_("La description de la contrepartie est trop longue (2 000 caractères au plus)."))
    position = len((await session.scalars(select(Tier.id).where(Tier.campaign_id == campaign_id))).all())
    tier = Tier(campaign_id=campaign_id, position=position, title=title, description=description, amount=amount,
                kind=form.kind, reward_value=value, vat_per_mille=vat, stock=stock, remaining=stock)
    session.add(tier)
    await session.flush()
    return tier


async def set_tier_active(session: AsyncSession, campaign_id: int, tier_id: int, active: bool) -> None:
    result = await session.execute(update(Tier).where(Tier.id == tier_id, Tier.campaign_id == campaign_id).values(active=active))
    if rowcount(result) != 1:
        raise CampaignError(_("Contrepartie inconnue."))


# --- public match --------------------------------------------------------------------


@dataclass
class MatchForm:
    funder: str = ""
    funder_siret: str = ""
    reference: str = ""
    ratio: str = "1:1"
    cap_per_pledge: str = ""
    total_cap: str = ""


async def set_match(session: AsyncSession, campaign_id: int, form: MatchForm) -> Match:
    """A public funder's matching promise; set while the campaign is a draft (backers are told before they give)."""
    campaign = await lock_campaign(session, campaign_id)
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignError(_("L'abondement se définit avant la publication de la campagne."))
    funder = " ".join((form.funder or "").split())
    if not funder:
        raise CampaignError(_("Indiquez le financeur public."))
    siret = None
    if (form.funder_siret or "").strip():
        try:
            siret = check_siret(form.funder_siret)
        except OrgError as exc:
            raise CampaignError(str(exc)) from None
    reference = " ".join((form.reference or "").split())[:100]
    if not reference:
        raise CampaignError(_("Indiquez la référence de la décision d'attribution."))
    match = re.fullmatch(r"\s*(\d{1,3})\s*[:/]\s*(\d{1,3})\s*", form.ratio or "")
    if not match or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise CampaignError(_("Ratio invalide : par exemple 1:1 (un euro public pour un euro collecté) ou 1:2."))
    cap = _amount(form.cap_per_pledge, campaign.currency, _("Plafond par contribution"))
    total = _amount(form.total_cap, campaign.currency, _("Plafond total"))
    if cap <= 0 or total <= 0:
        raise CampaignError(_("Les plafonds de l'abondement doivent être positifs."))
    used = await session.scalar(select(Grant.id).where(Grant.org_id == campaign.org_id, Grant.reference == reference))
    if used is not None:
        raise CampaignError(_("La référence %(ref)s désigne déjà une subvention enregistrée.", ref=reference))
    values = {"funder_name": funder, "funder_siret": siret, "reference": reference, "ratio_num": int(match.group(1)),
              "ratio_den": int(match.group(2)), "cap_per_pledge": cap, "total_cap": total, "status": MatchStatus.PLEDGED}
    existing = await session.scalar(select(Match).where(Match.campaign_id == campaign_id))
    if existing is None:
        existing = Match(campaign_id=campaign_id, **values)
        session.add(existing)
    else:
        for key, value in values.items():
            setattr(existing, key, value)
    await session.flush()
    return existing


async def remove_match(session: AsyncSession, campaign_id: int) -> None:
    campaign = await lock_campaign(session, campaign_id)
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignError(_("L'abondement se définit avant la publication de la campagne."))
    existing = await session.scalar(select(Match).where(Match.campaign_id == campaign_id))
    if existing is not None:
        await session.delete(existing)
        await session.flush()


# --- lifecycle -------------------------------------------------------------------------


async def publish(session: AsyncSession, campaign_id: int, *, now: dt.datetime | None = None) -> Campaign:
    now = now or utcnow()
    campaign = await lock_campaign(session, campaign_id)
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignError(_("Seul un brouillon peut être publié."))
    if campaign.ends_at <= now:
        raise CampaignError(_("La date de fin est passée : changez-la avant de publier."))
    tiers = (await session.scalars(select(Tier.id).where(Tier.campaign_id == campaign_id, Tier.active))).all()
    if not tiers and not campaign.free_amount:
        raise CampaignError(_("Ajoutez une contrepartie, ou acceptez les montants libres, avant de publier."))
    if not campaign.description.strip():
        raise CampaignError(_("Décrivez le projet avant de publier."))
    await session.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.DRAFT)
                          .values(status=CampaignStatus.LIVE, published_at=now, updated_at=now))
    await session.refresh(campaign)
    return campaign


async def archive(session: AsyncSession, campaign_id: int, *, now: dt.datetime | None = None) -> Campaign:
    """A finished campaign whose money is settled is closed: nothing about it moves any more."""
    now = now or utcnow()
    campaign = await lock_campaign(session, campaign_id)
    if campaign.status not in (CampaignStatus.SUCCEEDED, CampaignStatus.FAILED):
        raise CampaignError(_("Seule une campagne terminée (réussie ou non) peut être close."))
    unsettled = await session.scalar(select(Pledge.id).where(Pledge.campaign_id == campaign_id,
                                                             Pledge.status.in_(books.UNSETTLED)).limit(1))
    if unsettled is not None:
        raise CampaignError(_("Des contributions sont encore en cours de paiement : attendez leur règlement."))
    match = await session.scalar(select(Match).where(Match.campaign_id == campaign_id))
    if match is not None and match.status == MatchStatus.PLEDGED:
        raise CampaignError(_("L'abondement n'est pas encore comptabilisé : relancez « funding campaigns close »."))
    await session.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.status.in_((CampaignStatus.SUCCEEDED, CampaignStatus.FAILED)))
                          .values(status=CampaignStatus.CLOSED, closed_at=now, updated_at=now))
    await session.refresh(campaign)
    return campaign


async def by_slug(session: AsyncSession, slug: str) -> Campaign:
    campaign = await session.scalar(select(Campaign).where(Campaign.slug == (slug or "").strip().lower()))
    if campaign is None:
        raise CampaignError(_("Campagne inconnue : %(slug)s", slug=slug or _("(vide)")))
    return campaign


purposes.register(books.PURPOSE, books.allocate)
on_paid(books.PURPOSE, settle.on_payment_paid)
