"""``funding campaigns …``: staff manage campaigns from the command line; the worker's
deadline job can be run by hand (``close``). Errors are one line on stderr, exit 1."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from funding.campaigns.models import TierKind
from funding.campaigns.models import Nature, PledgeStatus


def _error(message: str):
    from funding.cli import CommandError

    return CommandError(message)


def _campaign_form(args, *, base=None):
    from funding.campaigns.service import CampaignForm

    form = base or CampaignForm()
    for attr, name in (("site", "site"), ("slug", "slug"), ("title", "title"), ("summary", "summary"), ("image_url", "image"),
                       ("goal", "goal"), ("currency", "currency"), ("mode", "mode"), ("starts_at", "start"),
                       ("ends_at", "end"), ("min_amount", "min"), ("max_amount", "max")):
        value = getattr(args, name, None)
        if value is not None:
            setattr(form, attr, value.replace("-", "_") if attr == "mode" else value)
    if getattr(args, "description_file", None):
        path = Path(args.description_file)
        if not path.is_file():
            raise _error(f"fichier introuvable : {path}")
        try:
            form.description = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _error(f"{path} : illisible ({exc.__class__.__name__}), UTF-8 attendu") from None
    elif getattr(args, "description", None) is not None:
        form.description = args.description
    if getattr(args, "no_free_amount", False):
        form.free_amount = False
    return form


async def _run(ctx, action):
    from funding.campaigns.service import CampaignError
    from funding.db import transaction
    from funding.ledger.service import LedgerError

    try:
        async with transaction(ctx.sessions) as session:
            return await action(session)
    except (CampaignError, LedgerError) as exc:
        raise _error(str(exc)) from None


async def cmd_list(args, ctx) -> int:
    from funding.campaigns.models import Campaign, Match
    from funding.campaigns.views import progress_of
    from funding.money import format_plain

    async with ctx.sessions() as session:
        campaigns = (await session.scalars(select(Campaign).order_by(Campaign.id))).all()
        matches = {m.campaign_id: m for m in (await session.scalars(select(Match))).all()}
    for c in campaigns:
        p = progress_of(c, matches.get(c.id))
        print(f"{c.slug}\t{c.status}\t{c.mode}\t{format_plain(p.total, c.currency)}/{format_plain(c.goal, c.currency)} "
              f"{c.currency}\t{p.percent} %\t{p.backers} contributeurs\t{c.title}")
    return 0


async def cmd_create(args, ctx) -> int:
    from funding.campaigns.service import create_campaign

    form = _campaign_form(args)
    campaign = await _run(ctx, lambda session: create_campaign(session, form, created_by="cli"))
    print(f"campagne {campaign.slug} créée (brouillon)")
    return 0


async def cmd_edit(args, ctx) -> int:
    from funding.campaigns.service import by_slug, form_of, update_campaign
    from funding.orgs.models import Site

    async def action(session):
        campaign = await by_slug(session, args.slug)
        site = await session.get(Site, campaign.site_id)
        form = _campaign_form(args, base=form_of(campaign, site.slug))
        form.slug, form.site = campaign.slug, site.slug
        return await update_campaign(session, campaign.id, form)

    campaign = await _run(ctx, action)
    print(f"campagne {campaign.slug} enregistrée")
    return 0


async def cmd_tier(args, ctx) -> int:
    from funding.campaigns.service import TierForm, add_tier, by_slug

    form = TierForm(title=args.title, description=args.description or "", amount=args.amount, kind=args.kind,
                    reward_value=args.value or "", vat_rate=args.vat or "0", stock=args.stock or "")

    async def action(session):
        return await add_tier(session, (await by_slug(session, args.slug)).id, form)

    tier = await _run(ctx, action)
    print(f"contrepartie {tier.id} ajoutée : {tier.title}")
    return 0


async def cmd_match(args, ctx) -> int:
    from funding.campaigns.service import MatchForm, by_slug, set_match

    form = MatchForm(funder=args.funder, funder_siret=args.siret or "", reference=args.reference, ratio=args.ratio,
                     cap_per_pledge=args.cap, total_cap=args.total)

    async def action(session):
        return await set_match(session, (await by_slug(session, args.slug)).id, form)

    match = await _run(ctx, action)
    print(f"abondement de {match.funder_name} enregistré ({match.ratio_num}:{match.ratio_den})")
    return 0


async def cmd_publish(args, ctx) -> int:
    from funding.campaigns.service import by_slug, publish

    async def action(session):
        return await publish(session, (await by_slug(session, args.slug)).id)

    campaign = await _run(ctx, action)
    print(f"campagne {campaign.slug} publiée")
    return 0


async def cmd_archive(args, ctx) -> int:
    from funding.campaigns.service import archive, by_slug

    async def action(session):
        return await archive(session, (await by_slug(session, args.slug)).id)

    campaign = await _run(ctx, action)
    print(f"campagne {campaign.slug} close")
    return 0


async def cmd_deliver(args, ctx) -> int:
    from funding.campaigns.books import deliver
    from funding.campaigns.models import Pledge
    from funding.campaigns.service import by_slug

    async def action(session):
        campaign = await by_slug(session, args.slug)
        query = select(Pledge.id).where(Pledge.campaign_id == campaign.id, Pledge.status == PledgeStatus.PAID, Pledge.nature == Nature.SALE,
                                        Pledge.delivered_at.is_(None))
        if args.tier is not None:
            query = query.where(Pledge.tier_id == args.tier)
        return await deliver(session, list((await session.scalars(query)).all()), by="cli")

    count = await _run(ctx, action)
    print(f"{count} prévente(s) livrée(s) et passée(s) en ventes")
    return 0


async def cmd_close(args, ctx) -> int:
    from funding.campaigns.deadline import run
    from funding.cli import _gateway
    from funding.stripe_gateway import GatewayError

    now = None
    if args.now:
        try:
            now = dt.datetime.fromisoformat(args.now)
        except ValueError:
            raise _error(f"date invalide : {args.now} (ISO 8601, UTC, par exemple 2026-12-24T23:00)") from None
        if now.tzinfo is not None:
            now = now.astimezone(dt.UTC).replace(tzinfo=None)
    async with _gateway(ctx.settings) as gw:
        try:
            done = await run(ctx.sessions, ctx.settings, gw, now=now)
        except GatewayError as exc:
            raise _error(f"Stripe : {exc}") from None
    print(f"{done} opération(s) de fin de campagne effectuée(s)")
    return 0


async def cmd_issuer(args, ctx) -> int:
    from funding.campaigns.models import ReceiptIssuer
    from funding.orgs.service import OrgError, organisation_for

    async def action(session):
        try:
            org = await organisation_for(session, args.org)
        except OrgError as exc:
            raise _error(str(exc)) from None
        issuer = await session.get(ReceiptIssuer, org.id)
        if issuer is None:
            issuer = ReceiptIssuer(org_id=org.id)
            session.add(issuer)
        for name in ("purpose", "signatory", "signatory_role", "place"):
            value = getattr(args, name)
            if value is not None:
                setattr(issuer, name, value.strip())
        await session.flush()
        return org

    org = await _run(ctx, action)
    print(f"mentions des reçus fiscaux de {org.name} enregistrées")
    return 0


async def cmd_summaries(args, ctx) -> int:
    from funding.campaigns.receipts import donors_of_year
    from funding.campaigns.summaries import send_year
    from funding.money import format_plain
    from funding.orgs.models import Organisation

    if not 2000 <= args.year <= 2100:
        raise _error(f"année invalide : {args.year}")
    if args.send:
        count = await _run(ctx, lambda session: send_year(session, ctx.settings, args.year))
        print(f"{count} récapitulatif(s) {args.year} mis en envoi")
        return 0
    async with ctx.sessions() as session:
        for org in (await session.scalars(select(Organisation).order_by(Organisation.id))).all():
            for email, name, count, total in await donors_of_year(session, org.id, args.year):
                print(f"{org.siren}\t{email}\t{name}\t{count} reçu(s)\t{format_plain(total, 'EUR')}")
    return 0


def register(subparsers) -> None:
    campaigns = subparsers.add_parser("campaigns", help="crowdfunding campaigns").add_subparsers(
        dest="campaigns_command", required=True)

    def terms(p, *, required: bool) -> None:
        p.add_argument("--title", required=required)
        p.add_argument("--summary")
        group = p.add_mutually_exclusive_group()
        group.add_argument("--description", help="safe formatted text (paragraphs, **bold**, *italic*, [link](https://…))")
        group.add_argument("--description-file", help="a UTF-8 file with the description")
        p.add_argument("--image", help="https:// address of the image")
        p.add_argument("--goal", required=required, help="e.g. 8000 or 8 000,00")
        p.add_argument("--currency")
        p.add_argument("--mode", required=required, choices=("all-or-nothing", "keep-it-all"))
        p.add_argument("--start", required=required, help="YYYY-MM-DD[ HH:MM], Paris time")
        p.add_argument("--end", required=required, help="YYYY-MM-DD[ HH:MM], Paris time")
        p.add_argument("--min", help="smallest contribution (default 1,00)")
        p.add_argument("--max", help="largest contribution (default 10 000,00)")
        p.add_argument("--no-free-amount", action="store_true", help="only the tiers' amounts")

    campaigns.add_parser("list", help="every campaign with its totals").set_defaults(run=cmd_list)
    create = campaigns.add_parser("create", help="create a draft campaign")
    create.add_argument("--site", required=True)
    create.add_argument("--slug", required=True)
    terms(create, required=True)
    create.set_defaults(run=cmd_create)
    edit = campaigns.add_parser("edit", help="change a campaign (a published one: texts and image only)")
    edit.add_argument("slug")
    terms(edit, required=False)
    edit.set_defaults(run=cmd_edit)
    tier = campaigns.add_parser("tier-add", help="add a tier: a gift or a reward")
    tier.add_argument("slug")
    tier.add_argument("--title", required=True)
    tier.add_argument("--amount", required=True)
    tier.add_argument("--kind", choices=tuple(TierKind), default=TierKind.GIFT)
    tier.add_argument("--value", help="value of the reward")
    tier.add_argument("--vat", choices=("0", "5,5", "5.5", "10", "20"), help="VAT rate of the reward when it makes a sale")
    tier.add_argument("--stock", help="units available (default: unlimited)")
    tier.add_argument("--description")
    tier.set_defaults(run=cmd_tier)
    match = campaigns.add_parser("match", help="a public funder matches the crowd (draft campaigns)")
    match.add_argument("slug")
    match.add_argument("--funder", required=True)
    match.add_argument("--siret")
    match.add_argument("--reference", required=True, help="reference of the funder's decision")
    match.add_argument("--ratio", default="1:1", help="funder euros : crowd euros (default 1:1)")
    match.add_argument("--cap", required=True, help="most matched per contribution")
    match.add_argument("--total", required=True, help="most matched in all")
    match.set_defaults(run=cmd_match)
    pub = campaigns.add_parser("publish", help="put a draft online")
    pub.add_argument("slug")
    pub.set_defaults(run=cmd_publish)
    close = campaigns.add_parser("close", help="end due campaigns: decide, charge, grace, match (the worker runs it)")
    close.add_argument("--now", help=argparse_help_now())
    close.set_defaults(run=cmd_close)
    arch = campaigns.add_parser("archive", help="close a finished campaign whose money is settled")
    arch.add_argument("slug")
    arch.set_defaults(run=cmd_archive)
    deliver = campaigns.add_parser("deliver", help="rewards handed over: presales become sales (4191 → 707)")
    deliver.add_argument("slug")
    deliver.add_argument("--tier", type=int)
    deliver.set_defaults(run=cmd_deliver)
    issuer = campaigns.add_parser("receipts-issuer", help="what tax receipts say about the organisation")
    issuer.add_argument("--org", help="SIREN (optional with a single organisation)")
    issuer.add_argument("--purpose")
    issuer.add_argument("--signatory")
    issuer.add_argument("--signatory-role")
    issuer.add_argument("--place")
    issuer.set_defaults(run=cmd_issuer)
    summaries = campaigns.add_parser("receipts-summary", help="donors of a year; --send emails each their summary")
    summaries.add_argument("--year", type=int, default=dt.date.today().year)
    summaries.add_argument("--send", action="store_true")
    summaries.set_defaults(run=cmd_summaries)


def argparse_help_now() -> str:
    return "act as if it were this moment (UTC, ISO 8601): for tests and catching up"
