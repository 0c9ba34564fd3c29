"""Signed tokens (itsdangerous) and CSRF protection for every form."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Iterable

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from funding.errors import FundingError

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MAX_FORM_BYTES = 20 * 1024 * 1024
# Sent with every response (funding.app.SecurityHeaders, and the webhook fast path).
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"))
HSTS = (b"strict-transport-security", b"max-age=31536000")


def content_security_policy(frame_ancestors: str = "'none'") -> str:
    """The one Content-Security-Policy of the site: scripts only from our own files (no inline
    script, no ``on…=`` attribute), nothing framed, and no framing of our pages except where a
    route says who may (the campaign widget: ``frame_ancestors="*"``). Styles keep
    'unsafe-inline' for the width of progress bars (``style=``); campaign images are any https."""
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
            f"object-src 'none'; base-uri 'none'; frame-src 'none'; frame-ancestors {frame_ancestors}")


CSP = content_security_policy().encode()


class TokenError(FundingError):
    """A signed link that was altered, has expired, or was meant for something else."""


def serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=f"entrelab-funding:{purpose}")


def sign(secret_key: str, purpose: str, value) -> str:
    return serializer(secret_key, purpose).dumps(value)


def unsign(secret_key: str, purpose: str, token: str, *, max_age: int | None):
    try:
        return serializer(secret_key, purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenError("expired") from None
    except BadSignature:
        raise TokenError("invalid") from None


def unsign_dated(secret_key: str, purpose: str, token: str, *, max_age: int | None):
    """``unsign``, and when the token was signed (an aware UTC datetime, to the second)."""
    try:
        return serializer(secret_key, purpose).loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired:
        raise TokenError("expired") from None
    except BadSignature:
        raise TokenError("invalid") from None


REDACTED = "[jeton]"


class TokenRedactor(logging.Filter):
    """Keeps tokens out of the logs: in a logged request line (uvicorn's access log, our own
    error lines), the ``{token}`` part of any route that carries one (login links, pledge,
    receipt and export links) is replaced by ``[jeton]``, and so is a ``token=`` query value.
    Built from the routes themselves (funding.app), so a new tokened route is covered."""

    QUERY_TOKEN = re.compile(r"((?:^|&)token=)[^&]*")

    def __init__(self, patterns: Iterable[re.Pattern[str]]):
        super().__init__()
        self.patterns = tuple(patterns)

    def redact(self, path: str) -> str:
        raw, mark, query = path.partition("?")
        for pattern in self.patterns:
            match = pattern.match(raw)
            if match:
                start, end = match.span("token")
                raw = raw[:start] + REDACTED + raw[end:]
                break
        return raw + mark + self.QUERY_TOKEN.sub(lambda m: m.group(1) + REDACTED, query)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(arg) if isinstance(arg, str) and arg.startswith("/") else arg
                                for arg in record.args)
        return True


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        if request.scope.get("public_page"):  # a page anyone may be served from a cache: no session
            from funding.public import anonymous_token

            return anonymous_token(request.app.state.settings.secret_key)
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


class CSRFMiddleware:
    """Refuses any state-changing request whose form field or header does not carry the
    session's token. Placed inside the session middleware. Machine endpoints that
    authenticate otherwise (the Stripe webhook) are exempt by prefix."""

    def __init__(self, app: ASGIApp, *, exempt_prefixes: tuple[str, ...] = ()):
        self.app = app
        self.exempt = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                await HTMLResponse("Requête trop volumineuse / Request too large", status_code=413)(scope, receive, send)
                return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        expected = scope.get("session", {}).get("csrf")
        supplied = Headers(scope=scope).get(CSRF_HEADER)
        if supplied is None:
            try:
                form = await Request(scope, replay).form()
                field = form.get(CSRF_FIELD)
                supplied = field if isinstance(field, str) else None  # a file is no token
                await form.close()
            except Exception:
                supplied = None
            replayed = False
        if not (isinstance(supplied, str) and (
                (expected and hmac.compare_digest(expected, supplied)) or _anonymous_form(scope, supplied))):
            await _refuse(scope, receive, send)
            return
        await self.app(scope, replay, send)


def _anonymous_form(scope: Scope, supplied: str) -> bool:
    """A form of a public page (funding.public), posted to that form's action by someone who is
    not logged in: no session's authority for a forged form to borrow, so the page's signed token
    is enough there (and only there: never to log someone in, say)."""
    from funding.public import ANONYMOUS_POSTS, valid_anonymous_token

    if scope.get("session", {}).get("uid") or "app" not in scope or not ANONYMOUS_POSTS.fullmatch(scope["path"]):
        return False

    return valid_anonymous_token(scope["app"].state.settings.secret_key, supplied)


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    html = (
        "<!doctype html><html lang=fr><meta charset=utf-8><title>Formulaire expiré</title>"
        "<main style='font-family:sans-serif;max-width:40rem;margin:3rem auto'>"
        "<h1>Formulaire expiré ou invalide</h1><p>Revenez à la page précédente, rechargez-la et recommencez.</p>"
        "<p lang=en>This form has expired or is invalid: go back, reload the page and try again.</p>"
        "<p><a href='/'>Accueil</a></p></main>"
    )
    await HTMLResponse(html, status_code=403)(scope, receive, send)
