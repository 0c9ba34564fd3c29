"""``python -m stripe_sandbox --port N``: the sandbox on its own, an offline Stripe for any app.

    python -m stripe_sandbox --port 12111 --webhook-url http://127.0.0.1:8000/webhooks/stripe \\
        --webhook-secret whsec_… --state var/stripe.json [--delivery chaos --seed 7]

then ``stripe.StripeClient("sk_test_…", base_addresses={"api": "http://127.0.0.1:12111"})``.
The API is at ``{base}/v1/…``, the hosted pages (Checkout, 3-D Secure, invoices, portal) and
``/_admin/…`` beside it; webhooks are delivered (and retried) in the background.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount

from stripe_sandbox.app import create_sandbox_app
from stripe_sandbox.sandbox import API_VERSION, Sandbox
from stripe_sandbox.webhooks import MODES


def standalone_app(sb: Sandbox, mount: str = "") -> Starlette:
    """The sandbox's app at ``mount`` (the root by default), delivering webhooks while it is served."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sb.start_delivery()
        try:
            yield
        finally:
            await sb.stop_delivery()
            sb.save()

    return Starlette(routes=[Mount(mount, create_sandbox_app(sb), name="sandbox")], lifespan=lifespan)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stripe_sandbox", description="An offline Stripe API for development and tests.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (the sandbox has no real authentication)")
    parser.add_argument("--webhook-url", help="where events are POSTed (none: events are only listed)")
    parser.add_argument("--webhook-secret", default="whsec_sandbox_0000000000000000000000000000", help="signs the deliveries")
    parser.add_argument("--webhook-api-version", default=API_VERSION, help=f"the endpoint's API version (default {API_VERSION})")
    parser.add_argument("--state", type=Path, help="a JSON file that keeps the sandbox's objects between runs")
    parser.add_argument("--delivery", choices=MODES, help="polite (default, or $SANDBOX_DELIVERY) or chaos")
    parser.add_argument("--seed", type=int, help="chaos's seed (default $SANDBOX_SEED, or a fresh one)")
    parser.add_argument("--mount", default="", help="a path prefix for everything, e.g. /_sandbox/stripe (default: none)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error("--port: 1 to 65535")
    if args.webhook_secret and not args.webhook_secret.startswith("whsec_"):
        parser.error("--webhook-secret: starts with whsec_")
    if args.mount and (not args.mount.startswith("/") or args.mount.endswith("/")):
        parser.error("--mount: a path such as /_sandbox/stripe (a leading /, no trailing /)")
    return args


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    args = parse(argv)
    base = f"http://{args.host}:{args.port}{args.mount}"
    try:
        sb = Sandbox(state_path=args.state, webhook_url=args.webhook_url, webhook_secret=args.webhook_secret,
                     public_base=base, delivery=args.delivery, seed=args.seed, webhook_api_version=args.webhook_api_version)
    except ValueError as exc:  # a bad state file or $SANDBOX_DELIVERY: one clear line
        print(f"stripe_sandbox: {exc}", file=sys.stderr)
        return 2
    print(f"Stripe sandbox ({sb.api_version}, {sb.delivery} delivery"
          f"{f', seed {sb.seed}' if sb.delivery == 'chaos' else ''}): api base {base}", flush=True)
    print(f"webhooks: {args.webhook_url or 'none (GET /v1/events lists them)'}", flush=True)
    uvicorn.run(standalone_app(sb, args.mount), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
