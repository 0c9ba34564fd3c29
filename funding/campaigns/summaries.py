"""The yearly summary of a donor's gifts (for their tax return), sent once per donor and year."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns import receipts
from funding.i18n import money
from funding.mail.service import enqueue
from funding.orgs.models import Organisation
from funding.settings import Settings


async def send_year(session: AsyncSession, settings: Settings, year: int) -> int:
    """Queue every donor's summary of ``year`` (receipts in force); returns how many were new."""
    sent = 0
    for org in (await session.scalars(select(Organisation).where(Organisation.general_interest))).all():
        for email, name, count, total in await receipts.donors_of_year(session, org.id, year):
            link = f"{settings.base_url}/recus/annuel/{receipts.summary_token(settings.secret_key, org.id, email, year)}"
            body = (f"Bonjour {name},\n\nEn {year}, vous avez donné {money(total)} à {org.name} "
                    f"({count} reçu(s) fiscal(aux)). Votre récapitulatif, à garder pour votre déclaration de revenus, "
                    f"avec chaque reçu imprimable :\n{link}\n\nMerci pour votre soutien.\nL'équipe Entre-Lab")
            if await enqueue(session, to=email, org_id=org.id, dedupe_key=f"tax-summary:{org.id}:{year}:{email}",
                             subject=f"Vos dons {year} à {org.name} : récapitulatif fiscal", body_text=body):
                sent += 1
    return sent
