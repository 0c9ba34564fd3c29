"""The worker sends each organisation's exports once its month is closed."""

from __future__ import annotations

import logging

from funding.db import must_get, transaction
from funding.exports.journal import ExportError
from funding.exports.service import periods_to_send, queue_period
from funding.orgs.models import Organisation

log = logging.getLogger("funding.exports")


async def send_closed_months(sessions, settings, gw) -> int:
    """Queue the emails of every newly closed month (the mail job sends them, retries
    failures and never sends one twice). Returns how many emails were queued."""
    async with sessions() as session:
        todo = [(org.id, period) for org, period in await periods_to_send(session)]
    queued = 0
    for org_id, period in todo:
        try:
            async with transaction(sessions) as session:
                org = await must_get(session, Organisation, org_id)
                done = await queue_period(session, settings, org, period, created_by="worker")
        except ExportError as exc:
            log.warning("exports of %s for %s not queued: %s", period, org_id, exc)
            continue
        queued += sum(q.new for q in done)
        if not done:
            log.warning("exports of %s for organisation %s: no recipient (add one: funding exports recipients --add)",
                        period, org_id)
    return queued


JOBS = [("monthly exports", send_closed_months)]
