"""Staff pages: campaigns, their tiers and match, publishing, the owner's view of pledges
(amounts by status, failed charges to chase, CSV export, ledger entries) and the yearly
tax-receipt summaries. HTTP only: parse, call the service, render."""

from __future__ import annotations

import io

from sqlalchemy import func, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from funding import csvout, media
from funding.campaigns import books, news, receipts, richtext, service, views
from funding.campaigns.models import Campaign, CampaignEntry, Match, Mode, Nature, Pledge, PledgeStatus, Tier
from funding.campaigns.service import (
    CampaignError,
    CampaignForm,
    MatchForm,
    TierForm,
    local,
)
from funding.clock import paris_today
from funding.db import digits, must_get
from funding.i18n import gettext as _
from funding.i18n import ngettext
from funding.ledger.models import Entry
from funding.ledger.service import LedgerError
from funding.money import format_plain
from funding.orgs.models import Organisation, Site
from funding.web import BOOKS, STAFF, absolute_url, db, flash, redirect_to, render, require

PAGE = 50
CHASE = (PledgeStatus.CARD_DECLINED, PledgeStatus.ACTION_REQUIRED, PledgeStatus.FAILED)
CAMPAIGN_FIELDS = ("site", "slug", "title", "summary", "description", "image_url", "goal", "currency", "mode", "starts_at",
                   "ends_at", "min_amount", "max_amount")


def _campaign_form(raw) -> CampaignForm:
    values = {k: str(raw.get(k, "")) for k in CAMPAIGN_FIELDS}
    return CampaignForm(**values, free_amount=raw.get("free_amount") == "1")


async def _campaign(session, slug: str) -> Campaign:
    campaign = await session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        raise HTTPException(404)
    return campaign


async def index(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        rows = (await session.execute(select(Campaign, Site).join(Site, Site.id == Campaign.site_id)
                                      .order_by(Campaign.created_at.desc()))).all()
        matches = {m.campaign_id: m for m in (await session.scalars(select(Match))).all()}
    items = [(c, s, views.progress_of(c, matches.get(c.id))) for c, s in rows]
    return render(request, "campaigns/admin_list.html", {"items": items, "labels": views.STATUS_LABELS,
                                                         "modes": views.MODE_LABELS, "year": paris_today().year})


async def _sites(session):
    return (await session.execute(select(Site.slug, Site.name).order_by(Site.is_central.desc(), Site.name))).all()


async def _with_upload(request: Request, raw, form: CampaignForm) -> None:
    """An image chosen in the form's file field: checked, resized, stored; its URL replaces the typed one."""
    upload = raw.get("image_file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return
    data = await upload.read(media.MAX_UPLOAD + 1)
    form.image_url = await media.store_image(request.app.state.settings, data)


async def new(request: Request) -> Response:
    async with db(request) as session:
        user = await require(request, session, STAFF)
        sites = await _sites(session)
    context = {"form": CampaignForm(mode=Mode.KEEP_IT_ALL), "sites": sites, "error": None, "campaign": None}
    if request.method == "GET":
        return render(request, "campaigns/admin_form.html", context)
    raw = await request.form()
    form = _campaign_form(raw)
    context["form"] = form
    try:
        await _with_upload(request, raw, form)
        async with db(request) as session:
            campaign = await service.create_campaign(session, form, created_by=user.email)
            slug = campaign.slug
    except (CampaignError, media.ImageError) as exc:
        context["error"] = str(exc)
        return render(request, "campaigns/admin_form.html", context, status_code=400)
    flash(request, _("Brouillon créé : ajoutez ses contreparties, puis publiez-le."), "success")
    return redirect_to(request, "admin_campaign", slug=slug)


async def edit(request: Request) -> Response:
    slug = request.path_params["slug"]
    async with db(request) as session:
        await require(request, session, STAFF)
        campaign = await _campaign(session, slug)
        site = await must_get(session, Site, campaign.site_id)
        sites = await _sites(session)
        context = {"form": service.form_of(campaign, site.slug), "sites": sites, "error": None, "campaign": campaign}
    if request.method == "GET":
        return render(request, "campaigns/admin_form.html", context)
    raw = await request.form()
    form = _campaign_form(raw)
    form.site, form.slug = site.slug, campaign.slug  # neither moves once created
    context["form"] = form
    try:
        await _with_upload(request, raw, form)
        async with db(request) as session:
            await service.update_campaign(session, campaign.id, form)
    except (CampaignError, media.ImageError) as exc:
        context["error"] = str(exc)
        return render(request, "campaigns/admin_form.html", context, status_code=400)
    flash(request, _("Campagne enregistrée."), "success")
    return redirect_to(request, "admin_campaign", slug=slug)


async def owner_view(request: Request) -> Response:
    slug = request.path_params["slug"]
    before = request.query_params.get("avant", "")
    if before and not digits(before):
        raise HTTPException(400, _("Page invalide."))
    async with db(request) as session:
        user = await require(request, session, BOOKS)
        campaign = await _campaign(session, slug)
        site = await session.get(Site, campaign.site_id)
        org = await session.get(Organisation, campaign.org_id)
        match = await session.scalar(select(Match).where(Match.campaign_id == campaign.id))
        tiers = (await session.scalars(select(Tier).where(Tier.campaign_id == campaign.id).order_by(Tier.position, Tier.id))).all()
        by_status = (await session.execute(
            select(Pledge.status, func.count(Pledge.id), func.coalesce(func.sum(Pledge.amount - Pledge.amount_refunded), 0))
            .where(Pledge.campaign_id == campaign.id).group_by(Pledge.status).order_by(Pledge.status))).all()
        undelivered = dict((await session.execute(
            select(Pledge.tier_id, func.count(Pledge.id)).where(Pledge.campaign_id == campaign.id, Pledge.status == PledgeStatus.PAID,
                                                                Pledge.nature == Nature.SALE, Pledge.delivered_at.is_(None))
            .group_by(Pledge.tier_id))).all())
        chase = (await session.scalars(select(Pledge).where(Pledge.campaign_id == campaign.id, Pledge.status.in_(CHASE))
                                       .order_by(Pledge.grace_until, Pledge.id).limit(200))).all()
        pledges, next_before = await views.pledge_page(session, campaign.id, before=int(before) if before else None,
                                                       limit=PAGE)
        entries = (await session.execute(
            select(Entry.number, Entry.entry_date, Entry.journal_code, Entry.label, Entry.funding_source, CampaignEntry.kind)
            .join(CampaignEntry, CampaignEntry.source_key == Entry.source_key)
            .where(CampaignEntry.campaign_id == campaign.id, Entry.org_id == campaign.org_id, Entry.number.is_not(None))
            .order_by(Entry.number.desc()).limit(100))).all()
        updates = await news.updates_of(session, campaign.id)
        news_readers = await session.scalar(select(func.count()).select_from(news.readers(campaign.id).subquery()))
    return render(request, "campaigns/admin_view.html", {
        "c": campaign, "site": site, "org": org, "match": match, "tiers": tiers, "by_status": by_status,
        "undelivered": undelivered, "chase": chase, "pledges": pledges, "more": next_before is not None,
        "next_before": next_before, "entries": entries,
        "progress": views.progress_of(campaign, match), "labels": views.STATUS_LABELS, "modes": views.MODE_LABELS,
        "pledge_labels": views.PLEDGE_LABELS,
        "can_edit": user.can(*STAFF, org=campaign.org_id), "widget_url": absolute_url(request, "campaign_widget", slug=campaign.slug),
        # Tall enough for the widget at 320 px with a match line; embed.js then fits it exactly.
        "widget_height": 360 if match else 320, "embed_url": absolute_url(request, "static", path="embed.js"),
        "description": richtext.render(campaign.description), "local": local,
        "updates": updates, "news_readers": news_readers or 0, "render_text": richtext.render,
    })


async def _act(request: Request, action, success: str) -> Response:
    slug = request.path_params["slug"]
    try:
        async with db(request) as session:
            await require(request, session, STAFF)
            campaign = await _campaign(session, slug)
            await action(session, campaign, await request.form())
    except (CampaignError, LedgerError) as exc:
        flash(request, str(exc), "error")
    else:
        flash(request, success, "success")
    return redirect_to(request, "admin_campaign", slug=slug)


async def post_update(request: Request) -> Response:
    """Publish news of the campaign: on its page, and emailed to the backers who agreed."""
    slug = request.path_params["slug"]
    raw = await request.form()
    try:
        async with db(request) as session:
            user = await require(request, session, STAFF)
            campaign = await _campaign(session, slug)
            published = await news.publish_update(session, request.app.state.settings, campaign,
                                                  title=str(raw.get("title", "")), body=str(raw.get("body", "")),
                                                  author=user.email)
            recipients = published.recipients
    except news.NewsError as exc:
        flash(request, str(exc), "error")
        return redirect_to(request, "admin_campaign", slug=slug)
    request.app.state.kick_mail()
    flash(request, ngettext("Nouvelle publiée et envoyée à %(num)s contributeur.",
                            "Nouvelle publiée et envoyée à %(num)s contributeurs.", recipients), "success")
    return redirect_to(request, "admin_campaign", slug=slug)


async def add_tier(request: Request) -> Response:
    async def action(session, campaign, raw):
        form = TierForm(**{k: str(raw.get(k, "")) for k in ("title", "description", "amount", "kind", "reward_value",
                                                              "vat_rate", "stock")})
        await service.add_tier(session, campaign.id, form)
    return await _act(request, action, _("Contrepartie ajoutée."))


async def toggle_tier(request: Request) -> Response:
    async def action(session, campaign, raw):
        await service.set_tier_active(session, campaign.id, request.path_params["tier_id"], raw.get("active") == "1")
    return await _act(request, action, _("Contrepartie mise à jour."))


async def deliver_tier(request: Request) -> Response:
    async def action(session, campaign, raw):
        ids = (await session.scalars(select(Pledge.id).where(
            Pledge.campaign_id == campaign.id, Pledge.tier_id == request.path_params["tier_id"], Pledge.status == PledgeStatus.PAID,
            Pledge.nature == Nature.SALE, Pledge.delivered_at.is_(None)))).all()
        if not ids:
            raise CampaignError(_("Rien à livrer pour cette contrepartie."))
        await books.deliver(session, list(ids), by=request.scope["user"].email)
    return await _act(request, action, _("Contreparties livrées : les préventes sont passées en ventes (707)."))


async def set_match(request: Request) -> Response:
    async def action(session, campaign, raw):
        if raw.get("remove") == "1":
            await service.remove_match(session, campaign.id)
            return
        await service.set_match(session, campaign.id, MatchForm(**{k: str(raw.get(k, "")) for k in (
            "funder", "funder_siret", "reference", "ratio", "cap_per_pledge", "total_cap")}))
    return await _act(request, action, _("Abondement enregistré."))


async def publish(request: Request) -> Response:
    async def action(session, campaign, raw):
        await service.publish(session, campaign.id)
    return await _act(request, action, _("Campagne publiée : elle est en ligne."))


async def archive(request: Request) -> Response:
    async def action(session, campaign, raw):
        await service.archive(session, campaign.id)
    return await _act(request, action, _("Campagne close."))


CSV_HEADER = ["contribution", "date", "statut", "nom", "email", "montant", "devise", "rembourse", "nature", "contrepartie",
              "nom_public", "message", "payee_le", "livree_le", "paiement_stripe", "derniere_erreur"]


async def export_csv(request: Request) -> Response:
    slug = request.path_params["slug"]
    async with db(request) as session:
        await require(request, session, BOOKS)
        campaign = await _campaign(session, slug)
        tiers = dict((await session.execute(select(Tier.id, Tier.title).where(Tier.campaign_id == campaign.id))).all())
    sessions = request.app.state.sessions

    def line(values) -> str:
        buf = io.StringIO()
        csvout.writer(buf, delimiter=";", lineterminator="\r\n").writerow(values)
        return buf.getvalue()

    async def rows():
        yield "\ufeff" + line(CSV_HEADER)
        after = 0
        while True:
            async with sessions() as session:
                batch = (await session.scalars(select(Pledge).where(Pledge.campaign_id == campaign.id, Pledge.id > after)
                                               .order_by(Pledge.id).limit(1000))).all()
            if not batch:
                return
            chunk = []
            for p in batch:
                chunk.append(line([
                    p.id, p.created_at.strftime("%Y-%m-%d %H:%M"), p.status, p.name, p.email,
                    format_plain(p.amount, p.currency), p.currency, format_plain(p.amount_refunded, p.currency),
                    "don" if p.nature == Nature.GIFT else "vente", tiers.get(p.tier_id, ""), p.public_name or "", p.message,
                    p.paid_at.strftime("%Y-%m-%d") if p.paid_at else "", p.delivered_at.strftime("%Y-%m-%d") if p.delivered_at else "",
                    p.payment_intent_id or "", p.last_error or "",
                ]))
            yield "".join(chunk)
            after = batch[-1].id

    filename = f"contributions-{campaign.slug}-{paris_today().isoformat()}.csv"
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": f'attachment; filename="{filename}"'})


async def receipts_index(request: Request) -> Response:
    raw_year = request.query_params.get("annee", str(paris_today().year))
    if not digits(raw_year) or not 2000 <= int(raw_year) <= 2100:
        raise HTTPException(400, _("Année invalide."))
    year = int(raw_year)
    async with db(request) as session:
        await require(request, session, BOOKS)
        orgs = (await session.scalars(select(Organisation).order_by(Organisation.name))).all()
        per_org = [(org, await receipts.donors_of_year(session, org.id, year)) for org in orgs]
    secret = request.app.state.settings.secret_key
    tokens = {(org.id, email): receipts.summary_token(secret, org.id, email, year)
              for org, donors in per_org for email, *_rest in donors}
    return render(request, "campaigns/admin_receipts.html", {"per_org": per_org, "year": year, "tokens": tokens})


async def send_summaries(request: Request) -> Response:
    from funding.campaigns.summaries import send_year

    raw = await request.form()
    year = str(raw.get("annee", ""))
    if not digits(year) or not 2000 <= int(year) <= 2100:
        raise HTTPException(400, _("Année invalide."))
    async with db(request) as session:
        await require(request, session, STAFF)
        sent = await send_year(session, request.app.state.settings, int(year))
    request.app.state.kick_mail()
    flash(request, _("%(n)s récapitulatif(s) annuel(s) envoyé(s).", n=sent), "success")
    return redirect_to(request, "admin_campaign_receipts", query={"annee": year})


routes = [
    Route("/admin/campaigns", index, name="admin_campaigns"),
    Route("/admin/campaigns/new", new, methods=["GET", "POST"], name="admin_campaign_new"),
    Route("/admin/campaigns/recus", receipts_index, name="admin_campaign_receipts"),
    Route("/admin/campaigns/recus/envoyer", send_summaries, methods=["POST"], name="admin_campaign_summaries"),
    Route("/admin/campaigns/{slug:str}", owner_view, name="admin_campaign"),
    Route("/admin/campaigns/{slug:str}/edit", edit, methods=["GET", "POST"], name="admin_campaign_edit"),
    Route("/admin/campaigns/{slug:str}/tiers", add_tier, methods=["POST"], name="admin_campaign_tier"),
    Route("/admin/campaigns/{slug:str}/tiers/{tier_id:id}/active", toggle_tier, methods=["POST"],
          name="admin_campaign_tier_active"),
    Route("/admin/campaigns/{slug:str}/tiers/{tier_id:id}/deliver", deliver_tier, methods=["POST"],
          name="admin_campaign_tier_deliver"),
    Route("/admin/campaigns/{slug:str}/nouvelles", post_update, methods=["POST"], name="admin_campaign_update"),
    Route("/admin/campaigns/{slug:str}/match", set_match, methods=["POST"], name="admin_campaign_match"),
    Route("/admin/campaigns/{slug:str}/publish", publish, methods=["POST"], name="admin_campaign_publish"),
    Route("/admin/campaigns/{slug:str}/archive", archive, methods=["POST"], name="admin_campaign_archive"),
    Route("/admin/campaigns/{slug:str}/pledges.csv", export_csv, name="admin_campaign_csv"),
]
