"""The sandbox tests' server and steps: the ASGI switch, webhook receiver and server the
fixtures of tests/sandbox/conftest.py run, a fresh sandbox and a Stripe client on it, paying
on the hosted pages with httpx, reading events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import stripe
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from stripe_sandbox import Sandbox, create_sandbox_app

VISA = "4242 4242 4242 4242"


def card_form(number: str = VISA, *, expiry: str = "12/34", cvc: str = "123", name: str = "Camille Martin",
              email: str | None = "camille@example.org") -> dict[str, str]:
    form = {"cardholder-name": name, "card-number": number, "card-expiry": expiry, "card-cvc": cvc}
    if email is not None:
        form["email"] = email
    return form


def submit(url: str, form: dict[str, str], *, follow: bool = True) -> httpx.Response:
    return httpx.post(url, data=form, follow_redirects=follow, timeout=10)


def authenticate(url: str, ok: bool = True, *, follow: bool = True) -> httpx.Response:
    return httpx.post(url, data={"action": "authenticate" if ok else "fail"}, follow_redirects=follow, timeout=10)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def types_since(sb: Sandbox, start: int) -> list[str]:
    return types(sb.events[start:])


def subscription_checkout(client, server, *, amount: int = 2000, card: str = VISA, metadata: dict[str, str] | None = None) -> tuple[dict, httpx.Response]:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price_data": {"currency": "eur", "unit_amount": amount, "product_data": {"name": "Poste nomade"},
                                           "recurring": {"interval": "month"}}, "quantity": 1}],
            "subscription_data": {"metadata": metadata or {"membership_id": "7"}},
            "success_url": server.root + "/merchant/success?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": server.root + "/merchant/cancel",
        }
    )
    response = submit(session["url"], card_form(card))
    return session, response


SECRET = "whsec_test_sandbox_secret_0123456789abcdef"
MOUNT = "/_sandbox/stripe"


class Switch:
    """An ASGI app that forwards to whichever sandbox app the current test set."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


@dataclass
class Receiver:
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)

    async def endpoint(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        self.received.append({"body": body, "signature": request.headers.get("stripe-signature"), "status": self.status})
        return PlainTextResponse("ok" if self.status < 300 else "nope", status_code=self.status)


@dataclass
class Server:
    root: str
    switch: Switch
    receiver: Receiver

    @property
    def base(self) -> str:
        return self.root + MOUNT


def make_sandbox(server: Server, **kwargs: Any) -> Sandbox:
    kwargs.setdefault("webhook_url", server.root + "/webhooks/stripe")
    kwargs.setdefault("webhook_secret", SECRET)
    kwargs.setdefault("delivery", "polite")  # these tests check the sandbox itself, in order; chaos when asked
    sb = Sandbox(public_base=server.base, **kwargs)
    server.switch.app = create_sandbox_app(sb)
    return sb


def make_client(server: Server, **kwargs: Any) -> stripe.StripeClient:
    timeout = kwargs.pop("timeout", 80)
    return stripe.StripeClient(
        "sk_test_sandbox",
        http_client=stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True),
        base_addresses={"api": server.base},
        **kwargs,
    )
