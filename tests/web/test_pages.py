"""Pages, login, roles, CSRF and errors, through HTTP."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select, update
from starlette.routing import Route

from funding.auth.models import LoginToken
from funding.ledger.models import Entry
from funding.mail.models import Email
from tests.support.web import csrf, csrf_of, login_as
from tests.support.world import post_gift


async def test_home_speaks_french_with_french_amounts(client, sessions, world):
    await post_gift(sessions, world, key="h1", amount=123456, fee=2000)
    page = await client.get("/")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert "1\u202f234,56\u00a0€" in page.text
    assert "Financement participatif" in page.text


async def test_each_site_on_the_home_page_offers_a_gift_and_a_monthly_gift_to_it(client, world):
    page = (await client.get("/")).text
    monthly = f"/soutenir?site={world.site_slug}&amp;frequence=month"
    assert f'href="/soutenir?site={world.site_slug}"' in page and f'href="{monthly}"' in page
    form = (await client.get(monthly.replace("&amp;", "&"))).text
    chosen = re.search(r'<input[^>]*name="frequency"[^>]*value="month"[^>]*>', form).group(0)
    assert "checked" in chosen and re.search(rf'<option[^>]*value="{world.site_slug}"[^>]*selected', form)


async def test_english_is_one_click_away_and_remembered(client):
    page = await client.get("/?lang=en")
    assert '<html lang="en">' in page.text and "Where the money comes from" in page.text
    again = await client.get("/login")
    assert '<html lang="en">' in again.text and "Log in" in again.text
    assert '<html lang="en">' in (await client.get("/", headers={"accept-language": "en-GB,en;q=0.9"})).text


async def test_magic_link_login_end_to_end(client, sessions, world):
    token = await csrf(client)
    response = await client.post("/login", data={"email": "Admin-" + world.siren[-4:] + "@Example.org", "csrf_token": token})
    assert response.status_code == 200 and "un lien de connexion vient de lui être envoyé" in response.text
    async with sessions() as session:
        email = await session.scalar(select(Email).order_by(Email.id.desc()))
    assert email.to_addr == f"admin-{world.siren[-4:]}@example.org"
    path = re.search(r"http://testserver(/login/\S+)", email.body_text).group(1)

    page = await client.get(path)  # a mail scanner's GET does not log in
    assert page.status_code == 200 and "Me connecter" in page.text
    assert (await client.get("/admin")).status_code == 303
    response = await client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    assert (await client.get("/admin")).status_code == 200

    # A link serves once.
    client.cookies.clear()
    page = await client.get(path)
    response = await client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 400 and "déjà été utilisé" in response.text
    assert (await client.get("/admin")).status_code == 303


async def test_unknown_addresses_get_the_same_answer_and_no_email(client, sessions):
    response = await client.post("/login", data={"email": "nobody@example.org", "csrf_token": await csrf(client)})
    assert response.status_code == 200 and "Si un compte correspond" in response.text
    async with sessions() as session:
        assert await session.scalar(select(func.count(Email.id))) == 0
    response = await client.post("/login", data={"email": "not-an-email", "csrf_token": await csrf(client)})
    assert response.status_code == 400 and "Adresse e-mail invalide" in response.text
    for two in ("mallory@example.org,eve", "mallory@example.org;eve@example.org", "mallory@example.org\nBcc: eve@x.fr"):
        response = await client.post("/login", data={"email": two, "csrf_token": await csrf(client)})
        assert response.status_code == 400 and "une seule adresse" in response.text
    async with sessions() as session:
        assert await session.scalar(select(func.count(Email.id))) == 0


async def test_altered_and_expired_links_are_refused(client, sessions, owner_sessions, settings, world, monkeypatch):
    from funding.auth.models import User
    from funding.auth.service import issue_link
    from funding.db import transaction

    async with transaction(sessions) as session:
        link = await issue_link(session, await session.get(User, world.users["staff"]), settings)
    path = link.replace(settings.base_url, "")
    altered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    page = await client.get(altered)
    assert page.status_code == 400 and "invalide" in page.text
    assert (await client.post(altered, data={"csrf_token": await csrf(client)})).status_code == 400

    # Expired server-side (the token row) …
    async with transaction(owner_sessions) as session:  # aged by the owner: the service only marks links used
        await session.execute(update(LoginToken).values(expires_at=dt.datetime(2000, 1, 1)))
    page = await client.get(path)
    response = await client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 400 and "expiré" in response.text
    # … and by its signed timestamp.
    import itsdangerous.timed

    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: 1_000_000_000)
    async with transaction(sessions) as session:
        old = await issue_link(session, await session.get(User, world.users["staff"]), settings)
    monkeypatch.undo()
    page = await client.get(old.replace(settings.base_url, ""))
    assert page.status_code == 400 and "expiré" in page.text


async def test_every_form_without_a_valid_csrf_token_is_refused(client, app, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["admin"])
    from funding.app import EXEMPT_FROM_CSRF

    # Machine endpoints authenticate otherwise (the webhook by its Stripe signature).
    posts = [r for r in app.routes if isinstance(r, Route) and "POST" in (r.methods or ())
             and not r.path.startswith(EXEMPT_FROM_CSRF)]
    assert len(posts) >= 8
    for route in posts:
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for data in ({}, {"csrf_token": "forged"}):
            response = await client.post(path, data=data)
            assert response.status_code == 403, (route.path, response.status_code)
    async with sessions() as session:
        assert await session.scalar(select(func.count(Entry.id))) == 0


async def test_the_journal_s_page_number_is_a_clear_error_or_a_page_never_a_5xx(client, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["accountant"])
    for page, status in (("9" * 30, 400), ("-1", 400), ("deux", 400), ("１", 400), ("0", 200), ("9" * 18, 200), ("2", 200)):
        response = await client.get("/admin/ledger", params={"page": page})
        assert response.status_code == status, (page, response.status_code)


async def test_roles_guard_the_back_office(client, sessions, settings, world):
    response = await client.get("/admin/ledger")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/admin/ledger"
    await login_as(client, sessions, settings, world.users["member"])
    assert (await client.get("/admin/ledger")).status_code == 403
    client.cookies.clear()
    await login_as(client, sessions, settings, world.users["accountant"])
    assert (await client.get("/admin/ledger/trial-balance")).status_code == 200
    page = await client.get("/admin/ledger")
    response = await client.post("/admin/ledger/record", data={"csrf_token": csrf_of(page.text), "kind": "patronage"})
    assert response.status_code == 403


async def test_staff_record_a_grant_from_the_admin_page(client, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["staff"])
    page = await client.get("/admin/ledger/record")
    form = {
        "csrf_token": csrf_of(page.text), "kind": "grant-notified", "site": world.site_slug, "date": dt.date.today().isoformat(),
        "amount": "12 000,00", "funder": "Thiers Dore et Montagne", "funder_siret": "20005376700014", "reference": "TDM-1",
        "object": "FabLab", "currency": "EUR", "nature": "multi-year", "years": "2",
    }
    bad = await client.post("/admin/ledger/record", data={**form, "amount": "douze mille"})
    assert bad.status_code == 400 and "montant invalide" in bad.text and "douze mille" in bad.text
    response = await client.post("/admin/ledger/record", data=form)
    assert response.status_code == 303
    journal = await client.get("/admin/ledger")
    assert "Subvention Thiers Dore et Montagne" in journal.text and "12\u202f000,00\u00a0€" in journal.text
    csv_body = f"kind,site,date,amount,funder,piece_ref\npatronage,{world.site_slug},{dt.date.today()},250,Fondation,M-9\n"
    response = await client.post(
        "/admin/ledger/record", data={"csrf_token": csrf_of(page.text)},
        files={"file": ("ops.csv", csv_body.encode(), "text/csv")},
    )
    assert response.status_code == 303
    async with sessions() as session:
        assert await session.scalar(select(func.count(Entry.id))) == 2


async def test_reverse_an_entry_from_its_page(client, sessions, settings, world):
    await post_gift(sessions, world, key="web-rev")
    await login_as(client, sessions, settings, world.users["staff"])
    page = await client.get(f"/admin/ledger/{world.siren}/1")
    assert page.status_code == 200 and "Contrepasser" in page.text
    response = await client.post(f"/admin/ledger/{world.siren}/1", data={"csrf_token": csrf_of(page.text), "reason": "erreur"})
    assert response.status_code == 303 and response.headers["location"].endswith("/2")
    assert "Contrepassée par" in (await client.get(f"/admin/ledger/{world.siren}/1")).text
    assert (await client.get(f"/admin/ledger/{world.siren}/99")).status_code == 404


async def test_trial_balance_closings_and_verify_pages(client, sessions, settings, world):
    await post_gift(sessions, world, key="tb", amount=5000, fee=100)
    await login_as(client, sessions, settings, world.users["admin"])
    page = await client.get(f"/admin/ledger/trial-balance?org={world.siren}")
    assert "75411" in page.text and "50,00\u00a0€" in page.text
    assert (await client.get("/admin/ledger/trial-balance?from=2026-99-01")).status_code == 400
    closings = await client.get("/admin/ledger/closings")
    response = await client.post("/admin/ledger/closings", data={"csrf_token": csrf_of(closings.text), "org": world.siren,
                                                                 "period": dt.date.today().strftime("%Y-%m")})
    assert response.status_code == 303
    assert "pas terminé" in (await client.get("/admin/ledger/closings")).text
    verify = await client.post("/admin/ledger/verify", data={"csrf_token": csrf_of(closings.text)})
    assert verify.status_code == 200 and "Chaîne intacte : 1 écritures" in verify.text


async def test_errors_never_show_a_stack_trace(client, app, monkeypatch):
    import httpx

    page = await client.get("/nowhere")
    assert page.status_code == 404 and "Page introuvable" in page.text

    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("funding.routes.revenue_by_source", broken)
    # The server logs the exception (re-raised after the response); the visitor sees a page.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        page = await c.get("/")
        api = await c.get("/", headers={"accept": "application/json"})
    assert api.status_code == 500 and api.json() == {"error": "internal error"}
    assert page.status_code == 500
    assert "Erreur interne" in page.text
    assert "secret internals" not in page.text and "Traceback" not in page.text


async def test_session_cookie_is_http_only_and_secure_behind_https(settings, sessions, world):
    import httpx

    from funding.app import create_app

    app = create_app(settings.with_(base_url="https://funding.example.org"))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://funding.example.org") as c:
        response = await c.get("/login")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie
    assert response.headers["x-frame-options"] == "DENY" and response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/dev/mailbox"])
async def test_the_demo_mailbox_never_exists_in_production(settings, path):
    import httpx

    from funding.app import create_app

    app = create_app(settings.with_(environment="production"))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        assert (await c.get(path)).status_code == 404


async def test_two_messages_in_a_row_both_reach_the_next_page(client, sessions, settings, world):
    """A second flash before the first is shown must be saved too (the session only sees assignments)."""
    await login_as(client, sessions, settings, world.users["staff"])  # leaves "Bienvenue" waiting
    page = await client.get("/admin/ledger/closings")  # shows and consumes it
    for period in ("abc", "2000-13"):
        await client.post("/admin/ledger/closings", data={"csrf_token": csrf_of(page.text), "org": world.siren,
                                                          "period": period})
    text = (await client.get("/admin/ledger/closings")).text
    assert text.count('class="flash flash-error"') == 2
