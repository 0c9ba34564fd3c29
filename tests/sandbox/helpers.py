"""Shared steps for the sandbox tests: paying on the hosted pages with httpx, reading events."""

from __future__ import annotations

from typing import Any

import httpx

from funding.sandbox import Sandbox

VISA = "4242 4242 4242 4242"


def card_form(number: str = VISA, *, expiry: str = "12/34", cvc: str = "123", name: str = "Camille Martin", email: str | None = "camille@example.org") -> dict[str, str]:
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
            "line_items": [{"price_data": {"currency": "eur", "unit_amount": amount, "product_data": {"name": "Poste nomade"}, "recurring": {"interval": "month"}}, "quantity": 1}],
            "subscription_data": {"metadata": metadata or {"membership_id": "7"}},
            "success_url": server.root + "/merchant/success?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": server.root + "/merchant/cancel",
        }
    )
    response = submit(session["url"], card_form(card))
    return session, response
