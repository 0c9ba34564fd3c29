"""What every page needs: templates, the current user, roles, flash messages, errors."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from funding import i18n
from funding.auth.models import BOOKS, EXPORTERS, STAFF, Membership, User  # noqa: F401  (the role sets routes ask for)
from funding.db import ROW_ID, transaction
from funding.errors import FundingError
from funding.scoping import OrgScope, set_scope
from funding.security import csrf_token
from funding.settings import PROJECT_ROOT


class RowIdConvertor(Convertor[int]):
    """``{name:id}`` in a route: a row id that fits a BIGINT; anything longer matches no route (404)."""

    regex = ROW_ID

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(int(value))


register_url_convertor("id", RowIdConvertor())

log = logging.getLogger("funding.web")
TEMPLATES_DIR = PROJECT_ROOT / "templates"


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=i18n.money, plain_money=i18n.plain_money, date=i18n.date, percent=i18n.percent,
                       fromjson=_fromjson)
    env.globals.update(get_locale=i18n.get_locale, source_labels=i18n.SOURCE_LABELS, path_for=_template_path_for)
    return Jinja2Templates(env=env)


Query = Mapping[str, Any] | Iterable[tuple[str, Any]] | str | None


def with_query(path: str, query: Query = None) -> str:
    """``path`` with ``query`` as its query string: a mapping or pairs (None values left out, "/" kept
    readable as in ``?next=/membre``), or a string already encoded."""
    if isinstance(query, str):
        text = query
    else:
        pairs = query.items() if isinstance(query, Mapping) else (query or ())
        text = urlencode([(key, value) for key, value in pairs if value is not None], safe="/")
    return f"{path}?{text}" if text else path


def path_for(request: Request, name: str, /, query: Query = None, **params: Any) -> str:
    """The path of the route called ``name`` (a relative link: no scheme, no host), so that a
    route's path is typed once, where the route is declared."""
    return with_query(str(request.app.url_path_for(name, **params)), query)


def absolute_url(request: Request, name: str, /, query: Query = None, **params: Any) -> str:
    """The route's address under the configured BASE_URL, for what is followed from outside
    the site: Stripe's return addresses, the API's links, the widget's code."""
    return request.app.state.settings.base_url + path_for(request, name, query, **params)


@jinja2.pass_context
def _template_path_for(context, name: str, /, query: Query = None, **params: Any) -> str:
    """``path_for`` in templates: ``{{ path_for("bar_till", site=site.slug, query={"membre": m.id}) }}``."""
    return path_for(context["request"], name, query, **params)


def render(request: Request, name: str, context: dict | None = None, status_code: int = 200) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    # Rendering is synchronous: installing the request's catalog just before it is safe.
    env: Any = templates.env  # jinja2.ext.i18n (make_templates) adds install_gettext_translations, untyped
    env.install_gettext_translations(i18n.translations(i18n.get_locale()), newstyle=True)
    ctx = {
        "user": request.scope.get("user"),
        "csrf_token": csrf_token(request),
        "flashes": request.session.pop("flashes", []),
        "locale": i18n.get_locale(),
        "settings": request.app.state.settings,
        "sandbox": request.app.state.settings.uses_sandbox,
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def flash(request: Request, message: str, level: str = "info") -> None:
    # Assign, never mutate in place: the session only saves what it sees being set.
    request.session["flashes"] = [*request.session.get("flashes", []), {"message": str(message), "level": level}]


def pdf_response(content: bytes, filename: str) -> Response:
    """A private document (an invoice, a credit note), shown in the browser, never cached on the way."""
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "private, no-store"})


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def redirect_to(request: Request, name: str, /, query: Query = None, **params: Any) -> RedirectResponse:
    """See other: the route called ``name`` (see :func:`path_for`)."""
    return redirect(path_for(request, name, query, **params))


@asynccontextmanager
async def db(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the block ends without error. Once
    :func:`require` has named the organisations of the person, every session of the
    request sees only theirs (funding.scoping)."""
    async with transaction(request.app.state.sessions) as session:
        set_scope(session, request.scope.get("org_scope"))
        yield session


async def rate_limit(request: Request, *checks: tuple[str, str | None]) -> None:
    """Count this request against each (action, key) of funding.limits (key None: the client's
    IP); RateLimited (429 with Retry-After, a French page or JSON) past any limit."""
    from funding.limits.service import client_ip, hit

    settings = request.app.state.settings
    ip = client_ip(request.scope, settings)
    await hit(request.app.state.sessions, settings, [(action, ip if key is None else key) for action, key in checks])


class LoginRequired(FundingError):
    pass


@dataclass(frozen=True)
class CurrentUser:
    """A snapshot of the logged-in person and the roles they hold, per organisation:
    ``grants`` holds (organisation id, role) pairs, organisation None for a network role
    (that role in every organisation). Safe to use after the transaction ends."""

    id: int
    email: str
    name: str
    locale: str
    grants: frozenset[tuple[int | None, str]]

    def can(self, *roles: str, org: int | None = None) -> bool:
        """Holds one of ``roles`` in organisation ``org`` (or, without ``org``, in some organisation)."""
        return any(role in roles and (org is None or where is None or where == org) for where, role in self.grants)

    def orgs_for(self, roles) -> frozenset[int] | None:
        """The organisations where the person holds one of ``roles``; None means every one (a network role)."""
        if any(where is None and role in roles for where, role in self.grants):
            return None
        return frozenset(where for where, role in self.grants if role in roles and where is not None)

    @property
    def is_team(self) -> bool:
        return self.can(*BOOKS)

    @property
    def is_member(self) -> bool:
        return self.can("member")


# The person and their roles in one round trip (every request of a logged-in person asks), as
# columns on the connection: no ORM entity to build, no identity map, no wall to apply (the wall
# always lets a person see their own row and memberships). Built once.
_ME = (select(User.id, User.email, User.name, User.locale, User.active, User.session_generation, Membership.org_id,
              Membership.role)
       .outerjoin(Membership, Membership.user_id == User.id).where(User.id == bindparam("uid")))


async def load_user(request: Request, session: AsyncSession | AsyncConnection) -> CurrentUser | None:
    """The logged-in person of this request (None, and the cookie forgets them, when they are gone,
    disabled, or logged out elsewhere since it was issued), read on ``session``'s connection."""
    uid = request.session.get("uid")
    if not uid:
        return None
    conn = await session.connection() if isinstance(session, AsyncSession) else session
    rows = (await conn.execute(_ME, {"uid": uid})).all()
    user = rows[0] if rows else None
    if user is None or not user.active or request.session.get("gen", 0) != user.session_generation:
        # Gone, disabled, or logged out since this cookie was issued (funding.auth.service.end_sessions).
        log_out(request)
        return None
    grants = frozenset((row.org_id, row.role) for row in rows if row.role is not None)
    current = CurrentUser(user.id, user.email, user.name, user.locale, grants)
    request.scope["user"] = current
    return current


def log_in(request: Request, user: User) -> None:
    """A fresh session for ``user`` (nothing of the anonymous one kept), bound to their current
    session generation."""
    request.session.clear()
    request.session.update(uid=user.id, gen=user.session_generation, lang=user.locale)


def log_out(request: Request) -> None:
    """This browser forgets the person, keeping only its language (their other sessions:
    funding.auth.service.end_sessions)."""
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
    request.scope.pop("user", None)


async def require(request: Request, session: AsyncSession | AsyncConnection, roles: tuple[str, ...]) -> CurrentUser:
    """The logged-in person, if they hold one of ``roles`` somewhere; from here on, this
    session and every later one of the request see only the organisations where they do
    (``request.scope["org_scope"]``; given a connection rather than a session, that scope is what
    its statements must look through: funding.bar.till.ring_up_at_once)."""
    user = request.scope.get("user") if request.scope.get("org_scope") is not None else None
    if user is None:
        user = await load_user(request, session)
    if user is None:
        raise LoginRequired()
    orgs = user.orgs_for(roles)
    if orgs is not None and not orgs:
        raise HTTPException(403)
    scope = OrgScope(orgs, user.id)
    request.scope["org_scope"] = scope
    if isinstance(session, AsyncSession):
        set_scope(session, scope)
    return user


class LocaleMiddleware:
    """Picks the request's language: ?lang=, then the session, then Accept-Language."""

    def __init__(self, app: ASGIApp, default: str):
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/webhooks/"):  # machines need no language
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        query = request.query_params.get("lang")
        session = scope.get("session", {})
        locale = i18n.pick_locale(query, session.get("lang"), request.headers.get("accept-language"), self.default)
        if query in ("fr", "en"):
            session["lang"] = query
        token = i18n.set_locale(locale)
        try:
            await self.app(scope, receive, send)
        finally:
            i18n._current.reset(token)


class RefuseNul:
    """NUL and the other C0 control characters (all but tab, line feed and carriage return) are
    never text: a path, a query string, a form (urlencoded or multipart: its fields, not its
    files) or a JSON body carrying one, raw or escaped, is refused (400, a page that says so)
    before any handler reads it. PostgreSQL refuses NUL in text, so it used to surface as a
    database error (500) wherever a value reached a query; SQLite would have stored it, and the
    other controls break exports and mails. Uploaded files are checked by their reader
    (funding.csvin for CSV). Stripe's webhooks are left to their signature."""

    RAW = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
    ENCODED = re.compile(rb"%(?:0[0-8bcef]|1[0-9a-f])", re.IGNORECASE)  # in a query string or a urlencoded form
    ESCAPED = re.compile(rb"\\u00(?:0[0-8bcef]|1[0-9a-f])", re.IGNORECASE)  # in JSON
    PATH = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _bad_body(self, content_type: bytes, body: bytes) -> bool:
        ctype = content_type.lower()
        if ctype.startswith(b"multipart/"):
            return self._bad_multipart(content_type, body)  # the boundary keeps its case (Chromium's is mixed)
        if self.RAW.search(body):
            return True
        if b"json" in ctype:
            return bool(self.ESCAPED.search(body))
        return bool(self.ENCODED.search(body))

    def _bad_multipart(self, ctype: bytes, body: bytes) -> bool:
        """A field's value (a part without a file name) carrying a control character."""
        match = re.search(rb'boundary="?([^";]+)"?', ctype, re.IGNORECASE)
        if not match:
            return False
        for part in body.split(b"--" + match.group(1)):
            head, sep, value = part.partition(b"\r\n\r\n")
            if sep and b"filename=" not in head.lower() and self.RAW.search(value.removesuffix(b"\r\n")):
                return True
        return False

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        locale = i18n.pick_locale(None, None, request.headers.get("accept-language"), "fr")
        token = i18n.set_locale(locale)
        try:
            detail = i18n.gettext("Caractère de contrôle refusé (caractère nul ou invisible) : retirez-le du texte et réessayez.")
            title = i18n.gettext(ERROR_TITLES[400])
            if wants_json(request):
                response: Response = JSONResponse({"error": detail}, status_code=400)
            else:
                try:
                    env: Any = request.app.state.templates.env
                    env.install_gettext_translations(i18n.translations(locale), newstyle=True)
                    response = request.app.state.templates.TemplateResponse(request, "error.html", {
                        "status": 400, "title": ERROR_TITLES[400], "detail": detail, "user": None, "csrf_token": "",
                        "flashes": [], "locale": locale, "settings": request.app.state.settings,
                        "sandbox": request.app.state.settings.uses_sandbox}, status_code=400)
                except Exception:  # the refusal itself must never fail
                    log.exception("refusal page failed")
                    response = HTMLResponse(f"<!doctype html><title>{title}</title><h1>{title} (400)</h1><p>{detail}</p>",
                                            status_code=400)
        finally:
            i18n.reset_locale(token)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/webhooks/"):
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if self.PATH.search(scope["path"]) or self.RAW.search(query) or self.ENCODED.search(query):
            await self._refuse(scope, receive, send)
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if self._bad_body(content_type, body):
            await self._refuse(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/webhooks/", "/healthz")) or "application/json" in request.headers.get(
        "accept", ""
    )


ERROR_TITLES = {
    400: i18n.N_("Requête invalide"),
    403: i18n.N_("Accès refusé"),
    404: i18n.N_("Page introuvable"),
    405: i18n.N_("Méthode non autorisée"),
    413: i18n.N_("Requête trop volumineuse"),
    500: i18n.N_("Erreur interne"),
}


def logged_path(request: Request) -> str:
    """The request's path as logs may show it: its token, if any, redacted (funding.security.TokenRedactor)."""
    redactor = getattr(request.app.state, "redactor", None)
    return redactor.redact(request.url.path) if redactor is not None else request.url.path


async def http_error(request: Request, exc: HTTPException) -> Response:
    if wants_json(request):
        return JSONResponse({"error": exc.detail or ERROR_TITLES.get(exc.status_code, "error")}, status_code=exc.status_code)
    return _error_page(request, exc.status_code, exc.detail if exc.detail and exc.status_code == 400 else None)


ERROR_TITLES.update({401: i18n.N_("Connexion requise"), 409: i18n.N_("Conflit"), 429: i18n.N_("Trop de requêtes"),
                     503: i18n.N_("Service momentanément indisponible")})


async def funding_error(request: Request, exc: FundingError) -> Response:
    """Every refusal meant for a person, answered once: its message, with its status."""
    if exc.status >= 500:
        log.warning("%s on %s %s: %s", type(exc).__name__, request.method, logged_path(request), exc)
    headers = getattr(exc, "headers", None) or {}  # e.g. Retry-After of a rate limit
    if wants_json(request):
        response: Response = JSONResponse({"error": str(exc)}, status_code=exc.status)
    else:
        response = _error_page(request, exc.status, str(exc) or None)
    response.headers.update(headers)
    return response


async def login_required(request: Request, exc: LoginRequired) -> Response:
    return redirect_to(request, "login", query={"next": request.url.path})


async def database_error(request: Request, exc: Exception) -> Response:
    """A database error (or any OSError), handled inside the app so that it is not raised again
    to the server (whose own traceback would follow): while the database is away it is expected,
    answered 503 "try again" and logged in one line (funding.ops.outage); anything else is a
    server error."""
    from funding.ops.outage import is_outage

    if not is_outage(exc):
        return await server_error(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, logged_path(request), type(exc).__name__)
    if wants_json(request):
        return JSONResponse({"error": "temporarily unavailable"}, status_code=503, headers={"retry-after": "5"})
    page = _error_page(request, 503, None)
    page.headers["retry-after"] = "5"
    return page


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, logged_path(request), exc_info=exc)
    if wants_json(request):
        return JSONResponse({"error": "internal error"}, status_code=500)
    return _error_page(request, 500, None)


def _error_page(request: Request, status: int, detail: str | None) -> Response:
    try:
        return render(request, "error.html", {"status": status, "title": ERROR_TITLES.get(status, "Erreur"), "detail": detail},
                      status_code=status)
    except Exception:  # the error page itself must never fail
        log.exception("error page failed")
        return HTMLResponse(f"<!doctype html><title>{status}</title><h1>{status}</h1>", status_code=status)


def _fromjson(text: str) -> list:
    return sorted(json.loads(text or "{}").items())


def nl2br(text: str) -> Markup:
    return Markup("<br>").join(Markup.escape(text or "").split("\n"))
