"""Issue 17: a member who joins without an account confirms their address by the link of the
join email, pays on Checkout and comes back; from there the member area opens without asking
them to log in again (no login-link loop)."""

from __future__ import annotations

import httpx

from tests.support.e2e import GOOD, confirm_join, pay_on_hosted_page, setup
from tests.support.web import csrf_of


def test_a_new_member_back_from_checkout_reaches_the_member_area_without_logging_in_again(e2e):
    world = setup(e2e)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        started = confirm_join(e2e, client, f"/coworking/{world.site_slug}/adherer/flex",
                               {"csrf_token": token, "name": "Nina Vidal", "email": "nina@example.org"})
        assert started.status_code == 303, started.text[:500]
        paid = pay_on_hosted_page(client, started.headers["location"], GOOD, name="Nina Vidal", email=None)
        welcome = client.get(paid.headers["location"])
        assert welcome.status_code == 200 and "est actif" in welcome.text
        area = client.get("/membre")
        assert area.status_code == 200, (area.status_code, area.headers.get("location"))
        assert "Nina Vidal" in area.text or "nina@example.org" in area.text


def test_the_join_link_logs_in_only_the_account_its_payment_creates(e2e):
    """Until Checkout is paid there is no account to log in to; once it exists, the link followed
    again (from another browser) no longer logs anyone in: it asks for a login."""
    world = setup(e2e)
    path = f"/coworking/{world.site_slug}/adherer/flex"
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as first:
        token = csrf_of(first.get("/login").text)
        started = confirm_join(e2e, first, path, {"csrf_token": token, "name": "Léo Brun", "email": "leo@example.org"})
        assert started.status_code == 303
        assert first.get("/membre").status_code in (302, 303)  # not paid: nobody's account yet
        paid = pay_on_hosted_page(first, started.headers["location"], GOOD, name="Léo Brun", email=None)
        assert "est actif" in first.get(paid.headers["location"]).text
        assert first.get("/membre").status_code == 200
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as second:
        token = csrf_of(second.get("/login").text)
        again = confirm_join(e2e, second, path, {"csrf_token": token, "name": "Léo Brun", "email": "leo@example.org"})
        assert again.status_code == 303 and "/login" in again.headers.get("location", "")
        assert second.get("/membre").status_code in (302, 303)
