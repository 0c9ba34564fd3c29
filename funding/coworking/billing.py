"""What members (and the join page) ask Stripe to do: subscribe, buy a pass, change plan
with a proration preview, cancel at period end, and update their card in the Billing Portal.

Network calls happen outside any database transaction; each creating call goes through
``create_once`` (its row committed first); state comes back through ``apply_subscription``
right away and through the webhooks anyway.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from funding.auth.models import User
from funding.coworking.lifecycle import apply_subscription, fetched_version, first_debit_processing, from_unix
from funding.coworking.members import ensure_customer, ensure_join_customer, member_from_metadata
from funding.coworking.models import (
    LIVE_STATUSES,
    RUNNING,
    Checkout,
    CheckoutStatus,
    JoinRequest,
    JoinStatus,
    Member,
    Plan,
    PlanKind,
    PlanPrice,
    Subscription,
)
from funding.coworking.plans import current_price, price_ttc
from funding.db import digits, insert_ignore, must_get, transaction, utcnow
from funding.errors import FundingError
from funding.i18n import gettext as _
from funding.orgs.models import Site
from funding.payments import prenotice
from funding.payments.calls import create_once
from funding.payments.models import PaymentPurpose
from funding.payments.service import checkout_expiry, start_checkout
from funding.payments.tax_rates import tax_rate_id
from funding.security import TokenError, sign, unsign
from funding.stripe_gateway import GatewayError, StripeGateway, StripeUnknown, stripe_id

CHANGE_TOKEN = "coworking-change"  # noqa: S105  (the purpose a signed token is for, not a secret)
CHANGE_TOKEN_MAX_AGE = 15 * 60


class BillingError(FundingError):
    """A refused member action; the message is for a person."""


def payment_method_types(currency: str) -> list[str]:
    """What a plan's Checkout offers: the card, and SEPA Direct Debit for a plan in euros (a
    debit is ``processing`` for days: see lifecycle.access_of for the access meanwhile)."""
    return ["card", "sepa_debit"] if currency.upper() == "EUR" else ["card"]


def subscription_metadata(member: Member, plan: Plan, site: Site, checkout_id: int) -> dict:
    return {"purpose": "coworking", "member_id": str(member.id), "site_id": str(site.id), "org_id": str(site.org_id),
            "plan_id": str(plan.id), "kind": plan.kind, "checkout_id": str(checkout_id)}


async def live_subscription_of_kind(session, member_id: int, kind: str) -> Subscription | None:
    return await session.scalar(select(Subscription).where(  # one whose first debit is processing is live too
        Subscription.member_id == member_id, Subscription.kind == kind,
        or_(Subscription.status.in_(LIVE_STATUSES), first_debit_processing())).limit(1))


async def start_subscription(sessions: async_sessionmaker, gw: StripeGateway, *, member_id: int, plan_id: int,
                             success_url: str, cancel_url: str) -> str:
    """Open a Checkout session (``subscription`` mode) for a plan; returns its URL."""
    async with sessions() as session:
        member = await session.get(Member, member_id)
        plan = await session.get(Plan, plan_id)
        site = await session.get(Site, plan.site_id)
        price = await current_price(session, plan.id)
        if price is None or not plan.active:
            raise BillingError(_("Cette formule n'est pas encore en vente en ligne : contactez l'accueil du lieu."))
        if await live_subscription_of_kind(session, member.id, plan.kind):
            raise BillingError(_("Vous avez déjà un abonnement de ce type en cours : changez de formule depuis votre espace membre."))
        stale = (await session.scalars(select(Checkout.checkout_session_id).where(
            Checkout.member_id == member.id, Checkout.status == CheckoutStatus.OPEN, Checkout.checkout_session_id.is_not(None)))).all()
    customer = await ensure_customer(sessions, gw, member.id)
    for session_id in stale:  # one open checkout per member: a second payment could start a second subscription
        with contextlib.suppress(GatewayError):  # already completed or expired: its webhook tells us which
            await gw.call("checkout.sessions", "expire", session_id)
    async with transaction(sessions) as session:
        if stale:
            await session.execute(update(Checkout).where(Checkout.checkout_session_id.in_(stale), Checkout.status == CheckoutStatus.OPEN)
                                  .values(status=CheckoutStatus.EXPIRED))
        checkout = Checkout(member_id=member.id, plan_id=plan.id, price_id=price.id, status=CheckoutStatus.CREATED)
        session.add(checkout)
        await session.flush()
    meta = subscription_metadata(member, plan, site, checkout.id)
    rate = await tax_rate_id(sessions, gw, price.vat_rate)
    params = {
        "mode": "subscription",
        "customer": customer,
        "line_items": [{"price": price.stripe_price_id, "quantity": 1, "tax_rates": [rate]}],
        "subscription_data": {"metadata": meta, "description": f"{plan.name} — {site.name}"[:200]},
        "metadata": meta,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "locale": "fr",
        "allowed_payment_method_types": payment_method_types(plan.currency),
        **prenotice.checkout_note(payment_method_types(plan.currency)),
    }
    try:
        obj = await create_once(sessions, gw, ref=f"coworking-checkout:{checkout.id}", resource="checkout.sessions", params=params)
    except StripeUnknown:
        async with transaction(sessions) as session:
            await session.execute(update(Checkout).where(Checkout.id == checkout.id, Checkout.status == CheckoutStatus.CREATED)
                                  .values(status=CheckoutStatus.UNKNOWN))
        raise
    async with transaction(sessions) as session:
        await session.execute(update(Checkout).where(Checkout.id == checkout.id, Checkout.status.in_((CheckoutStatus.CREATED, CheckoutStatus.UNKNOWN)))
                              .values(status=CheckoutStatus.OPEN, checkout_session_id=obj["id"]))
    return obj["url"]


async def start_pass(sessions: async_sessionmaker, gw: StripeGateway, *, member_id: int, plan_id: int, success_url: str,
                     cancel_url: str) -> str:
    """A pass is a one-off payment: Checkout ``payment`` mode through the payments service. Its
    sale is booked from the payment; Stripe also issues the paid invoice (metadata
    ``entrelab_booked``: listed and printed for the member, not booked a second time)."""
    async with sessions() as session:
        member = await session.get(Member, member_id)
        user = await session.get(User, member.user_id)
        plan = await session.get(Plan, plan_id)
        site = await session.get(Site, plan.site_id)
    customer = await ensure_customer(sessions, gw, member.id)
    meta = {"member_id": str(member.id), "plan_id": str(plan.id), "vat_rate": str(plan.vat_rate), "account": plan.account}
    _payment, url = await start_checkout(
        sessions, gw, purpose=PaymentPurpose.PASS, org_id=site.org_id, site_id=site.id, amount=price_ttc(plan.price_ht, plan.vat_rate),
        currency=plan.currency, description=f"{plan.name} — {site.name}", email=user.email,
        name=member.company_name or user.name, ref=f"coworking-member:{member.id}", success_url=success_url,
        cancel_url=cancel_url, metadata=meta, tax_rates=[await tax_rate_id(sessions, gw, plan.vat_rate)], customer=customer,
        invoice_metadata={**meta, "purpose": "coworking", "site_id": str(site.id), "entrelab_booked": "1"},
    )
    return url


# --- a join's first payment: the account is created when it succeeds ---------------------------


async def start_join(sessions: async_sessionmaker, gw: StripeGateway, *, join_id: int, success_url: str,
                     cancel_url: str) -> str:
    """Open Checkout for a join request (nobody's account yet): a plan in ``subscription`` mode, a
    pass in ``payment`` mode, charged to the join's own Stripe customer. Each opening has its
    own key (``attempts``); the previous session is expired, so one link never pays twice."""
    async with transaction(sessions) as session:
        join = await session.get(JoinRequest, join_id, with_for_update=True, populate_existing=True)
        if join is None or join.status != JoinStatus.OPEN:
            raise BillingError(_("Cette adhésion est déjà réglée : connectez-vous pour la retrouver."))
        join.attempts += 1
        attempt, stale = join.attempts, join.checkout_session_id
        plan = await must_get(session, Plan, join.plan_id)
        site = await must_get(session, Site, plan.site_id)
        price = await current_price(session, plan.id)
    if plan.kind != PlanKind.PASS and (price is None or not plan.active):  # (a pass is sold at its plan's price)
        raise BillingError(_("Cette formule n'est pas encore en vente en ligne : contactez l'accueil du lieu."))
    customer = await ensure_join_customer(sessions, gw, join.id)
    if stale:
        with contextlib.suppress(GatewayError):  # already completed or expired: its webhook tells us which
            await gw.call("checkout.sessions", "expire", stale)
    meta = {"purpose": "coworking", "join_id": str(join.id), "site_id": str(site.id), "org_id": str(site.org_id),
            "plan_id": str(plan.id), "kind": plan.kind}
    if plan.kind == PlanKind.PASS:
        pass_meta = {"join_id": str(join.id), "plan_id": str(plan.id), "vat_rate": str(plan.vat_rate), "account": plan.account}
        payment, url = await start_checkout(
            sessions, gw, purpose=PaymentPurpose.PASS, org_id=site.org_id, site_id=site.id,
            amount=price_ttc(plan.price_ht, plan.vat_rate), currency=plan.currency, description=f"{plan.name} — {site.name}",
            email=join.email, name=join.company_name or join.name, ref=f"coworking-join:{join.id}", success_url=success_url,
            cancel_url=cancel_url, metadata=pass_meta, tax_rates=[await tax_rate_id(sessions, gw, plan.vat_rate)],
            customer=customer, invoice_metadata={**pass_meta, "purpose": "coworking", "site_id": str(site.id),
                                                 "entrelab_booked": "1"},
        )
        session_id = payment.checkout_session_id
    elif price is not None:
        rate = await tax_rate_id(sessions, gw, price.vat_rate)
        obj = await create_once(sessions, gw, ref=f"coworking-join-checkout:{join.id}:{attempt}", resource="checkout.sessions",
                                params={
                                    "mode": "subscription",
                                    "customer": customer,
                                    "line_items": [{"price": price.stripe_price_id, "quantity": 1, "tax_rates": [rate]}],
                                    "subscription_data": {"metadata": meta, "description": f"{plan.name} — {site.name}"[:200]},
                                    "metadata": meta,
                                    "success_url": success_url,
                                    "cancel_url": cancel_url,
                                    "locale": "fr",
                                    "allowed_payment_method_types": payment_method_types(plan.currency),
                                    "expires_at": checkout_expiry(),
                                    **prenotice.checkout_note(payment_method_types(plan.currency)),
                                })
        session_id, url = obj["id"], obj["url"]
    else:
        raise BillingError(_("Cette formule n'est pas encore en vente en ligne : contactez l'accueil du lieu."))
    async with transaction(sessions) as session:
        await session.execute(update(JoinRequest).where(JoinRequest.id == join.id, JoinRequest.attempts == attempt)
                              .values(checkout_session_id=session_id))
    return url


async def _joined_checkout(session, checkout: dict) -> Checkout | None:
    """A join's subscription checkout, complete: its member (made now if no event made it
    before) gets the checkout row every member's checkout has."""
    meta = checkout.get("metadata") or {}
    member = await member_from_metadata(session, meta, stripe_id(checkout.get("customer")))
    if member is None or not digits(str(meta.get("plan_id", ""))):
        return None
    sub = checkout.get("subscription")
    items = ((sub.get("items") or {}).get("data") or []) if isinstance(sub, dict) else []
    price = None
    if items:
        price = await session.scalar(select(PlanPrice).where(PlanPrice.stripe_price_id == stripe_id(items[0].get("price"))))
    if price is None:
        price = await current_price(session, int(meta["plan_id"]))
    if price is None:
        return None
    await insert_ignore(session, Checkout, {
        "member_id": member.id, "plan_id": int(meta["plan_id"]), "price_id": price.id, "status": CheckoutStatus.COMPLETE,
        "checkout_session_id": checkout["id"], "stripe_subscription_id": stripe_id(sub), "created_at": utcnow()},
        ["checkout_session_id"])
    return await session.scalar(select(Checkout).where(Checkout.checkout_session_id == checkout["id"]))


async def complete_checkout(sessions: async_sessionmaker, gw: StripeGateway, session_id: str) -> Checkout | None:
    """The member's return from Checkout: apply Stripe's current state now (the webhook may come later)."""
    checkout = await gw.retrieve("checkout.sessions", session_id, expand=["subscription"])
    async with transaction(sessions) as session:
        return await apply_checkout(session, checkout, None)


async def apply_checkout(session, checkout: dict, version: int | None) -> Checkout | None:
    """``version=None``: the checkout (and its subscription) were fetched just now."""
    meta = checkout.get("metadata") or {}
    if checkout.get("mode") != "subscription" or meta.get("purpose") != "coworking":
        return None
    row = await session.scalar(select(Checkout).where(Checkout.checkout_session_id == checkout["id"]))
    if row is None and digits(str(meta.get("checkout_id", ""))):
        row = await session.get(Checkout, int(meta["checkout_id"]))
    if row is None and digits(str(meta.get("join_id", ""))) and checkout.get("status") == "complete":
        row = await _joined_checkout(session, checkout)
    if row is None:
        return None
    sub = checkout.get("subscription")
    if checkout.get("status") == "complete":
        await session.execute(update(Checkout).where(Checkout.id == row.id, Checkout.status != CheckoutStatus.COMPLETE).values(
            status=CheckoutStatus.COMPLETE, checkout_session_id=checkout["id"], stripe_subscription_id=sub["id"] if isinstance(sub, dict) else sub))
    elif checkout.get("status") == "expired":
        still_open = (CheckoutStatus.CREATED, CheckoutStatus.OPEN, CheckoutStatus.UNKNOWN)
        await session.execute(update(Checkout).where(Checkout.id == row.id, Checkout.status.in_(still_open))
                              .values(status=CheckoutStatus.EXPIRED))
    if isinstance(sub, dict):
        await apply_subscription(session, sub, version if version is not None else
                                 await fetched_version(session, Subscription, sub["id"]))
    await session.refresh(row)
    return row


# --- plan changes ------------------------------------------------------------------------


@dataclass
class PreviewLine:
    label: str
    amount: int
    start: dt.datetime | None
    end: dt.datetime | None
    credit: bool


@dataclass
class Preview:
    current: Plan
    target: Plan
    currency: str
    lines: list[PreviewLine] = field(default_factory=list)
    total: int = 0
    amount_due: int = 0
    token: str = ""

    @property
    def credit(self) -> int:
        return -self.total if self.total < 0 else 0


async def change_options(session, sub: Subscription) -> list[Plan]:
    """The plans a subscription may move to: same site, same kind and period, on sale online."""
    current = await session.get(Plan, sub.plan_id) if sub.plan_id else None
    if current is None:
        return []
    plans = (await session.scalars(select(Plan).where(
        Plan.site_id == sub.site_id, Plan.kind == current.kind, Plan.interval == current.interval, Plan.active,
        Plan.id != current.id).order_by(Plan.position, Plan.id))).all()
    return [p for p in plans if await current_price(session, p.id) is not None]


async def _checked_change(session, member: Member, sub: Subscription, plan_id: int) -> tuple[Plan, Plan, PlanPrice]:
    if sub.member_id != member.id:
        raise LookupError("not this member's subscription")
    if sub.status not in RUNNING:
        raise BillingError(_("Cet abonnement ne peut plus changer de formule."))
    if sub.cancel_at_period_end:
        raise BillingError(_("Votre abonnement prend fin à la fin de la période : reprenez-le avant de changer de formule."))
    options = {p.id: p for p in await change_options(session, sub)}
    if plan_id not in options:
        raise BillingError(_("Choisissez une des formules proposées."))
    target = options[plan_id]
    if target.company_only and not member.company_name:
        raise BillingError(_("Cette formule est réservée aux entreprises : renseignez d'abord votre entreprise et son SIREN."))
    price = await current_price(session, target.id)
    if price is None:  # change_options offers only plans on sale
        raise BillingError(_("Choisissez une des formules proposées."))
    # A plan to move to was offered: the subscription has a plan.
    return await must_get(session, Plan, sub.plan_id), target, price


async def preview_change(sessions: async_sessionmaker, gw: StripeGateway, settings, *, member_id: int, sub_id: int,
                         plan_id: int) -> Preview:
    """What changing plan now would cost (Stripe's ``invoices.create_preview``), and a signed
    token that lets the member confirm exactly this change for a few minutes."""
    async with sessions() as session:
        member = await session.get(Member, member_id)
        sub = await session.get(Subscription, sub_id)
        if sub is None:
            raise LookupError("no such subscription")
        current, target, price = await _checked_change(session, member, sub, plan_id)
        prices = dict((await session.execute(select(PlanPrice.stripe_price_id, PlanPrice.plan_id))).all())
        names = dict((await session.execute(select(Plan.id, Plan.name).where(Plan.site_id == sub.site_id))).all())
    stripe_sub = await gw.retrieve("subscriptions", sub.stripe_subscription_id)
    item = stripe_sub["items"]["data"][0]
    rate = await tax_rate_id(sessions, gw, price.vat_rate)
    # Prorated at Stripe's "now" (a test clock may differ from ours); the confirmation reuses that moment.
    invoice = await gw.call("invoices", "create_preview", params={
        "customer": member.stripe_customer_id, "subscription": sub.stripe_subscription_id,
        "subscription_details": {"items": [{"id": item["id"], "price": price.stripe_price_id, "tax_rates": [rate]}],
                                 "proration_behavior": "always_invoice"},
    })
    starts = [int((line.get("period") or {}).get("start") or 0) for line in (invoice.get("lines") or {}).get("data") or []]
    when = min([s for s in starts if s] or [int(time.time())])
    preview = Preview(current=current, target=target, currency=(invoice.get("currency") or "eur").upper(),
                      total=int(invoice.get("total") or 0), amount_due=int(invoice.get("amount_due") or 0))
    for line in (invoice.get("lines") or {}).get("data") or []:
        details = (line.get("pricing") or {}).get("price_details") or {}
        plan_name = names.get(prices.get(details.get("price")), "")
        amount = int(line.get("amount") or 0)
        period = line.get("period") or {}
        if amount < 0:
            label = _("Crédit pour le temps non utilisé de « %(plan)s »", plan=plan_name)
        else:
            label = _("« %(plan)s » pour le reste de la période", plan=plan_name)
        preview.lines.append(PreviewLine(label, amount, from_unix(period.get("start")), from_unix(period.get("end")), amount < 0))
    preview.token = sign(settings.secret_key, CHANGE_TOKEN, {"m": member.id, "s": sub.id, "p": target.id,
                                                               "price": price.id, "d": when})
    return preview


async def confirm_change(sessions: async_sessionmaker, gw: StripeGateway, settings, *, member_id: int, token: str) -> Subscription:
    """Apply a previewed change: the subscription's item moves to the new price, prorated at the
    previewed moment and invoiced now. A double submission sends the same idempotency key."""
    try:
        data = unsign(settings.secret_key, CHANGE_TOKEN, token, max_age=CHANGE_TOKEN_MAX_AGE)
    except TokenError as exc:
        raise BillingError(_("Cet aperçu a expiré : demandez-en un nouveau.") if str(exc) == "expired"
                           else _("Demande de changement invalide.")) from None
    if not isinstance(data, dict) or data.get("m") != member_id:
        raise LookupError("not this member's change")
    async with sessions() as session:
        member = await session.get(Member, member_id)
        sub = await session.get(Subscription, int(data["s"]))
        if sub is None:
            raise LookupError("no such subscription")
        _current, target, price = await _checked_change(session, member, sub, int(data["p"]))
        if price.id != data.get("price"):
            raise BillingError(_("Le prix de cette formule a changé : demandez un nouvel aperçu."))
    stripe_sub = await gw.retrieve("subscriptions", sub.stripe_subscription_id)
    item = stripe_sub["items"]["data"][0]
    key = f"entrelab-coworking-change-{sub.id}-{hashlib.sha256(token.encode()).hexdigest()[:24]}"
    rate = await tax_rate_id(sessions, gw, price.vat_rate)
    updated = await gw.call("subscriptions", "update", sub.stripe_subscription_id, key=key, params={
        "items": [{"id": item["id"], "price": price.stripe_price_id, "tax_rates": [rate]}],
        "proration_behavior": "always_invoice",
        "proration_date": int(data["d"]),
        "metadata": {"plan_id": str(target.id)},
    })
    async with transaction(sessions) as session:
        return await _mirrored(session, updated)


async def _mirrored(session: AsyncSession, updated: dict) -> Subscription:
    """The row of a member's subscription that Stripe just returned, brought up to date."""
    row = await apply_subscription(session, updated, await fetched_version(session, Subscription, updated["id"]))
    if row is None:  # we only ask Stripe to change a member's own subscription
        raise LookupError(f"subscription {updated['id']} is no member's")
    return row


async def set_cancel_at_period_end(sessions: async_sessionmaker, gw: StripeGateway, *, member_id: int, sub_id: int,
                                   cancel: bool) -> Subscription:
    async with sessions() as session:
        sub = await session.get(Subscription, sub_id)
        if sub is None or sub.member_id != member_id:
            raise LookupError("not this member's subscription")
        if sub.status not in RUNNING:
            raise BillingError(_("Cet abonnement est déjà terminé."))
    key = f"entrelab-coworking-cancel-{sub.id}-{int(cancel)}-{secrets.token_hex(8)}"
    updated = await gw.call("subscriptions", "update", sub.stripe_subscription_id, key=key,
                            params={"cancel_at_period_end": cancel})
    async with transaction(sessions) as session:
        return await _mirrored(session, updated)


async def portal_url(sessions: async_sessionmaker, gw: StripeGateway, *, member_id: int, return_url: str) -> str:
    """A short-lived Billing Portal session where the member updates their card."""
    async with sessions() as session:
        member = await session.get(Member, member_id)
    if not member.stripe_customer_id:
        raise BillingError(_("Aucun moyen de paiement enregistré pour l'instant."))
    portal = await create_once(sessions, gw, ref=f"coworking-portal:{member.id}:{secrets.token_hex(6)}",
                               resource="billing_portal.sessions", tag=False,
                               params={"customer": member.stripe_customer_id, "return_url": return_url, "locale": "fr"})
    return portal["url"]



async def start_payment_method_setup(sessions: async_sessionmaker, gw: StripeGateway, *, member_id: int, success_url: str,
                                     cancel_url: str) -> str:
    """A Checkout session in ``setup`` mode where the member saves a new card or signs a new SEPA
    mandate (an IBAN); nothing is debited. ``use_payment_method`` makes it the one Stripe uses."""
    async with sessions() as session:
        member = await session.get(Member, member_id)
        plan_currency = await session.scalar(select(Plan.currency).join(Subscription, Subscription.plan_id == Plan.id).where(
            Subscription.member_id == member_id).order_by(Subscription.id.desc()).limit(1))
    customer = await ensure_customer(sessions, gw, member.id)
    currency = (plan_currency or "EUR").lower()
    obj = await create_once(sessions, gw, ref=f"coworking-setup:{member.id}:{secrets.token_hex(6)}", resource="checkout.sessions",
                            tag=False, params={
                                "mode": "setup", "customer": customer, "currency": currency,
                                "allowed_payment_method_types": payment_method_types(currency),
                                "setup_intent_data": {"metadata": {"purpose": "coworking", "member_id": str(member.id)}},
                                "metadata": {"purpose": "coworking-setup", "member_id": str(member.id)},
                                "success_url": success_url, "cancel_url": cancel_url, "locale": "fr",
                                **prenotice.checkout_note(payment_method_types(currency)),
                            })
    return obj["url"]


async def use_payment_method(sessions: async_sessionmaker, gw: StripeGateway, *, member_id: int, session_id: str) -> bool:
    """Back from the setup Checkout: the method saved there becomes the customer's default for
    invoices and each running subscription's (Stripe debits it from the next invoice on). False:
    not this member's session, or not complete."""
    async with sessions() as session:
        member = await session.get(Member, member_id)
        subs = (await session.scalars(select(Subscription.stripe_subscription_id).where(
            Subscription.member_id == member_id, Subscription.status.in_((*RUNNING, "incomplete"))))).all()
    checkout = await gw.retrieve("checkout.sessions", session_id, expand=["setup_intent"])
    seti = checkout.get("setup_intent")
    if (checkout.get("mode") != "setup" or checkout.get("status") != "complete" or not member.stripe_customer_id
            or stripe_id(checkout.get("customer")) != member.stripe_customer_id or not isinstance(seti, dict)):
        return False
    pm = stripe_id(seti.get("payment_method"))
    if not pm:
        return False
    await gw.call("customers", "update", member.stripe_customer_id, key=f"entrelab-coworking-default-pm-{session_id}",
                  params={"invoice_settings": {"default_payment_method": pm}})
    for sub_id in subs:
        await gw.call("subscriptions", "update", sub_id, key=f"entrelab-coworking-sub-pm-{sub_id}-{session_id}",
                      params={"default_payment_method": pm})
    return True


async def tax_untaxed_subscriptions(sessions: async_sessionmaker, gw: StripeGateway, *, site_id: int | None = None) -> list[str]:
    """Subscriptions that started before our Tax Rates (their item has none) get their plan's
    rate on the item, without proration: their next invoices state the VAT like the others.
    Idempotent: an item that has a rate is left alone, and the request's key is the item and the rate."""
    query = (select(Subscription.stripe_subscription_id, PlanPrice.vat_rate)
             .join(PlanPrice, PlanPrice.stripe_price_id == Subscription.stripe_price_id)
             .where(Subscription.status.in_(RUNNING)).order_by(Subscription.id))
    if site_id is not None:
        query = query.where(Subscription.site_id == site_id)
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    done = []
    for sub_id, vat_rate in rows:
        stripe_sub = await gw.retrieve("subscriptions", sub_id)
        items = (stripe_sub.get("items") or {}).get("data") or []
        if stripe_sub.get("status") not in RUNNING or not items or items[0].get("tax_rates") or stripe_sub.get("default_tax_rates"):
            continue
        rate = await tax_rate_id(sessions, gw, vat_rate)
        await gw.call("subscriptions", "update", sub_id, key=f"entrelab-coworking-tax-{items[0]['id']}-{rate}",
                      params={"items": [{"id": items[0]["id"], "tax_rates": [rate]}], "proration_behavior": "none"})
        done.append(sub_id)
    return done
