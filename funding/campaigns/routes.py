"""Public campaign pages: list, campaign page and contribution, thank-you page, the backer's
own pledge page (signed link), tax receipts and yearly summaries. HTTP only."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from funding.auth.service import AuthError, normalise_email
from funding.campaigns import admin, api, backers, flows, news, receipt_pdf, receipts, resend, richtext, settle, views
from funding.campaigns.donors import DonorDetails
from funding.campaigns.models import Campaign, CampaignStatus, Mode, Pledge, PledgeStatus, TaxReceipt, Tier
from funding.campaigns.pledges import TOKEN_PURPOSE, Contribution, ContributionError
from funding.clock import paris_today
from funding.db import must_get, row_id, transaction, utcnow
from funding.donations.recurring import MIN_AMOUNT as GIFT_MIN
from funding.i18n import N_, get_locale, reset_locale, set_locale
from funding.i18n import gettext as _
from funding.limits.service import RateLimited
from funding.public import public
from funding.security import TokenError, unsign_dated
from funding.stripe_gateway import GatewayError
from funding.web import (
    STAFF,
    LoginRequired,
    absolute_url,
    db,
    flash,
    load_user,
    path_for,
    pdf_response,
    rate_limit,
    redirect,
    redirect_to,
    render,
)

log = logging.getLogger("funding.campaigns")

FORM_FIELDS = ("tier", "amount", "currency", "name", "email", "street", "postcode", "town", "country", "company",
               "company_name", "siren", "show_name", "public_name", "message", "news")


async def campaign_list(request: Request) -> Response:
    async with db(request) as session:
        await load_user(request, session)
        rows = await views.public_list(session)
    now = utcnow()
    return render(request, "campaigns/list.html", {"rows": rows, "labels": views.STATUS_LABELS, "modes": views.MODE_LABELS,
                                                   "time_left": lambda campaign: views.time_left(campaign, now)})


async def _page(request: Request, slug: str, *, form: dict | None = None, error: str | None = None,
                status_code: int = 200) -> Response:
    now = utcnow()
    async with db(request) as session:
        user = await load_user(request, session)
        page = await views.load(session, slug, now,
                                include_draft=lambda org_id: user is not None and user.can(*STAFF, org=org_id))
        if page is None:
            raise HTTPException(404)
        wall = await views.wall(session, page.campaign.id)
        updates = await news.updates_of(session, page.campaign.id)
    base = request.app.state.settings.base_url
    image = page.campaign.image_url
    context = {
        "page": page, "c": page.campaign, "wall": wall, "description": richtext.render(page.campaign.description),
        "updates": updates, "render_text": richtext.render, "share_url": base + path_for(request, "campaign", slug=slug),
        "og_image": (base + image if image and image.startswith("/") else image),
        "can_remind": news.can_remind(page.campaign, now), "reminded": "rappel" in request.query_params,
        "form": form or {"tier": request.query_params.get("contrepartie", "")}, "error": error,
        "canceled": "annule" in request.query_params, "labels": views.STATUS_LABELS, "modes": views.MODE_LABELS,
        "local": admin.local,
    }
    return render(request, "campaigns/page.html", context, status_code=status_code)


async def campaign_page(request: Request) -> Response:
    return await _page(request, request.path_params["slug"])


async def contribute(request: Request) -> Response:
    slug = request.path_params["slug"]
    raw = await request.form()
    form = {k: str(raw.get(k, "")) for k in FORM_FIELDS}
    async with db(request) as session:
        campaign_id = await session.scalar(select(Campaign.id).where(Campaign.slug == slug, Campaign.status != CampaignStatus.DRAFT))
    if campaign_id is None:
        raise HTTPException(404)
    data = Contribution(amount=form["amount"], tier=form["tier"], currency=form["currency"], name=form["name"],
                        email=form["email"], donor=DonorDetails.from_form(form), show_name=form["show_name"] == "1",
                        public_name=form["public_name"], message=form["message"], wants_updates=form["news"] == "1")
    try:
        await rate_limit(request, ("contribute", None), *([("hold", None)] if await _holds_stock(request, form["tier"]) else []))
    except RateLimited as exc:
        response = await _page(request, slug, form=form, error=str(exc), status_code=exc.status)
        response.headers.update(exc.headers)
        return response
    try:
        started = await flows.start_contribution(request.app.state.sessions, request.app.state.gateway,
                                                 request.app.state.settings, campaign_id, data)
    except ContributionError as exc:
        return await _page(request, slug, form=form, error=str(exc), status_code=400)
    except flows.PaymentUnavailable:
        return await _page(request, slug, form=form, status_code=503, error=_(
            "Le paiement est momentanément indisponible. Réessayez dans quelques minutes : rien n'a été débité."))
    # Only this browser may see the pledge's link on the thanks page: a Checkout session id (in
    # a URL, a referrer, a log) is not a key to the pledge.
    request.session[OWN_PLEDGES] = [*request.session.get(OWN_PLEDGES, []), started.pledge_id][-10:]
    return redirect(started.url)


OWN_PLEDGES = "own_pledges"


async def _holds_stock(request: Request, raw_tier: str) -> bool:
    """Would this contribution hold a unit of a limited reward (until its Checkout expires)?"""
    tier_id = row_id(raw_tier.strip())
    if tier_id is None:
        return False
    async with db(request) as session:
        return await session.scalar(select(Tier.stock).where(Tier.id == tier_id)) is not None


async def thanks(request: Request) -> Response:
    slug = request.path_params["slug"]
    session_id = request.query_params.get("session_id", "")
    pledge_id = None
    if session_id.startswith("cs_") and len(session_id) < 255:
        try:
            pledge_id = await flows.settle_return(request.app.state.sessions, request.app.state.gateway, session_id)
        except GatewayError:
            pledge_id = None
        request.app.state.kick_mail()
    async with db(request) as session:
        pledge = await session.get(Pledge, pledge_id) if pledge_id else None
        page = await views.load(session, slug, utcnow())
        if page is None or (pledge is not None and pledge.campaign_id != page.campaign.id):
            raise HTTPException(404)
        tier = await session.get(Tier, pledge.tier_id) if pledge and pledge.tier_id else None
    own = pledge is not None and pledge.id in request.session.get(OWN_PLEDGES, [])
    return render(request, "campaigns/thanks.html", {"pledge": pledge, "page": page, "c": page.campaign, "tier": tier,
                                                      "modes": views.MODE_LABELS, "local": admin.local, "own": own,
                                                      "email": pledge.email if own and pledge else _("votre adresse")},
                  status_code=200 if pledge else 404)


async def remind(request: Request) -> Response:
    """A visitor asks to be told 48 hours before an all-or-nothing campaign ends (the same
    answer whether or not the address had already asked)."""
    slug = request.path_params["slug"]
    raw = await request.form()
    try:
        email = normalise_email(str(raw.get("email", "")))
    except AuthError as exc:
        return await _page(request, slug, error=str(exc), status_code=400)
    await rate_limit(request, ("remind", None))
    try:
        async with transaction(request.app.state.sessions) as session:
            campaign = await session.scalar(select(Campaign).where(Campaign.slug == slug))
            if campaign is None or campaign.status == CampaignStatus.DRAFT:
                raise HTTPException(404)
            await news.ask_reminder(session, campaign, email, get_locale())
    except news.NewsError as exc:
        return await _page(request, slug, error=str(exc), status_code=409)
    return redirect(path_for(request, "campaign", slug=slug, query={"rappel": "1"}) + "#rappel")


async def backer_space(request: Request) -> Response:
    """The logged-in person's contributions, promises and receipts (any account: a backer's has no role)."""
    async with db(request) as session:
        user = await load_user(request, session)
    if user is None:
        raise LoginRequired()
    # Read outside the organisations' wall: the rows of the address the login link proved, and only those.
    async with request.app.state.sessions() as session:
        view = await backers.space(session, request.app.state.settings, user.email, utcnow())
    return render(request, "campaigns/backer.html", {"s": view, "labels": views.PLEDGE_LABELS, "modes": views.MODE_LABELS,
                                                      "local": admin.local, "gift_min": {i.value: m for i, m in GIFT_MIN.items()},
                                                      "cards": await backers.cards_on_file(request.app.state.gateway, view),
                                                      "mandates": await backers.mandates_on_file(request.app.state.gateway, view)})


# --- the backer's own page (signed link) ----------------------------------------------------

async def resend_page(request: Request) -> Response:
    """Ask for the links of one's contributions and receipts again (the same answer for any address)."""
    if request.method == "GET":
        return render(request, "campaigns/resend.html", {"sent": False, "error": None})
    form = await request.form()
    try:
        email = normalise_email(str(form.get("email", "")))
    except AuthError as exc:
        return render(request, "campaigns/resend.html", {"sent": False, "error": str(exc)}, status_code=400)
    await rate_limit(request, ("resend", email), ("resend-ip", None))
    response = render(request, "campaigns/resend.html", {"sent": True, "error": None})
    response.background = BackgroundTask(_resend, request.app, email, get_locale())
    return response


async def _resend(app, email: str, locale: str) -> None:
    token = set_locale(locale)
    try:
        async with transaction(app.state.sessions) as session:
            queued = await resend.resend_links(session, app.state.settings, email, locale)
    except Exception:  # the visitor has their answer already; the log has this
        log.exception("links asked again could not be queued")
    else:
        if queued:
            app.state.kick_mail()
    finally:
        reset_locale(token)



# What a signed link says when it cannot be read: altered, or cut when it was copied.
ALTERED = N_("Ce lien n'est pas valide : il a été modifié ou recopié en partie. Reprenez le lien complet de votre e-mail.")
ALTERED_SHORT = N_("Ce lien n'est pas valide : il a été modifié ou recopié en partie.")


def open_link(request: Request, purpose: str, max_age: int, *, altered: str = ALTERED) -> tuple[Any, dt.datetime]:
    """What a contribution's or a receipt's emailed link signs, and when it was signed; a 400 that
    says why (expired: where to ask again) when it cannot be read. Revocation is checked by the
    caller, against the address of what the link opens (:func:`resend.check_not_revoked`)."""
    try:
        return unsign_dated(request.app.state.settings.secret_key, purpose, request.path_params["token"], max_age=max_age)
    except TokenError as exc:
        if str(exc) == "expired":
            raise HTTPException(400, _(resend.EXPIRED)) from None
        raise HTTPException(400, _(altered)) from None


async def _pledge_id(request: Request) -> int:
    """The pledge a signed link opens, once its signature, age and revocation are checked."""
    settings = request.app.state.settings
    value, signed_at = open_link(request, TOKEN_PURPOSE, resend.PLEDGE_LINK_MAX_AGE)
    if not isinstance(value, int):
        raise HTTPException(400, _("Ce lien n'est pas valide."))
    async with db(request) as session:
        email = await session.scalar(select(Pledge.email).where(Pledge.id == value))
        await resend.check_not_revoked(session, settings, email, signed_at)
    return value


async def _pledge_page(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    pledge_id = await _pledge_id(request)
    now = utcnow()
    async with db(request) as session:
        pledge = await session.get(Pledge, pledge_id)
        if pledge is None:
            raise HTTPException(404)
        campaign = await must_get(session, Campaign, pledge.campaign_id)
        tier = await session.get(Tier, pledge.tier_id) if pledge.tier_id else None
        receipt = await session.scalar(select(TaxReceipt).where(TaxReceipt.pledge_id == pledge.id)
                                       .order_by(TaxReceipt.revision.desc()).limit(1))
    before_deadline = campaign.status == CampaignStatus.LIVE and now < campaign.ends_at
    card_to_replace = pledge.status in (PledgeStatus.CARD_DECLINED, PledgeStatus.ACTION_REQUIRED, PledgeStatus.RETRY)
    context = {
        "pledge": pledge, "c": campaign, "tier": tier, "receipt": receipt, "token": request.path_params["token"],
        "error": error, "local": admin.local,
        "can_cancel": campaign.mode == Mode.ALL_OR_NOTHING and before_deadline and pledge.status in (PledgeStatus.ACTIVE, PledgeStatus.PENDING),
        "can_change_card": campaign.mode == Mode.ALL_OR_NOTHING and pledge.customer_id is not None and (
            (before_deadline and pledge.status == PledgeStatus.ACTIVE) or card_to_replace),
        "can_confirm": pledge.status == PledgeStatus.ACTION_REQUIRED and pledge.payment_intent_id is not None,
    }
    return render(request, "campaigns/pledge.html", context, status_code=status_code)


async def pledge_page(request: Request) -> Response:
    return await _pledge_page(request)


async def pledge_cancel(request: Request) -> Response:
    pledge_id = await _pledge_id(request)
    async with db(request) as session:
        done = await settle.cancel(session, pledge_id)
    if done is None:
        return await _pledge_page(request, status_code=409, error=_(
            "Cette promesse ne peut plus être annulée : la campagne est terminée ou la promesse n'est plus active."))
    request.app.state.kick_mail()
    flash(request, _("Votre promesse est annulée. Rien n'a été débité."), "success")
    return redirect_to(request, "pledge", token=request.path_params["token"])


async def pledge_card(request: Request) -> Response:
    """POST: open a Checkout to save another card; GET (return from it): apply it."""
    pledge_id = await _pledge_id(request)
    token = request.path_params["token"]
    if request.method == "GET":
        session_id = request.query_params.get("session_id", "")
        if session_id.startswith("cs_") and len(session_id) < 255:
            with contextlib.suppress(GatewayError):  # Stripe away or the id refused: the page shows what we know, the webhook applies the card
                await flows.settle_return(request.app.state.sessions, request.app.state.gateway, session_id)
            request.app.state.kick_mail()
        return redirect_to(request, "pledge", token=token)
    try:
        url = await flows.start_card_update(request.app.state.sessions, request.app.state.gateway, pledge_id)
    except flows.NotAllowed as exc:
        return await _pledge_page(request, error=str(exc), status_code=409)
    except flows.PaymentUnavailable:
        return await _pledge_page(request, status_code=503, error=_(
            "Le paiement est momentanément indisponible. Réessayez dans quelques minutes."))
    return redirect(url)


async def pledge_confirm(request: Request) -> Response:
    """POST: confirm on session the payment the bank wants authenticated; GET: back from the bank."""
    pledge_id = await _pledge_id(request)
    token = request.path_params["token"]
    if request.method == "GET":
        pi_id = request.query_params.get("payment_intent", "")
        async with db(request) as session:
            current = await session.scalar(select(Pledge.payment_intent_id).where(Pledge.id == pledge_id))
        if pi_id and pi_id == current:
            try:
                paid = await flows.settle_payment_intent(request.app.state.sessions, request.app.state.gateway, pi_id)
            except GatewayError:
                paid = False
            request.app.state.kick_mail()
            if paid:
                flash(request, _("Paiement confirmé : merci !"), "success")
            else:
                flash(request, _("Le paiement n'est pas confirmé. Réessayez, ou enregistrez une autre carte."), "error")
        return redirect_to(request, "pledge", token=token)
    try:
        result = await flows.confirm_on_session(request.app.state.sessions, request.app.state.gateway, pledge_id,
                                                absolute_url(request, "pledge_confirm", token=token))
    except flows.NotAllowed as exc:
        return await _pledge_page(request, error=str(exc), status_code=409)
    except flows.PaymentUnavailable:
        return await _pledge_page(request, status_code=503, error=_(
            "Le paiement est momentanément indisponible. Réessayez dans quelques minutes."))
    if result.redirect:
        return redirect(result.redirect)
    request.app.state.kick_mail()
    if result.paid:
        flash(request, _("Paiement confirmé : merci !"), "success")
        return redirect_to(request, "pledge", token=token)
    return await _pledge_page(request, status_code=402, error=result.error or _("Le paiement a été refusé."))


async def pledge_revoke(request: Request) -> Response:
    """Every link of this pledge's address stops opening; fresh ones are emailed at once."""
    pledge_id = await _pledge_id(request)
    settings = request.app.state.settings
    async with db(request) as session:
        email = await session.scalar(select(Pledge.email).where(Pledge.id == pledge_id))
    if email is None:
        raise HTTPException(404)
    await rate_limit(request, ("resend", email), ("resend-ip", None))
    async with transaction(request.app.state.sessions) as session:
        await resend.revoke_links(session, settings, email)
        await resend.resend_links(session, settings, email, get_locale())
    request.app.state.kick_mail()
    return render(request, "campaigns/resend.html", {"sent": True, "revoked": True, "error": None})


# --- tax receipts -----------------------------------------------------------------------------


async def show_receipt(request: Request, receipt_id: int | None, pdf_url: str, *, pdf: bool = False) -> Response:
    """A receipt as a page (with its PDF's link) or as the PDF itself: the caller checked the signed link."""
    await rate_limit(request, ("receipt", None))
    async with db(request) as session:
        view = await receipts.view(session, receipt_id) if receipt_id else None
    if view is None:
        raise HTTPException(404)
    if pdf:
        return pdf_response(await receipt_pdf.render(view), view.filename)
    return render(request, "campaigns/receipt.html", {"r": view, "pdf_url": pdf_url})


async def _pledge_receipt_id(request: Request) -> int | None:
    pledge_id = await _pledge_id(request)
    async with db(request) as session:
        return await session.scalar(select(TaxReceipt.id).where(TaxReceipt.pledge_id == pledge_id)
                                    .order_by(TaxReceipt.revision.desc()).limit(1))


async def pledge_receipt(request: Request) -> Response:
    pdf_url = path_for(request, "pledge_receipt_pdf", token=request.path_params["token"])
    return await show_receipt(request, await _pledge_receipt_id(request), pdf_url)


async def pledge_receipt_pdf(request: Request) -> Response:
    return await show_receipt(request, await _pledge_receipt_id(request), "", pdf=True)


async def _receipt_id(request: Request) -> int | None:
    settings = request.app.state.settings
    receipt_id, signed_at = open_link(request, receipts.RECEIPT_TOKEN, resend.RECEIPT_LINK_MAX_AGE, altered=ALTERED_SHORT)
    if not isinstance(receipt_id, int):
        return None
    async with db(request) as session:
        email = await session.scalar(select(TaxReceipt.donor_email).where(TaxReceipt.id == receipt_id))
        await resend.check_not_revoked(session, settings, email, signed_at)
    return receipt_id


async def receipt_by_token(request: Request) -> Response:
    pdf_url = path_for(request, "tax_receipt_pdf", token=request.path_params["token"])
    return await show_receipt(request, await _receipt_id(request), pdf_url)


async def receipt_pdf_by_token(request: Request) -> Response:
    return await show_receipt(request, await _receipt_id(request), "", pdf=True)


async def donor_summary(request: Request) -> Response:
    await rate_limit(request, ("receipt", None))
    settings = request.app.state.settings
    value, signed_at = open_link(request, receipts.SUMMARY_TOKEN, resend.RECEIPT_LINK_MAX_AGE, altered=ALTERED_SHORT)
    try:
        org_id, email, year = value
    except (TypeError, ValueError):
        raise HTTPException(400, _(ALTERED_SHORT)) from None
    async with db(request) as session:
        await resend.check_not_revoked(session, settings, str(email), signed_at)
        summary = await receipts.donor_year(session, int(org_id), str(email), int(year))
        from funding.orgs.models import Organisation

        org = await session.get(Organisation, int(org_id))
    if org is None:
        raise HTTPException(404)
    return render(request, "campaigns/summary.html", {"s": summary, "org": org, "code": receipts.receipt_code,
                                                      "today": paris_today()})


routes = [
    Route("/campagnes", public(campaign_list), name="campaigns"),
    Route("/campagnes/{slug:str}", public(campaign_page), name="campaign"),
    Route("/campagnes/{slug:str}/contribuer", contribute, methods=["POST"], name="campaign_contribute"),
    Route("/campagnes/{slug:str}/merci", thanks, name="campaign_thanks"),
    Route("/campagnes/{slug:str}/rappel", remind, methods=["POST"], name="campaign_remind"),
    Route("/mes-contributions", backer_space, name="backer_space"),
    Route("/contributions/renvoyer", resend_page, methods=["GET", "POST"], name="pledge_resend"),
    Route("/contributions/{token:str}", pledge_page, name="pledge"),
    Route("/contributions/{token:str}/annuler", pledge_cancel, methods=["POST"], name="pledge_cancel"),
    Route("/contributions/{token:str}/revoquer", pledge_revoke, methods=["POST"], name="pledge_revoke"),
    Route("/contributions/{token:str}/carte", pledge_card, methods=["GET", "POST"], name="pledge_card"),
    Route("/contributions/{token:str}/confirmer", pledge_confirm, methods=["GET", "POST"], name="pledge_confirm"),
    Route("/contributions/{token:str}/recu", pledge_receipt, name="pledge_receipt"),
    Route("/contributions/{token:str}/recu/pdf", pledge_receipt_pdf, name="pledge_receipt_pdf"),
    Route("/recus/annuel/{token:str}", donor_summary, name="donor_summary"),
    Route("/recus/{token:str}", receipt_by_token, name="tax_receipt"),
    Route("/recus/{token:str}/pdf", receipt_pdf_by_token, name="tax_receipt_pdf"),
    *admin.routes,
    *api.routes,
]
