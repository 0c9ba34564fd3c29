"""A person on the sandbox's hosted pages, scripted: the demo (and the end-to-end tests) pay
through Checkout exactly as a browser posts its form, so the whole path — our return page,
webhooks, books — runs as in production."""

from __future__ import annotations

import re

import httpx

TEST_CARD = "4242 4242 4242 4242"
_FORM = re.compile(r'<form method="post" action="([^"]+)"')


def form_action(html: str) -> str:
    """Where a hosted page (Checkout, the 3-D Secure challenge, the portal) posts its form."""
    found = _FORM.search(html)
    if found is None:
        raise ValueError("no form on the sandbox's page")
    return found.group(1).replace("&amp;", "&")


async def pay(http: httpx.AsyncClient, url: str, *, name: str, card: str = TEST_CARD, email: str | None = None,
              challenge: bool = False) -> httpx.Response:
    """Fill in the Checkout page at ``url`` with ``card`` and submit it; with ``challenge``, also
    pass the 3-D Secure page the card asks for. The answer is the sandbox's last one: a redirect
    (302/303) to the return URL when the payment went through or was refused for good."""
    page = await http.get(url)
    fields = {"cardholder-name": name, "card-number": card, "card-expiry": "09/31", "card-cvc": "314"}
    if email is not None:
        fields["email"] = email
    result = await http.post(form_action(page.text), data=fields)
    if challenge and result.status_code in (302, 303) and "/authenticate/" in result.headers["location"]:
        page = await http.get(result.headers["location"])
        result = await http.post(form_action(page.text), data={"action": "authenticate"})
    return result


async def pay_by_debit(http: httpx.AsyncClient, url: str, *, name: str, iban: str) -> httpx.Response:
    """The Checkout page's SEPA Direct Debit form, as a browser posts it (the mandate accepted there)."""
    page = await http.get(url)
    return await http.post(form_action(page.text), data={"method": "sepa_debit", "iban": iban, "account-holder-name": name})
