"""``funding campaigns close``: what happens when campaigns end (the worker runs it).

1. decide: a live campaign past its end succeeds (crowd + match ≥ goal) or fails;
   all-or-nothing and failed → every promise is void, every backer told, nobody charged;
2. charge: the pledges of succeeded all-or-nothing campaigns, off session, each claimed
   by a conditional UPDATE (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) before its
   PaymentIntent is created through ``create_once`` with the key ``pledge:<id>:charge:<n>``;
   a claim left by a crash is resumed with the *same* key, so nobody is charged twice
   even when the job runs twice or on two workers at once; and before creating, the job
   asks Stripe (Search API, by our metadata) whether this pledge was already charged —
   a restored backup older than Stripe's 24 h idempotency window then adopts the charge
   it finds instead of making a second one. A Stripe read that fails after the charge
   fails that pledge only (resumed by ``resume_stale``); the others go on;
3. grace: a declined card or an unconfirmed authentication fails after 7 days;
4. match: once nothing can change it, the public funder's share is booked;
5. sweep: Checkout pages abandoned past their expiry (30 minutes, Stripe's
   ``checkout.session.expired`` normally comes first) are expired, their units given back.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update

from funding.campaigns import settle
from funding.campaigns.books import release_match
from funding.campaigns.flows import settle_payment_intent
from funding.campaigns.models import Campaign, CampaignStatus, Match, MatchStatus, Mode, Pledge, PledgeStatus
from funding.campaigns.pledges import lock_campaign, match_total
from funding.db import Sessions, dialect_of, must_get, rowcount, transaction, utcnow
from funding.payments.calls import adopt, create_once, find_ours
from funding.payments.models import PaymentPurpose
from funding.payments.service import CHECKOUT_LIFETIME, settle_session
from funding.payments.verify import StripeMismatch
from funding.stripe_gateway import (
    GatewayError,
    StripeGateway,
    StripeRefused,
    StripeUnknown,
)

log = logging.getLogger("funding.campaigns")
BATCH = 20
STALE_CLAIM = dt.timedelta(minutes=5)
# A pending pledge's Checkout expires after CHECKOUT_LIFETIME; its unit is released by the
# webhook, or, if that is late or lost, by the sweep a few minutes later.
CHECKOUT_PATIENCE = CHECKOUT_LIFETIME + dt.timedelta(minutes=5)


async def run(sessions: Sessions, settings, gw: StripeGateway, *, now: dt.datetime | None = None) -> int:
    """Everything due now. Returns how many things it did (0 when idle)."""
    now = now or utcnow()
    done = await decide_due(sessions, now)
    done += await charge_due(sessions, gw, now)
    done += await resume_stale(sessions, gw, now)
    done += await expire_grace(sessions, gw, now)
    done += await release_matches(sessions)
    done += await sweep_checkouts(sessions, gw, now)
    return done


async def decide_due(sessions: Sessions, now: dt.datetime) -> int:
    async with sessions() as session:
        due = (await session.scalars(select(Campaign.id).where(Campaign.status == CampaignStatus.LIVE, Campaign.ends_at <= now)
                                     .order_by(Campaign.ends_at))).all()
    decided = 0
    for campaign_id in due:
        async with transaction(sessions) as session:
            campaign = await lock_campaign(session, campaign_id)
            if campaign.status != CampaignStatus.LIVE or campaign.ends_at > now:
                continue  # another worker decided it
            match = await session.scalar(select(Match).where(Match.campaign_id == campaign_id).with_for_update())
            reached = campaign.crowd_total + match_total(campaign, match) >= campaign.goal
            outcome = CampaignStatus.SUCCEEDED if reached else CampaignStatus.FAILED
            result = await session.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.LIVE)
                                           .values(status=outcome, decided_at=now, updated_at=now))
            if rowcount(result) != 1:
                continue
            if not reached:
                if match is not None:
                    await session.execute(update(Match).where(Match.id == match.id, Match.status == MatchStatus.PLEDGED)
                                          .values(status=MatchStatus.CANCELED))
                if campaign.mode == Mode.ALL_OR_NOTHING:
                    await settle.void_campaign(session, campaign, now)
            log.info("campaign %s %s: %s + match of %s", campaign.slug, outcome, campaign.crowd_total, campaign.goal)
            decided += 1
    return decided


async def charge_due(sessions: Sessions, gw: StripeGateway, now: dt.datetime) -> int:
    charged = 0
    while True:
        async with transaction(sessions) as session:
            query = (select(Pledge.id).join(Campaign, Campaign.id == Pledge.campaign_id)
                     .where(Campaign.status.in_((CampaignStatus.SUCCEEDED, CampaignStatus.CLOSED)), Campaign.mode == Mode.ALL_OR_NOTHING,
                            Pledge.status.in_((PledgeStatus.ACTIVE, PledgeStatus.RETRY)))
                     .order_by(Pledge.id).limit(BATCH))
            if dialect_of(session) == "postgresql":
                query = query.with_for_update(of=Pledge, skip_locked=True)
            ids = (await session.scalars(query)).all()
            claimed = []
            for pledge_id in ids:
                row = (await session.execute(
                    update(Pledge).where(Pledge.id == pledge_id, Pledge.status.in_((PledgeStatus.ACTIVE, PledgeStatus.RETRY)))
                    .values(status=PledgeStatus.CHARGING, charge_attempt=Pledge.charge_attempt + 1, claimed_at=now, updated_at=now)
                    .returning(Pledge.id)
                )).scalar_one_or_none()
                if row is not None:
                    claimed.append(row)
        for pledge_id in claimed:
            await charge(sessions, gw, pledge_id, now)
            charged += 1
        if len(ids) < BATCH:
            return charged


async def charge(sessions: Sessions, gw: StripeGateway, pledge_id: int, now: dt.datetime | None = None) -> None:
    """Create (or find again, same key) the off-session PaymentIntent of a claimed pledge and apply its outcome."""
    async with sessions() as session:
        pledge = await must_get(session, Pledge, pledge_id)
        campaign = await must_get(session, Campaign, pledge.campaign_id)
    if pledge.status != PledgeStatus.CHARGING:
        return
    attempt = pledge.charge_attempt
    previous_id = pledge.payment_intent_id
    if attempt > 1 and previous_id and not await _previous_attempt_closed(sessions, gw, pledge.id, previous_id, now):
        return
    meta = {"purpose": PaymentPurpose.PLEDGE, "pledge_id": str(pledge.id), "campaign_id": str(campaign.id), "org_id": str(campaign.org_id),
            "site_id": str(campaign.site_id), "attempt": str(attempt)}
    params = {"amount": pledge.amount, "currency": pledge.currency.lower(), "customer": pledge.customer_id,
              "payment_method": pledge.payment_method_id, "off_session": True, "confirm": True, "metadata": meta,
              "description": f"{campaign.title} — contribution n° {pledge.id}"[:200]}
    ref = f"pledge:{pledge.id}:charge:{attempt}"
    try:
        pi = await _charged_already(sessions, gw, pledge.id, ref)
        if pi is None:
            pi = await create_once(sessions, gw, ref=ref, resource="payment_intents", params=params)
    except StripeRefused as exc:
        pi = dict(exc.payment_intent or {"id": None, "status": "requires_payment_method"})
        pi["metadata"] = {**(pi.get("metadata") or {}), **meta}
        async with transaction(sessions) as session:
            await settle.settle_charge(session, pi, code=exc.code or "card_declined", decline_code=exc.decline_code, now=now)
        return
    except StripeUnknown as exc:
        log.warning("pledge %s: charge outcome unknown (%s); resumed with the same key", pledge.id, exc)
        return
    except GatewayError as exc:  # Stripe could not be asked: nothing created; this pledge is resumed later
        log.warning("pledge %s: Stripe not asked whether it was charged (%s); resumed later", pledge.id, exc)
        return
    try:
        await settle_payment_intent(sessions, gw, pi["id"], now=now)
    except GatewayError as exc:  # charged, but not read back: this pledge stays claimed and is resumed, the others go on
        log.warning("pledge %s: charged (%s) but not read back (%s); resumed later with the same key", pledge.id, pi["id"], exc)


# A PaymentIntent in one of these took, or is taking, the money: never charge beside it.
CHARGED = ("succeeded", "processing", "requires_capture")


async def _charged_already(sessions: Sessions, gw: StripeGateway, pledge_id: int, ref: str) -> dict | None:
    """The pledge's PaymentIntent that already took the money, found at Stripe by our metadata
    (a restored backup, or a reply lost more than 24 h ago), adopted as this attempt's; else None."""
    found = [pi for pi in await find_ours(sessions, gw, "payment_intents", {"pledge_id": str(pledge_id)})
             if pi.get("status") in CHARGED and (pi.get("metadata") or {}).get("purpose") == PaymentPurpose.PLEDGE]
    if not found:
        return None
    pi = found[0]
    if len(found) > 1:
        log.error("pledge %s charged %s times at Stripe (%s): refund all but one", pledge_id, len(found), ", ".join(p["id"] for p in found))
    log.info("pledge %s: already charged at Stripe (%s): adopted, nothing created", pledge_id, pi["id"])
    await adopt(sessions, gw, ref=ref, resource="payment_intents", obj=pi)
    return pi


async def _previous_attempt_closed(sessions, gw: StripeGateway, pledge_id: int, previous_id: str, now) -> bool:
    """Before charging a new card, make sure the last attempt can no longer take the money
    (a 3-D Secure page left open): cancel it — or, if it succeeded meanwhile, settle that."""
    try:
        previous = await gw.retrieve("payment_intents", previous_id)
        if previous.get("status") == "succeeded":
            async with transaction(sessions) as session:
                await settle.settle_charge(session, previous, now=now)
            return False
        if previous.get("status") in ("requires_action", "requires_payment_method", "requires_confirmation"):
            await gw.call("payment_intents", "cancel", previous["id"], params={"cancellation_reason": "abandoned"})
    except GatewayError as exc:  # it moved on in the meantime, or Stripe is away: look again next round
        log.info("pledge %s: previous attempt %s not cancelled (%s)", pledge_id, previous_id, exc)
        return False
    return True


async def resume_stale(sessions: Sessions, gw: StripeGateway, now: dt.datetime) -> int:
    """A claim whose worker died mid-call: charge again with the same idempotency key."""
    async with sessions() as session:
        ids = (await session.scalars(select(Pledge.id).where(Pledge.status == PledgeStatus.CHARGING, Pledge.claimed_at < now - STALE_CLAIM)
                                     .limit(BATCH))).all()
    resumed = 0
    for pledge_id in ids:
        async with transaction(sessions) as session:
            result = await session.execute(update(Pledge).where(Pledge.id == pledge_id, Pledge.status == PledgeStatus.CHARGING,
                                                                Pledge.claimed_at < now - STALE_CLAIM).values(claimed_at=now))
        if rowcount(result) == 1:
            await charge(sessions, gw, pledge_id, now)
            resumed += 1
    return resumed


async def expire_grace(sessions: Sessions, gw: StripeGateway, now: dt.datetime) -> int:
    async with sessions() as session:
        rows = (await session.execute(select(Pledge.id, Pledge.payment_intent_id).where(
            Pledge.status.in_((PledgeStatus.CARD_DECLINED, PledgeStatus.ACTION_REQUIRED)), Pledge.grace_until <= now).limit(100))).all()
    failed = 0
    for pledge_id, pi_id in rows:
        async with transaction(sessions) as session:
            pledge = await settle.fail_after_grace(session, pledge_id, now)
        if pledge is None:
            continue
        failed += 1
        if pi_id:  # so that an old authentication link can no longer take the money
            try:
                await gw.call("payment_intents", "cancel", pi_id, params={"cancellation_reason": "abandoned"})
            except GatewayError as exc:
                log.info("pledge %s: payment intent %s not cancelled (%s)", pledge_id, pi_id, exc)
    return failed


async def release_matches(sessions: Sessions) -> int:
    async with sessions() as session:
        ids = (await session.scalars(select(Campaign.id).join(Match, Match.campaign_id == Campaign.id).where(
            Campaign.status.in_((CampaignStatus.SUCCEEDED, CampaignStatus.CLOSED)), Match.status == MatchStatus.PLEDGED))).all()
    released = 0
    for campaign_id in ids:
        async with transaction(sessions) as session:
            if await release_match(session, campaign_id) is not None:
                released += 1
    return released


async def sweep_checkouts(sessions: Sessions, gw: StripeGateway, now: dt.datetime) -> int:
    """Pending pledges whose Checkout was abandoned: expire the page at Stripe (so it can no
    longer be paid), then apply its final state (paid after all, or expired)."""
    async with sessions() as session:
        rows = (await session.execute(select(Pledge.id, Pledge.checkout_session_id, Pledge.created_at).where(
            Pledge.status == PledgeStatus.PENDING, Pledge.created_at < now - CHECKOUT_PATIENCE).limit(BATCH))).all()
    swept = 0
    for pledge_id, checkout_id, created_at in rows:
        try:
            if checkout_id is None:
                if created_at < now - dt.timedelta(days=1):  # Stripe never answered: nothing can be paid
                    async with transaction(sessions) as session:
                        swept += bool(await settle.expire(session, pledge_id, "aucune page de paiement ouverte"))
                continue
            checkout = await gw.retrieve("checkout.sessions", checkout_id, expand=["setup_intent"])
            if checkout.get("status") == "open":
                try:
                    checkout = await gw.call("checkout.sessions", "expire", checkout_id)
                except StripeRefused:  # completed in the meantime
                    checkout = await gw.retrieve("checkout.sessions", checkout_id, expand=["setup_intent"])
            async with transaction(sessions) as session:
                if checkout.get("mode") == "setup":
                    await settle.settle_setup_session(session, checkout)
                else:
                    await settle_session(session, checkout)
                    if checkout.get("status") == "expired":
                        await settle.expire(session, pledge_id, "page de paiement abandonnée")
            swept += 1
        except GatewayError as exc:
            log.info("pledge %s: checkout not swept yet (%s)", pledge_id, exc)
        except StripeMismatch as exc:  # Stripe's session does not pay this pledge: left for staff, the others go on
            log.warning("pledge %s: checkout refused: %s", pledge_id, exc)
    return swept
