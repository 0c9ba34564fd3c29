"""``funding plans …``: the coworking plans of each site and their Stripe Products and Prices."""

from __future__ import annotations

from sqlalchemy import select

from funding.coworking.models import PriceStatus


def register(subparsers) -> None:
    plans = subparsers.add_parser("plans", help="coworking plans per site and their Stripe prices")
    sub = plans.add_subparsers(dest="plans_command", required=True)

    ls = sub.add_parser("list", help="the plans, their prices (HT, TTC) and Stripe ids")
    ls.add_argument("--site", help="site slug")
    ls.set_defaults(run=cmd_list)

    st = sub.add_parser("set", help="create or update a plan (Stripe follows at the next `plans sync`)")
    st.add_argument("--site", required=True, help="site slug")
    st.add_argument("--code", required=True, help="e.g. flex, fixe, bureau, adhesion, journee, carnet-10")
    st.add_argument("--name", required=True)
    st.add_argument("--kind", required=True, choices=["workspace", "membership", "pass"])
    st.add_argument("--price", required=True, help="price before VAT (HT), e.g. 150,00")
    st.add_argument("--vat-rate", default="20", help="20, 10, 5,5 or 0 (memberships: 0)")
    st.add_argument("--account", default="706", help="706, 7561 or 7562")
    st.add_argument("--interval", choices=["month", "year"], help="workspace and membership plans")
    st.add_argument("--days", type=int, help="passes: number of days")
    st.add_argument("--description", default="")
    st.add_argument("--company-only", action="store_true", help="reserved to companies (SIREN required)")
    st.add_argument("--position", type=int, default=0)
    st.add_argument("--inactive", action="store_true", help="withdraw from sale (subscriptions continue)")
    st.set_defaults(run=cmd_set)

    sy = sub.add_parser("sync", help="create or update the Stripe Products and Prices (idempotent)")
    sy.add_argument("--site", help="site slug")
    sy.set_defaults(run=cmd_sync, serving=True)


async def _site_id(session, slug: str | None) -> int | None:
    from funding.cli import CommandError
    from funding.orgs.service import OrgError, site_by_slug

    if not slug:
        return None
    try:
        return (await site_by_slug(session, slug)).id
    except OrgError as exc:
        raise CommandError(str(exc)) from None


async def cmd_list(args, ctx) -> int:
    from funding.cli import _out
    from funding.coworking.models import Plan, PlanPrice
    from funding.coworking.plans import price_ttc
    from funding.money import format_plain
    from funding.orgs.models import Site

    async with ctx.sessions() as session:
        site_id = await _site_id(session, args.site)
        query = select(Plan, Site.slug).join(Site, Site.id == Plan.site_id).order_by(Site.slug, Plan.position, Plan.id)
        if site_id:
            query = query.where(Plan.site_id == site_id)
        rows = (await session.execute(query)).all()
        prices = {}
        for price in (await session.scalars(select(PlanPrice).where(PlanPrice.status == PriceStatus.ACTIVE))).all():
            prices[price.plan_id] = price.stripe_price_id
    for plan, slug in rows:
        period = plan.interval or f"{plan.pass_days} j"
        _out(f"{slug}/{plan.code}  {plan.name}  {plan.kind}  {period}  HT {format_plain(plan.price_ht, plan.currency)}  "
             f"TVA {plan.vat_rate / 10:g} %  TTC {format_plain(price_ttc(plan.price_ht, plan.vat_rate), plan.currency)} "
             f"{plan.currency}  {plan.account}  {prices.get(plan.id) or 'not synced'}{'' if plan.active else '  (inactive)'}")
    if not rows:
        _out("no plan yet: `funding plans set --site … --code … --name … --kind … --price …`")
    return 0


async def cmd_set(args, ctx) -> int:
    from funding.cli import CommandError, _out
    from funding.coworking.plans import PlanError, PlanSpec, save_plan
    from funding.db import transaction
    from funding.orgs.service import OrgError, site_by_slug

    spec = PlanSpec(code=args.code, name=args.name, kind=args.kind, price=args.price, vat_rate=args.vat_rate,
                    account=args.account, interval=args.interval, pass_days=args.days, description=args.description,
                    company_only=args.company_only, position=args.position, active=not args.inactive)
    try:
        async with transaction(ctx.sessions) as session:
            site = await site_by_slug(session, args.site)
            plan = await save_plan(session, site, spec)
    except (PlanError, OrgError) as exc:
        raise CommandError(str(exc)) from None
    _out(f"plan {args.site}/{plan.code} saved; run `funding plans sync` to update Stripe")
    return 0


async def cmd_sync(args, ctx) -> int:
    from funding.cli import CommandError, _gateway, _out
    from funding.coworking.plans import sync_plans
    from funding.stripe_gateway import GatewayError

    async with ctx.sessions() as session:
        site_id = await _site_id(session, args.site)
    async with _gateway(ctx.settings) as gw:
        try:
            report = await sync_plans(ctx.sessions, gw, site_id=site_id)
        except GatewayError as exc:
            raise CommandError(f"Stripe: {exc}") from None
    for line in report.lines:
        _out(line)
    _out(f"products: {report.products_created} created, {report.products_updated} updated; "
         f"prices: {report.prices_created} created, {report.prices_archived} archived"
         + ("" if report.changed else " — Stripe already matches"))
    return 0
