"""The bar's worker jobs: closings that are due, the monthly cut-off, billing of batches."""

from __future__ import annotations

import logging

from sqlalchemy import select

from funding.bar.closings import close_due
from funding.bar.models import TillHead
from funding.bar.settlement import billing_job, cutoff_job
from funding.db import transaction
from funding.orgs.models import Site

log = logging.getLogger("funding.bar")


async def closings_job(sessions, settings, gw) -> int:
    """Close past days, months and fiscal years of every till that has sales (one transaction per site)."""
    async with sessions() as session:
        sites = (await session.scalars(select(Site).join(TillHead, TillHead.site_id == Site.id).order_by(Site.id))).all()
    made = 0
    for site in sites:
        try:
            async with transaction(sessions) as session:
                made += await close_due(session, site)
        except Exception:
            log.exception("bar closings of %s failed; retried next round", site.slug)
    return made


JOBS = [
    ("bar closings", closings_job),
    ("bar cut-off", cutoff_job),
    ("bar billing", billing_job),
]
