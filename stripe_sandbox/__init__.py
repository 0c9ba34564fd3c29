"""Offline Stripe sandbox: an in-process stand-in for the parts of Stripe's HTTP API the product uses.

    sb = Sandbox(state_path=..., webhook_url=..., webhook_secret=..., public_base=..., delivery="chaos", seed=7)
    Starlette(routes=[Mount("/_sandbox/stripe", create_sandbox_app(sb)), Mount("/", your_app)])

or on its own: ``python -m stripe_sandbox --port N`` (see README.md).

The real stripe SDK talks HTTP to it (``base_addresses={"api": public_base}``); hosted
pages (Checkout, 3-D Secure, invoices, billing portal) live under the same base.
"""

from stripe_sandbox.app import create_sandbox_app
from stripe_sandbox.sandbox import API_VERSION, Sandbox
from stripe_sandbox.webhooks import signature_header

__all__ = ["API_VERSION", "Sandbox", "create_sandbox_app", "signature_header"]
