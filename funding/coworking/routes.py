"""Coworking pages: joining (public), the member area (magic-link login), and the staff
views (in ``staff``). HTTP only: parse, call the service, render.

A member's pages never take a member id from the URL: everything is looked up from the
session's user, and any object id a form or a URL carries (subscription, invoice) must
belong to that member, or the answer is 404.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from funding.auth.models import User
from funding.auth.service import AuthError, is_team, issue_link
from funding.coworking import billing, documents, lifecycle, staff
from funding.coworking.credit_notes import credit_notes_of
from funding.coworking.mandates import debit_on_file, debits_processing
from funding.coworking.members import (
    Details,
    MemberError,
    check_details,
    enrol,
    member_for_user,
    open_join,
    push_details,
    update_details,
)
from funding.coworking.models import (
    RUNNING,
    CreditNote,
    Invoice,
    InvoiceStatus,
    JoinRequest,
    JoinStatus,
    Member,
    Plan,
    PlanKind,
    PlanPrice,
    Subscription,
    SubscriptionStatus,
)
from funding.coworking.plans import (
    VAT_RATES,
    current_price,
    plans_of,
    price_ttc,
    vat_of,
)
from funding.coworking.service import member_panels, passes_of
from funding.coworking.staff import page
from funding.db import must_get, row_id, transaction
from funding.i18n import day as i18n_day
from funding.i18n import get_locale, reset_locale, set_locale
from funding.i18n import gettext as _
from funding.invoicing.document import InvoiceDocumentError
from funding.limits.service import RateLimited, allowed
from funding.orgs.models import Site
from funding.payments.cards import customer_card
from funding.payments.models import PaymentPurpose
from funding.payments.service import CHECKOUT_RETURN, settle_return
from funding.security import TokenError, sign, unsign
from funding.stripe_gateway import GatewayError
from funding.web import (
    absolute_url,
    db,
    flash,
    load_user,
    log_in,
    path_for,
    pdf_response,
    rate_limit,
    redirect,
    redirect_to,
    require,
)

log = logging.getLogger("funding.coworking")
MEMBER = ("member",)


def _unavailable() -> str:
    return _("Le paiement est momentanément indisponible. Réessayez dans quelques minutes : rien n'a été débité.")


def _int(value) -> int | None:
    return row_id(value)


# --- public: plans and joining ---------------------------------------------------------------


async def _offer(session, plan: Plan) -> dict:
    price = await current_price(session, plan.id)
    return {"plan": plan, "ht": plan.price_ht, "vat": vat_of(plan.price_ht, plan.vat_rate),
            "ttc": price_ttc(plan.price_ht, plan.vat_rate), "rate": VAT_RATES.get(plan.vat_rate, str(plan.vat_rate / 10)),
            "on_sale": price is not None or plan.kind == PlanKind.PASS}


async def sites_page(request: Request) -> Response:
    async with db(request) as session:
        await load_user(request, session)
        sites = (await session.scalars(select(Site).where(Site.id.in_(select(Plan.site_id).where(Plan.active)))
                                       .order_by(Site.is_central.desc(), Site.name))).all()
    return page(request, "coworking/sites.html", {"sites": sites})


async def _site(session, slug: str) -> Site:
    site = await session.scalar(select(Site).where(Site.slug == slug))
    if site is None:
        raise HTTPException(404)
    return site


async def site_plans(request: Request) -> Response:
    async with db(request) as session:
        await load_user(request, session)
        site = await _site(session, request.path_params["site"])
        offers = [await _offer(session, p) for p in await plans_of(session, site.id)]
    if not offers:
        raise HTTPException(404)
    groups = [(kind, [o for o in offers if o["plan"].kind == kind]) for kind in PlanKind]
    return page(request, "coworking/plans.html", {"site": site, "groups": [(k, g) for k, g in groups if g],
                                                    "canceled": "annule" in request.query_params})


async def join(request: Request) -> Response:
    async with db(request) as session:
        user = await load_user(request, session)
        site = await _site(session, request.path_params["site"])
        plan = await session.scalar(select(Plan).where(Plan.site_id == site.id, Plan.code == request.path_params["plan"],
                                                       Plan.active))
        if plan is None:
            raise HTTPException(404)
        offer = await _offer(session, plan)
        member = await member_for_user(session, user.id) if user and user.is_member else None
    context = {"site": site, "offer": offer, "member": member, "form": {}, "error": None, "sent": False}
    if request.method == "GET":
        return page(request, "coworking/join.html", context)
    form = await request.form()
    context["form"] = f = {k: str(form.get(k, "")).strip() for k in ("name", "email", "phone", "company_name", "siren",
                                                                       "vat_number")}
    if user is not None and user.is_team:
        context["error"] = _("Vous êtes connecté avec un compte de l'équipe : déconnectez-vous pour adhérer.")
        return page(request, "coworking/join.html", context, status_code=400)
    if user is not None and member is None:
        f["email"] = user.email  # logged in (a bar regular…): their own account, this address and no other
    try:
        if member is None:
            details = check_details(**f, company_required=plan.company_only)
            if user is None:
                return await _join_by_email(request, context, site, plan, details)
            await rate_limit(request, ("join-ip", None))
            async with db(request) as session:
                member, created = await enrol(session, site, details)
                if not created:  # logged in: their own account, its details from their form
                    await update_details(session, member, details)
        elif plan.company_only and not member.company_name:
            raise MemberError(_("Cette formule est réservée aux entreprises : renseignez d'abord votre entreprise et son SIREN "
                                "dans votre espace membre."))
        else:
            await rate_limit(request, ("join-ip", None))
        return redirect(await _checkout(request, site, plan, member.id))
    except RateLimited as exc:
        context["error"] = str(exc)
        response = page(request, "coworking/join.html", context, status_code=exc.status)
        response.headers.update(exc.headers)
        return response
    except (MemberError, billing.BillingError, AuthError) as exc:
        context["error"] = str(exc)
        return page(request, "coworking/join.html", context, status_code=400)
    except GatewayError:
        context["error"] = _unavailable()
        return page(request, "coworking/join.html", context, status_code=503)


JOIN_MARK = "join"  # the session key: the join request whose link this browser followed


async def _join_checkout(request: Request, site: Site, plan: Plan, join_id: int) -> str:
    cancel_url = absolute_url(request, "coworking_plans", query={"annule": 1}, site=site.slug)
    success = "coworking_pass_thanks" if plan.kind == PlanKind.PASS else "coworking_welcome"
    return await billing.start_join(request.app.state.sessions, request.app.state.gateway, join_id=join_id,
                                    cancel_url=cancel_url, success_url=absolute_url(request, success, query=CHECKOUT_RETURN))


async def _log_in_joined(request: Request, session, member_id: int | None) -> None:
    """Back from a join's Checkout, paid: the browser that followed the join's link (its session
    marked) is logged in to the account the payment made."""
    mark = request.session.get(JOIN_MARK)
    if member_id is None or not isinstance(mark, int) or request.scope.get("user") is not None:
        return
    join = await session.get(JoinRequest, mark)
    if join is None or join.member_id != member_id:
        return
    member = await must_get(session, Member, member_id)
    user = await must_get(session, User, member.user_id)
    if user.active:
        log_in(request, user)
        await load_user(request, session)


async def _checkout(request: Request, site: Site, plan: Plan, member_id: int) -> str:
    """The Checkout page of the plan for the member: a pass is paid once, a plan subscribed."""
    cancel_url = absolute_url(request, "coworking_plans", query={"annule": 1}, site=site.slug)
    if plan.kind == PlanKind.PASS:
        return await billing.start_pass(request.app.state.sessions, request.app.state.gateway, member_id=member_id,
                                        plan_id=plan.id, cancel_url=cancel_url,
                                        success_url=absolute_url(request, "coworking_pass_thanks", query=CHECKOUT_RETURN))
    return await billing.start_subscription(request.app.state.sessions, request.app.state.gateway, member_id=member_id,
                                            plan_id=plan.id, cancel_url=cancel_url,
                                            success_url=absolute_url(request, "coworking_welcome", query=CHECKOUT_RETURN))


# --- joining without an account: the address is confirmed by email, whoever owns it -------------
#
# An anonymous join gets the same page, in the same time, whether or not the address has an
# account: "we wrote to this address". After the answer is sent, the address is looked up: a new
# one gets a signed link that leads to Checkout (its account is created when that link is
# followed, by the one who reads that mailbox); an account gets a login link to continue (a team
# account, a word that it cannot join), once within the ``join-mail`` limit.

JOIN_LINK = "coworking-join"
JOIN_LINK_MAX_AGE = 24 * 3600


async def _join_by_email(request: Request, context: dict, site: Site, plan: Plan, details: Details) -> Response:
    await rate_limit(request, ("join", details.email), ("join-ip", None))
    context["sent"] = True
    context["form"] = {"email": details.email}
    response = page(request, "coworking/join.html", context)
    response.background = BackgroundTask(_answer_join, request.app, site.id, plan.id, details, get_locale())
    return response


async def _answer_join(app, site_id: int, plan_id: int, details: Details, locale: str) -> None:
    token = set_locale(locale)
    try:
        await _write_join_email(app, site_id, plan_id, details)
        app.state.kick_mail()
    except Exception:  # the visitor has their answer already; the log has this
        log.exception("join: the email for a join form could not be queued")
    finally:
        reset_locale(token)


async def _write_join_email(app, site_id: int, plan_id: int, details: Details) -> None:
    from funding.mail.compose import render
    from funding.mail.service import enqueue

    sessions, settings = app.state.sessions, app.state.settings
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == details.email))
        team = user is not None and await is_team(session, user.id)
    if user is not None and not await allowed(sessions, settings, "join-mail", details.email):
        return  # told once already within the limit
    async with transaction(sessions) as session:
        site = await must_get(session, Site, site_id)
        plan = await must_get(session, Plan, plan_id)
        join_path = str(app.url_path_for("coworking_join", site=site.slug, plan=plan.code))
        if user is None:
            signed = sign(settings.secret_key, JOIN_LINK, {"s": site.id, "p": plan.id, "d": asdict(details)})
            link = settings.base_url + str(app.url_path_for("coworking_join_confirm", site=site.slug, plan=plan.code, token=signed))
            await enqueue(session, to=details.email, org_id=site.org_id,
                          dedupe_key=f"join:{hashlib.sha256(signed.encode()).hexdigest()[:40]}",
                          # No account yet: the language the form was filled in.
                          **render("coworking/join_confirm", get_locale(), name=details.name, plan=plan.name, site=site.name,
                                   link=link))
        elif team:
            await enqueue(session, to=user.email, user_id=user.id, org_id=site.org_id,
                          dedupe_key=f"join-team:{user.id}:{secrets.token_hex(8)}",
                          **render("coworking/join_team", user.locale, name=user.name, site=site.name))
        else:
            link = await issue_link(session, user, settings, next_path=join_path)
            await enqueue(session, to=user.email, user_id=user.id, org_id=site.org_id,
                          dedupe_key=f"login:{link.rsplit('/', 1)[-1][:120]}",
                          **render("coworking/join_login", user.locale, name=user.name, plan=plan.name, site=site.name,
                                   link=link))


def _join_link(request: Request, site: Site, plan: Plan) -> Details:
    try:
        data = unsign(request.app.state.settings.secret_key, JOIN_LINK, request.path_params["token"], max_age=JOIN_LINK_MAX_AGE)
    except TokenError as exc:
        raise MemberError(_("Ce lien d'adhésion a expiré : remplissez à nouveau le formulaire.") if str(exc) == "expired"
                          else _("Ce lien d'adhésion est invalide.")) from None
    if not isinstance(data, dict) or data.get("s") != site.id or data.get("p") != plan.id or not isinstance(data.get("d"), dict):
        raise MemberError(_("Ce lien d'adhésion est invalide."))
    fields = {k: str(v or "") for k, v in data["d"].items() if k in ("name", "email", "phone", "company_name", "siren", "vat_number")}
    return check_details(**fields, company_required=plan.company_only)


async def join_confirm(request: Request) -> Response:
    """The link of the join email: GET shows a button (mail scanners follow links), POST creates
    the account and its member record, then opens Checkout."""
    async with db(request) as session:
        await load_user(request, session)
        site = await _site(session, request.path_params["site"])
        plan = await session.scalar(select(Plan).where(Plan.site_id == site.id, Plan.code == request.path_params["plan"],
                                                       Plan.active))
        if plan is None:
            raise HTTPException(404)
        offer = await _offer(session, plan)
    context: dict[str, Any] = {"site": site, "offer": offer, "details": None, "error": None}
    try:
        details = _join_link(request, site, plan)
        context["details"] = details
        if request.method == "GET":
            return page(request, "coworking/join_confirm.html", context)
        await rate_limit(request, ("join-ip", None))
        digest = hashlib.sha256(request.path_params["token"].encode()).hexdigest()
        async with db(request) as session:
            account = await session.scalar(select(User.id).where(User.email == details.email))
            join = None if account is not None else await open_join(session, site, plan.id, details, link_digest=digest,
                                                                    locale=get_locale())
        if join is None or join.status != JoinStatus.OPEN:
            # The account exists (this link paid already, or the address joined since): its owner logs in.
            flash(request, _("Cette adresse a déjà un compte : connectez-vous pour choisir votre formule."))
            return redirect_to(request, "login", query={"next": path_for(request, "coworking_join", site=site.slug,
                                                                           plan=plan.code)})
        # Nobody's account yet: it is made when Stripe reports the payment. This browser, which
        # followed the link that proved the mailbox, is marked, so that Checkout's return logs it
        # in to the new member area without a second email (issue 17's login-link loop).
        request.session[JOIN_MARK] = join.id
        return redirect(await _join_checkout(request, site, plan, join.id))
    except RateLimited as exc:
        context["error"] = str(exc)
        response = page(request, "coworking/join_confirm.html", context, status_code=exc.status)
        response.headers.update(exc.headers)
        return response
    except (MemberError, billing.BillingError, AuthError) as exc:
        context["error"] = str(exc)
        return page(request, "coworking/join_confirm.html", context, status_code=400)
    except GatewayError:
        context["error"] = _unavailable()
        return page(request, "coworking/join_confirm.html", context, status_code=503)


async def welcome(request: Request) -> Response:
    """Back from Checkout (subscription): apply Stripe's state now; the webhook does it too."""
    session_id = request.query_params.get("session_id", "")
    checkout = None
    if session_id.startswith("cs_"):
        try:
            checkout = await billing.complete_checkout(request.app.state.sessions, request.app.state.gateway, session_id)
        except GatewayError:
            checkout = None
    async with db(request) as session:
        await load_user(request, session)
        sub = plan = site = None
        if checkout is not None and checkout.stripe_subscription_id:
            sub = await session.scalar(select(Subscription).where(
                Subscription.stripe_subscription_id == checkout.stripe_subscription_id))
        if checkout is not None:
            plan = await must_get(session, Plan, checkout.plan_id)
            site = await must_get(session, Site, plan.site_id)
            await _log_in_joined(request, session, checkout.member_id)
    request.app.state.kick_mail()
    status = 200 if checkout is not None else 404
    return page(request, "coworking/welcome.html", {"checkout": checkout, "sub": sub, "plan": plan, "site": site},
                  status_code=status)


async def pass_thanks(request: Request) -> Response:
    payment = await settle_return(request.app.state.sessions, request.app.state.gateway,
                                  request.query_params.get("session_id", ""), purpose=PaymentPurpose.PASS)
    request.app.state.kick_mail()
    async with db(request) as session:
        await load_user(request, session)
        if payment is not None:
            extra = json.loads(payment.extra or "{}")
            join = await session.get(JoinRequest, int(extra["join_id"])) if str(extra.get("join_id", "")).isdigit() else None
            await _log_in_joined(request, session, join.member_id if join is not None else None)
    return page(request, "coworking/pass_thanks.html", {"payment": payment}, status_code=200 if payment else 404)


# --- the member area ------------------------------------------------------------------------


async def _me(request: Request, session) -> tuple[Member, User]:
    current = await require(request, session, MEMBER)
    member = await member_for_user(session, current.id)
    if member is None:
        raise HTTPException(404, _("Aucun espace membre pour ce compte."))
    return member, await session.get(User, current.id)


async def _own_subscription(session, member: Member, raw) -> Subscription:
    sub = await session.get(Subscription, _int(raw)) if _int(raw) else None
    if sub is None or sub.member_id != member.id:
        raise HTTPException(404)
    return sub


async def _sub_view(session, sub: Subscription | None, grace_days: int) -> dict | None:
    if sub is None:
        return None
    plan = await session.get(Plan, sub.plan_id) if sub.plan_id else None
    amount = await session.scalar(select(PlanPrice.amount).where(PlanPrice.stripe_price_id == sub.stripe_price_id))
    renews = sub.status in RUNNING and not sub.cancel_at_period_end
    return {"sub": sub, "plan": plan, "access": lifecycle.access_of(sub, grace_days=grace_days), "amount": amount,
            "renews": renews, "currency": plan.currency if plan else "EUR"}


async def member_home(request: Request) -> Response:
    grace = request.app.state.settings.coworking_grace_days
    async with db(request) as session:
        member, user = await _me(request, session)
        site = await session.get(Site, member.site_id)
        workspace = await _sub_view(session, await lifecycle.current_subscription(session, member.id), grace)
        membership = await _sub_view(session, await lifecycle.current_subscription(session, member.id, kind=PlanKind.MEMBERSHIP), grace)
        invoices = await lifecycle.member_invoices(session, member.id)
        notes = await credit_notes_of(session, member.id)
        overdue = await lifecycle.overdue_amount(session, member.id)
        passes = await passes_of(session, member.id)
        pass_plans = {p.id: p for p in (await session.scalars(select(Plan).where(Plan.kind == PlanKind.PASS))).all()}
        options = await billing.change_options(session, workspace["sub"]) if workspace else []
        panels = await member_panels(session, member)
    gw = request.app.state.gateway
    # An open invoice whose SEPA debit is processing is being paid: not "to pay", shown "prélèvement en cours".
    in_flight = await debits_processing(gw, [i.stripe_invoice_id for i in invoices if i.status == InvoiceStatus.OPEN])
    unpaid = [i for i in invoices if i.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) and i.attempt_count > 0
              and i.stripe_invoice_id not in in_flight]
    billed = (*RUNNING, SubscriptionStatus.INCOMPLETE)  # incomplete: its first debit is processing
    running = next((v["sub"] for v in (workspace, membership) if v and v["sub"].status in billed), None)
    running_id = running.stripe_subscription_id if running else None
    # The method Stripe charges: a SEPA mandate (the subscription's or the customer's default), else the card.
    debit = await debit_on_file(gw, member.stripe_customer_id, subscription_id=running_id)
    card = None if debit else await customer_card(gw, member.stripe_customer_id, subscription_id=running_id)
    return page(request, "coworking/member/home.html", {
        "member": member, "me": user, "site": site, "workspace": workspace, "membership": membership, "invoices": invoices, "notes": notes,
        "overdue": overdue, "unpaid": unpaid, "passes": passes, "pass_plans": pass_plans, "options": options, "panels": panels,
        "card": card, "debit": debit, "in_flight": in_flight,
    })


async def change_plan(request: Request) -> Response:
    """GET: the plans to move to. POST: Stripe's proration preview, with a confirm button."""
    settings = request.app.state.settings
    async with db(request) as session:
        member, _user = await _me(request, session)
        form = await request.form() if request.method == "POST" else request.query_params
        sub = await _own_subscription(session, member, form.get("subscription"))
        current = await session.get(Plan, sub.plan_id) if sub.plan_id else None
        options = [await _offer(session, p) for p in await billing.change_options(session, sub)
                   if member.company_name or not p.company_only]
    context: dict[str, Any] = {"sub": sub, "current": current, "options": options, "preview": None, "error": None}
    if request.method == "GET":
        return page(request, "coworking/member/change.html", context)
    try:
        context["preview"] = await billing.preview_change(request.app.state.sessions, request.app.state.gateway, settings,
                                                          member_id=member.id, sub_id=sub.id, plan_id=_int(form.get("plan")) or 0)
    except LookupError:
        raise HTTPException(404) from None
    except billing.BillingError as exc:
        context["error"] = str(exc)
        return page(request, "coworking/member/change.html", context, status_code=400)
    except GatewayError:
        context["error"] = _unavailable()
        return page(request, "coworking/member/change.html", context, status_code=503)
    return page(request, "coworking/member/change.html", context)


async def confirm_change(request: Request) -> Response:
    settings = request.app.state.settings
    async with db(request) as session:
        member, _user = await _me(request, session)
    form = await request.form()
    try:
        sub = await billing.confirm_change(request.app.state.sessions, request.app.state.gateway, settings,
                                           member_id=member.id, token=str(form.get("token", "")))
    except LookupError:
        raise HTTPException(404) from None
    except billing.BillingError as exc:
        flash(request, str(exc), "error")
        return redirect_to(request, "member_home")
    except GatewayError:
        flash(request, _("Le changement de formule n'a pas pu être fait : réessayez dans quelques minutes."), "error")
        return redirect_to(request, "member_home")
    request.app.state.kick_mail()
    async with db(request) as session:
        plan = await session.get(Plan, sub.plan_id) if sub and sub.plan_id else None
    flash(request, _("Votre formule est maintenant « %(plan)s ».", plan=plan.name if plan else "?"), "success")
    return redirect_to(request, "member_home")


async def cancel(request: Request) -> Response:
    return await _set_cancel(request, True)


async def resume(request: Request) -> Response:
    return await _set_cancel(request, False)


async def _set_cancel(request: Request, flag: bool) -> Response:
    async with db(request) as session:
        member, _user = await _me(request, session)
        form = await request.form()
        sub = await _own_subscription(session, member, form.get("subscription"))
    try:
        sub = await billing.set_cancel_at_period_end(request.app.state.sessions, request.app.state.gateway,
                                                     member_id=member.id, sub_id=sub.id, cancel=flag)
    except LookupError:
        raise HTTPException(404) from None
    except billing.BillingError as exc:
        flash(request, str(exc), "error")
        return redirect_to(request, "member_home")
    except GatewayError:
        flash(request, _unavailable(), "error")
        return redirect_to(request, "member_home")
    if flag:
        end = sub.current_period_end
        flash(request, _("Votre abonnement prendra fin le %(date)s ; d'ici là rien ne change.",
                         date=i18n_day(lifecycle.local_day(end)) if end else "?"), "success")
    else:
        flash(request, _("Votre abonnement continue."), "success")
    return redirect_to(request, "member_home")


async def card(request: Request) -> Response:
    """The card is updated on Stripe's Billing Portal (a session created for this member, now)."""
    async with db(request) as session:
        member, _user = await _me(request, session)
    try:
        url = await billing.portal_url(request.app.state.sessions, request.app.state.gateway, member_id=member.id,
                                       return_url=absolute_url(request, "member_home"))
    except billing.BillingError as exc:
        flash(request, str(exc), "error")
        return redirect_to(request, "member_home")
    except GatewayError:
        flash(request, _unavailable(), "error")
        return redirect_to(request, "member_home")
    return redirect(url)


async def payment_method(request: Request) -> Response:
    """POST: a setup Checkout where the member saves a card or signs a SEPA mandate (a new IBAN).
    GET (back from it): that method becomes the one Stripe charges."""
    async with db(request) as session:
        member, _user = await _me(request, session)
    sessions, gw = request.app.state.sessions, request.app.state.gateway
    try:
        if request.method == "POST":
            return redirect(await billing.start_payment_method_setup(
                sessions, gw, member_id=member.id, cancel_url=absolute_url(request, "member_home"),
                success_url=absolute_url(request, "member_payment_method", query=CHECKOUT_RETURN)))
        session_id = request.query_params.get("session_id", "")
        done = session_id.startswith("cs_") and await billing.use_payment_method(sessions, gw, member_id=member.id,
                                                                                   session_id=session_id)
    except billing.BillingError as exc:
        flash(request, str(exc), "error")
        return redirect_to(request, "member_home")
    except GatewayError:
        flash(request, _unavailable(), "error")
        return redirect_to(request, "member_home")
    if done:
        flash(request, _("Votre nouveau moyen de paiement est enregistré : il servira dès la prochaine facture."), "success")
    else:
        flash(request, _("Aucun nouveau moyen de paiement n'a été enregistré."), "error")
    return redirect_to(request, "member_home")


async def invoice_link(request: Request) -> Response:
    """An invoice as a PDF with every legal mention (ours, Factur-X for a company), or Stripe's
    page to pay it; only for the member it belongs to."""
    what = request.path_params["what"]
    async with db(request) as session:
        member, _user = await _me(request, session)
        invoice = await session.get(Invoice, _int(request.path_params["invoice_id"]) or 0)
        if invoice is None or invoice.member_id != member.id or what not in ("pdf", "page"):
            raise HTTPException(404)
        if what == "pdf":
            return await _pdf(request, documents.invoice_document(session, invoice))
    if not invoice.hosted_invoice_url:
        raise HTTPException(404)
    return redirect(invoice.hosted_invoice_url)


async def credit_note_pdf(request: Request) -> Response:
    async with db(request) as session:
        member, _user = await _me(request, session)
        note = await session.get(CreditNote, _int(request.path_params["note_id"]) or 0)
        if note is None or note.member_id != member.id:
            raise HTTPException(404)
        return await _pdf(request, documents.credit_note_document(session, note))


async def _pdf(request: Request, building) -> Response:
    """The document printed, or the reason it cannot be (a missing address) back on the member's page."""
    try:
        doc = await building
    except InvoiceDocumentError as exc:
        flash(request, str(exc), "error")
        return redirect_to(request, "member_details")
    return pdf_response(await documents.printed(doc), documents.filename(doc))


async def details(request: Request) -> Response:
    async with db(request) as session:
        member, user = await _me(request, session)
    context: dict[str, Any] = {"member": member, "me": user, "error": None,
                               "form": {"name": user.name, "phone": member.phone or "", "company_name": member.company_name or "",
                                        "siren": member.siren or "", "vat_number": member.vat_number or "",
                                        "address": member.address or ""}}
    if request.method == "GET":
        return page(request, "coworking/member/details.html", context)
    form = await request.form()
    context["form"] = f = {k: str(form.get(k, "")).strip() for k in ("name", "phone", "company_name", "siren", "vat_number", "address")}
    try:
        checked: Details = check_details(email=user.email, name=f["name"], phone=f["phone"], company_name=f["company_name"],
                                         siren=f["siren"], vat_number=f["vat_number"], address=f["address"])
    except MemberError as exc:
        context["error"] = str(exc)
        return page(request, "coworking/member/details.html", context, status_code=400)
    async with db(request) as session:
        member, user = await _me(request, session)
        await update_details(session, member, checked)
    try:
        await push_details(request.app.state.gateway, member, user)
    except GatewayError:
        flash(request, _("Coordonnées enregistrées ; elles seront transmises à notre prestataire de paiement plus tard."))
        return redirect_to(request, "member_home")
    flash(request, _("Coordonnées enregistrées : elles figureront sur vos prochaines factures."), "success")
    return redirect_to(request, "member_home")


async def login_shortcut(request: Request) -> Response:
    """/membre/connexion: the login page, coming back to the member area."""
    return redirect_to(request, "login", query={"next": path_for(request, "member_home")})


routes = [
    Route("/coworking", sites_page, name="coworking_sites"),
    Route("/coworking/bienvenue", welcome, name="coworking_welcome"),
    Route("/coworking/pass/merci", pass_thanks, name="coworking_pass_thanks"),
    Route("/coworking/{site}", site_plans, name="coworking_plans"),
    Route("/coworking/{site}/adherer/{plan}", join, methods=["GET", "POST"], name="coworking_join"),
    Route("/coworking/{site}/adherer/{plan}/confirmer/{token}", join_confirm, methods=["GET", "POST"],
          name="coworking_join_confirm"),
    Route("/membre", member_home, name="member_home"),
    Route("/membre/connexion", login_shortcut, name="member_login"),
    Route("/membre/formule", change_plan, methods=["GET", "POST"], name="member_change"),
    Route("/membre/formule/confirmer", confirm_change, methods=["POST"], name="member_change_confirm"),
    Route("/membre/resilier", cancel, methods=["POST"], name="member_cancel"),
    Route("/membre/reprendre", resume, methods=["POST"], name="member_resume"),
    Route("/membre/carte", card, methods=["POST"], name="member_card"),
    Route("/membre/moyen-de-paiement", payment_method, methods=["GET", "POST"], name="member_payment_method"),
    Route("/membre/coordonnees", details, methods=["GET", "POST"], name="member_details"),
    Route("/membre/factures/{invoice_id:id}/{what:str}", invoice_link, name="member_invoice"),
    Route("/membre/avoirs/{note_id:id}/pdf", credit_note_pdf, name="member_credit_note"),
    *staff.routes,
]
