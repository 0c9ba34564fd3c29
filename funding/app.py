"""create_app(settings): routes, middleware, lifespan. No business logic here."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from funding.db import create_engine, session_factory
from funding.ledger import routes as ledger_routes
from funding.mail import routes as mail_routes
from funding.mail.service import send_pending
from funding.security import CSRFMiddleware
from funding.settings import PROJECT_ROOT, ConfigError, Settings, load_settings
from funding.web import LocaleMiddleware, LoginRequired, http_error, login_required, make_templates, server_error

log = logging.getLogger("funding")
EXEMPT_FROM_CSRF = ("/webhooks/", "/_sandbox/")


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
                for key, value in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ):
                    if key not in names:
                        headers.append((key, value))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None) -> Starlette:
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise SystemExit(f"configuration error: {exc}") from None

    from funding import routes as core_routes

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        wake = asyncio.Event()
        app.state.kick_mail = wake.set
        pump = asyncio.create_task(_mail_pump(app, wake))
        try:
            yield
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            await engine.dispose()

    app = Starlette(
        debug=False,
        routes=[
            *core_routes.routes,
            *ledger_routes.routes,
            *mail_routes.routes,
            Mount("/static", StaticFiles(directory=PROJECT_ROOT / "funding" / "static"), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders),
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
        exception_handlers={HTTPException: http_error, LoginRequired: login_required, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.templates = make_templates()
    app.state.kick_mail = lambda: None
    return app


async def _mail_pump(app: Starlette, wake: asyncio.Event) -> None:
    """Send queued emails soon after they are committed; the worker is the safety net."""
    while True:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=app.state.settings.worker_poll_seconds * 5)
        wake.clear()
        try:
            await send_pending(app.state.sessions, app.state.settings)
        except Exception:
            log.exception("mail pump failed; the worker will retry")
