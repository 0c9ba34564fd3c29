"""Pages every visitor and every role shares: home, health, login, language."""

from __future__ import annotations

import logging

from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from funding.auth.service import (
    AuthError,
    consume_link,
    end_sessions,
    is_team,
    normalise_email,
    read_link,
    request_login,
    safe_next,
)
from funding.db import transaction
from funding.i18n import get_locale, reset_locale, set_locale
from funding.i18n import gettext as _
from funding.ledger.service import revenue_by_source
from funding.orgs.models import Organisation, Site
from funding.web import db, flash, load_user, log_in, log_out, path_for, rate_limit, redirect, redirect_to, render

log = logging.getLogger("funding.auth")


async def home(request: Request) -> Response:
    async with db(request) as session:
        await load_user(request, session)
        sites = (await session.scalars(select(Site).order_by(Site.is_central.desc(), Site.name))).all()
        orgs = (await session.scalars(select(Organisation).order_by(Organisation.name))).all()
        revenue = [r for r in await revenue_by_source(session) if r.currency == "EUR"]
    return render(request, "home.html", {"sites": sites, "orgs": orgs, "revenue": revenue})


async def login(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next", "/"))
    if request.method == "GET":
        return render(request, "login.html", {"next": next_path, "sent": False, "error": None})
    form = await request.form()
    next_path = safe_next(str(form.get("next", "/")))
    try:
        email = normalise_email(str(form.get("email", "")))
    except AuthError as exc:
        return render(request, "login.html", {"next": next_path, "sent": False, "error": str(exc)}, status_code=400)
    await rate_limit(request, ("login", email), ("login-ip", None))
    # The same answer, in the same time, whether or not the address has an account: looking it
    # up and queuing the email happen after the answer is sent.
    response = render(request, "login.html", {"next": next_path, "sent": True, "error": None})
    response.background = BackgroundTask(_send_login_link, request.app, email, next_path, get_locale())
    return response


async def _send_login_link(app, email: str, next_path: str, locale: str) -> None:
    token = set_locale(locale)
    try:
        async with transaction(app.state.sessions) as session:
            await request_login(session, email, app.state.settings, next_path=next_path)
    except Exception:  # the visitor has their answer already; the worker's log has this
        log.exception("login link for a requested address could not be queued")
    else:
        app.state.kick_mail()
    finally:
        reset_locale(token)


async def login_link(request: Request) -> Response:
    """GET shows a button (mail scanners follow links; only a person's POST logs in)."""
    token = request.path_params["token"]
    settings = request.app.state.settings
    if request.method == "GET":
        try:
            read_link(token, settings)
        except AuthError as exc:
            return render(request, "login_link.html", {"error": str(exc), "token": None}, status_code=400)
        return render(request, "login_link.html", {"error": None, "token": token})
    try:
        async with db(request) as session:
            user, next_path = await consume_link(session, token, settings)
            team = await is_team(session, user.id)
            landing = await _landing(session, user.id) if team else None
    except AuthError as exc:
        return render(request, "login_link.html", {"error": str(exc), "token": None}, status_code=400)
    log_in(request, user)
    flash(request, _("Bienvenue, %(name)s.", name=user.name), "success")
    if next_path == path_for(request, "home") and team:
        next_path = path_for(request, "bar_till", site=landing) if landing else path_for(request, "admin")
    return redirect(next_path)


async def _landing(session, user_id: int) -> str | None:
    """The till a person who is staff only (not admin nor accountant) lands on after logging in:
    the central site of their organisation, else its first site. None: the back office."""
    from funding.auth.models import Membership

    roles = set((await session.scalars(select(Membership.role).where(Membership.user_id == user_id))).all())
    if "staff" not in roles or roles & {"admin", "accountant"}:
        return None
    org_ids = select(Membership.org_id).where(Membership.user_id == user_id, Membership.role == "staff")
    return await session.scalar(select(Site.slug).where(Site.org_id.in_(org_ids))
                                .order_by(Site.is_central.desc(), Site.name).limit(1))


async def logout(request: Request) -> Response:
    """Logging out ends every session of the person, not only this browser's: a copied cookie
    dies with it (the "log out everywhere" buttons of the member area and the back office
    come here too)."""
    async with db(request) as session:
        user = await load_user(request, session)  # a cookie already logged out ends nothing more
        if user is not None:
            await end_sessions(session, user.id)
    log_out(request)
    flash(request, _("Vous êtes déconnecté, sur tous vos appareils."))
    return redirect_to(request, "home")


routes = [
    Route("/", home, name="home"),
    Route("/login", login, methods=["GET", "POST"], name="login"),
    Route("/login/{token}", login_link, methods=["GET", "POST"], name="login_link"),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
