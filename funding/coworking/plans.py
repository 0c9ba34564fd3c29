"""Plans per site and their Stripe Products and Prices.

A plan's price is set here in minor units before VAT (``price_ht``) with a VAT rate per
mille; what Stripe charges is the amount with VAT (TTC). ``sync_plans`` makes Stripe
match, idempotently: a product per plan (created once, then its name and state kept in
step), and a Price per price *generation*: a changed amount inserts a new generation,
creates its Price (through ``create_once``, keyed by the generation's row) and archives
the previous Price (``active=false``). An existing Price is never edited, so
subscriptions already on it keep their terms.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from funding.coworking.models import PLAN_KINDS, Interval, Plan, PlanKind, PlanPrice, PriceStatus
from funding.db import transaction, utcnow
from funding.errors import FundingError
from funding.ledger.models import Account
from funding.money import MoneyError, check_currency, parse_amount
from funding.orgs.models import Site
from funding.payments.calls import create_once
from funding.stripe_gateway import StripeGateway

REVENUE_ACCOUNTS = ("706", "7561", "7562")
VAT_RATES = {0: "0", 55: "5,5", 100: "10", 200: "20"}
PASS_VALIDITY_DAYS = 365


class PlanError(FundingError):
    """Refused plan data; the message is for a person."""


def vat_of(price_ht: int, vat_rate: int) -> int:
    """VAT on a base, per mille, rounded half up to the minor unit."""
    return (price_ht * vat_rate * 2 + 1000) // 2000


def price_ttc(price_ht: int, vat_rate: int) -> int:
    return price_ht + vat_of(price_ht, vat_rate)


def parse_vat_rate(text: str) -> int:
    raw = (text or "").strip().replace(",", ".").rstrip("%").strip()
    table = {"0": 0, "5.5": 55, "10": 100, "20": 200}
    if raw not in table:
        raise PlanError(f"taux de TVA invalide : {text or '(vide)'} (20, 10, 5,5 ou 0)")
    return table[raw]


@dataclass
class PlanSpec:
    """What a person (or the demo) says about a plan; checked by ``save_plan``."""

    code: str
    name: str
    kind: str
    price: str  # HT, as typed: "150,00"
    vat_rate: str = "20"
    account: str = "706"
    interval: str | None = None
    pass_days: int | None = None
    description: str = ""
    company_only: bool = False
    currency: str = "EUR"
    position: int = 0
    active: bool = True


async def save_plan(session: AsyncSession, site: Site, spec: PlanSpec) -> Plan:
    """Create the plan ``spec.code`` of ``site``, or update it (Stripe follows at the next sync)."""
    code = (spec.code or "").strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,38}[a-z0-9]?", code):
        raise PlanError(f"code de formule invalide : {spec.code or '(vide)'} (lettres minuscules, chiffres, tirets)")
    name = (spec.name or "").strip()
    if not name or len(name) > 120:
        raise PlanError("nom de la formule manquant (120 caractères au plus)")
    if spec.kind not in PLAN_KINDS:
        raise PlanError(f"type de formule inconnu : {spec.kind} ({', '.join(PLAN_KINDS)})")
    try:
        currency = check_currency(spec.currency)
        price_ht = parse_amount(spec.price, currency)
    except MoneyError as exc:
        raise PlanError(str(exc)) from None
    if price_ht <= 0:
        raise PlanError("le prix d'une formule doit être positif")
    vat_rate = parse_vat_rate(spec.vat_rate)
    if spec.account not in REVENUE_ACCOUNTS:
        raise PlanError(f"compte de produit invalide : {spec.account} ({', '.join(REVENUE_ACCOUNTS)})")
    if spec.account != "706" and vat_rate:
        raise PlanError("une cotisation (7561, 7562) ne porte pas de TVA : taux 0")
    known = await session.scalar(select(Account.number).where(Account.org_id == site.org_id, Account.number == spec.account,
                                                              Account.active))
    if known is None:
        raise PlanError(f"le compte {spec.account} n'existe pas dans le plan comptable de l'organisation")
    if spec.kind == PlanKind.PASS:
        if not spec.pass_days or spec.pass_days < 1 or spec.pass_days > 366:
            raise PlanError("un pass compte de 1 à 366 jours")
        interval, pass_days = None, int(spec.pass_days)
    else:
        if spec.interval not in tuple(Interval):
            raise PlanError("périodicité invalide : month (mensuelle) ou year (annuelle)")
        interval, pass_days = spec.interval, None
    values = {"name": name, "description": (spec.description or "").strip(), "kind": spec.kind, "interval": interval,
              "pass_days": pass_days, "price_ht": price_ht, "vat_rate": vat_rate, "account": spec.account,
              "currency": currency, "company_only": bool(spec.company_only), "active": bool(spec.active),
              "position": int(spec.position), "updated_at": utcnow()}
    plan = await session.scalar(select(Plan).where(Plan.site_id == site.id, Plan.code == code))
    if plan is None:
        plan = Plan(site_id=site.id, code=code, **values)
        session.add(plan)
        try:
            await session.flush()
        except IntegrityError:
            raise PlanError(f"la formule {code} existe déjà pour ce lieu") from None
        return plan
    if plan.kind != spec.kind or plan.interval != interval:
        raise PlanError("le type et la périodicité d'une formule ne changent pas : créez-en une autre")
    for key, value in values.items():
        setattr(plan, key, value)
    await session.flush()
    return plan


async def plans_of(session: AsyncSession, site_id: int, *, active_only: bool = True) -> list[Plan]:
    query = select(Plan).where(Plan.site_id == site_id).order_by(Plan.position, Plan.id)
    if active_only:
        query = query.where(Plan.active)
    return list((await session.scalars(query)).all())


async def current_price(session: AsyncSession, plan_id: int) -> PlanPrice | None:
    """The plan's Stripe price on sale now (the newest generation that Stripe has)."""
    return await session.scalar(
        select(PlanPrice).where(PlanPrice.plan_id == plan_id, PlanPrice.status == PriceStatus.ACTIVE)
        .order_by(PlanPrice.seq.desc()).limit(1))


async def plan_for_price(session: AsyncSession, stripe_price_id: str | None) -> Plan | None:
    """The plan a Stripe price belongs to, archived generations included."""
    if not stripe_price_id:
        return None
    return await session.scalar(select(Plan).join(PlanPrice, PlanPrice.plan_id == Plan.id)
                                .where(PlanPrice.stripe_price_id == stripe_price_id))


# --- Stripe -------------------------------------------------------------------------


@dataclass
class SyncReport:
    products_created: int = 0
    products_updated: int = 0
    prices_created: int = 0
    prices_archived: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.products_created or self.products_updated or self.prices_created or self.prices_archived)


def _product_params(plan: Plan, site: Site) -> dict:
    return {
        "name": f"{plan.name} — {site.name}"[:250],
        "description": plan.description or None,
        "active": plan.active,
        "metadata": {"purpose": "coworking", "plan_id": str(plan.id), "site_id": str(site.id), "code": plan.code,
                     "kind": plan.kind},
    }


async def sync_plans(sessions: async_sessionmaker, gw: StripeGateway, *, site_id: int | None = None) -> SyncReport:
    """Make Stripe's Products and Prices match our plans. Running it twice changes nothing."""
    report = SyncReport()
    async with sessions() as session:
        query = select(Plan, Site).join(Site, Site.id == Plan.site_id).order_by(Site.id, Plan.position, Plan.id)
        if site_id is not None:
            query = query.where(Plan.site_id == site_id)
        rows = (await session.execute(query)).all()
    for plan, site in rows:
        await _sync_product(sessions, gw, plan, site, report)
        await _sync_price(sessions, gw, plan, report)
    return report


async def _sync_product(sessions, gw: StripeGateway, plan: Plan, site: Site, report: SyncReport) -> None:
    params = _product_params(plan, site)
    if plan.stripe_product_id is None:
        product = await create_once(sessions, gw, ref=f"coworking-plan:{plan.id}", resource="products",
                                    params={k: v for k, v in params.items() if v is not None})
        async with transaction(sessions) as session:
            await session.execute(update(Plan).where(Plan.id == plan.id, Plan.stripe_product_id.is_(None))
                                  .values(stripe_product_id=product["id"]))
        plan.stripe_product_id = product["id"]
        report.products_created += 1
        report.lines.append(f"{site.slug}/{plan.code}: product {product['id']} created")
        return
    product = await gw.retrieve("products", plan.stripe_product_id)
    if product.get("name") != params["name"] or bool(product.get("active")) != plan.active:
        await gw.call("products", "update", plan.stripe_product_id, params={"name": params["name"], "active": plan.active})
        report.products_updated += 1
        report.lines.append(f"{site.slug}/{plan.code}: product {plan.stripe_product_id} updated")


async def _sync_price(sessions, gw: StripeGateway, plan: Plan, report: SyncReport) -> None:
    amount = price_ttc(plan.price_ht, plan.vat_rate)
    async with transaction(sessions) as session:
        latest = await session.scalar(select(PlanPrice).where(PlanPrice.plan_id == plan.id)
                                      .order_by(PlanPrice.seq.desc()).limit(1))
        target: PlanPrice | None
        if latest is not None and (latest.amount, latest.currency, latest.interval) == (amount, plan.currency, plan.interval):
            # On sale already; or created but Stripe's answer never recorded: the same request again (same key).
            target = None if latest.status == PriceStatus.ACTIVE else latest
        else:
            target = PlanPrice(plan_id=plan.id, seq=(latest.seq + 1) if latest else 1, amount=amount, price_ht=plan.price_ht,
                               vat_rate=plan.vat_rate, currency=plan.currency, interval=plan.interval, status=PriceStatus.PENDING)
            session.add(target)
            await session.flush()
    if target is not None:
        params: dict[str, Any] = {
            "product": plan.stripe_product_id,
            "currency": plan.currency.lower(),
            "unit_amount": amount,
            "nickname": f"{plan.code} #{target.seq}",
            "tax_behavior": "inclusive",
            "metadata": {"purpose": "coworking", "plan_id": str(plan.id), "price_ht": str(plan.price_ht),
                         "vat_rate": str(plan.vat_rate)},
        }
        if plan.interval:
            params["recurring"] = {"interval": plan.interval, "interval_count": 1}
        price = await create_once(sessions, gw, ref=f"coworking-price:{target.id}", resource="prices", params=params)
        async with transaction(sessions) as session:
            await session.execute(update(PlanPrice).where(PlanPrice.id == target.id, PlanPrice.status == PriceStatus.PENDING)
                                  .values(stripe_price_id=price["id"], status=PriceStatus.ACTIVE))
        report.prices_created += 1
        report.lines.append(f"plan {plan.code}: price {price['id']} ({amount} {plan.currency}) created")
    # Archive every older generation still on sale: never edit a price, retire it.
    async with sessions() as session:
        newest = await current_price(session, plan.id)
        older = (await session.scalars(select(PlanPrice).where(
            PlanPrice.plan_id == plan.id, PlanPrice.status == PriceStatus.ACTIVE, PlanPrice.seq < (newest.seq if newest else 0)))).all()
    for old in older:
        await gw.call("prices", "update", old.stripe_price_id, params={"active": False})
        async with transaction(sessions) as session:
            await session.execute(update(PlanPrice).where(PlanPrice.id == old.id, PlanPrice.status == PriceStatus.ACTIVE)
                                  .values(status=PriceStatus.ARCHIVED, archived_at=utcnow()))
        report.prices_archived += 1
        report.lines.append(f"plan {plan.code}: price {old.stripe_price_id} archived")


def pass_expiry(today: dt.date) -> dt.date:
    return today + dt.timedelta(days=PASS_VALIDITY_DAYS)
