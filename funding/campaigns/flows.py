"""The Stripe side of contributing: Checkout to pay (keep-it-all) or to save a card
(all-or-nothing), a new card after a decline, and confirming a payment on session.

Network calls never run inside a database transaction: the pledge is committed first,
then Stripe is called through ``create_once`` (idempotency key from our row, committed
before the call), then what Stripe answered is applied in a new transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from funding.campaigns import settle
from funding.campaigns.books import charge_txns, tag_stripe
from funding.campaigns.models import Campaign, CampaignStatus, EntryKind, Mode, Pledge, PledgeStatus, Tier
from funding.campaigns.pledges import Contribution, create_pledge
from funding.clock import local_day
from funding.db import Sessions, must_get, rowcount, transaction, utcnow
from funding.errors import Forbidden, Unavailable
from funding.i18n import gettext as _
from funding.i18n import money
from funding.payments import books
from funding.payments.calls import create_once
from funding.payments.models import PaymentPurpose
from funding.payments.service import checkout_expiry, start_checkout
from funding.settings import Settings
from funding.stripe_gateway import GatewayError, StripeGateway, StripeRefused

log = logging.getLogger("funding.campaigns")
CARD_STATES = (PledgeStatus.ACTIVE, PledgeStatus.RETRY, PledgeStatus.CARD_DECLINED, PledgeStatus.ACTION_REQUIRED)


class PaymentUnavailable(Unavailable):
    """Stripe could not be reached or refused to open the page: nothing was taken."""


class NotAllowed(Forbidden):
    """The pledge is not in a state that allows this; the message is for the backer."""


@dataclass
class Started:
    pledge_id: int
    url: str


def _meta(pledge: Pledge, campaign: Campaign) -> dict:
    return {"purpose": PaymentPurpose.PLEDGE, "pledge_id": str(pledge.id), "campaign_id": str(campaign.id),
            "org_id": str(campaign.org_id), "site_id": str(campaign.site_id)}


def _description(campaign: Campaign, tier: Tier | None) -> str:
    return f"{campaign.title} — {tier.title if tier else 'contribution libre'}"[:200]


def _card_note(campaign: Campaign, pledge: Pledge) -> dict:
    """What a saved card is for, shown on Checkout's card page above its button (setup mode has
    no amount of its own): the promise's amount, the campaign, the day of the charge."""
    text = _("Promesse de %(amount)s à « %(campaign)s » : votre carte sera débitée le %(day)s seulement si la campagne "
             "atteint son objectif ; sinon, rien ne sera prélevé.", amount=money(pledge.amount, pledge.currency),
             campaign=campaign.title, day=local_day(campaign.ends_at).strftime("%d/%m/%Y"))
    return {"submit": {"message": text[:1200]}}


async def start_contribution(sessions: Sessions, gw: StripeGateway, settings: Settings, campaign_id: int,
                             data: Contribution) -> Started:
    """Record the pledge, then open Stripe Checkout for it. ContributionError (bad input,
    nothing written) or PaymentUnavailable (the pledge is expired, its unit given back)."""
    async with transaction(sessions) as session:
        pledge = await create_pledge(session, campaign_id, data, secret_key=settings.secret_key, link_base=settings.base_url)
    return await open_checkout(sessions, gw, settings, pledge.id)


async def open_checkout(sessions: Sessions, gw: StripeGateway, settings: Settings, pledge_id: int) -> Started:
    """Checkout for a pending pledge: ``payment`` mode (keep-it-all) or ``setup`` mode (all-or-nothing)."""
    async with sessions() as session:
        pledge = await must_get(session, Pledge, pledge_id)
        campaign = await must_get(session, Campaign, pledge.campaign_id)
        tier = await session.get(Tier, pledge.tier_id) if pledge.tier_id else None
    base = settings.base_url
    success = f"{base}/campagnes/{campaign.slug}/merci?session_id={{CHECKOUT_SESSION_ID}}"
    cancel = f"{base}/campagnes/{campaign.slug}?annule=1"
    try:
        if campaign.mode == Mode.KEEP_IT_ALL:
            payment, url = await start_checkout(
                sessions, gw, purpose=PaymentPurpose.PLEDGE, org_id=campaign.org_id, site_id=campaign.site_id, amount=pledge.amount,
                currency=pledge.currency, description=_description(campaign, tier), success_url=success, cancel_url=cancel,
                email=pledge.email, name=pledge.name, ref=f"pledge:{pledge.id}",
                metadata={"pledge_id": str(pledge.id), "campaign_id": str(campaign.id)},
            )
            async with transaction(sessions) as session:
                await session.execute(update(Pledge).where(Pledge.id == pledge.id).values(
                    payment_id=payment.id, checkout_session_id=payment.checkout_session_id, updated_at=utcnow()))
            return Started(pledge.id, url)
        meta = _meta(pledge, campaign)
        customer = await create_once(sessions, gw, ref=f"pledge:{pledge.id}", resource="customers",
                                     params={"email": pledge.email, "name": pledge.name, "metadata": meta})
        checkout = await create_once(sessions, gw, ref=f"pledge:{pledge.id}", resource="checkout.sessions", params={
            "mode": "setup", "customer": customer["id"], "currency": pledge.currency.lower(),
            "allowed_payment_method_types": ["card"], "metadata": meta, "locale": "fr",
            "setup_intent_data": {"metadata": meta, "description": _description(campaign, tier)},
            "custom_text": _card_note(campaign, pledge),
            "success_url": success, "cancel_url": cancel, "expires_at": checkout_expiry(),
        })
        async with transaction(sessions) as session:
            await session.execute(update(Pledge).where(Pledge.id == pledge.id).values(
                customer_id=customer["id"], checkout_session_id=checkout["id"], updated_at=utcnow()))
        return Started(pledge.id, checkout["url"])
    except GatewayError as exc:
        log.warning("pledge %s: Stripe Checkout unavailable: %s", pledge.id, exc)
        async with transaction(sessions) as session:
            await settle.expire(session, pledge.id, f"Stripe indisponible : {exc}")
        raise PaymentUnavailable(str(exc)) from exc


async def settle_return(sessions: Sessions, gw: StripeGateway, checkout_id: str) -> int | None:
    """The backer is back from Checkout: apply the session's current state now (the webhook
    may come later, or may have come already). Returns the pledge id."""
    from funding.payments.service import settle_session

    checkout = await gw.retrieve("checkout.sessions", checkout_id, expand=["setup_intent", "payment_intent.latest_charge"])
    pledge_id = settle.pledge_id_of(checkout)
    if pledge_id is None:
        return None
    pi = checkout.get("payment_intent")
    paid, _refunds = charge_txns(pi.get("latest_charge") if isinstance(pi, dict) else None)
    async with transaction(sessions) as session:
        if checkout.get("mode") == "setup":
            await settle.settle_setup_session(session, checkout)
        else:
            await settle_session(session, checkout)
            if checkout.get("status") == "expired":
                await settle.expire(session, pledge_id, "session de paiement expirée")
            await tag_stripe(session, pledge_id, paid, EntryKind.PAYMENT)
    await _book(sessions, gw, paid)
    return pledge_id


async def _book(sessions: Sessions, gw: StripeGateway, txn_ids: list[str]) -> None:
    if not txn_ids:
        return
    try:
        await books.ingest(sessions, gw, txn_ids)
    except Exception:
        log.info("balance transactions %s: booking deferred to the webhook", txn_ids)


async def start_card_update(sessions: Sessions, gw: StripeGateway, pledge_id: int) -> str:
    """A Checkout (setup mode) to save another card for an all-or-nothing pledge."""
    async with transaction(sessions) as session:
        pledge = await session.get(Pledge, pledge_id)
        campaign = await must_get(session, Campaign, pledge.campaign_id) if pledge else None
        if pledge is None or campaign is None or campaign.mode != Mode.ALL_OR_NOTHING or not pledge.customer_id:
            raise NotAllowed(_("Cette contribution ne se règle pas par une carte enregistrée."))
        before_deadline = pledge.status == PledgeStatus.ACTIVE and campaign.status == CampaignStatus.LIVE and utcnow() < campaign.ends_at
        if not before_deadline and pledge.status not in (PledgeStatus.CARD_DECLINED, PledgeStatus.ACTION_REQUIRED, PledgeStatus.RETRY):
            raise NotAllowed(_("La carte de cette contribution ne peut plus être changée."))
        number = pledge.card_sessions + 1
        claimed = await session.execute(update(Pledge).where(Pledge.id == pledge_id, Pledge.card_sessions == number - 1)
                                        .values(card_sessions=number))
        if rowcount(claimed) != 1:
            raise NotAllowed(_("Un changement de carte est déjà en cours : réessayez."))
        meta = _meta(pledge, campaign)
        token, base = pledge.access_token, pledge.link_base
    try:
        checkout = await create_once(sessions, gw, ref=f"pledge:{pledge_id}:card:{number}", resource="checkout.sessions", params={
            "mode": "setup", "customer": pledge.customer_id, "currency": pledge.currency.lower(),
            "allowed_payment_method_types": ["card"], "metadata": {**meta, "card": str(number)}, "locale": "fr",
            "setup_intent_data": {"metadata": {**meta, "card": str(number)}, "description": f"{campaign.title} — nouvelle carte"[:200]},
            "custom_text": _card_note(campaign, pledge),
            "success_url": f"{base}/contributions/{token}/carte?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{base}/contributions/{token}",
        })
    except GatewayError as exc:
        raise PaymentUnavailable(str(exc)) from exc
    async with transaction(sessions) as session:
        await session.execute(update(Pledge).where(Pledge.id == pledge_id).values(checkout_session_id=checkout["id"],
                                                                                  updated_at=utcnow()))
    return checkout["url"]


@dataclass
class Confirmation:
    redirect: str | None = None  # the bank's authentication page
    paid: bool = False
    error: str | None = None


async def confirm_on_session(sessions: Sessions, gw: StripeGateway, pledge_id: int, return_url: str) -> Confirmation:
    """The backer confirms, on session, a payment their bank wanted authenticated."""
    async with sessions() as session:
        pledge = await session.get(Pledge, pledge_id)
    if pledge is None or pledge.status != PledgeStatus.ACTION_REQUIRED or not pledge.payment_intent_id:
        raise NotAllowed(_("Ce paiement n'attend pas de confirmation."))
    try:
        pi = await gw.call("payment_intents", "confirm", pledge.payment_intent_id,
                           params={"payment_method": pledge.payment_method_id, "return_url": return_url},
                           key=f"entrelab-pledge-{pledge_id}-confirm-{pledge.charge_attempt}-{secrets.token_hex(6)}")
    except StripeRefused as exc:
        if exc.code == "payment_intent_unexpected_state":
            pi = await gw.retrieve("payment_intents", pledge.payment_intent_id)
        else:
            return Confirmation(error=exc.message)
    except GatewayError as exc:
        raise PaymentUnavailable(str(exc)) from exc
    if pi.get("status") == "requires_action":
        action = pi.get("next_action") or {}
        url = ((action.get("redirect_to_url") or {}).get("url")) if action.get("type") == "redirect_to_url" else None
        if url:
            return Confirmation(redirect=url)
    return Confirmation(paid=await settle_payment_intent(sessions, gw, pi["id"]))


async def settle_payment_intent(sessions: Sessions, gw: StripeGateway, pi_id: str, *,
                                now: dt.datetime | None = None) -> bool:
    """Apply a PaymentIntent's current state to its pledge, and book its charge if it succeeded."""
    pi = await gw.retrieve("payment_intents", pi_id, expand=["latest_charge"])
    paid, _refunds = charge_txns(pi.get("latest_charge")) if pi.get("status") == "succeeded" else ([], [])
    async with transaction(sessions) as session:
        pledge = await settle.settle_charge(session, pi, now=now)
        if pledge is not None:
            await tag_stripe(session, pledge.id, paid, EntryKind.PAYMENT)
    await _book(sessions, gw, paid)
    async with sessions() as session:
        status = await session.scalar(select(Pledge.status).where(Pledge.id == pledge.id)) if pledge else None
    return status == PledgeStatus.PAID
