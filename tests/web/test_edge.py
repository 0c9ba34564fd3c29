"""The web edge, tried as an attacker would: safe methods, login links and mail scanners, the
demo mailbox, sessions that end, security headers on every answer, tokens out of the logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import func, select
from starlette.routing import Route

from funding.app import create_app
from funding.auth.models import LoginToken, Role, User
from funding.auth.service import grant, issue_link, request_login, revoke
from funding.campaigns.models import Campaign
from funding.db import transaction
from funding.mail.models import Email
from tests.support.coworking import new_member
from tests.support.web import csrf, csrf_of, login_as


def _client(app, **kwargs) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, **kwargs), base_url="http://testserver",
                             follow_redirects=False)


async def _logged_in(client) -> bool:
    return (await client.get("/admin")).status_code == 200


CAMPAIGN = {"slug": "four-a-pain", "title": "Un four à pain", "summary": "Du pain au village", "description": "Un four.",
            "image_url": "", "goal": "6 000", "currency": "EUR", "mode": "all_or_nothing", "starts_at": "2026-01-05T09:00",
            "ends_at": "2026-02-15T20:00", "min_amount": "", "max_amount": "", "free_amount": "1"}


# Safe methods ---------------------------------------------------------------------------------

async def test_head_with_a_body_changes_nothing(client, sessions, settings, world):
    """HEAD ran the POST branch of GET/POST routes (``if request.method == "GET": … else``), past the CSRF check."""
    await login_as(client, sessions, settings, world.users["staff"])
    token = csrf_of((await client.get("/admin/campaigns/new")).text)
    head = await client.request("HEAD", "/admin/campaigns/new", data={**CAMPAIGN, "site": world.site_slug, "csrf_token": token})
    assert head.status_code == 200 and head.content == b""
    get = await client.get("/admin/campaigns/new")
    assert int(head.headers["content-length"]) == len(get.content)  # the GET's headers, without its body
    async with sessions() as session:
        assert await session.scalar(select(func.count(Campaign.id))) == 0

    # The login form's POST branch sends an email; a HEAD does not.
    head = await client.request("HEAD", "/login", data={"email": f"admin-{world.siren[-4:]}@example.org", "csrf_token": token})
    assert head.status_code == 200 and head.content == b""
    async with sessions() as session:
        assert await session.scalar(select(func.count(Email.id))) == 0

    # A member's details: a HEAD with a new name leaves the name alone.
    member = await new_member(sessions, world, name="Julie Fayolle")
    client.cookies.clear()
    await login_as(client, sessions, settings, member.user_id)
    token = csrf_of((await client.get("/membre/coordonnees")).text)
    head = await client.request("HEAD", "/membre/coordonnees", data={"csrf_token": token, "name": "Mallory Pirate"})
    assert head.status_code == 200 and head.content == b""
    async with sessions() as session:
        assert (await session.get(User, member.user_id)).name == "Julie Fayolle"


async def test_head_and_get_on_a_login_link_do_not_use_it(client, sessions, settings, world):
    async with transaction(sessions) as session:
        link = await issue_link(session, await session.get(User, world.users["admin"]), settings)
    path = link.removeprefix(settings.base_url)
    # A mail scanner: HEAD, then GET, with a body for good measure.
    assert (await client.request("HEAD", path, data={"csrf_token": "x"})).status_code == 200
    page = await client.get(path)
    assert page.status_code == 200 and "Me connecter" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert not await _logged_in(client)
    async with sessions() as session:
        assert await session.scalar(select(func.count(LoginToken.id)).where(LoginToken.used_at.is_not(None))) == 0
    # The person's button still works.
    response = await client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303 and await _logged_in(client)


# The demo mailbox ------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "status"), [
    ({"environment": "development"}, 200),
    ({"environment": "development", "stripe_secret_key": "sk_test_51abc"}, 404),
    ({"environment": "development", "smtp_url": "smtp://mail.example.org:25"}, 404),
    ({"environment": "test", "smtp_url": "smtps://u:p@mail.example.org:465"}, 404),
    ({"environment": "production"}, 404),
])
async def test_the_demo_mailbox_exists_only_when_emails_go_nowhere_else(settings, sessions, world, changes, status):
    async with transaction(sessions) as session:
        await request_login(session, f"admin-{world.siren[-4:]}@example.org", settings)
    app = create_app(settings.with_(**changes))
    async with app.router.lifespan_context(app), _client(app) as c:
        response = await c.get("/dev/mailbox")
        home = await c.get("/")
    assert response.status_code == status
    assert ("/login/" in response.text) == (status == 200)
    assert ('href="/dev/mailbox"' in home.text) == (status == 200)  # no link to a page that is not there


# Sessions that end ----------------------------------------------------------------------------

async def test_logout_ends_every_session_including_a_copied_cookie(app, client, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["staff"])
    copied = dict(client.cookies)
    async with _client(app) as other:  # the same person on another device
        await login_as(other, sessions, settings, world.users["staff"])
        assert await _logged_in(other)
        token = csrf_of((await client.get("/admin")).text)
        assert (await client.post("/logout", data={"csrf_token": token})).status_code == 303
        assert not await _logged_in(client)
        assert not await _logged_in(other)
    async with _client(app) as thief:
        thief.cookies.update(copied)
        assert not await _logged_in(thief)
        assert (await thief.get("/admin")).headers["location"].startswith("/login")
    # Logging in again works, with a fresh cookie.
    await login_as(client, sessions, settings, world.users["staff"])
    assert await _logged_in(client)


async def test_a_role_given_or_taken_ends_the_persons_sessions(client, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["accountant"])
    assert await _logged_in(client)
    async with transaction(sessions) as session:
        await grant(session, await session.get(User, world.users["accountant"]), Role.STAFF, org_id=world.org_id)
    assert not await _logged_in(client)
    await login_as(client, sessions, settings, world.users["accountant"])
    assert await _logged_in(client)
    async with transaction(sessions) as session:
        assert await revoke(session, await session.get(User, world.users["accountant"]), Role.STAFF, org_id=world.org_id)
    assert not await _logged_in(client)


async def test_staff_log_a_member_out_everywhere(app, client, sessions, settings, world):
    member = await new_member(sessions, world, name="Julie Fayolle")
    async with _client(app) as julie:
        await login_as(julie, sessions, settings, member.user_id)
        home = await julie.get("/membre")
        assert home.status_code == 200 and "Me déconnecter de tous mes appareils" in home.text
        await login_as(client, sessions, settings, world.users["staff"])
        page = await client.get(f"/admin/coworking/membres/{member.id}")
        assert "Déconnecter ce membre de tous ses appareils" in page.text
        done = await client.post(f"/admin/coworking/membres/{member.id}/deconnecter", data={"csrf_token": csrf_of(page.text)})
        assert done.status_code == 303
        assert (await julie.get("/membre")).status_code == 303
        assert await _logged_in(client)  # the staff member's own session goes on
    # An accountant reads the member's page but may not log them out.
    client.cookies.clear()
    await login_as(client, sessions, settings, world.users["accountant"])
    token = csrf_of((await client.get(f"/admin/coworking/membres/{member.id}")).text)
    assert (await client.post(f"/admin/coworking/membres/{member.id}/deconnecter",
                              data={"csrf_token": token})).status_code == 403


# Headers --------------------------------------------------------------------------------------

def _script_src(policy: str) -> str:
    return next(part.strip() for part in policy.split(";") if part.strip().startswith("script-src"))


def _assert_security_headers(response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert _script_src(policy) == "script-src 'self'"
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


async def test_every_answer_carries_the_security_headers_even_a_500(app, client, world):
    async def boom(request):
        raise RuntimeError("secret internals")

    app.router.routes.append(Route("/boom", boom))
    ok = await client.get("/")
    missing = await client.get("/nowhere")
    async with _client(app, raise_app_exceptions=False) as c:
        broken = await c.get("/boom")
        head = await c.head("/boom")
    assert (ok.status_code, missing.status_code, broken.status_code, head.status_code) == (200, 404, 500, 500)
    for response in (ok, missing, broken, head):
        _assert_security_headers(response)
        assert response.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in response.headers  # plain http: no HSTS
    assert "Erreur interne" in broken.text and "secret internals" not in broken.text
    static = await client.get("/static/site.css")
    _assert_security_headers(static)
    assert "no-store" not in static.headers.get("cache-control", "")


async def test_no_inline_script_in_templates():
    """The CSP allows scripts only from our files: an inline <script> or an on…= attribute would not run."""
    import re

    from funding.settings import PROJECT_ROOT

    for path in (PROJECT_ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert not re.search(r"\son[a-z]+\s*=", text), path


async def test_hsts_when_the_site_is_https(settings, world):
    app = create_app(settings.with_(base_url="https://funding.example.org"))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                                   base_url="https://funding.example.org") as c:
        for response in (await c.get("/"), await c.get("/nowhere")):
            assert response.headers["strict-transport-security"] == "max-age=31536000"


async def test_private_pages_are_never_stored(client, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["staff"])
    for path in ("/admin", "/login"):
        response = await client.get(path)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store", path


# Logs -----------------------------------------------------------------------------------------

async def test_the_access_log_never_shows_a_token(app, client, sessions, settings, world, caplog):
    async with transaction(sessions) as session:
        link = await issue_link(session, await session.get(User, world.users["admin"]), settings)
    token = link.rsplit("/", 1)[1]
    access = logging.getLogger("uvicorn.access")
    # Another app made earlier (a test, a reload) leaves one filter only: this app's.
    create_app(settings)
    assert sum(1 for f in access.filters if type(f).__name__ == "TokenRedactor") == 1
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        # What uvicorn's protocols log for each request.
        for path in (f"/login/{token}", f"/contributions/{token}/recu", f"/recus/annuel/{token}",
                     f"/exports/lien/{token}?x=1", f"/membre/formule/confirmer?token={token}"):
            access.info('%s - "%s %s HTTP/%s" %d', "203.0.113.7:51000", "GET", path, "1.1", 200)
    lines = [record.getMessage() for record in caplog.records if record.name == "uvicorn.access"]
    assert len(lines) == 5
    assert all(token not in line and "[jeton]" in line for line in lines), lines
    assert '"GET /login/[jeton] HTTP/1.1" 200' in lines[0]
    assert "/exports/lien/[jeton]?x=1" in lines[3]
    assert await csrf(client)  # the app still serves


async def test_an_error_on_a_tokened_link_is_logged_without_its_token(app, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("funding.exports.service.read_link", broken)
    with caplog.at_level(logging.ERROR, logger="funding.web"):
        async with app.router.lifespan_context(app), _client(app, raise_app_exceptions=False) as c:
            response = await c.get("/exports/lien/SeCrEtToKeN.abc")
    assert response.status_code == 500 and "SeCrEtToKeN" not in response.text
    logged = [record.getMessage() for record in caplog.records if record.name == "funding.web"]
    assert logged == ["unhandled error on GET /exports/lien/[jeton]"]
    assert "SeCrEtToKeN" not in caplog.text


async def test_a_browser_s_multipart_form_keeps_its_boundary_s_case_and_its_file_s_bytes():
    """Found by the campaign admin of tests/browser/test_personas.py: Chromium's boundary is mixed
    case (----WebKitFormBoundary…); the edge looked for it lowercased, missed every part, took
    the uploaded photo's bytes for a field's and refused the form (400). The photo passes; a
    control character in a field is still refused."""
    from starlette.responses import PlainTextResponse

    from funding.web import RefuseNul

    async def echo(scope, receive, send):
        await PlainTextResponse("read")(scope, receive, send)

    boundary = "----WebKitFormBoundaryQx7YzAbC"

    def form(title: str) -> bytes:
        return (f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n{title}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="image_file"; filename="four.png"\r\n'
                f"Content-Type: image/png\r\n\r\n").encode() + b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x01\x07" + \
            f"\r\n--{boundary}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    async with _client(RefuseNul(echo)) as client:
        assert (await client.post("/admin/campaigns/new", content=form("Four"), headers=headers)).text == "read"
        assert (await client.post("/admin/campaigns/new", content=form("F\x07our"), headers=headers)).status_code == 400
