"""Demo campaigns in every state, and backers who give through the offline Stripe sandbox.

``seed`` creates the campaigns (the finished ones still ``live`` past their end, as if the
worker had not run yet). ``play``, once, after the server answers: backers pay on the
sandbox's hosted Checkout page (keep-it-all) or save their card (all-or-nothing), then
the deadline job runs as the worker would — it decides the finished campaigns, charges
the all-or-nothing promises off session (one bank wants authentication, one card is
declined), books the public match — and the oldest campaign's rewards are delivered
and the campaign closed. Names of people are made up; public bodies are real.
"""

from __future__ import annotations

import datetime as dt
import logging

import httpx
from sqlalchemy import func, select

from funding.campaigns.donors import DonorDetails
from funding.campaigns.models import (
    Campaign,
    CampaignStatus,
    Match,
    Mode,
    Nature,
    Pledge,
    PledgeStatus,
    ReceiptIssuer,
    Tier,
    TierKind,
)
from funding.db import must_get, transaction, utcnow
from funding.settings import Settings
from funding.stripe_gateway import SANDBOX_PATH, StripeGateway
from stripe_sandbox.visitor import pay

log = logging.getLogger("funding.demo")
DAY = dt.timedelta(days=1)

LASER = """Le FabLab de la Manufacture accueille chaque semaine des collégiens, des artisans couteliers et des \
porteurs de projets. Il lui manque une **découpeuse laser** pour graver le bois, le cuir et l'acier des lames.

## Ce que permettra la machine
- des ateliers d'initiation ouverts à tous, le mercredi et le samedi ;
- le prototypage rapide pour les entreprises incubées ;
- la gravure de manches pour les couteliers du bassin thiernois.

La communauté de communes [Thiers Dore et Montagne](https://www.thiersdoreetmontagne.fr) double chaque contribution \
jusqu'à 50 € : *un euro donné, un euro de plus pour le FabLab*."""

CUISINE = """La Fabrique de Puy-Guillaume ouvre une **cuisine partagée** : un lieu équipé pour cuisiner ensemble, \
transformer les légumes des jardins voisins et lancer des activités de traiteur.

C'est une campagne *tout ou rien* : votre carte n'est débitée que si l'objectif est atteint."""

MONNERIE = """L'atelier de La Monnerie-le-Montel a besoin d'un nouvel établi, d'un aspirateur à copeaux et d'une \
remise aux normes électrique pour accueillir à nouveau les stages de coutellerie."""

RESIDENCE = """Trois artistes en résidence au Relais de Courpière, six mois d'ateliers avec les habitants."""

FETE = """La Fête des tiers-lieux réunit chaque printemps les quatre lieux du réseau : concerts, marché de créateurs, \
portes ouvertes du FabLab."""

FOUR = """Un four à pain au feu de bois dans la cour du Relais, pour des fournées partagées le dimanche."""

# (title, amount, kind, reward value, VAT per mille, stock or None)
TierSeed = tuple[str, int, TierKind, int, int, int | None]
# (funder, SIRET or None, reference, ratio numerator, denominator, cap per pledge, total cap)
MatchSeed = tuple[str, str | None, str, int, int, int, int]
# (slug, site, title, summary, description, mode, goal, start (days from today), end, status, tiers, match)
CampaignSeed = tuple[str, str, str, str, str, Mode, int, int, int, CampaignStatus, list[TierSeed], MatchSeed | None]
CAMPAIGNS: list[CampaignSeed] = [
    ("four-a-pain-courpiere", "courpiere", "Un four à pain pour le Relais de Courpière", "Des fournées partagées le dimanche",
     FOUR, Mode.KEEP_IT_ALL, 450_000, 10, 50, CampaignStatus.DRAFT,
     [("Merci !", 1500, TierKind.GIFT, 0, 0, None), ("Pain de la première fournée", 3000, TierKind.REWARD, 600, 55, 80)], None),
    ("decoupeuse-laser-fablab", "thiers", "Une découpeuse laser pour le FabLab de Thiers",
     "Graver le bois, le cuir et l'acier au cœur de la Manufacture", LASER, Mode.KEEP_IT_ALL, 800_000, -12, 18, CampaignStatus.LIVE,
     [("Merci !", 1000, TierKind.GIFT, 0, 0, None), ("Porte-clés gravé au laser", 2500, TierKind.REWARD, 500, 200, 150),
      ("Atelier d'initiation à la découpe laser", 4000, TierKind.REWARD, 3000, 200, 12),
      ("Couteau de Thiers gravé à votre nom", 8000, TierKind.REWARD, 4500, 200, 30)],
     ("Thiers Dore et Montagne", "20007065300015", "TDM-DEL-2026-112", 1, 1, 5000, 300_000)),
    ("cuisine-partagee-puy-guillaume", "puy-guillaume", "Une cuisine partagée à Puy-Guillaume",
     "Cuisiner ensemble, transformer les récoltes", CUISINE, Mode.ALL_OR_NOTHING, 600_000, -5, 25, CampaignStatus.LIVE,
     [("Merci !", 1500, TierKind.GIFT, 0, 0, None), ("Tablier brodé de la Fabrique", 3500, TierKind.REWARD, 1200, 200, None),
      ("Repas d'inauguration pour deux", 6000, TierKind.REWARD, 3000, 100, 40)], None),
    ("atelier-la-monnerie", "la-monnerie", "Rénover l'atelier de La Monnerie", "Un atelier aux normes pour les stages",
     MONNERIE, Mode.ALL_OR_NOTHING, 250_000, -40, -1, CampaignStatus.LIVE, [("Merci !", 2000, TierKind.GIFT, 0, 0, None)], None),
    ("residence-artistes-courpiere", "courpiere", "Une résidence d'artistes au Relais de Courpière",
     "Six mois d'ateliers avec les habitants", RESIDENCE, Mode.ALL_OR_NOTHING, 1_000_000, -45, -3, CampaignStatus.LIVE, [], None),
    ("fete-des-tiers-lieux-2026", "thiers", "La Fête des tiers-lieux 2026", "Concerts, marché et portes ouvertes", FETE,
     Mode.KEEP_IT_ALL, 100_000, -60, -20, CampaignStatus.LIVE,
     [("Affiche sérigraphiée de la fête", 3000, TierKind.REWARD, 1500, 200, 50)],
     ("Ville de Thiers", None, "THIERS-CULT-2026-014", 1, 2, 2500, 50_000)),
]

# (campaign, name, email, amount typed, tier index or None, card, public, message)
BACKERS = [
    ("decoupeuse-laser-fablab", "Martine Chabrier", "martine.chabrier@example.fr", "50", None, "4242 4242 4242 4242", True,
     "Pour que les jeunes de Thiers découvrent la fabrication numérique !"),
    ("decoupeuse-laser-fablab", "Karim Benali", "karim.benali@example.fr", "", 1, "4242 4242 4242 4242", True, ""),
    ("decoupeuse-laser-fablab", "Coutellerie Dumas", "contact@coutellerie-dumas.example.fr", "", 3, "4242 4242 4242 4242",
     True, "Fiers de soutenir les couteliers de demain."),
    ("decoupeuse-laser-fablab", "Élodie Vernet", "elodie.vernet@example.fr", "", 2, "4242 4242 4242 4242", False, ""),
    ("decoupeuse-laser-fablab", "Jean-Pierre Gaillard", "jp.gaillard@example.fr", "120", None, "4000 0025 0000 3155", True,
     "Bravo à toute l'équipe de la Manufacture."),
    ("cuisine-partagee-puy-guillaume", "Nadia Chassaing", "nadia.chassaing@example.fr", "", 1, "4242 4242 4242 4242", True,
     "J'apporterai mes confitures !"),
    ("cuisine-partagee-puy-guillaume", "Lucas Perrin", "lucas.perrin@example.fr", "40", None, "4242 4242 4242 4242", False, ""),
    ("cuisine-partagee-puy-guillaume", "Amélie Fournier", "amelie.fournier@example.fr", "", 2, "4000 0025 0000 3155", True, ""),
    ("fete-des-tiers-lieux-2026", "Bernard Coudert", "bernard.coudert@example.fr", "", 0, "4242 4242 4242 4242", True, ""),
    ("fete-des-tiers-lieux-2026", "Sylvie Bony", "sylvie.bony@example.fr", "60", None, "4242 4242 4242 4242", True,
     "Vivement la prochaine !"),
    ("fete-des-tiers-lieux-2026", "Hugo Lafarge", "hugo.lafarge@example.fr", "", 0, "4242 4242 4242 4242", False, ""),
    ("fete-des-tiers-lieux-2026", "Imprimerie des Margerides", "contact@margerides.example.fr", "1000", None,
     "4242 4242 4242 4242", True, "Partenaire de la fête depuis le début."),
]
# All-or-nothing promises of finished campaigns: the cards are saved through the API, as Stripe's
# own tools do with its test payment methods. (campaign, name, email, euros, payment method, public)
PROMISES = [
    ("atelier-la-monnerie", "Gérard Mazuel", "gerard.mazuel@example.fr", 500, "pm_card_visa", True),
    ("atelier-la-monnerie", "Chantal Roddier", "chantal.roddier@example.fr", 400, "pm_card_visa", True),
    ("atelier-la-monnerie", "Coutellerie Chambriard", "atelier@chambriard.example.fr", 800, "pm_card_visa", True),
    ("atelier-la-monnerie", "Mathieu Vialle", "mathieu.vialle@example.fr", 350, "pm_card_mastercard", False),
    ("atelier-la-monnerie", "Aurélie Bost", "aurelie.bost@example.fr", 300, "pm_card_visa", True),
    ("atelier-la-monnerie", "Patrick Durand", "patrick.durand@example.fr", 150, "pm_card_authenticationRequired", True),
    ("atelier-la-monnerie", "Inès Fabre", "ines.fabre@example.fr", 120, "pm_card_chargeCustomerFail", False),
    ("residence-artistes-courpiere", "Claire Montel", "claire.montel@example.fr", 300, "pm_card_visa", True),
    ("residence-artistes-courpiere", "Olivier Sauvadet", "olivier.sauvadet@example.fr", 250, "pm_card_visa", False),
    ("residence-artistes-courpiere", "Marie-Thérèse Arnaud", "mt.arnaud@example.fr", 200, "pm_card_visa", True),
]


def _at(today: dt.date, days: int, hour: int) -> dt.datetime:
    """Paris wall time of a day relative to today, in naive UTC (demo precision: one hour off in summer is fine)."""
    return dt.datetime.combine(today + days * DAY, dt.time(hour)) - dt.timedelta(hours=1)


async def seed(session, demo) -> None:
    now = utcnow()
    for slug, site, title, summary, text, mode, goal, start, end, status, tiers, match in CAMPAIGNS:
        campaign = Campaign(
            org_id=demo.org.id, site_id=demo.sites[site].id, slug=slug, title=title, summary=summary, description=text,
            goal=goal, currency="EUR", mode=mode, status=status, starts_at=_at(demo.today, start, 9),
            ends_at=_at(demo.today, end, 20), created_by="demo", published_at=None if status == CampaignStatus.DRAFT else now,
        )
        session.add(campaign)
        await session.flush()
        for position, (tier_title, amount, kind, value, vat, stock) in enumerate(tiers):
            session.add(Tier(campaign_id=campaign.id, position=position, title=tier_title, amount=amount, kind=kind,
                             reward_value=value, vat_per_mille=vat, stock=stock, remaining=stock))
        if match:
            funder, siret, reference, num, den, cap, total = match
            session.add(Match(campaign_id=campaign.id, funder_name=funder, funder_siret=siret, reference=reference,
                              ratio_num=num, ratio_den=den, cap_per_pledge=cap, total_cap=total))
    session.add(ReceiptIssuer(
        org_id=demo.org.id, signatory="Camille Martin", signatory_role="présidente", place="Thiers",
        purpose="Association d'intérêt général animant un réseau de tiers-lieux ouverts à tous autour de Thiers : "
                "FabLab, ateliers, accueil de porteurs de projets et d'associations."))
    await session.flush()


STREETS = ("3 rue Durolle", "12 rue de la Coutellerie", "5 place du Pirou", "18 avenue Léo-Lagrange",
           "7 rue Conchette", "24 boulevard Émile-Zola", "9 rue du Bourg", "2 chemin des Margerides")
TOWNS = (("63300", "Thiers"), ("63120", "Courpière"), ("63290", "Puy-Guillaume"), ("63650", "La Monnerie-le-Montel"))


# Backers that give as companies: their receipts are the ones for companies (238 bis, 60 %).
COMPANY_SIRENS = {"Imprimerie des Margerides": "123456782", "Coutellerie Chambriard": "901234567"}


def demo_address(name: str) -> DonorDetails:
    """A donor's address for their receipt, the same for the same name at each demo."""
    n = sum(map(ord, name))
    postcode, town = TOWNS[n % len(TOWNS)]
    siren = COMPANY_SIRENS.get(name)
    return DonorDetails(street=STREETS[n % len(STREETS)], postcode=postcode, town=town, country="France",
                        company=siren is not None, company_name=name if siren else "", siren=siren or "")


async def play(settings: Settings, gw: StripeGateway, sessions) -> None:
    try:
        async with sessions() as session:
            if await session.scalar(select(func.count(Pledge.id))):
                return
            campaigns = {c.slug: c for c in (await session.scalars(select(Campaign))).all()}
            tiers: dict[int, list[Tier]] = {}
            for tier in (await session.scalars(select(Tier).order_by(Tier.position))).all():
                tiers.setdefault(tier.campaign_id, []).append(tier)
        if not campaigns:
            return
        async with httpx.AsyncClient(timeout=30, follow_redirects=False) as http:
            for slug, name, email, amount, tier_index, card, public, message in BACKERS:
                campaign = campaigns[slug]
                tier = tiers[campaign.id][tier_index] if tier_index is not None else None
                await _give(settings, gw, sessions, http, campaign, tier, name, email, amount, card, public, message)
            for slug, name, email, euros, method, public in PROMISES:
                await _promise(settings, gw, sessions, http, campaigns[slug], name, email, euros, method, public)
            # The worker's deadline job, as it would run now: decisions, off-session charges, the match.
            from funding.campaigns.deadline import run

            await run(sessions, settings, gw)
            await run(sessions, settings, gw)
            await _deliver_and_close(sessions, campaigns["fete-des-tiers-lieux-2026"].id)
        await _travel(settings, sessions, campaigns)
        log.info("demo: campaigns played through the sandbox")
    except Exception:  # the demo must start even if this goes wrong
        log.exception("demo: could not play the campaigns")


async def _give(settings, gw, sessions, http, campaign, tier, name, email, amount, card, public, message) -> None:
    """A backer on the campaign page, then on the sandbox's Checkout page (3-D Secure when asked)."""
    from funding.campaigns.flows import open_checkout
    from funding.campaigns.pledges import Contribution, create_pledge

    data = Contribution(amount=amount, tier=str(tier.id) if tier else "", name=name, email=email, show_name=public,
                        message=message, donor=demo_address(name), wants_updates=public)
    async with transaction(sessions) as session:
        # The finished campaigns' backers gave while they ran.
        when = min(utcnow(), campaign.ends_at - DAY)
        pledge = await create_pledge(session, campaign.id, data, secret_key=settings.secret_key,
                                     link_base=settings.base_url, now=when)
    started = await open_checkout(sessions, gw, settings, pledge.id)
    result = await pay(http, started.url, name=name, card=card, email=email, challenge=True)
    if result.status_code in (302, 303):
        await http.get(result.headers["location"])  # back on the thank-you page, which settles the payment


async def _promise(settings, gw, sessions, http, campaign, name, email, euros, method, public) -> None:
    """An all-or-nothing backer whose card was saved (SetupIntent) while the campaign ran."""
    from funding.campaigns.pledges import Contribution, create_pledge, move
    from funding.payments.calls import create_once

    async with transaction(sessions) as session:
        pledge = await create_pledge(session, campaign.id, Contribution(amount=str(euros), name=name, email=email,
                                                                        show_name=public, donor=demo_address(name)),
                                     secret_key=settings.secret_key, link_base=settings.base_url,
                                     now=campaign.ends_at - 2 * DAY)
    meta = {"pledge_id": str(pledge.id), "campaign_id": str(campaign.id)}
    customer = await create_once(sessions, gw, ref=f"pledge:{pledge.id}", resource="customers",
                                 params={"email": email, "name": name, "metadata": meta})
    seti = await create_once(sessions, gw, ref=f"pledge:{pledge.id}", resource="setup_intents", params={
        "customer": customer["id"], "payment_method": method, "confirm": True, "usage": "off_session", "metadata": meta})
    if seti["status"] == "requires_action":  # the backer's bank asked, the backer answered
        await http.post(f"{settings.base_url}{SANDBOX_PATH}/authenticate/{seti['id']}", data={"action": "authenticate"})
    async with transaction(sessions) as session:
        await move(session, pledge.id, (PledgeStatus.PENDING,), PledgeStatus.ACTIVE, now=campaign.ends_at - 2 * DAY,
                   customer_id=customer["id"], payment_method_id=seti["payment_method"])


# A picture per campaign (drawn here: the demo ships no photos), and news from the laser's campaign.
PICTURES = {"decoupeuse-laser-fablab": ((24, 46, 84), (230, 80, 60)), "four-a-pain-courpiere": ((150, 90, 40), (250, 235, 200)),
            "cuisine-partagee-puy-guillaume": ((46, 110, 60), (250, 200, 80)),
            "atelier-la-monnerie": ((120, 72, 40), (240, 230, 210)), "fete-des-tiers-lieux-2026": ((110, 40, 110), (250, 220, 120))}
NEWS = ("La découpeuse est choisie", "Après trois démonstrations, le FabLab a retenu une machine de 60 W qui grave "
        "le bois, le cuir et l'acier des lames.\n\n**Merci** aux premiers contributeurs : les ateliers d'essai "
        "ouvriront dès la livraison.")


def _picture(background: tuple[int, int, int], ink: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1200, 630), background)
    draw = ImageDraw.Draw(image)
    for i in range(12):
        draw.line([(i * 110, 630), (i * 110 + 400, 0)], fill=ink, width=6)
    draw.ellipse([760, 150, 1090, 480], outline=ink, width=14)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def _travel(settings: Settings, sessions, campaigns: dict) -> None:
    from funding import media
    from funding.campaigns.news import publish_update

    for slug, colours in PICTURES.items():
        if slug in campaigns:
            url = await media.store_image(settings, _picture(*colours))
            async with transaction(sessions) as session:
                (await must_get(session, Campaign, campaigns[slug].id)).image_url = url
    if "decoupeuse-laser-fablab" in campaigns:
        async with transaction(sessions) as session:
            campaign = await must_get(session, Campaign, campaigns["decoupeuse-laser-fablab"].id)
            await publish_update(session, settings, campaign, title=NEWS[0], body=NEWS[1], author="camille@entre-lab.fr")


async def _deliver_and_close(sessions, campaign_id: int) -> None:
    from funding.campaigns.books import deliver
    from funding.campaigns.service import archive

    async with transaction(sessions) as session:
        ids = (await session.scalars(select(Pledge.id).where(Pledge.campaign_id == campaign_id, Pledge.status == PledgeStatus.PAID,
                                                             Pledge.nature == Nature.SALE))).all()
        await deliver(session, list(ids), by="demo")
    async with transaction(sessions) as session:
        campaign = await must_get(session, Campaign, campaign_id)
        if campaign.status in (CampaignStatus.SUCCEEDED, CampaignStatus.FAILED):
            await archive(session, campaign_id)
