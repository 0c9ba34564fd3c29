"""create_app(settings): routes, middleware, lifespan. No business logic here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from funding.db import create_engine
from funding.domains import parts
from funding.errors import FundingError
from funding.mail.service import send_pending
from funding.security import SECURITY_HEADERS, CSRFMiddleware
from funding.sessions import sessions_for
from funding.settings import PROJECT_ROOT, ConfigError, Settings, load_settings
from funding.web import (
    LocaleMiddleware,
    LoginRequired,
    RefuseNul,
    funding_error,
    http_error,
    login_required,
    make_templates,
    server_error,
)

log = logging.getLogger("funding")
EXEMPT_FROM_CSRF = ("/webhooks/", "/_sandbox/")
E = TypeVar("E", bound=Exception)


def _handling(exc_class: type[E], handler: Callable[[Request, E], Awaitable[Response]]) -> tuple[type[E], ExceptionHandler]:
    """One entry of the app's exception handlers, checked as a pair: Starlette calls a handler
    only with the class it is registered for (or a subclass), which its type (any Exception)
    cannot say."""
    return exc_class, cast(ExceptionHandler, handler)


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                names = {k.lower() for k, _ in headers}
                # A response that says who may frame it (CSP frame-ancestors, e.g. an embeddable
                # widget) keeps that say: no X-Frame-Options is added to it.
                framable = any(k.lower() == b"content-security-policy" and b"frame-ancestors" in v for k, v in headers)
                for key, value in SECURITY_HEADERS:
                    if key not in names and not (framable and key == b"x-frame-options"):
                        headers.append((key, value))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None, *, sandbox=None, process_events: bool = True) -> Starlette:
    """The web application. Without Stripe keys it mounts the offline Stripe sandbox at
    /_sandbox/stripe (pass ``sandbox`` to choose its persistence). ``process_events=False``
    leaves stored webhook events to the worker (benchmarks, tests of the inbox)."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise SystemExit(f"configuration error: {exc}") from None

    # The composition root is the one place in `funding` that wires `webhooks` in.
    from funding import routes as core_routes
    from funding.stripe_gateway import SANDBOX_PATH, StripeGateway
    from webhooks import routes as webhook_routes
    from webhooks.inbox import InboxWriter
    from webhooks.routes import WebhookFastPath

    mounts = []
    if settings.uses_sandbox:
        from funding.sandbox import Sandbox, create_sandbox_app

        if sandbox is None:
            sandbox = Sandbox(
                webhook_url=settings.base_url + webhook_routes.PATH,
                webhook_secret=settings.stripe_webhook_secret,
                public_base=settings.base_url + SANDBOX_PATH,
            )
        mounts.append(Mount(SANDBOX_PATH, create_sandbox_app(sandbox), name="sandbox"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        app.state.sessions = sessions_for(engine, settings)
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
        if sandbox is not None:
            sandbox.start_delivery()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if sandbox is not None:
                await sandbox.stop_delivery()
            await app.state.inbox.stop()
            await app.state.gateway.aclose()
            await engine.dispose()

    app = Starlette(
        debug=False,
        routes=[
            *core_routes.routes,
            *webhook_routes.routes,
            *[route for module in parts("routes") for route in module.routes],
            *mounts,
            Mount("/static", StaticFiles(directory=PROJECT_ROOT / "funding" / "static"), name="static"),
        ],
        middleware=[
            Middleware(WebhookFastPath),
            Middleware(SecurityHeaders),
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
        exception_handlers=dict((_handling(HTTPException, http_error), _handling(FundingError, funding_error),
                                 _handling(LoginRequired, login_required), _handling(Exception, server_error))),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.templates = make_templates()
    app.state.sandbox = sandbox
    app.state.kick_mail = app.state.kick_events = lambda: None
    return app


async def _process_and_mail(app: Starlette) -> None:
    from webhooks.processing import drain

    if await drain(app.state.sessions, app.state.gateway):
        app.state.kick_mail()


async def _pump(name: str, wake: asyncio.Event, settings: Settings, work) -> None:
    """Do ``work`` soon after something is committed (and now and then); the worker is the safety net."""
    while True:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=settings.worker_poll_seconds * 5)
        wake.clear()
        try:
            await work()
        except Exception:
            log.exception("%s pump failed; the worker will retry", name)
