"""The public donation page: choose a site and an amount, pay through Stripe Checkout."""

from __future__ import annotations

import time

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from funding.auth.service import AuthError, normalise_email
from funding.campaigns import receipts
from funding.campaigns.donors import DonorDetails, DonorError, check_donor
from funding.campaigns.resend import RECEIPT_LINK_MAX_AGE, check_not_revoked
from funding.campaigns.routes import open_link, show_receipt
from funding.clock import local_day
from funding.db import must_get, row_id, transaction
from funding.donations import recurring
from funding.donations.service import DONOR_TOKEN, MAX_AMOUNT, MIN_AMOUNT, PRESETS, PURPOSE, donor_token
from funding.i18n import date, money
from funding.i18n import gettext as _
from funding.limits.service import RateLimited
from funding.money import MoneyError, parse_amount
from funding.orgs.models import Organisation, Site
from funding.payments.service import CHECKOUT_RETURN, settle_return, start_checkout
from funding.stripe_gateway import GatewayError
from funding.web import LoginRequired, absolute_url, db, flash, load_user, path_for, rate_limit, redirect, redirect_to, render

DONOR_FIELDS = ("street", "postcode", "town", "country", "company", "company_name", "siren")


async def _sites(session):
    return (await session.execute(select(Site.id, Site.slug, Site.name, Site.town, Site.org_id)
                                  .order_by(Site.is_central.desc(), Site.name))).all()


async def donate(request: Request) -> Response:
    async with db(request) as session:
        sites = await _sites(session)
    query = request.query_params
    context = {"sites": sites, "presets": PRESETS, "form": {"site": query.get("site", ""), "frequency": query.get("frequence", "")},
               "error": None, "canceled": "annule" in request.query_params,
               "recurring_min": {i.value: m for i, m in recurring.MIN_AMOUNT.items()}}
    if request.method == "GET":
        return render(request, "donations/donate.html", context)
    form = await request.form()
    context["form"] = {k: str(form.get(k, "")) for k in ("site", "amount", "other", "frequency", "name", "email", *DONOR_FIELDS)}
    f = context["form"]
    try:
        site = next((s for s in sites if s.slug == f["site"]), None)
        if site is None:
            raise ValueError(_("Choisissez un lieu."))
        raw = f["other"].strip() or f["amount"]
        amount = parse_amount(raw, "EUR")
        frequency = f["frequency"] or "once"
        if frequency != "once":
            recurring.check_gift(amount, frequency)
        elif amount < MIN_AMOUNT or amount > MAX_AMOUNT:
            raise ValueError(_("Le don doit être compris entre %(min)s et %(max)s.", min=money(MIN_AMOUNT), max=money(MAX_AMOUNT)))
        email = normalise_email(f["email"])
        name = f["name"].strip()[:200]
        if not name:
            raise ValueError(_("Indiquez votre nom (il figure sur votre reçu)."))
        async with db(request) as session:
            org = await must_get(session, Organisation, site.org_id)
            receipt_due = org.general_interest
        donor = check_donor(DonorDetails.from_form(f), required=receipt_due)
    except (ValueError, MoneyError, AuthError, DonorError, recurring.GiftError) as exc:
        context["error"] = str(exc)
        return render(request, "donations/donate.html", context, status_code=400)
    settings = request.app.state.settings
    try:
        await rate_limit(request, ("donate", None))
    except RateLimited as exc:
        context["error"] = str(exc)
        response = render(request, "donations/donate.html", context, status_code=exc.status)
        response.headers.update(exc.headers)
        return response
    donor_fields = ({"donor_address": donor.address, "company_name": donor.company_name, "company_siren": donor.siren}
                    if donor else None)
    try:
        if frequency != "once":
            _gift, url = await recurring.start_recurring(
                request.app.state.sessions, request.app.state.gateway, site=site, amount=amount, interval=frequency,
                email=email, name=name, donor=donor_fields,
                success_url=absolute_url(request, "donate_recurring_thanks", query=CHECKOUT_RETURN),
                cancel_url=absolute_url(request, "donate", query={"annule": 1}))
            return redirect(url)
        _payment, url = await start_checkout(
            request.app.state.sessions, request.app.state.gateway, purpose=PURPOSE, org_id=site.org_id, site_id=site.id,
            amount=amount, currency="EUR", description=f"Don à {site.name}", email=email, name=name,
            donor=donor_fields,
            donor_link=lambda payment_id: absolute_url(request, "donation_receipt", token=donor_token(settings.secret_key, payment_id)),
            success_url=absolute_url(request, "donate_thanks", query=CHECKOUT_RETURN),
            cancel_url=absolute_url(request, "donate", query={"annule": 1}),
        )
    except GatewayError:
        context["error"] = _("Le paiement est momentanément indisponible. Réessayez dans quelques minutes : rien n'a été débité.")
        return render(request, "donations/donate.html", context, status_code=503)
    return redirect(url)


async def thanks(request: Request) -> Response:
    """The donor's return: settle from Stripe's current state (the webhook may be later, or earlier)."""
    payment = await settle_return(request.app.state.sessions, request.app.state.gateway,
                                  request.query_params.get("session_id", ""))
    request.app.state.kick_mail()
    if payment is None:
        return render(request, "donations/thanks.html", {"payment": None, "site": None}, status_code=404)
    async with db(request) as session:
        site = await must_get(session, Site, payment.site_id)
        site_name = site.name
        receipt = await receipts.latest_of_payment(session, payment.id)
    return render(request, "donations/thanks.html", {"payment": payment, "site": site_name, "receipt": receipt,
                                                      "receipt_code": receipts.receipt_code(receipt) if receipt else ""})


async def recurring_thanks(request: Request) -> Response:
    """The donor's return from a recurring gift's Checkout: its state from Stripe now (the webhooks may be later)."""
    session_id = request.query_params.get("session_id", "")
    gift = None
    if session_id.startswith("cs_"):
        try:
            checkout = await request.app.state.gateway.retrieve("checkout.sessions", session_id, expand=["subscription"])
        except GatewayError:
            checkout = None
        if checkout is not None and recurring.is_gift(checkout):
            async with transaction(request.app.state.sessions) as session:
                gift = await recurring.apply_checkout(session, checkout, int(time.time()))
    site_name = ""
    if gift is not None:
        async with db(request) as session:
            site_name = (await must_get(session, Site, gift.site_id)).name
    return render(request, "donations/recurring_thanks.html",
                  {"gift": gift, "site": site_name},
                  status_code=200 if gift is not None else 404)


async def _donor_gift(request: Request) -> tuple[int, str]:
    """(gift id, the logged-in person's address): only the address a login link proved acts on its gifts."""
    async with db(request) as session:
        user = await load_user(request, session)
    if user is None:
        raise LoginRequired()
    gift_id = row_id(str(request.path_params["gift_id"]))
    if gift_id is None:
        raise HTTPException(404)
    return gift_id, user.email.strip().lower()


async def stop_gift(request: Request) -> Response:
    """The donor stops their recurring gift (backer space): cancelled at Stripe at once."""
    gift_id, email = await _donor_gift(request)
    try:
        await recurring.stop(request.app.state.sessions, request.app.state.gateway, gift_id=gift_id, email=email)
    except LookupError:
        raise HTTPException(404) from None
    except recurring.GiftError as exc:
        flash(request, str(exc), "error")
    except GatewayError:
        flash(request, _("Le paiement est momentanément indisponible. Réessayez dans quelques minutes."), "error")
    else:
        flash(request, _("Votre don régulier est arrêté : plus rien ne sera prélevé. Merci pour votre soutien !"))
    return redirect_to(request, "backer_space")


async def change_gift_amount(request: Request) -> Response:
    """The donor changes the amount of their recurring gift (backer space): from the next instalment."""
    gift_id, email = await _donor_gift(request)
    form = await request.form()
    try:
        amount = parse_amount(str(form.get("amount", "")).strip(), "EUR")
        gift = await recurring.change_amount(request.app.state.sessions, request.app.state.gateway, gift_id=gift_id, email=email,
                                             amount=amount)
    except LookupError:
        raise HTTPException(404) from None
    except MoneyError:
        flash(request, _("Indiquez le nouveau montant en euros, par exemple 25 ou 12,50."), "error")
    except recurring.GiftError as exc:
        flash(request, str(exc), "error")
    except GatewayError:
        flash(request, _("Le paiement est momentanément indisponible. Réessayez dans quelques minutes : votre don n'a pas changé."),
              "error")
    else:
        request.app.state.kick_mail()
        flash(request, _("C'est noté : votre don passe à %(amount)s à partir du prochain versement. Un e-mail vous le confirme.",
                         amount=money(gift.amount, gift.currency)))
    return redirect_to(request, "backer_space")


async def skip_gift_instalment(request: Request) -> Response:
    """The donor skips the next instalment of their recurring gift (backer space); it resumes by itself."""
    gift_id, email = await _donor_gift(request)
    try:
        gift = await recurring.skip_next(request.app.state.sessions, request.app.state.gateway, gift_id=gift_id, email=email)
    except LookupError:
        raise HTTPException(404) from None
    except recurring.GiftError as exc:
        flash(request, str(exc), "error")
    except GatewayError:
        flash(request, _("Le paiement est momentanément indisponible. Réessayez dans quelques minutes : votre don n'a pas changé."),
              "error")
    else:
        request.app.state.kick_mail()
        skipped = gift.skipped_instalment_at
        flash(request, _("C'est noté : le versement du %(day)s ne sera pas prélevé, puis votre don reprendra de lui-même. "
                         "Un e-mail vous le confirme.", day=date(local_day(skipped), "long") if skipped else ""))
    return redirect_to(request, "backer_space")


async def gift_card(request: Request) -> Response:
    """The donor changes the card of their recurring gift on Stripe's Billing Portal (they may stop it there too)."""
    gift_id, email = await _donor_gift(request)
    try:
        url = await recurring.portal_url(request.app.state.sessions, request.app.state.gateway, gift_id=gift_id, email=email,
                                         return_url=absolute_url(request, "backer_space"))
    except LookupError:
        raise HTTPException(404) from None
    except recurring.GiftError as exc:
        flash(request, str(exc), "error")
        return redirect_to(request, "backer_space")
    except GatewayError:
        flash(request, _("Le paiement est momentanément indisponible. Réessayez dans quelques minutes."), "error")
        return redirect_to(request, "backer_space")
    return redirect(url)


async def _receipt_id(request: Request) -> int | None:
    """The latest receipt of the gift a donor's signed link names, once its signature, age and
    revocation are checked."""
    settings = request.app.state.settings
    value, signed_at = open_link(request, DONOR_TOKEN, RECEIPT_LINK_MAX_AGE)
    if not isinstance(value, int):
        raise HTTPException(400, _("Ce lien n'est pas valide."))
    async with db(request) as session:
        receipt = await receipts.latest_of_payment(session, value)
        if receipt is None:
            return None
        await check_not_revoked(session, settings, receipt.donor_email, signed_at)
        return receipt.id


async def receipt_page(request: Request) -> Response:
    """The donor's signed link (from their email): their gift's tax receipt, and its PDF."""
    pdf_url = path_for(request, "donation_receipt_pdf", token=request.path_params["token"])
    return await show_receipt(request, await _receipt_id(request), pdf_url)


async def receipt_pdf(request: Request) -> Response:
    return await show_receipt(request, await _receipt_id(request), "", pdf=True)


routes = [
    Route("/soutenir", donate, methods=["GET", "POST"], name="donate"),
    Route("/soutenir/merci", thanks, name="donate_thanks"),
    Route("/soutenir/regulier/merci", recurring_thanks, name="donate_recurring_thanks"),
    Route("/mes-contributions/dons-reguliers/{gift_id:str}/arreter", stop_gift, methods=["POST"], name="recurring_gift_stop"),
    Route("/mes-contributions/dons-reguliers/{gift_id:str}/carte", gift_card, methods=["POST"], name="recurring_gift_card"),
    Route("/mes-contributions/dons-reguliers/{gift_id:str}/montant", change_gift_amount, methods=["POST"],
          name="recurring_gift_amount"),
    Route("/mes-contributions/dons-reguliers/{gift_id:str}/sauter", skip_gift_instalment, methods=["POST"],
          name="recurring_gift_skip"),
    Route("/soutenir/recu/{token:str}", receipt_page, name="donation_receipt"),
    Route("/soutenir/recu/{token:str}/pdf", receipt_pdf, name="donation_receipt_pdf"),
]
