"""Realistic demo data: the Entre-Lab network around Thiers and a year of its money.

Every figure below is made up; names of public bodies are real, companies are not.
Dates are relative to today so the demo always shows the last months.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.auth.models import User
from funding.auth.service import create_user
from funding.clock import paris_today
from funding.domains import parts
from funding.ledger.records import Record, record_many
from funding.ledger.service import close_months
from funding.orgs.models import Organisation, Site
from funding.orgs.service import create_organisation, create_site

ORG = {
    "name": "Association Entre-Lab",
    "siren": "912345675",
    "rna": "W633012345",
    "vat_number": "FR65912345675",
    "address": "12 rue de la Coutellerie, 63300 Thiers",
}
SITES = [
    ("thiers", "Entre-Lab Thiers — La Manufacture", "Thiers", True),
    ("courpiere", "Le Relais de Courpière", "Courpière", False),
    ("la-monnerie", "L'Atelier de La Monnerie", "La Monnerie-le-Montel", False),
    ("puy-guillaume", "La Fabrique de Puy-Guillaume", "Puy-Guillaume", False),
]
USERS = [  # (email, name, role, where: the main organisation, the partner, or the whole network)
    ("camille.martin@entre-lab.fr", "Camille Martin", "admin", "main"),
    ("louis.bernard@entre-lab.fr", "Louis Bernard", "staff", "main"),
    ("sophie.roux@cabinet-dore-expertise.fr", "Sophie Roux (Cabinet Dore Expertise)", "accountant", "main"),
    ("nadia.chassaing@ateliers-durolle.fr", "Nadia Chassaing", "admin", "partner"),
    ("jean.roche@federation-tiers-lieux-aura.fr", "Jean Roche (Fédération des tiers-lieux)", "accountant", "network"),
]
# A partner association that keeps its own books on the same installation: its people see
# only its books, Entre-Lab's see only theirs; the federation's auditor sees both.
PARTNER = {
    "name": "Association Les Ateliers de la Durolle",
    "siren": "834162703",
    "rna": "W633008871",
    "address": "3 place de la Mairie, 63250 Celles-sur-Durolle",
}
PARTNER_SITE = ("celles-sur-durolle", "Les Ateliers de la Durolle", "Celles-sur-Durolle")


def partner_operations(today: dt.date) -> list[Record]:
    m = lambda back, day: (month_start(today, back) + dt.timedelta(days=day - 1)).isoformat()  # noqa: E731
    return [
        Record("grant-notified", m(6, 4), "6000,00", site=PARTNER_SITE[0], funder="Commune de Celles-sur-Durolle",
               funder_siret="21630096000012", reference="CELLES-2026-04",
               object="Ateliers de réparation et de couture partagés"),
        Record("grant-paid", m(5, 12), "6000,00", reference="CELLES-2026-04", piece_ref="RELEVE-DUR-05"),
        Record("transfer", m(4, 20), "640,00", site=PARTNER_SITE[0], debit="512", credit="7561", source="self",
               piece_ref="REMISE-CHQ-DUR-07", label="Cotisations des adhérents remises en banque"),
        Record("patronage", m(2, 9), "1500,00", site=PARTNER_SITE[0], funder="Scierie Vialatte",
               piece_ref="CONV-MEC-DUR-01", label="Mécénat : établis de l'atelier bois"),
    ]


def month_start(today: dt.date, back: int) -> dt.date:
    """First day of the month ``back`` months before today's."""
    index = today.year * 12 + today.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def operations(today: dt.date) -> list[Record]:
    m = lambda back, day: (month_start(today, back) + dt.timedelta(days=day - 1)).isoformat()  # noqa: E731
    return [
        # Public grants, by their nature: notified, then paid (some in part).
        Record("grant-notified", m(10, 12), "30000,00", site="thiers", funder="Région Auvergne-Rhône-Alpes",
               funder_siret="20005376700014", reference="AURA-TL-2026-0142", nature="operating",
               object="Soutien au fonctionnement des tiers-lieux du bassin thiernois"),
        Record("grant-paid", m(8, 3), "15000,00", reference="AURA-TL-2026-0142", piece_ref="RELEVE-BQ-04-2026"),
        Record("grant-notified", m(9, 20), "12000,00", site="thiers", funder="Thiers Dore et Montagne",
               funder_siret="20007065300015", reference="TDM-DEL-2026-087", nature="investment",
               object="Équipement du FabLab (découpe laser, fraiseuse)"),
        Record("grant-paid", m(6, 15), "12000,00", reference="TDM-DEL-2026-087", piece_ref="RELEVE-BQ-06-2026"),
        # What the equipment grant bought: in the fixed-asset register, depreciated over 5 years.
        Record("asset", m(7, 21), "12000,00", site="thiers", debit="2183", life="5", reference="TDM-DEL-2026-087",
               piece_ref="FACT-LASERCUT-2026-0412", label="FabLab : découpeuse laser et fraiseuse numérique"),
        Record("grant-notified", m(7, 2), "5000,00", site="courpiere", funder="Commune de Courpière",
               funder_siret="21630125800010", reference="COURPIERE-2026-12", nature="operating",
               object="Animation du Relais : ateliers numériques"),
        Record("grant-paid", m(4, 9), "2500,00", reference="COURPIERE-2026-12", piece_ref="RELEVE-BQ-08-2026"),
        # A restricted grant (subvention affectée), and what was spent on it: what is left at the
        # year-end becomes fonds dédiés.
        Record("grant-notified", m(8, 17), "8000,00", site="la-monnerie", funder="Département du Puy-de-Dôme",
               funder_siret="22630001700010", reference="CD63-REPAR-2026-019", nature="restricted",
               object="Repair café et ateliers d'autoréparation de vélos"),
        Record("grant-paid", m(7, 3), "8000,00", reference="CD63-REPAR-2026-019", piece_ref="RELEVE-BQ-05-2026"),
        Record("expense", m(3, 14), "1850,00", site="la-monnerie", debit="606", reference="CD63-REPAR-2026-019",
               piece_ref="FACT-OUTILS-2026-77", label="Outillage et pièces du repair café"),
        Record("grant-notified", m(5, 25), "50000,00", site="thiers", funder="Agence nationale de la cohésion des territoires",
               funder_siret="13002603200016", reference="ANCT-FT-2026-0631", nature="multi-year", years="3",
               object="Fabrique de Territoire : animation du réseau de tiers-lieux (3 ans)"),
        Record("grant-paid", m(2, 6), "25000,00", reference="ANCT-FT-2026-0631", piece_ref="RELEVE-BQ-10-2026"),
        # Private: patronage and sponsoring received by transfer.
        Record("patronage", m(9, 4), "8000,00", site="thiers", funder="Fondation Dore et Vallées",
               piece_ref="CONV-MECENAT-2026-01", label="Mécénat Fondation Dore et Vallées : bourse FabLab jeunes"),
        Record("patronage", m(3, 18), "2500,00", site="la-monnerie", funder="Coutellerie du Pont de Seychalles",
               piece_ref="CONV-MECENAT-2026-02"),
        Record("sponsoring", m(6, 1), "1200,00", site="thiers", funder="Imprimerie des Margerides",
               piece_ref="FACT-PARR-2026-01", vat_rate="20", label="Parrainage Fête des tiers-lieux (logo sur supports)"),
        # Self-funding received by transfer while the Stripe flows are being built.
        Record("transfer", m(8, 30), "3600,00", site="thiers", debit="512", credit="706", source="self",
               piece_ref="VIR-PEPINIERE-T2", label="Bureaux de l'incubateur : loyers du trimestre (virement)"),
        Record("transfer", m(5, 30), "3600,00", site="thiers", debit="512", credit="706", source="self",
               piece_ref="VIR-PEPINIERE-T3", label="Bureaux de l'incubateur : loyers du trimestre (virement)"),
        Record("transfer", m(2, 28), "3600,00", site="thiers", debit="512", credit="706", source="self",
               piece_ref="VIR-PEPINIERE-T4", label="Bureaux de l'incubateur : loyers du trimestre (virement)"),
        Record("transfer", m(7, 11), "450,00", site="puy-guillaume", debit="512", credit="706", source="self",
               piece_ref="FACT-2026-0031", label="Location de salle : formation Mission locale"),
        Record("transfer", m(1, 8), "1840,00", site="thiers", debit="512", credit="7561", source="self",
               piece_ref="REMISE-CHQ-2026-11", label="Cotisations des adhérents remises en banque"),
        # Contributions in kind (classe 8, below the result of the annual accounts): volunteering
        # valued at the SMIC's hourly rate, a hall lent by the town, tools given.
        Record("volunteering", m(9, 30), "", site="thiers", hours="126", hourly_value="11,88",
               label="Chantier participatif d'aménagement de La Manufacture", piece_ref="RELEVE-HEURES-2026-T1",
               funder="Bénévoles de l'association"),
        Record("goods-lent", m(7, 15), "1800,00", site="thiers", funder="Commune de Thiers",
               label="Salle Espace Coutellerie prêtée pour la Fête des tiers-lieux (3 jours)", piece_ref="ATTEST-MAD-THIERS-2026-03"),
        Record("goods-given", m(4, 5), "650,00", site="la-monnerie", funder="Coutellerie du Pont de Seychalles",
               label="Deux établis et un lot d'outillage pour l'atelier", piece_ref="ATTEST-DON-NATURE-2026-01"),
        Record("volunteering", m(2, 27), "", site="courpiere", hours="48,5", hourly_value="11,88",
               label="Animation des ateliers numériques du Relais", piece_ref="RELEVE-HEURES-2026-T3"),
    ]


async def is_seeded(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(func.count(Organisation.id))))


@dataclass
class DemoContext:
    org: Organisation
    sites: dict[str, Site]
    users: dict[str, User]
    today: dt.date


async def seed(session: AsyncSession, *, today: dt.date | None = None) -> Organisation:
    today = today or paris_today()
    org = await create_organisation(
        session, name=ORG["name"], siren=ORG["siren"], rna=ORG["rna"], vat_number=ORG["vat_number"],
        vat_liable=True, general_interest=True, address=ORG["address"],
    )
    org.uses_stripe = True
    sites = {}
    for slug, name, town, central in SITES:
        sites[slug] = await create_site(session, org_id=org.id, slug=slug, name=name, town=town, is_central=central)
    # The partner keeps the associative year (September to August): its books show a closed year.
    partner = await create_organisation(session, name=PARTNER["name"], siren=PARTNER["siren"], rna=PARTNER["rna"],
                                        general_interest=True, address=PARTNER["address"], fiscal_year_start_month=9)
    await create_site(session, org_id=partner.id, slug=PARTNER_SITE[0], name=PARTNER_SITE[1], town=PARTNER_SITE[2],
                      is_central=True)
    users = {}
    for email, name, role, where in USERS:
        user = await create_user(session, email=email, name=name, role=role, network=where == "network",
                                 org_id={"main": org.id, "partner": partner.id}.get(where), granted_by="demo")
        if where == "main":
            users[role] = user
    await record_many(session, operations(today) + partner_operations(today), created_by="demo")
    demo = DemoContext(org, sites, users, today)
    for module in parts("demo"):
        if hasattr(module, "seed"):
            await module.seed(session, demo)
    # Close every month before the last three, so the demo shows closed periods.
    # A fiscal year whose twelve months are closed is closed too (its à-nouveaux open the next).
    await close_months(session, org.id, [f"{month_start(today, back):%Y-%m}" for back in range(10, 3, -1)], closed_by="demo")
    await close_months(session, partner.id, [f"{month_start(today, back):%Y-%m}" for back in (6, 5, 4, 3, 2)],
                       closed_by="demo")
    return org
