"""create_app(settings): routes, middleware, lifespan. No business logic here."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from funding.clock import wait_event
from funding.db import create_engine
from funding.domains import parts
from funding.errors import FundingError
from funding.mail.service import send_pending
from funding.ops.bodies import BodyLimit
from funding.ops.heartbeat import Heartbeat
from funding.ops.logs import AccessLog
from funding.ops.logs import configure as configure_logs
from funding.ops.outage import DATABASE_ERRORS, is_outage
from funding.security import CSP, HSTS, SECURITY_HEADERS, CSRFMiddleware, TokenRedactor
from funding.sessions import sessions_for
from funding.settings import PROJECT_ROOT, ConfigError, Settings, load_settings
from funding.web import (
    LocaleMiddleware,
    LoginRequired,
    RefuseNul,
    database_error,
    funding_error,
    http_error,
    login_required,
    make_templates,
    server_error,
)

log = logging.getLogger("funding")
EXEMPT_FROM_CSRF = ("/webhooks/",)
E = TypeVar("E", bound=Exception)


def _handling(exc_class: type[E], handler: Callable[[Request, E], Awaitable[Response]]) -> tuple[type[E], ExceptionHandler]:
    """One entry of the app's exception handlers, checked as a pair: Starlette calls a handler
    only with the class it is registered for (or a subclass), which its type (any Exception)
    cannot say."""
    return exc_class, cast(ExceptionHandler, handler)


class SecurityHeaders:
    """The headers every answer carries, errors included (it wraps the whole stack, outside the
    500 handler): nosniff, same-origin referrer, the CSP (funding.security.CSP: a route that
    says who may frame it, the campaign widget, sends its own, which is kept), no framing,
    HSTS when the site is served over https, and ``Cache-Control: no-store`` on everything
    that does not say how it may be cached (private pages, login pages, links carrying a
    token), the static files aside."""

    def __init__(self, app: ASGIApp, *, https: bool = False, cacheable: tuple[str, ...] = ()):
        self.app = app
        self.extra = [HSTS] if https else []
        self.cacheable = cacheable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(self.cacheable)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                names = {k.lower() for k, _ in headers}
                # A response that says who may frame it (CSP frame-ancestors, e.g. an embeddable
                # widget) keeps that say: no X-Frame-Options is added to it.
                framable = any(k.lower() == b"content-security-policy" and b"frame-ancestors" in v for k, v in headers)
                for key, value in (*SECURITY_HEADERS, (b"content-security-policy", CSP), *self.extra):
                    if key not in names and not (framable and key == b"x-frame-options"):
                        headers.append((key, value))
                if b"cache-control" not in names and not static:
                    headers.append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SafeMethods:
    """GET and HEAD change nothing, whatever the route: a HEAD is answered as the GET it stands
    for, its body (if any) read and dropped. So no handler ever sees a HEAD, and none can take
    one for a POST (``if request.method == "GET": … else: …``).

    The answer ends with its headers: the client then goes away (ASGI's ``http.disconnect``,
    which a streamed body listens for, as a 2.3 server says it), so a streamed download is
    not produced, nor recorded as taken, for a HEAD."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        drained, answered = False, asyncio.Event()

        async def no_body() -> Message:
            nonlocal drained
            if not drained:
                drained = True
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return message
                    more = message.get("more_body", False)
                return {"type": "http.request", "body": b"", "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                answered.set()
            elif message["type"] != "http.response.body":
                await send(message)

        asgi = {**scope.get("asgi", {}), "spec_version": "2.3"}
        await self.app({**scope, "method": "GET", "asgi": asgi}, no_body, headers_only)


class FundingApp(Starlette):
    """Starlette, with the edge outside everything, even the 500 handler (ServerErrorMiddleware,
    which Starlette puts outermost): error pages carry the security headers too."""

    def __init__(self, *args: Any, https: bool = False, **kwargs: Any):
        self.https = https
        self.edge: list[Callable[[ASGIApp], ASGIApp]] = []  # outermost layers, innermost first (funding.ops)
        super().__init__(*args, **kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        static = str(self.url_path_for("static", path=""))  # public files: the browser may keep them
        stack: ASGIApp = SecurityHeaders(SafeMethods(super().build_middleware_stack()), https=self.https, cacheable=(static,))
        for layer in self.edge:
            stack = layer(stack)
        return stack


_FROZEN = False


def _freeze_what_lasts() -> None:
    """Once per process, when the first app has started: what is alive then (modules, the app, its
    routes, templates, engines) lives as long as the process, so the cyclic garbage collector stops
    walking it at each full collection (gc.freeze). A full collection otherwise walks every object
    the imports made, a pause of milliseconds in the middle of some request: the bar bench's p99
    with 20 tills, two runs each, 94 and 124 ms without, 65 and 65 ms with."""
    global _FROZEN
    if not _FROZEN:
        _FROZEN = True
        gc.collect()
        gc.freeze()


def create_app(settings: Settings | None = None, *, process_events: bool = True) -> Starlette:
    """The web application. It talks to the Stripe API its settings name; without a key, the
    offline sandbox at {BASE_URL}/_sandbox/stripe, which something else serves there (the demo
    and the tests compose both: funding.demo.compose). ``process_events=False`` leaves stored
    webhook events to the worker (benchmarks, tests of the inbox)."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise SystemExit(f"configuration error: {exc}") from None

    # The composition root is the one place in `funding` that wires `webhooks` in.
    from funding import routes as core_routes
    from funding.stripe_gateway import StripeGateway
    from webhooks import routes as webhook_routes
    from webhooks.inbox import InboxWriter
    from webhooks.routes import WebhookFastPath

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        engine = create_engine(settings.database_url, **settings.engine_options)
        app.state.engine = engine
        app.state.sessions = sessions_for(engine, settings)
        # /healthz and /readyz look at the database through a connection outside the pool.
        app.state.probe_engine = create_engine(settings.database_url, pool=False, pgbouncer=settings.db_pgbouncer)
        # Pages and exports that only read may read a replica (DATABASE_REPLICA_URL), else the primary.
        app.state.read_engine = (create_engine(settings.database_replica_url, **settings.engine_options)
                                 if settings.database_replica_url else engine)
        beat = Heartbeat(engine, "web", every=settings.heartbeat_seconds, stale=settings.heartbeat_stale_seconds)
        if process_events:  # this process leases events too: it says it is alive
            await beat.start()
        app.state.gateway = StripeGateway(settings)
        app.state.inbox = InboxWriter(engine)
        app.state.inbox.start()
        mail_wake, event_wake = asyncio.Event(), asyncio.Event()
        app.state.kick_mail = mail_wake.set
        app.state.kick_events = event_wake.set if process_events else (lambda: None)
        tasks = [asyncio.create_task(_pump("mail", mail_wake, settings, lambda: send_pending(app.state.sessions, settings)))]
        if process_events:
            tasks.append(asyncio.create_task(
                _pump("events", event_wake, settings, lambda: _process_and_mail(app))))
        _freeze_what_lasts()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.inbox.stop()
            await app.state.gateway.aclose()
            if process_events:
                await beat.stop()
            for other in {app.state.probe_engine, app.state.read_engine} - {engine}:
                await other.dispose()
            await engine.dispose()

    handlers: dict[Any, ExceptionHandler] = dict((_handling(HTTPException, http_error), _handling(FundingError, funding_error),
                                                 _handling(LoginRequired, login_required), _handling(Exception, server_error)))
    # Inside the app (not re-raised to the server): an outage is answered 503 in one log line.
    handlers.update(_handling(kind, database_error) for kind in DATABASE_ERRORS)
    app = FundingApp(
        https=settings.https,
        debug=False,
        routes=[
            *core_routes.routes,
            *webhook_routes.routes,
            *[route for module in parts("routes") for route in module.routes],
            Mount("/static", StaticFiles(directory=PROJECT_ROOT / "funding" / "static"), name="static"),
            *([] if settings.s3_bucket else
              [Mount("/media", StaticFiles(directory=settings.media_dir, check_dir=False), name="media")]),
        ],
        middleware=[
            Middleware(WebhookFastPath),
            Middleware(RefuseNul),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key,
                session_cookie="entrelab_session",
                max_age=14 * 24 * 3600,
                same_site="lax",
                https_only=settings.https,
            ),
            Middleware(LocaleMiddleware, default=settings.default_locale),
            Middleware(CSRFMiddleware, exempt_prefixes=EXEMPT_FROM_CSRF),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.redactor = _redact_access_log(app)
    configure_logs(settings.log_format)
    app.edge.append(lambda inner: BodyLimit(inner, secret_key=settings.secret_key, cookie="entrelab_session",
                                            anonymous=settings.max_body_anonymous, member=settings.max_body_member,
                                            exempt=EXEMPT_FROM_CSRF))
    if settings.log_format == "json":
        app.edge.append(lambda inner: AccessLog(inner, redact=app.state.redactor.redact))
    app.state.templates = make_templates()
    app.state.kick_mail = app.state.kick_events = lambda: None
    return app


def _redact_access_log(app: Starlette) -> TokenRedactor:
    """uvicorn's access log (Procfile: uvicorn --factory funding.app:create_app) logs every
    path: the routes with a ``{token}`` have it redacted there (one filter, this app's)."""
    patterns = [route.path_regex for route in app.routes if isinstance(route, Route) and "{token" in route.path]
    redactor = TokenRedactor(patterns)
    access = logging.getLogger("uvicorn.access")
    for old in [f for f in access.filters if isinstance(f, TokenRedactor)]:
        access.removeFilter(old)
    access.addFilter(redactor)
    return redactor


async def _process_and_mail(app: Starlette) -> None:
    from webhooks.processing import drain

    if await drain(app.state.sessions, app.state.gateway):
        app.state.kick_mail()


async def _pump(name: str, wake: asyncio.Event, settings: Settings, work) -> None:
    """Do ``work`` soon after something is committed (and now and then); the worker is the safety net."""
    while True:
        await wait_event(wake, settings.worker_poll_seconds * 5)
        wake.clear()
        try:
            await work()
        except Exception as exc:
            if is_outage(exc):  # the database is away: expected, one line
                log.warning("%s pump: database unavailable (%s); the worker will retry", name, type(exc).__name__)
            else:
                log.exception("%s pump failed; the worker will retry", name)
