"""The yearly summary of a donor's gifts (for their tax return), sent once per donor and year."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns import receipts
from funding.mail.compose import recipient_locales, render
from funding.mail.service import enqueue
from funding.orgs.models import Organisation
from funding.settings import Settings


async def send_year(session: AsyncSession, settings: Settings, year: int) -> int:
    """Queue every donor's summary of ``year`` (receipts in force), each in the donor's language;
    returns how many were new."""
    sent = 0
    for org in (await session.scalars(select(Organisation).where(Organisation.general_interest))).all():
        donors = await receipts.donors_of_year(session, org.id, year)
        locales = await recipient_locales(session, [email for email, *_ in donors])
        for email, name, count, total in donors:
            link = f"{settings.base_url}/recus/annuel/{receipts.summary_token(settings.secret_key, org.id, email, year)}"
            if await enqueue(session, to=email, org_id=org.id, dedupe_key=f"tax-summary:{org.id}:{year}:{email}",
                             **render("campaigns/tax_summary", locales.get(email.lower(), "fr"), name=name, year=year,
                                      org=org.name, total=total, currency="EUR", count=count, link=link)):
                sent += 1
    return sent
