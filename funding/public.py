"""Public pages for a crowd: what anonymous visitors get from the campaign pages, the campaign
list, the widget and the open API.

A visitor without a session (no cookie: the campaign shared on social media, a newspaper's
readers) gets an answer anyone may keep: ``Cache-Control: public, max-age=…, s-maxage=…``,
an ``ETag`` (the SHA-256 of the body) and ``Last-Modified``, ``304 Not Modified`` when its
``If-None-Match`` still holds, and never a ``Set-Cookie`` — so a CDN or a reverse proxy can
absorb a burst. The page's forms carry an anonymous CSRF token that needs no session
(:func:`anonymous_token`; :class:`funding.security.CSRFMiddleware` accepts it from a request
without a logged-in person, who has no authority a forged form could borrow).

Each process also keeps a rendered answer for a moment (:data:`PROCESS_SECONDS`), so a burst
that reaches it costs one rendering per page and per language, not one per visitor (off in
tests, which read pages right after changing them). Anyone with a session (a logged-in
person, a flash message waiting) is answered by the handler as before: private, ``no-store``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response

from funding import i18n

MAX_AGE = 30  # seconds a browser keeps an answer
SHARED_MAX_AGE = 30  # seconds a CDN or a reverse proxy does
PROCESS_SECONDS = 2.0  # seconds a process serves a rendered answer again (0 in tests)
KEPT = 256  # answers kept per process, at most
ANONYMOUS_FORM = "anonymous-form"
CACHE_CONTROL = f"public, max-age={MAX_AGE}, s-maxage={SHARED_MAX_AGE}".encode()
_DROPPED = {b"set-cookie", b"content-length", b"cache-control", b"etag", b"last-modified", b"vary"}

Endpoint = Callable[[Request], Awaitable[Response]]


def anonymous_token(secret_key: str, day: dt.date | None = None) -> str:
    """A CSRF token for a form on a page anyone may be served from a cache: not tied to a session
    (there is none), the same all day so that the page, and its ETag, stay the same; valid the
    next day too."""
    day = day or dt.datetime.now(dt.UTC).date()
    mac = hmac.new(secret_key.encode(), f"{ANONYMOUS_FORM}:{day.isoformat()}".encode(), hashlib.sha256).hexdigest()
    return f"{day.isoformat()}.{mac[:40]}"


# The forms a public page carries, to which its anonymous token may be posted: nowhere else
# (a login link's button, say: a forged form must not log a visitor into someone else's account).
ANONYMOUS_POSTS = re.compile(r"/campagnes/[^/]+/(contribuer|rappel)")


def valid_anonymous_token(secret_key: str, token: str) -> bool:
    today = dt.datetime.now(dt.UTC).date()
    return any(hmac.compare_digest(token, anonymous_token(secret_key, day)) for day in (today, today - dt.timedelta(days=1)))


@dataclass(frozen=True)
class Kept:
    body: bytes
    headers: list[tuple[bytes, bytes]]
    etag: bytes
    last_modified: bytes
    expires: float

    def answer(self, request: Request) -> Response:
        common = [(b"cache-control", CACHE_CONTROL), (b"etag", self.etag),
                  (b"last-modified", self.last_modified), (b"vary", b"Cookie, Accept-Language")]
        if self.etag in _etags(request.headers.get("if-none-match", "")):
            response = Response(status_code=304)
            response.raw_headers = common
            return response
        response = Response(self.body)
        response.raw_headers = [*self.headers, *common, (b"content-length", str(len(self.body)).encode())]
        return response


def _etags(header: str) -> set[bytes]:
    return {tag.strip().removeprefix("W/").encode() for tag in header.split(",") if tag.strip()}


class Answers:
    """What a process keeps of its public answers: rendered bytes by path, query and language."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.kept: OrderedDict[tuple[str, str, str], Kept] = OrderedDict()

    def get(self, key: tuple[str, str, str]) -> Kept | None:
        kept = self.kept.get(key)
        if kept is None or kept.expires < time.monotonic():
            return None
        return kept

    def put(self, key: tuple[str, str, str], kept: Kept) -> None:
        if self.seconds <= 0:
            return
        self.kept[key] = kept
        self.kept.move_to_end(key)
        while len(self.kept) > KEPT:
            self.kept.popitem(last=False)


def _answers(request: Request) -> Answers:
    state = request.app.state
    answers = getattr(state, "public_answers", None)
    if answers is None:
        seconds = 0.0 if state.settings.environment == "test" else PROCESS_SECONDS
        answers = state.public_answers = Answers(seconds)
    return answers


def _keep(response: Response, seconds: float) -> Kept:
    body = bytes(response.body)
    headers = [(k, v) for k, v in response.raw_headers if k.lower() not in _DROPPED]
    etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
    return Kept(body, headers, etag, formatdate(usegmt=True).encode(), time.monotonic() + seconds)


def _anonymous(request: Request) -> bool:
    """No session came with the request (the language this very request chose aside)."""
    session = request.session
    chosen = request.query_params.get("lang")
    return all(key == "lang" and session[key] == chosen for key in session)


def public(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` answered as a public page to visitors without a session (see the module)."""

    @wraps(endpoint)
    async def serve(request: Request) -> Response:
        if request.method != "GET" or not _anonymous(request):
            return await endpoint(request)  # someone with a session: their own, private answer
        answers = _answers(request)
        key = (request.url.path, request.url.query, i18n.get_locale())
        kept = answers.get(key)
        if kept is None:
            request.scope["public_page"] = True  # its forms get an anonymous CSRF token
            try:
                response = await endpoint(request)
            finally:
                request.session.clear()  # a public answer sets no cookie (not even ?lang=)
            if response.status_code != 200 or not hasattr(response, "body"):
                return response
            kept = _keep(response, answers.seconds)
            answers.put(key, kept)
        return kept.answer(request)

    return serve
