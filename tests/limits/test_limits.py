"""Rate limits: counted in the database (every web process shares them), a French page or a
429 with Retry-After past the limit, and the same answer whether an address has an account."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import func, select

from funding.auth.models import User
from funding.limits.models import RateCounter
from funding.limits.service import RateLimited, client_ip, hit, sweep
from funding.mail.models import Email
from funding.settings import ConfigError, load_settings
from tests.support.web import csrf, text_of


async def _emails(sessions, to: str | None = None) -> int:
    async with sessions() as session:
        query = select(func.count(Email.id))
        if to is not None:
            query = query.where(Email.to_addr == to)
        return await session.scalar(query)


async def test_twenty_five_login_requests_send_five_emails_then_a_french_page_with_retry_after(client, sessions, world):
    async with sessions() as session:
        address = (await session.get(User, world.users["staff"])).email
    answers = []
    for _ in range(25):
        answers.append(await client.post("/login", data={"email": address.upper(), "csrf_token": await csrf(client)}))
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert {a.status_code for a in answers[5:]} == {429}
    limited = answers[-1]
    assert 0 < int(limited.headers["retry-after"]) <= 900
    assert "Trop de demandes en peu de temps : réessayez dans" in text_of(limited.text)
    assert await _emails(sessions, address) == 5
    async with sessions() as session:  # neither the address nor the IP is stored
        rows = (await session.scalars(select(RateCounter))).all()
    assert {r.action for r in rows} == {"login", "login-ip"} and all(address not in r.key_hash for r in rows)
    assert {r.hits for r in rows} == {25}


async def test_login_answers_the_same_for_an_account_and_for_nobody(client, sessions, world):
    async with sessions() as session:
        address = (await session.get(User, world.users["accountant"])).email
    known = await client.post("/login", data={"email": address, "csrf_token": await csrf(client)})
    unknown = await client.post("/login", data={"email": "personne@example.org", "csrf_token": await csrf(client)})
    assert known.status_code == unknown.status_code == 200
    assert _without_csrf(known.text) == _without_csrf(unknown.text)
    assert await _emails(sessions, address) == 1 and await _emails(sessions) == 1
    # An unknown address is limited exactly like a known one.
    for _ in range(4):
        await client.post("/login", data={"email": "personne@example.org", "csrf_token": await csrf(client)})
    assert (await client.post("/login", data={"email": "personne@example.org", "csrf_token": await csrf(client)})).status_code == 429


async def test_the_address_is_looked_up_after_the_answer_so_the_answer_cannot_depend_on_it(client, sessions, world,
                                                                                             monkeypatch):
    import funding.routes

    looked_up = []

    async def failing_lookup(session, email, settings, *, next_path="/"):
        looked_up.append(email)
        raise RuntimeError("the lookup fails after the answer")

    monkeypatch.setattr(funding.routes, "request_login", failing_lookup)
    response = await client.post("/login", data={"email": "Quelquun@Example.org", "csrf_token": await csrf(client)})
    assert response.status_code == 200 and "Si un compte correspond" in text_of(response.text)
    assert looked_up == ["quelquun@example.org"] and await _emails(sessions) == 0


def _without_csrf(html: str) -> str:
    import re

    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


async def test_limits_hold_across_two_app_instances_sharing_the_database(settings, sessions, world):
    from funding.app import create_app

    async with sessions() as session:
        address = (await session.get(User, world.users["admin"])).email
    first, second = create_app(settings), create_app(settings)
    statuses = []
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") for app in (first, second)]
        try:
            for n in range(8):
                c = clients[n % 2]
                statuses.append((await c.post("/login", data={"email": address, "csrf_token": await csrf(c)})).status_code)
        finally:
            for c in clients:
                await c.aclose()
    assert statuses == [200] * 5 + [429] * 3
    assert await _emails(sessions, address) == 5


async def test_windows_end_and_old_ones_are_swept(sessions, settings):
    start = dt.datetime(2026, 3, 2, 10, 0, 0)
    for _ in range(5):
        await hit(sessions, settings, [("login", "a@example.org")], now=start)
    with pytest.raises(RateLimited) as refused:
        await hit(sessions, settings, [("login", "a@example.org")], now=start + dt.timedelta(seconds=600))
    assert refused.value.retry_after == 300 and refused.value.headers == {"Retry-After": "300"}
    await hit(sessions, settings, [("login", "b@example.org")], now=start + dt.timedelta(seconds=600))  # another key
    await hit(sessions, settings, [("login", "a@example.org")], now=start + dt.timedelta(seconds=900))  # next window
    assert await sweep(sessions, settings, now=start + dt.timedelta(days=2)) == 3
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(RateCounter)) == 0


async def test_limits_are_configured_and_an_action_can_be_turned_off(sessions, settings):
    tight = settings.with_(rate_limits=(("api", 2, 60), ("login", 0, 1)))
    now = dt.datetime(2026, 3, 2, 10, 0, 30)
    for _ in range(2):
        await hit(sessions, tight, [("api", "10.0.0.1")], now=now)
    with pytest.raises(RateLimited):
        await hit(sessions, tight, [("api", "10.0.0.1")], now=now)
    for _ in range(50):
        await hit(sessions, tight, [("login", "x@example.org")], now=now)
    parsed = load_settings({}, FUNDING_ENV="test", RATE_LIMITS="login=3/600, api=off", TRUSTED_PROXIES="1")
    assert parsed.rate_limits == (("login", 3, 600), ("api", 0, 1)) and parsed.trusted_proxies == 1
    for bad in ("logn=3/600", "login=3", "login=0/60", "login=a/b"):
        with pytest.raises(ConfigError, match="RATE_LIMITS"):
            load_settings({}, FUNDING_ENV="test", RATE_LIMITS=bad)
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings({}, FUNDING_ENV="test", TRUSTED_PROXIES="many")


def test_the_client_ip_is_the_peer_unless_a_proxy_is_trusted():
    settings = load_settings({}, FUNDING_ENV="test")
    scope = {"client": ("10.0.0.9", 5000), "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7")]}
    assert client_ip(scope, settings) == "10.0.0.9"  # nobody trusted: the header is the client's word
    assert client_ip(scope, settings.with_(trusted_proxies=1)) == "203.0.113.7"  # what our proxy saw
    assert client_ip(scope, settings.with_(trusted_proxies=2)) == "6.6.6.6"
    assert client_ip(scope, settings.with_(trusted_proxies=3)) == "10.0.0.9"  # fewer hops than proxies: not theirs


async def test_the_public_api_answers_429_with_retry_after_past_its_limit(client, sessions, world, monkeypatch):
    from funding.limits import service
    from tests.support.campaigns import make_campaign

    # One fixed window for all 121 requests: on a slow run they could straddle two (seen on PostgreSQL under load).
    moment = service.window_of(service.utcnow(), 60) + dt.timedelta(seconds=1)
    monkeypatch.setattr(service, "utcnow", lambda: moment)

    await make_campaign(sessions, world, slug="tiers-lieu")
    answers = [await client.get("/api/campaigns") for _ in range(120)]
    assert {a.status_code for a in answers} == {200}
    refused = await client.get("/api/campaigns/tiers-lieu")  # every API path shares the client's count
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"].startswith("Trop de demandes en peu de temps")
    widget = await client.get("/widget/campaigns/tiers-lieu")
    assert widget.status_code == 429 and "retry-after" in widget.headers
    assert (await client.get("/campagnes/tiers-lieu")).status_code == 200  # the campaign's own page is not the API
    assert (await client.get("/api/openapi.json")).status_code == 429
