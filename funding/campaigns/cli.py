"""``funding campaigns …``: staff manage campaigns from the command line; the worker's
deadline job can be run by hand (``close``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from sqlalchemy import select

from funding.campaigns.models import Nature, PledgeStatus, TierKind
from funding.clock import paris_today
from funding.commands import BOOKS, STAFF, CommandError, Context, choice, command, exclusive, group, out, root, stripe_gateway

campaigns = group(root, "campaigns", help="crowdfunding campaigns")

# Option name → CampaignForm attribute, for the options that set one as they are typed.
FORM_FIELDS = (("site", "site"), ("slug", "slug"), ("title", "title"), ("summary", "summary"), ("image", "image_url"),
               ("goal", "goal"), ("currency", "currency"), ("mode", "mode"), ("start", "starts_at"), ("end", "ends_at"),
               ("min", "min_amount"), ("max", "max_amount"))


def terms(*, required: bool):
    """The options of a campaign's terms, shared by ``create`` (required) and ``edit``."""
    options = [
        click.option("--title", required=required),
        click.option("--summary"),
        click.option("--description", help="safe formatted text (paragraphs, **bold**, *italic*, [link](https://…))"),
        click.option("--description-file", help="a UTF-8 file with the description"),
        click.option("--image", help="https:// address of the image"),
        click.option("--goal", required=required, help="e.g. 8000 or 8 000,00"),
        click.option("--currency"),
        click.option("--mode", required=required, type=click.Choice(["all-or-nothing", "keep-it-all"])),
        click.option("--start", required=required, help="YYYY-MM-DD[ HH:MM], Paris time"),
        click.option("--end", required=required, help="YYYY-MM-DD[ HH:MM], Paris time"),
        click.option("--min", help="smallest contribution (default 1,00)"),
        click.option("--max", help="largest contribution (default 10 000,00)"),
        click.option("--no-free-amount", is_flag=True, help="only the tiers' amounts"),
    ]

    def apply(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


def _campaign_form(options: dict, *, base=None):
    from funding.campaigns.service import CampaignForm

    exclusive(description=options.get("description"), description_file=options.get("description_file"))
    form = base or CampaignForm()
    for name, attr in FORM_FIELDS:
        value = options.get(name)
        if value is not None:
            setattr(form, attr, value.replace("-", "_") if attr == "mode" else value)
    if options.get("description_file"):
        path = Path(options["description_file"])
        if not path.is_file():
            raise CommandError(f"fichier introuvable : {path}")
        try:
            form.description = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{path} : illisible ({exc.__class__.__name__}), UTF-8 attendu") from None
    elif options.get("description") is not None:
        form.description = options["description"]
    if options.get("no_free_amount"):
        form.free_amount = False
    return form


async def _in_transaction(ctx: Context, action):
    from funding.db import transaction

    async with transaction(ctx.sessions) as session:
        return await action(session)


@command(campaigns, "list", help="every campaign with its totals", roles=BOOKS)
async def list_campaigns(ctx: Context) -> None:
    from funding.campaigns.models import Campaign, Match
    from funding.campaigns.views import progress_of
    from funding.money import format_plain

    async with ctx.sessions() as session:
        rows = (await session.scalars(select(Campaign).order_by(Campaign.id))).all()
        matches = {m.campaign_id: m for m in (await session.scalars(select(Match))).all()}
    for c in rows:
        p = progress_of(c, matches.get(c.id))
        out(f"{c.slug}\t{c.status}\t{c.mode}\t{format_plain(p.total, c.currency)}/{format_plain(c.goal, c.currency)} "
            f"{c.currency}\t{p.percent} %\t{p.backers} contributeurs\t{c.title}")


@command(campaigns, "create", help="create a draft campaign", roles=STAFF)
@click.option("--site", required=True)
@click.option("--slug", required=True)
@terms(required=True)
async def create(ctx: Context, **options) -> None:
    from funding.campaigns.service import create_campaign

    form = _campaign_form(options)
    campaign = await _in_transaction(ctx, lambda session: create_campaign(session, form, created_by="cli"))
    out(f"campagne {campaign.slug} créée (brouillon)")


@command(campaigns, "edit", help="change a campaign (a published one: texts and image only)", roles=STAFF)
@click.argument("slug")
@terms(required=False)
async def edit(ctx: Context, slug: str, **options) -> None:
    from funding.campaigns.service import by_slug, form_of, update_campaign
    from funding.orgs.models import Site

    async def action(session):
        campaign = await by_slug(session, slug)
        site = await session.get(Site, campaign.site_id)
        form = _campaign_form(options, base=form_of(campaign, site.slug))
        form.slug, form.site = campaign.slug, site.slug
        return await update_campaign(session, campaign.id, form)

    campaign = await _in_transaction(ctx, action)
    out(f"campagne {campaign.slug} enregistrée")


@command(campaigns, "tier-add", help="add a tier: a gift or a reward", roles=STAFF)
@click.argument("slug")
@click.option("--title", required=True)
@click.option("--amount", required=True)
@click.option("--kind", type=choice(TierKind), default=TierKind.GIFT.value, show_default=True)
@click.option("--value", help="value of the reward")
@click.option("--vat", type=click.Choice(["0", "5,5", "5.5", "10", "20"]),
              help="VAT rate of the reward when it makes a sale")
@click.option("--stock", help="units available (default: unlimited)")
@click.option("--description")
async def tier_add(ctx: Context, slug: str, title: str, amount: str, kind: str, value: str | None, vat: str | None,
                   stock: str | None, description: str | None) -> None:
    from funding.campaigns.service import TierForm, add_tier, by_slug

    form = TierForm(title=title, description=description or "", amount=amount, kind=kind, reward_value=value or "",
                    vat_rate=vat or "0", stock=stock or "")

    async def action(session):
        return await add_tier(session, (await by_slug(session, slug)).id, form)

    tier = await _in_transaction(ctx, action)
    out(f"contrepartie {tier.id} ajoutée : {tier.title}")


@command(campaigns, "match", help="a public funder matches the crowd (draft campaigns)", roles=STAFF)
@click.argument("slug")
@click.option("--funder", required=True)
@click.option("--siret")
@click.option("--reference", required=True, help="reference of the funder's decision")
@click.option("--ratio", default="1:1", help="funder euros : crowd euros (default 1:1)")
@click.option("--cap", required=True, help="most matched per contribution")
@click.option("--total", required=True, help="most matched in all")
async def match(ctx: Context, slug: str, funder: str, siret: str | None, reference: str, ratio: str, cap: str,
                total: str) -> None:
    from funding.campaigns.service import MatchForm, by_slug, set_match

    form = MatchForm(funder=funder, funder_siret=siret or "", reference=reference, ratio=ratio, cap_per_pledge=cap,
                     total_cap=total)

    async def action(session):
        return await set_match(session, (await by_slug(session, slug)).id, form)

    made = await _in_transaction(ctx, action)
    out(f"abondement de {made.funder_name} enregistré ({made.ratio_num}:{made.ratio_den})")


@command(campaigns, "publish", help="put a draft online", roles=STAFF)
@click.argument("slug")
async def publish(ctx: Context, slug: str) -> None:
    from funding.campaigns import service

    async def action(session):
        return await service.publish(session, (await service.by_slug(session, slug)).id)

    campaign = await _in_transaction(ctx, action)
    out(f"campagne {campaign.slug} publiée")


@command(campaigns, "close", help="end due campaigns: decide, charge, grace, match (the worker runs it)")
@click.option("--now", help="act as if it were this moment (UTC, ISO 8601): for tests and catching up")
async def close(ctx: Context, now: str | None) -> None:
    from funding.campaigns.deadline import run

    moment = None
    if now:
        try:
            moment = dt.datetime.fromisoformat(now)
        except ValueError:
            raise CommandError(f"date invalide : {now} (ISO 8601, UTC, par exemple 2026-12-24T23:00)") from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    async with stripe_gateway(ctx.settings) as gw:
        done = await run(ctx.sessions, ctx.settings, gw, now=moment)
    out(f"{done} opération(s) de fin de campagne effectuée(s)")


@command(campaigns, "archive", help="close a finished campaign whose money is settled", roles=STAFF)
@click.argument("slug")
async def archive(ctx: Context, slug: str) -> None:
    from funding.campaigns import service

    async def action(session):
        return await service.archive(session, (await service.by_slug(session, slug)).id)

    campaign = await _in_transaction(ctx, action)
    out(f"campagne {campaign.slug} close")


@command(campaigns, "deliver", help="rewards handed over: presales become sales (4191 → 707)", roles=STAFF)
@click.argument("slug")
@click.option("--tier", type=int)
async def deliver(ctx: Context, slug: str, tier: int | None) -> None:
    from funding.campaigns import books
    from funding.campaigns.models import Pledge
    from funding.campaigns.service import by_slug

    async def action(session):
        campaign = await by_slug(session, slug)
        query = select(Pledge.id).where(Pledge.campaign_id == campaign.id, Pledge.status == PledgeStatus.PAID, Pledge.nature == Nature.SALE,
                                        Pledge.delivered_at.is_(None))
        if tier is not None:
            query = query.where(Pledge.tier_id == tier)
        return await books.deliver(session, list((await session.scalars(query)).all()), by="cli")

    count = await _in_transaction(ctx, action)
    out(f"{count} prévente(s) livrée(s) et passée(s) en ventes")


@command(campaigns, "receipts-issuer", help="what tax receipts say about the organisation", roles=STAFF)
@click.option("--org", "siren", help="SIREN (optional with a single organisation)")
@click.option("--purpose")
@click.option("--signatory")
@click.option("--signatory-role")
@click.option("--place")
async def receipts_issuer(ctx: Context, siren: str | None, **mentions: str | None) -> None:
    """The mentions' options are named after the columns of :class:`funding.campaigns.models.ReceiptIssuer`."""
    from funding.campaigns.models import ReceiptIssuer
    from funding.orgs.service import organisation_for

    async def action(session):
        org = await organisation_for(session, siren)
        issuer = await session.get(ReceiptIssuer, org.id)
        if issuer is None:
            issuer = ReceiptIssuer(org_id=org.id)
            session.add(issuer)
        for name, value in mentions.items():
            if value is not None:
                setattr(issuer, name, value.strip())
        await session.flush()
        return org

    org = await _in_transaction(ctx, action)
    out(f"mentions des reçus fiscaux de {org.name} enregistrées")


@command(campaigns, "revoke-links", help="an address's emailed links to contributions and receipts stop opening; fresh ones are sent",
         roles=STAFF)
@click.argument("email")
async def revoke_links(ctx: Context, email: str) -> None:
    from funding.auth.service import AuthError, normalise_email
    from funding.campaigns import resend

    try:
        address = normalise_email(email)
    except AuthError as exc:
        raise CommandError(str(exc)) from None

    async def action(session):
        await resend.revoke_links(session, ctx.settings, address)
        return await resend.resend_links(session, ctx.settings, address)

    queued = await _in_transaction(ctx, action)
    out(f"liens de {address} révoqués" + ("; nouveaux liens mis en envoi" if queued else " (aucune contribution ni reçu à cette adresse)"))


@command(campaigns, "receipts-summary", help="donors of a year; --send emails each their summary", roles=STAFF)
@click.option("--year", type=int, default=lambda: paris_today().year, show_default="this year")
@click.option("--send", is_flag=True)
async def receipts_summary(ctx: Context, year: int, send: bool) -> None:
    from funding.campaigns.receipts import donors_of_year
    from funding.campaigns.summaries import send_year
    from funding.money import format_plain
    from funding.orgs.models import Organisation

    if not 2000 <= year <= 2100:
        raise CommandError(f"année invalide : {year}")
    if send:
        count = await _in_transaction(ctx, lambda session: send_year(session, ctx.settings, year))
        out(f"{count} récapitulatif(s) {year} mis en envoi")
        return
    async with ctx.sessions() as session:
        for org in (await session.scalars(select(Organisation).order_by(Organisation.id))).all():
            for email, name, count, total in await donors_of_year(session, org.id, year):
                out(f"{org.siren}\t{email}\t{name}\t{count} reçu(s)\t{format_plain(total, 'EUR')}")
