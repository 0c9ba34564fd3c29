"""Where campaign money goes in the books (ACCOUNTING.md §2).

- a gift (no reward, or a reward within the tolerated counterpart):
  [ST] D 5115 net · D 627 fee · C 75411 Dons manuels                  (books.py posts it)
- a reward presale (a sale): [ST] … · C 4191 base · C 4457x VAT; on delivery
  [OD] D 4191 base · C 707 base
- the public match, once the campaign succeeded and every pledge is settled:
  [OD] D 441 · C 741, funding source public, with a Grant row for the funder
- refunds come back through the same purpose with a negative amount: the lines reverse
  (on 707 once the reward was delivered).

Every entry is tagged with its campaign (``campaign_entries``) and carries its site.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns.models import (
    IN_FLIGHT,
    Campaign,
    CampaignEntry,
    CampaignStatus,
    EntryKind,
    Match,
    MatchStatus,
    Nature,
    Pledge,
    PledgeStatus,
)
from funding.campaigns.pledges import lock_campaign, match_total, reload_pledge
from funding.clock import paris_today
from funding.db import digits, insert_ignore, must_get, rowcount, utcnow
from funding.ledger.chart import vat_account
from funding.ledger.models import FundingSource, Grant
from funding.ledger.service import EntryDraft, Line, credit, debit, post
from funding.payments import purposes
from funding.payments.books import dated_for_open_period
from funding.payments.books import source_key as stripe_key
from funding.payments.models import PaymentPurpose

PURPOSE = PaymentPurpose.PLEDGE
# Pledges that can still change the amount the funder matches.
UNSETTLED = (*IN_FLIGHT, PledgeStatus.ACTIVE, PledgeStatus.PENDING)


def revenue_lines(pledge: Pledge, amount: int, currency: str) -> list[Line]:
    """Revenue-side lines for ``amount`` (positive: money in; negative: refund), summing to -amount."""
    if pledge.nature == Nature.GIFT:
        return [Line("75411", -amount, currency)]
    base, vat = purposes.split_vat(amount, pledge.vat_per_mille) if pledge.vat_per_mille else (amount, 0)
    account = "707" if pledge.delivered_at is not None and amount < 0 else "4191"
    lines = [Line(account, -base, currency)]
    if vat:
        lines.append(Line(vat_account(pledge.vat_per_mille), -vat, currency, label="TVA sur prévente"))
    return lines


async def tag(session: AsyncSession, source_key: str, campaign_id: int, pledge_id: int | None, kind: str) -> None:
    await insert_ignore(session, CampaignEntry, {"source_key": source_key, "campaign_id": campaign_id, "pledge_id": pledge_id,
                                                 "kind": kind, "created_at": utcnow()}, ["source_key"])


async def tag_stripe(session: AsyncSession, pledge_id: int, txn_ids: list[str], kind: str) -> None:
    """Tag the entries of a pledge's balance transactions (posted now or later, by any path)."""
    campaign_id = await session.scalar(select(Pledge.campaign_id).where(Pledge.id == pledge_id))
    if campaign_id is None:
        return
    for txn_id in dict.fromkeys(t for t in txn_ids if t):
        await tag(session, stripe_key(txn_id), campaign_id, pledge_id, kind)


def charge_txns(charge: dict | None) -> tuple[list[str], list[str]]:
    """(charge, refunds) balance transaction ids of a charge object, expanded or not."""
    if not isinstance(charge, dict):
        return [], []

    def txn_of(obj) -> str | None:
        bt = obj.get("balance_transaction")
        return bt.get("id") if isinstance(bt, dict) else bt

    refunds = [txn_of(r) for r in ((charge.get("refunds") or {}).get("data") or []) if isinstance(r, dict)]
    return [t for t in [txn_of(charge)] if t], [t for t in refunds if t]


async def allocate(session: AsyncSession, metadata: dict, amount: int, currency: str) -> purposes.Allocation | None:
    """The purpose ``pledge``: a balance transaction of a contribution, charge or refund."""
    raw = str(metadata.get("pledge_id") or "")
    pledge = await session.get(Pledge, int(raw)) if digits(raw) else None
    if pledge is None:
        return None
    campaign = await must_get(session, Campaign, pledge.campaign_id)
    what = "don" if pledge.nature == Nature.GIFT else "prévente"
    return purposes.Allocation(
        org_id=campaign.org_id, site_id=campaign.site_id, funding_source=FundingSource.CROWDFUNDING,
        label=f"Campagne « {campaign.title} » : {what} n° {pledge.id}"[:200],
        lines=revenue_lines(pledge, amount, currency),
    )


async def deliver(session: AsyncSession, pledge_ids: list[int], *, by: str = "", today: dt.date | None = None) -> int:
    """Rewards handed over: each paid presale's advance becomes a sale ([OD] D 4191 · C 707). Once per pledge."""
    delivered = 0
    for pledge_id in pledge_ids:
        result = await session.execute(
            update(Pledge).where(Pledge.id == pledge_id, Pledge.status == PledgeStatus.PAID, Pledge.nature == Nature.SALE,
                                 Pledge.delivered_at.is_(None)).values(delivered_at=utcnow())
        )
        if rowcount(result) != 1:
            continue
        pledge = await reload_pledge(session, pledge_id)
        net = pledge.amount - pledge.amount_refunded
        delivered += 1
        if net <= 0:
            continue
        base = purposes.split_vat(net, pledge.vat_per_mille)[0] if pledge.vat_per_mille else net
        campaign = await must_get(session, Campaign, pledge.campaign_id)
        key = f"campaign-pledge:{pledge.id}:delivery"
        day = today or paris_today()
        drafts = await dated_for_open_period(session, [EntryDraft(
            org_id=campaign.org_id, site_id=campaign.site_id, journal="OD", entry_date=day, piece_date=day,
            label=f"Campagne « {campaign.title} » : contrepartie livrée, prévente n° {pledge.id}"[:200],
            piece_ref=f"CAMP-{campaign.id}-LIV-{pledge.id}", funding_source=FundingSource.CROWDFUNDING,
            lines=[debit("4191", base, pledge.currency), credit("707", base, pledge.currency)], source_key=key, created_by=by,
        )])
        await post(session, drafts)
        await tag(session, key, campaign.id, pledge.id, EntryKind.DELIVERY)
    return delivered


async def release_match(session: AsyncSession, campaign_id: int, *, today: dt.date | None = None) -> int | None:
    """The funder's share, once the campaign succeeded and nothing can change it any more:
    a grant notified ([OD] D 441 · C 741, public), with its Grant row. Returns the amount
    released, or None when it is not time yet (or already done)."""
    campaign = await lock_campaign(session, campaign_id)
    match = await session.scalar(select(Match).where(Match.campaign_id == campaign_id).with_for_update())
    if match is None or match.status != MatchStatus.PLEDGED or campaign.status not in (CampaignStatus.SUCCEEDED, CampaignStatus.CLOSED):
        return None
    unsettled = await session.scalar(select(Pledge.id).where(Pledge.campaign_id == campaign_id,
                                                             Pledge.status.in_(UNSETTLED)).limit(1))
    if unsettled is not None:
        return None
    amount = match_total(campaign, match)
    grant_id = None
    if amount > 0:
        day = today or paris_today()
        grant_id = await insert_ignore(session, Grant, {
            "org_id": campaign.org_id, "site_id": campaign.site_id, "funder_name": match.funder_name,
            "funder_siret": match.funder_siret, "reference": match.reference, "convention_date": day,
            "object": f"Abondement de la campagne de financement participatif « {campaign.title} »"[:256],
            "amount": amount, "currency": campaign.currency, "conditions": "unique", "payment_dates": "",
            "scheme": "Abondement public de financement participatif", "created_at": utcnow(),
        }, ["org_id", "reference"])
        if grant_id is None:
            grant_id = await session.scalar(select(Grant.id).where(Grant.org_id == campaign.org_id,
                                                                   Grant.reference == match.reference))
        key = f"campaign:{campaign.id}:match"
        drafts = await dated_for_open_period(session, [EntryDraft(
            org_id=campaign.org_id, site_id=campaign.site_id, journal="OD", entry_date=day, piece_date=day,
            label=f"Abondement {match.funder_name} : campagne « {campaign.title} »"[:200],
            piece_ref=match.reference[:100], funding_source=FundingSource.PUBLIC, grant_id=grant_id,
            lines=[debit("441", amount, campaign.currency), credit("741", amount, campaign.currency)], source_key=key,
        )])
        await post(session, drafts)
        await tag(session, key, campaign.id, None, EntryKind.MATCH)
    await session.execute(update(Match).where(Match.id == match.id, Match.status == MatchStatus.PLEDGED).values(
        status=MatchStatus.RELEASED, released_amount=amount, released_at=utcnow(), grant_id=grant_id))
    return amount
