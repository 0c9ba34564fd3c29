"""Security of the member area: magic links (reused, expired, altered), one member's pages
and actions out of another member's reach, CSRF on every state-changing form."""

from __future__ import annotations

import datetime as dt
import re

import itsdangerous.timed
from sqlalchemy import func, select, update
from starlette.routing import Route

from funding.auth.models import LoginToken, User
from funding.coworking.billing import CHANGE_TOKEN
from funding.coworking.models import CreditNote, Invoice, Member
from funding.db import transaction
from funding.mail.models import Email
from funding.security import sign
from tests.support.coworking import active_member
from tests.support.web import csrf_of, login_as

MEMBER_PREFIXES = ("/membre", "/coworking", "/admin/coworking")


async def _ask_link(client, sessions, email: str) -> str:
    token = csrf_of((await client.get("/login?next=/membre")).text)
    response = await client.post("/login", data={"csrf_token": token, "email": email, "next": "/membre"})
    assert response.status_code == 200
    async with sessions() as session:
        mail = await session.scalar(select(Email).where(Email.to_addr == email).order_by(Email.id.desc()))
    return re.search(r"http://testserver(/login/\S+)", mail.body_text).group(1)


async def _use(client, path: str):
    page = await client.get(path)
    token = csrf_of(page.text) if 'name="csrf_token"' in page.text else csrf_of((await client.get("/login")).text)
    return await client.post(path, data={"csrf_token": token})


async def test_a_magic_link_reused_expired_or_altered_is_refused(app_client, sessions, owner_sessions, settings, world,
                                                                 catalogue, fake, monkeypatch):
    member, *_ = await active_member(sessions, world, catalogue, fake)
    async with sessions() as session:
        email = (await session.get(User, member.user_id)).email
    assert (await app_client.get("/membre")).headers["location"] == "/login?next=/membre"

    path = await _ask_link(app_client, sessions, email)
    first = await _use(app_client, path)
    assert first.status_code == 303 and first.headers["location"] == "/membre"
    assert (await app_client.get("/membre")).status_code == 200

    # Reused: refused, even from another browser.
    app_client.cookies.clear()
    again = await _use(app_client, path)
    assert again.status_code == 400 and "déjà été utilisé" in again.text
    assert (await app_client.get("/membre")).status_code == 303

    # Altered: refused.
    fresh = await _ask_link(app_client, sessions, email)
    altered = fresh[:-4] + ("abcd" if not fresh.endswith("abcd") else "wxyz")
    response = await _use(app_client, altered)
    assert response.status_code == 400 and "invalide" in response.text
    assert (await app_client.get("/membre")).status_code == 303

    # Expired: by its server-side row (aged by the owner: the service only ever marks a link used)…
    async with transaction(owner_sessions) as session:
        await session.execute(update(LoginToken).values(expires_at=dt.datetime(2000, 1, 1)))
    response = await _use(app_client, fresh)
    assert response.status_code == 400 and "expiré" in response.text
    # … and by its signed timestamp.
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: 1_000_000_000)
    old = await _ask_link(app_client, sessions, email)
    monkeypatch.undo()
    response = await _use(app_client, old)
    assert response.status_code == 400 and "expiré" in response.text
    assert (await app_client.get("/membre")).status_code == 303


async def test_member_a_can_neither_see_nor_act_on_member_b(app_client, sessions, settings, world, catalogue, fake):
    a, _sub_a, _row_a, inv_a = await active_member(sessions, world, catalogue, fake, name="Alice Ardoin")
    b, sub_b, row_b, inv_b = await active_member(sessions, world, catalogue, fake, name="Bruno Besse")
    async with sessions() as session:
        invoice_b = await session.scalar(select(Invoice).where(Invoice.member_id == b.id))
        user_b = await session.get(User, b.user_id)
    async with transaction(sessions) as session:
        note_b = CreditNote(invoice_id=invoice_b.id, member_id=b.id, site_id=invoice_b.site_id, cause="refund", cause_id="re_b",
                            amount=6000, currency="EUR", status="issued", stripe_credit_note_id="cn_b",
                            number=f"{inv_b['number']}-CN-01", lines="[]", issued_at=invoice_b.issued_at)
        session.add(note_b)
        await session.flush()
        note_b_id = note_b.id
    await login_as(app_client, sessions, settings, a.user_id)
    home = await app_client.get("/membre")
    assert "Alice Ardoin" in home.text and inv_a["number"] in home.text
    assert "Bruno Besse" not in home.text and inv_b["number"] not in home.text and user_b.email not in home.text
    token = csrf_of(home.text)

    # Every member URL, with B's ids wherever a URL or a form takes one.
    b_token = sign(settings.secret_key, CHANGE_TOKEN, {"m": b.id, "s": row_b.id, "p": catalogue.plans["fixe"].id,
                                                        "price": 2, "d": 1})
    attempts = [
        ("GET", f"/membre/factures/{invoice_b.id}/pdf", None),
        ("GET", f"/membre/factures/{invoice_b.id}/page", None),
        ("GET", f"/membre/avoirs/{note_b_id}/pdf", None),
        ("GET", f"/membre/formule?subscription={row_b.id}", None),
        ("POST", "/membre/formule", {"subscription": str(row_b.id), "plan": str(catalogue.plans["fixe"].id)}),
        ("POST", "/membre/formule/confirmer", {"token": b_token}),
        ("POST", "/membre/resilier", {"subscription": str(row_b.id)}),
        ("POST", "/membre/reprendre", {"subscription": str(row_b.id)}),
    ]
    routes = {r.path for r in app_client.app.routes if isinstance(r, Route) and r.path.startswith("/membre")}
    tried = {"/membre/factures/{invoice_id:id}/{what:str}", "/membre/avoirs/{note_id:id}/pdf",
             "/membre/formule", "/membre/formule/confirmer", "/membre/resilier",
             "/membre/reprendre", "/membre/moyen-de-paiement"}
    # The remaining member URLs take no id at all: they only ever act on the session's member.
    assert routes - tried == {"/membre", "/membre/connexion", "/membre/carte", "/membre/coordonnees"}
    # B's setup Checkout (a new mandate), brought back by A: nothing of B's is changed.
    b_setup = {"id": "cs_test_b_setup", "object": "checkout.session", "mode": "setup", "status": "complete",
               "customer": b.stripe_customer_id, "metadata": {}, "setup_intent": None}
    fake.add(b_setup)
    back = await app_client.get(f"/membre/moyen-de-paiement?session_id={b_setup['id']}")
    assert back.status_code == 303
    for method, path, data in attempts:
        if method == "GET":
            response = await app_client.get(path)
        else:
            response = await app_client.post(path, data={"csrf_token": token, **data})
        assert response.status_code == 404, (method, path, response.status_code)
        assert inv_b["number"] not in response.text and "Bruno Besse" not in response.text
    assert [p for p in fake.posts if sub_b["id"] in p[0] or b.stripe_customer_id in str(p[1])] == []

    # The id-less ones act on A only.
    portal = await app_client.post("/membre/carte", data={"csrf_token": token})
    assert portal.status_code == 303 and fake.posted("billing_portal/sessions")[-1][1]["customer"] == a.stripe_customer_id
    await app_client.post("/membre/coordonnees", data={"csrf_token": token, "name": "Alice Ardoin-Martin"})
    async with sessions() as session:
        assert (await session.get(User, b.user_id)).name == "Bruno Besse"
        assert (await session.get(User, a.user_id)).name == "Alice Ardoin-Martin"

    # Staff pages are not for members; a member's page without a session asks to log in.
    for path in ("/admin/coworking", f"/admin/coworking/membres/{b.id}", "/admin/coworking/membres.csv",
                 "/admin/coworking/formules", "/admin/coworking/produits-constates-d-avance"):
        assert (await app_client.get(path)).status_code == 403, path
    assert (await app_client.post(f"/admin/coworking/membres/{b.id}/journee",
                                  data={"csrf_token": token, "day": "2026-01-05"})).status_code == 403
    app_client.cookies.clear()
    assert (await app_client.get(f"/membre/factures/{invoice_b.id}/pdf")).status_code == 303


async def test_every_coworking_form_without_a_valid_csrf_token_is_refused(app_client, sessions, settings, world, catalogue,
                                                                          fake):
    a, _sub_a, row_a, _ = await active_member(sessions, world, catalogue, fake)
    await login_as(app_client, sessions, settings, a.user_id)
    posts = [r for r in app_client.app.routes if isinstance(r, Route) and "POST" in (r.methods or ())
             and r.path.startswith(MEMBER_PREFIXES)]
    assert len(posts) >= 8
    for route in posts:
        path = route.path.replace("{site}", world.site_slug).replace("{plan}", "flex")
        path = re.sub(r"\{[^}]+\}", str(a.id), path)
        for data in ({}, {"csrf_token": "forged"}):
            response = await app_client.post(path, data={**data, "subscription": str(row_a.id), "name": "X", "email": "x@example.org",
                                                         "plan": str(catalogue.plans["fixe"].id), "day": "2026-01-05"})
            assert response.status_code == 403, (route.path, response.status_code)
    assert fake.posts == []
    async with sessions() as session:
        assert await session.scalar(select(func.count(Member.id))) == 1
        assert (await session.get(User, a.user_id)).name == "Julie Fayolle"


async def test_an_id_too_long_for_the_database_is_no_page_rather_than_a_server_error(app_client, sessions, settings, world,
                                                                                   catalogue, fake):
    """Every id in a path (and the forms' ids) is read as a row id: 19 digits and more match nothing (404);
    before, the driver overflowed (500 on PostgreSQL and SQLite)."""
    member, *_ = await active_member(sessions, world, catalogue, fake)
    huge = "9" * 20
    await login_as(app_client, sessions, settings, member.user_id)
    for path in (f"/membre/avoirs/{huge}/pdf", f"/membre/factures/{huge}/pdf", f"/membre/formule?subscription={huge}"):
        assert (await app_client.get(path)).status_code == 404, path
    await login_as(app_client, sessions, settings, world.users["admin"])
    for path in (f"/admin/coworking/factures/{huge}.pdf", f"/admin/coworking/avoirs/{huge}.pdf",
                 f"/admin/coworking/membres/{huge}", f"/admin/ledger/{world.siren}/{huge}",
                 f"/bar/{world.site_slug}/clotures/{huge}"):
        assert (await app_client.get(path)).status_code == 404, path
    assert (await app_client.get(f"/admin/coworking?plan={huge}")).status_code == 400  # an unknown plan, as before
    assert (await app_client.get(f"/admin/coworking/membres/{'9' * 18}")).status_code == 404  # the longest id: no such row
