"""Organisations are walls: every route, for every role of organisation B, against organisation
A's objects (ids, slugs, SIREN in query strings and forms, downloads, reversal, till sale), and
every command with ``--as`` a person of B and ``--org`` A. Nothing of A is shown, nothing of A
changes; B's own people still see B's own books (the sweep is not a wall of 403s)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select, text
from starlette.routing import Route

from funding.auth.service import create_user
from funding.bar.catalog import add_product
from funding.bar.closings import close_day
from funding.bar.settlement import settle_departure
from funding.bar.till import open_ticket, ring_up
from funding.campaigns.models import Campaign
from funding.coworking.models import CreditNote, Invoice, Member, Plan, Subscription
from funding.db import transaction, utcnow
from funding.donations.models import GiftInterval, GiftStatus, RecurringGift
from funding.exports.service import Digest, add_recipient, record_taken, resolve_scope
from funding.ledger.models import Grant, GrantBudgetLine
from funding.ledger.service import EntryDraft, close_month, credit, debit, post
from funding.mail.service import enqueue
from funding.models import metadata
from funding.orgs.models import Organisation, Site
from funding.payments.models import StripeEvent
from tests.support.campaigns import make_campaign, paid_pledge
from tests.support.cli import funding
from tests.support.web import csrf_of, login_as
from tests.support.world import World, make_world

# Private to organisation A: none may reach anyone of B.
MARKERS = ("Zoé Alphamember", "alpha-member@example.org", "ALPHA-SECRET-LABEL", "backer@alpha.example",
           "Alpha brouillon secret", "compta@alpha.example", "ALPHA-PIECE-7")


@dataclass
class Alpha:
    world: World
    member_user: int
    member_id: int
    plan_code: str
    invoice_id: int
    note_id: int
    product_id: int
    line_id: int
    ticket_id: int
    closing_id: int
    batch_id: int
    tier_id: int
    event_id: str
    draft_slug: str
    live_slug: str
    grant_id: int = 0
    gift_id: int = 0


def _previous_month(today: dt.date) -> tuple[dt.date, str]:
    first = today.replace(day=1) - dt.timedelta(days=1)
    return first.replace(day=1), first.strftime("%Y-%m")


async def make_alpha(sessions) -> Alpha:
    world = await make_world(sessions, name="Association Alpha")
    today = dt.date.today()
    month_start, period = _previous_month(today)
    async with transaction(sessions) as session:
        org = await session.get(Organisation, world.org_id)
        org.uses_stripe = True
        site = await session.get(Site, world.site_id)
        zoe = await create_user(session, email="alpha-member@example.org", name="Zoé Alphamember", role="member",
                                org_id=world.org_id)
        await post(session, EntryDraft(
            org_id=world.org_id, site_id=world.site_id, journal="BQ", entry_date=month_start, label="ALPHA-SECRET-LABEL",
            piece_ref="ALPHA-PIECE-7", funding_source="self", lines=[debit("512", 12345), credit("706", 12345)]))
        await close_month(session, world.org_id, period, closed_by="test")
        await post(session, EntryDraft(
            org_id=world.org_id, site_id=world.site_id, journal="BQ", entry_date=today, label="ALPHA-SECRET-LABEL",
            piece_ref="ALPHA-PIECE-7", funding_source="self", lines=[debit("512", 500), credit("706", 500)]))
        plan = Plan(site_id=world.site_id, code="alpha-desk", name="Bureau Alpha", kind="workspace", interval="month",
                    price_ht=15000, vat_rate=200, account="706")
        member = Member(user_id=zoe.id, site_id=world.site_id, org_id=world.org_id, company_name="Alpha SARL")
        session.add_all([plan, member])
        await session.flush()
        now = utcnow()
        session.add(Subscription(member_id=member.id, site_id=world.site_id, plan_id=plan.id, stripe_subscription_id="sub_alpha",
                                 status="active", started_at=now, version=1))
        invoice = Invoice(member_id=member.id, site_id=world.site_id, stripe_invoice_id="in_alpha", number="ALPHA-0001",
                          status="paid", currency="EUR", total=18000, amount_due=18000, amount_paid=18000,
                          amount_remaining=0, issued_at=now, version=1)
        session.add(invoice)
        await session.flush()
        note = CreditNote(invoice_id=invoice.id, member_id=member.id, site_id=world.site_id, cause="refund", cause_id="re_alpha",
                          amount=6000, currency="EUR", status="issued", stripe_credit_note_id="cn_alpha", number="ALPHA-0001-CN-01",
                          lines="[]", issued_at=now)
        session.add(note)
        product = await add_product(session, site, name="Café Alpha", category="Boissons", price="1,50", vat_rate="10")
        line = (await ring_up(session, site, product_id=product.id, member_id=zoe.id, limit=5000, recorded_by="Alpha")).line
        ticket = await open_ticket(session, site, created_by="Alpha")
        await ring_up(session, site, product_id=product.id, ticket_id=ticket.id, limit=5000, recorded_by="Alpha")
        await add_recipient(session, world.org_id, "compta@alpha.example", "Cabinet Alpha", "fec,csv")
        scope = await resolve_scope(session, siren=world.siren, site=None, start=month_start, end=today)
        digest = Digest()
        digest.add(b"ALPHA")
        await record_taken(session, scope, "fec", digest, taken_by="compta@alpha.example", channel="web")
        await enqueue(session, to="compta@alpha.example", org_id=world.org_id, dedupe_key="alpha:1",
                      subject="Exports ALPHA-SECRET-LABEL", body_text="…")
        session.add(StripeEvent(id="evt_alpha_dead", type="charge.succeeded", livemode=False, created=1, payload="{}",
                                status="dead", last_error="ALPHA-SECRET-LABEL"))
        await session.flush()
        ids = (member.id, plan.code, invoice.id, product.id, line.id, ticket.id, note.id)
    async with transaction(sessions) as session:
        site = await session.get(Site, world.site_id)
        closing = (await close_day(session, site, closed_by="Alpha"))[-1]
        await ring_up(session, site, product_id=ids[3], member_id=zoe.id, limit=5000, recorded_by="Alpha")
        batch = await settle_departure(session, site, zoe.id)
        closing_id, batch_id = closing.id, batch.id
    draft = await make_campaign(sessions, world, slug=f"alpha-draft-{world.siren}", status="draft",
                                tiers=[{"amount": 2500, "title": "Merci Alpha"}])
    async with transaction(sessions) as session:
        (await session.get(Campaign, draft.id)).title = "Alpha brouillon secret"
    live = await make_campaign(sessions, world, slug=f"alpha-live-{world.siren}", tiers=[{"amount": 2500}])
    await paid_pledge(sessions, live.id, amount="50", email="backer@alpha.example", name="Bernard Alphabacker")
    async with sessions() as session:
        tier_id = await session.scalar(text("SELECT min(id) FROM campaign_tiers WHERE campaign_id = :c"), {"c": draft.id})
    async with transaction(sessions) as session:
        grant = Grant(org_id=world.org_id, site_id=world.site_id, funder_name="Ville Alpha", reference="ALPHA-GRANT",
                      convention_date=month_start, object="Ateliers Alpha (public, as grants are)", amount=100000, currency="EUR")
        session.add(grant)
        await session.flush()
        session.add(GrantBudgetLine(org_id=world.org_id, grant_id=grant.id, category="60", label="Alpha", amount=5000,
                                    currency="EUR"))
        grant_id = grant.id
        gift = RecurringGift(org_id=world.org_id, site_id=world.site_id, amount=1000, currency="EUR",
                             interval=GiftInterval.MONTH, email="backer@alpha.example", name="Bernard Alphabacker",
                             status=GiftStatus.ACTIVE, stripe_subscription_id="sub_alpha_gift", version=1)
        session.add(gift)
        await session.flush()
        gift_id = gift.id
    return Alpha(world, zoe.id, ids[0], ids[1], ids[2], ids[6], ids[3], ids[4], ids[5], closing_id, batch_id, tier_id,
                 "evt_alpha_dead", draft.slug, live.slug, grant_id, gift_id)


async def snapshot(engine, a: Alpha) -> dict[str, list]:
    """Every row that belongs to A (by organisation, site, campaign or coworking member), read raw."""
    sites = f"(SELECT id FROM sites WHERE org_id = {a.world.org_id})"
    by_column = {
        "org_id": f"= {a.world.org_id}", "site_id": f"IN {sites}",
        "campaign_id": f"IN (SELECT id FROM campaigns WHERE org_id = {a.world.org_id})",
        "member_id": f"IN (SELECT id FROM coworking_members WHERE org_id = {a.world.org_id})",
    }
    out = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            column = next((c for c in by_column if c in table.c), None)
            if column is None or table.name in ("users", "login_tokens"):
                continue
            # An email's sending state moves with the mail job; what was queued is what matters.
            columns = "dedupe_key, to_addr, subject" if table.name == "emails" else "*"
            rows = (await conn.execute(text(f'SELECT {columns} FROM "{table.name}" WHERE {column} {by_column[column]}'))).all()
            out[table.name] = sorted(tuple(str(v) for v in r) for r in rows)
        out["heads"] = (await conn.execute(text(f"SELECT * FROM ledger_heads WHERE org_id = {a.world.org_id}"))).all()
    return out


def _path(route: Route, a: Alpha) -> str:
    values = {
        "siren": a.world.siren, "number": "1", "slug": a.draft_slug, "site": a.world.site_slug, "member_id": a.member_id,
        "member": a.member_user, "ticket": a.ticket_id, "closing": a.closing_id, "tier_id": a.tier_id, "batch": a.batch_id,
        "event_id": a.event_id, "invoice_id": a.invoice_id, "note_id": a.note_id, "what": "pdf", "plan": a.plan_code, "token": "not-a-token",
        "grant_id": a.grant_id, "gift_id": a.gift_id,
    }
    missing = set(re.findall(r"{(\w+)", route.path)) - set(values)
    assert not missing, f"{route.path}: give the sweep a value of A for {missing}"
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: str(values[m.group(1)]), route.path)


def _query(a: Alpha) -> dict:
    return {"org": a.world.siren, "site": a.world.site_slug, "membre": a.member_user, "comptoir": a.ticket_id,
            "q": "Alphamember", "format": "fec", "from": "2020-01-01", "to": dt.date.today().isoformat(),
            "status": "dead", "annee": str(dt.date.today().year)}


def _form(a: Alpha, token: str) -> dict:
    today = dt.date.today()
    return {
        "csrf_token": token, "org": a.world.siren, "site": a.world.site_slug, "period": _previous_month(today)[1],
        "reason": "wall test", "product_id": a.product_id, "member_id": a.member_user, "line_id": a.line_id,
        "ticket_id": a.ticket_id, "quantity": "1", "kind": "transfer", "date": today.isoformat(), "amount": "10",
        "currency": "EUR", "label": "wall test", "debit": "512", "credit": "706", "source": "self", "piece_ref": "W1",
        "remove": "compta@alpha.example", "email": "eve@beta.example", "name": "Eve", "format-fec": "1",
        "title": "Wall", "slug": "wall-test", "goal": "100", "mode": "keep_it_all", "starts_at": today.isoformat(),
        "ends_at": (today + dt.timedelta(days=30)).isoformat(), "active": "0", "day": today.isoformat(),
        "annee": str(today.year), "ratio": "1:1", "cap_per_pledge": "50", "total_cap": "100", "funder": "Eve",
        "reference": "W", "tier": "", "plan": a.plan_code, "budget": "categorie;libelle;montant\n60;Wall;1\n",
    }


# What anyone may do, logged in or not, for any organisation: log in, give, back a campaign, join.
PUBLIC_POSTS = {"/login", "/login/{token}", "/soutenir", "/campagnes/{slug:str}/contribuer", "/contributions/{token:str}/annuler",
                "/contributions/{token:str}/carte", "/contributions/{token:str}/confirmer", "/coworking/{site}/adherer/{plan}",
                "/coworking/{site}/adherer/{plan}/confirmer/{token}",
                "/contributions/renvoyer",  # asks for one's links again: the same answer for any address
                "/contributions/{token:str}/revoquer",  # the signed link's holder revokes it (fresh ones are emailed)
                "/campagnes/{slug:str}/rappel"}  # a reminder before an all-or-nothing deadline, for any address


def _routes(app) -> list[Route]:
    # Not organisation data: the Stripe webhook (signed by Stripe), logging out (it would end the sweep), and the
    # development mailbox, which shows every email of an installation that has no SMTP and no Stripe key.
    return [r for r in app.routes if isinstance(r, Route) and r.path not in ("/webhooks/stripe", "/logout", "/dev/mailbox")]


async def _sweep(app, client: httpx.AsyncClient, a: Alpha) -> list[str]:
    """Every route, GET and POST as it allows, with A's identifiers everywhere. Returns what leaked."""
    leaks = []
    for route in _routes(app):
        path = _path(route, a)
        for method in ("GET", "POST"):
            if method not in (route.methods or ()) or (method == "POST" and route.path in PUBLIC_POSTS):
                continue
            if method == "GET":
                response = await client.get(path, params=_query(a))
            else:
                token = csrf_of((await client.get("/login")).text)
                response = await client.post(path, data=_form(a, token), params={"org": a.world.siren})
            body = response.text
            if response.status_code >= 500 and response.status_code != 503:  # 503: Stripe unreachable, said so
                leaks.append(f"{method} {route.path}: {response.status_code}")
            leaks += [f"{method} {route.path}: shows {m!r}" for m in MARKERS if m in body]
            location = response.headers.get("location", "")
            if response.status_code in (302, 303) and location.startswith("/") and "/login" not in location:
                follow = await client.get(location)
                leaks += [f"{method} {route.path} → {location}: shows {m!r}" for m in MARKERS if m in follow.text]
    return leaks


@pytest.fixture
async def alpha_beta(sessions):
    a = await make_alpha(sessions)
    b = await make_world(sessions, name="Association Beta")
    async with transaction(sessions) as session:
        await post(session, EntryDraft(
            org_id=b.org_id, site_id=b.site_id, journal="BQ", entry_date=dt.date.today(), label="BETA-OWN-LABEL",
            piece_ref="BETA-1", funding_source="self", lines=[debit("512", 700), credit("706", 700)]))
    return a, b


@pytest.mark.parametrize("role", ["admin", "staff", "accountant", "member"])
async def test_every_route_for_a_person_of_b_shows_and_changes_nothing_of_a(app, engine, sessions, settings, alpha_beta, role):
    a, b = alpha_beta
    before = await snapshot(engine, a)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await login_as(client, sessions, settings, b.users[role])
        leaks = await _sweep(app, client, a)
        if role in ("admin", "staff", "accountant"):  # the wall is not a wall of refusals: B sees B
            journal = await client.get("/admin/ledger")
            assert journal.status_code == 200 and "BETA-OWN-LABEL" in journal.text
    assert leaks == [], "\n".join(leaks)
    assert await snapshot(engine, a) == before


async def test_anonymous_visitors_see_nothing_private_either(app, engine, alpha_beta):
    a, _b = alpha_beta
    before = await snapshot(engine, a)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        assert await _sweep(app, client, a) == []
        # Every other POST sends an anonymous visitor to log in: the public list above is the whole of it.
        open_posts = set()
        for route in _routes(app):
            if "POST" in (route.methods or ()) and route.path not in PUBLIC_POSTS:
                token = csrf_of((await client.get("/login")).text)
                response = await client.post(_path(route, a), data=_form(a, token))
                if not (response.status_code == 303 and response.headers["location"].startswith("/login")):
                    open_posts.add(route.path)
        assert open_posts == set()
    assert await snapshot(engine, a) == before


async def test_a_network_role_sees_every_organisation_and_a_double_role_stays_in_its_lane(app, sessions, settings,
                                                                                         alpha_beta):
    a, b = alpha_beta
    async with transaction(sessions) as session:
        auditor = await create_user(session, email="federation@example.org", name="Fédération", role="accountant",
                                    network=True)
        double = await create_user(session, email="double@example.org", name="Double", role="accountant",
                                   org_id=a.world.org_id)
        from funding.auth.service import grant

        await grant(session, double, "staff", org_id=b.org_id)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await login_as(client, sessions, settings, auditor.id)
        journal = (await client.get("/admin/ledger")).text
        assert "ALPHA-SECRET-LABEL" in journal and "BETA-OWN-LABEL" in journal
        client.cookies.clear()
        await login_as(client, sessions, settings, double.id)
        assert "ALPHA-SECRET-LABEL" in (await client.get(f"/admin/ledger/{a.world.siren}/1")).text
        token = csrf_of((await client.get(f"/admin/ledger/{a.world.siren}/1")).text)
        # Accountant of A, staff of B: reads A's books, cannot reverse A's entries.
        refused = await client.post(f"/admin/ledger/{a.world.siren}/1", data={"csrf_token": token, "reason": "x"})
        assert refused.status_code == 403
        till = await client.get(f"/bar/{a.world.site_slug}/caisse")
        assert till.status_code == 404
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(text("entries")).where(
            text(f"org_id = {a.world.org_id} AND reverses_id IS NOT NULL"))) == 0


async def _cli(settings, *argv) -> tuple[int, str]:
    result = await funding(settings, *argv)
    return result.exit_code, result.output


async def test_commands_as_a_person_of_b_cannot_reach_a(engine, settings, alpha_beta, tmp_path):
    a, b = alpha_beta
    before = await snapshot(engine, a)
    email = {role: f"{role}-{b.siren[-4:]}@example.org" for role in ("admin", "staff", "accountant", "member")}
    today = dt.date.today().isoformat()
    attempts = [
        ("staff", "ledger", "reverse", "1", "--reason", "x", "--org", a.world.siren),
        ("staff", "ledger", "close", _previous_month(dt.date.today())[1], "--org", a.world.siren),
        ("staff", "ledger", "record", "transfer", "--site", a.world.site_slug, "--date", today, "--amount", "10",
         "--debit", "512", "--credit", "706", "--source", "self", "--piece", "W"),
        ("accountant", "ledger", "verify", "--org", a.world.siren),
        ("accountant", "ledger", "trial-balance", "--org", a.world.siren),
        ("accountant", "export", "--format", "fec", "--org", a.world.siren, "--from", "2020-01-01", "--to", today,
         "--output", str(tmp_path / "out")),
        ("admin", "exports", "recipients", "--org", a.world.siren, "--add", "eve@beta.example"),
        ("admin", "user", "grant", email["member"], "--role", "staff", "--org", a.world.siren),
        ("admin", "user", "grant", email["member"], "--role", "admin", "--network"),
        ("admin", "site", "create", "--org", a.world.siren, "--slug", "wall", "--name", "Wall"),
        ("staff", "bar", "close-day", "--site", a.world.site_slug),
        ("staff", "campaigns", "publish", a.draft_slug),
        ("staff", "plans", "set", "--site", a.world.site_slug, "--code", "wall", "--name", "W", "--kind", "workspace",
         "--price", "10"),
        ("member", "ledger", "verify"),
        ("staff", "db", "upgrade"),
    ]
    for role, *argv in attempts:
        code, output = await _cli(settings, "--as", email[role], *argv)
        assert code != 0, (role, argv, output)
        assert not any(m in output for m in MARKERS), (role, argv, output)
        assert "Traceback" not in output
    assert not (tmp_path / "out").exists()
    # What lists everything lists B's only.
    for role, *argv in [("accountant", "exports", "log"), ("accountant", "ledger", "trial-balance"),
                        ("staff", "campaigns", "list"), ("staff", "plans", "list"), ("admin", "exports", "recipients")]:
        code, output = await _cli(settings, "--as", email[role], *argv)
        assert code == 0 and not any(m in output for m in MARKERS), (role, argv, output)
    assert await snapshot(engine, a) == before
    # The same person, on their own organisation, is served.
    code, output = await _cli(settings, "--as", email["accountant"], "ledger", "verify", "--org", b.siren)
    assert code == 0 and "OK" in output, output
