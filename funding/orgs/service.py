"""Organisations and sites: creation with the checks French identifiers allow."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from funding.errors import FundingError
from funding.ledger.service import ensure_ledger
from funding.orgs.models import Organisation, Site


class OrgError(FundingError):
    """Refused organisation or site data; the message is for a person."""


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def check_siren(value: str) -> str:
    siren = re.sub(r"\s", "", value or "")
    if not re.fullmatch(r"\d{9}", siren) or not luhn_ok(siren):
        raise OrgError(f"SIREN invalide : {value or '(vide)'} (9 chiffres, clé de Luhn)")
    return siren


def check_siret(value: str) -> str:
    siret = re.sub(r"\s", "", value or "")
    # La Poste's SIRETs (SIREN 356000000) use another key; everyone else follows Luhn.
    if not re.fullmatch(r"\d{14}", siret) or not (luhn_ok(siret) or siret.startswith("356000000")):
        raise OrgError(f"SIRET invalide : {value or '(vide)'} (14 chiffres, clé de Luhn)")
    return siret


def check_slug(value: str) -> str:
    slug = (value or "").strip().lower()
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?", slug):
        raise OrgError(f"identifiant de site invalide : {value or '(vide)'} (lettres minuscules, chiffres, tirets)")
    return slug


async def create_organisation(
    session: AsyncSession,
    *,
    name: str,
    siren: str,
    vat_number: str | None = None,
    vat_liable: bool = False,
    general_interest: bool = False,
    rna: str | None = None,
    address: str = "",
    fiscal_year_start_month: int = 1,
) -> Organisation:
    if not (name or "").strip():
        raise OrgError("nom de l'organisation manquant")
    siren = check_siren(siren)
    if rna and not re.fullmatch(r"W\d{9}", rna):
        raise OrgError(f"numéro RNA invalide : {rna} (W suivi de 9 chiffres)")
    if vat_number and not re.fullmatch(r"FR[0-9A-Z]{2}" + siren, vat_number.replace(" ", "")):
        raise OrgError(f"numéro de TVA invalide : {vat_number} (FR, clé, puis le SIREN)")
    org = Organisation(
        name=name.strip(),
        siren=siren,
        vat_number=vat_number.replace(" ", "") if vat_number else None,
        vat_liable=vat_liable,
        general_interest=general_interest,
        rna=rna,
        address=address,
        fiscal_year_start_month=fiscal_year_start_month,
    )
    session.add(org)
    try:
        await session.flush()
    except IntegrityError:
        raise OrgError(f"une organisation porte déjà le SIREN {siren}") from None
    await ensure_ledger(session, org.id)
    return org


async def create_site(
    session: AsyncSession, *, org_id: int, slug: str, name: str, town: str = "", is_central: bool = False
) -> Site:
    slug = check_slug(slug)
    if not (name or "").strip():
        raise OrgError("nom du site manquant")
    if await session.scalar(select(Site.id).where(Site.slug == slug)):
        raise OrgError(f"un site porte déjà l'identifiant {slug}")
    site = Site(org_id=org_id, slug=slug, name=name.strip(), town=town.strip(), is_central=is_central)
    session.add(site)
    await session.flush()
    return site


async def site_by_slug(session: AsyncSession, slug: str) -> Site:
    site = await session.scalar(select(Site).where(Site.slug == (slug or "").strip().lower()))
    if site is None:
        raise OrgError(f"site inconnu : {slug or '(vide)'}")
    return site


async def organisation_for(session: AsyncSession, siren: str | None) -> Organisation:
    """The organisation named by SIREN, or the only one when there is only one."""
    if siren:
        org = await session.scalar(select(Organisation).where(Organisation.siren == re.sub(r"\s", "", siren)))
        if org is None:
            raise OrgError(f"aucune organisation avec le SIREN {siren}")
        return org
    orgs = (await session.scalars(select(Organisation).order_by(Organisation.id).limit(2))).all()
    if not orgs:
        raise OrgError("aucune organisation : créez-en une (funding org create) ou lancez la démo")
    if len(orgs) > 1:
        raise OrgError("plusieurs organisations : précisez --org SIREN")
    return orgs[0]
