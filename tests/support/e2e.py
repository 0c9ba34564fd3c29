"""End-to-end steps: the database from a sync test, waiting for the worker, the sandbox's admin
answers, a donation through the form and a payment on the sandbox's hosted Checkout page."""

from __future__ import annotations

import time

import httpx

from funding.sandbox.visitor import form_action
from tests.support.db import run_async, sealed_sessions
from tests.support.web import csrf_of


def db_call(settings, fn):
    """Run ``await fn(sessions)`` against the test database from a sync test."""
    from funding.db import create_engine

    async def go():
        engine = create_engine(settings.database_url)
        try:
            return await fn(sealed_sessions(engine))
        finally:
            await engine.dispose()

    return run_async(go)


def wait_for(predicate, *, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def sandbox_get(server, path: str) -> dict:
    response = httpx.get(f"{server.url}/_sandbox/stripe{path}", headers={"authorization": "Bearer sk_test_e2e"}, timeout=10)
    response.raise_for_status()
    return response.json()


def pay_on_hosted_page(client: httpx.Client, url: str, card: str, *, name: str = "Ana Martin",
                       email: str | None = "ana@example.org") -> httpx.Response:
    """Fill the sandbox's Checkout page (``email`` None: the field left out); authenticate on its
    3-D Secure page when the bank asks."""
    page = client.get(url)
    assert page.status_code == 200 and "Bac à sable" in page.text, page.text[:300]
    form = {"cardholder-name": name, "card-number": card, "card-expiry": "12/34", "card-cvc": "123"}
    if email is not None:
        form["email"] = email
    response = client.post(form_action(page.text), data=form)
    if response.status_code in (302, 303) and "/authenticate/" in response.headers["location"]:
        challenge = client.get(response.headers["location"])
        response = client.post(form_action(challenge.text), data={"action": "authenticate"})
    return response


def donate(client: httpx.Client, world, *, amount: str = "50", other: str = "", name: str = "Ana Martin",
           email: str = "ana@example.org") -> str:
    """Fill the donation form for the world's central site; the sandbox Checkout address it leads to."""
    form = client.get("/soutenir")
    response = client.post("/soutenir", data={"csrf_token": csrf_of(form.text), "site": world.site_slug, "amount": amount,
                                              "other": other, "name": name, "email": email})
    assert response.status_code == 303, response.text[:500]
    return response.headers["location"]
