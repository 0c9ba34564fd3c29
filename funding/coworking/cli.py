"""``funding plans …``: the coworking plans of each site and their Stripe Products and Prices."""

from __future__ import annotations

import click
from sqlalchemy import select

from funding.commands import BOOKS, STAFF, Context, choice, command, group, out, root, stripe_gateway
from funding.coworking.models import Interval, PlanKind, PriceStatus

plans = group(root, "plans", help="coworking plans per site and their Stripe prices")


async def _site_id(session, slug: str | None) -> int | None:
    from funding.orgs.service import site_by_slug

    return (await site_by_slug(session, slug)).id if slug else None


@command(plans, "list", help="the plans, their prices (HT, TTC) and Stripe ids", roles=BOOKS)
@click.option("--site", "slug", help="site slug")
async def list_plans(ctx: Context, slug: str | None) -> None:
    from funding.coworking.models import Plan, PlanPrice
    from funding.coworking.plans import price_ttc
    from funding.money import format_plain
    from funding.orgs.models import Site

    async with ctx.sessions() as session:
        site_id = await _site_id(session, slug)
        query = select(Plan, Site.slug).join(Site, Site.id == Plan.site_id).order_by(Site.slug, Plan.position, Plan.id)
        if site_id:
            query = query.where(Plan.site_id == site_id)
        rows = (await session.execute(query)).all()
        prices = {}
        for price in (await session.scalars(select(PlanPrice).where(PlanPrice.status == PriceStatus.ACTIVE))).all():
            prices[price.plan_id] = price.stripe_price_id
    for plan, site_slug in rows:
        period = plan.interval or f"{plan.pass_days} j"
        out(f"{site_slug}/{plan.code}  {plan.name}  {plan.kind}  {period}  HT {format_plain(plan.price_ht, plan.currency)}  "
            f"TVA {plan.vat_rate / 10:g} %  TTC {format_plain(price_ttc(plan.price_ht, plan.vat_rate), plan.currency)} "
            f"{plan.currency}  {plan.account}  {prices.get(plan.id) or 'not synced'}{'' if plan.active else '  (inactive)'}")
    if not rows:
        out("no plan yet: `funding plans set --site … --code … --name … --kind … --price …`")


@command(plans, "set", help="create or update a plan (Stripe follows at the next `plans sync`)", roles=STAFF)
@click.option("--site", "slug", required=True, help="site slug")
@click.option("--code", required=True, help="e.g. flex, fixe, bureau, adhesion, journee, carnet-10")
@click.option("--name", required=True)
@click.option("--kind", required=True, type=choice(PlanKind))
@click.option("--price", required=True, help="price before VAT (HT), e.g. 150,00")
@click.option("--vat-rate", default="20", show_default=True, help="20, 10, 5,5 or 0 (memberships: 0)")
@click.option("--account", default="706", show_default=True, help="706, 7561 or 7562")
@click.option("--interval", type=choice(Interval), help="workspace and membership plans")
@click.option("--days", "pass_days", type=int, help="passes: number of days")
@click.option("--description", default="")
@click.option("--company-only", is_flag=True, help="reserved to companies (SIREN required)")
@click.option("--position", type=int, default=0)
@click.option("--inactive", is_flag=True, help="withdraw from sale (subscriptions continue)")
async def set_plan(ctx: Context, slug: str, inactive: bool, **terms) -> None:
    """The plan's terms' options are named after the fields of :class:`funding.coworking.plans.PlanSpec`."""
    from funding.coworking.plans import PlanSpec, save_plan
    from funding.db import transaction
    from funding.orgs.service import site_by_slug

    spec = PlanSpec(active=not inactive, **terms)
    async with transaction(ctx.sessions) as session:
        site = await site_by_slug(session, slug)
        plan = await save_plan(session, site, spec)
    out(f"plan {slug}/{plan.code} saved; run `funding plans sync` to update Stripe")


@command(plans, "sync", help="create or update the Stripe Products and Prices (idempotent)", serving=True)
@click.option("--site", "slug", help="site slug")
async def sync(ctx: Context, slug: str | None) -> None:
    from funding.coworking.billing import tax_untaxed_subscriptions
    from funding.coworking.plans import sync_plans

    async with ctx.sessions() as session:
        site_id = await _site_id(session, slug)
    async with stripe_gateway(ctx.settings) as gw:
        report = await sync_plans(ctx.sessions, gw, site_id=site_id)
        taxed = await tax_untaxed_subscriptions(ctx.sessions, gw, site_id=site_id)
    for line in report.lines:
        out(line)
    for sub_id in taxed:
        out(f"subscription {sub_id}: its plan's VAT rate added (next invoices state the VAT)")
    out(f"products: {report.products_created} created, {report.products_updated} updated; "
        f"prices: {report.prices_created} created, {report.prices_archived} archived"
        + ("" if report.changed else " — Stripe already matches"))
