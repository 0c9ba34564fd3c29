"""The product and the offline Stripe sandbox served together, on one port (demo and tests only).

``create_app`` knows nothing of the sandbox: it talks to whatever Stripe API its settings name
(with no key, ``{BASE_URL}/_sandbox/stripe``). This composition mounts the sandbox there, in
front of the product, and runs both lifespans: the product's, and the sandbox's delivery loop.

    uvicorn --factory funding.demo.compose:create_demo_app     # what `funding demo` serves
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount

from funding.settings import ConfigError, Settings, load_settings
from funding.stripe_gateway import SANDBOX_PATH
from stripe_sandbox import Sandbox, create_sandbox_app

WEBHOOK_PATH = "/webhooks/stripe"


def sandbox_for(settings: Settings, *, state_path: Path | None = None, delivery: str | None = None,
                seed: int | None = None, webhook_secret: str | None = None) -> Sandbox:
    """A sandbox that serves ``settings``' base URL and delivers to its webhook endpoint.

    ``delivery``/``seed`` default to SANDBOX_DELIVERY/SANDBOX_SEED (polite when unset)."""
    return Sandbox(state_path=state_path, webhook_url=settings.base_url + WEBHOOK_PATH,
                   webhook_secret=webhook_secret or settings.stripe_webhook_secret,
                   public_base=settings.base_url + SANDBOX_PATH, delivery=delivery, seed=seed)


def with_sandbox(product: Starlette, sandbox: Sandbox) -> Starlette:
    """``product`` with ``sandbox`` mounted at /_sandbox/stripe; both lifespans run."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with product.router.lifespan_context(product):
            sandbox.start_delivery()
            try:
                yield
            finally:
                await sandbox.stop_delivery()

    # The product's mount has no name on purpose: the product's own route names (url_for("static"),
    # redirect_to(request, "journal")) resolve through this router unprefixed, as when it is served alone.
    app = Starlette(routes=[Mount(SANDBOX_PATH, create_sandbox_app(sandbox), name="sandbox"), Mount("/", product, name=None)],
                    lifespan=lifespan)
    app.state.product = product
    app.state.sandbox = sandbox
    app.state.settings = product.state.settings
    return app


def create_demo_app(settings: Settings | None = None, *, sandbox: Sandbox | None = None,
                    process_events: bool = True) -> Starlette:
    """The product, with the sandbox when its settings have no Stripe key (the product alone otherwise)."""
    from funding.app import create_app

    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise SystemExit(f"configuration error: {exc}") from None
    product = create_app(settings, process_events=process_events)
    if not settings.uses_sandbox:
        return product
    return with_sandbox(product, sandbox or sandbox_for(settings))
