"""End-to-end steps: the database from a sync test, waiting for the worker, the sandbox's admin
answers, a donation through the form and a payment on the sandbox's hosted Checkout page."""

from __future__ import annotations

import contextlib
import os
import time

import httpx
from sqlalchemy import select

from funding.auth.models import User
from funding.coworking.models import Invoice, Member, Subscription
from funding.coworking.plans import PlanSpec, save_plan, sync_plans
from funding.db import transaction
from funding.ledger.models import Entry, Posting
from funding.mail.models import Email
from funding.orgs.models import Site
from funding.stripe_gateway import SANDBOX_PATH, StripeGateway
from stripe_sandbox.visitor import form_action
from tests.support.db import run_async, sealed_sessions
from tests.support.web import csrf_of
from tests.support.world import make_world

# End-to-end runs deliver webhooks as Stripe may: late, twice, in any order, concurrently
# (SANDBOX_DELIVERY=polite turns that off; SANDBOX_SEED=N replays another draw).
E2E_DELIVERY, E2E_SEED = "chaos", 16


def e2e_sandbox(settings, **kwargs):
    """A sandbox for ``settings``' server: chaotic delivery unless the environment says otherwise."""
    from funding.demo.compose import sandbox_for

    kwargs.setdefault("delivery", os.environ.get("SANDBOX_DELIVERY") or E2E_DELIVERY)
    kwargs.setdefault("seed", int(os.environ.get("SANDBOX_SEED") or E2E_SEED))
    return sandbox_for(settings, **kwargs)


def served(settings, sandbox=None, **kwargs):
    """The product with the sandbox mounted in front of it (one port), as ``funding demo`` serves it."""
    from funding.app import create_app
    from funding.demo.compose import with_sandbox

    return with_sandbox(create_app(settings, **kwargs), sandbox or e2e_sandbox(settings))


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


def books_match_stripe(e2e, *, timeout: float = 20.0) -> list:
    """The books' Stripe account (5115) equals Stripe's balance, to the cent, once the webhooks in
    flight have landed (``funding reconcile --balance``): waits for it, then says by how much it differs."""
    from funding.payments.reconcile import balance_check

    async def sides(sessions):
        gw = StripeGateway(e2e.settings)
        try:
            return await balance_check(sessions, gw)
        finally:
            await gw.aclose()

    last: list = []

    def agree():
        nonlocal last
        last = db_call(e2e.settings, sides)
        return last if all(side.ok for side in last) else None

    try:
        return wait_for(agree, timeout=timeout, what="the books' 5115 to equal Stripe's balance")
    except AssertionError:
        raise AssertionError(f"the books and Stripe's balance differ: {last}") from None


def sandbox_get(server, path: str) -> dict:
    response = httpx.get(f"{server.url}/_sandbox/stripe{path}", headers={"authorization": "Bearer sk_test_e2e"}, timeout=10)
    response.raise_for_status()
    return response.json()


def sandbox_post(server, path: str, data: dict) -> dict:
    """A call to the sandbox's Stripe API (a refund, a void…), its webhooks delivered at once."""
    response = httpx.post(f"{server.url}/_sandbox/stripe{path}", data=data, headers={"authorization": "Bearer sk_test_e2e"},
                          timeout=30)
    assert response.status_code == 200, response.text
    httpx.post(f"{server.url}/_sandbox/stripe/_admin/deliver", timeout=30)
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


DONOR_ADDRESS = {"street": "3 rue Durolle", "postcode": "63300", "town": "Thiers", "country": "France"}


def donate(client: httpx.Client, world, *, amount: str = "50", other: str = "", name: str = "Ana Martin",
           email: str = "ana@example.org", **address: str) -> str:
    """Fill the donation form for the world's central site; the sandbox Checkout address it leads to."""
    form = client.get("/soutenir")
    response = client.post("/soutenir", data={"csrf_token": csrf_of(form.text), "site": world.site_slug, "amount": amount,
                                              "other": other, "name": name, "email": email, **DONOR_ADDRESS, **address})
    assert response.status_code == 303, response.text[:500]
    return response.headers["location"]


# --- coworking through the sandbox -------------------------------------------------------

GOOD, FAILS = "4242 4242 4242 4242", "4000 0000 0000 0341"
DAY, HOUR = 86_400, 3_600


def setup(e2e):
    """A world whose central site sells a nomad desk and a fixed desk, synced to the sandbox."""
    async def go(sessions):
        world = await make_world(sessions)
        async with transaction(sessions) as session:
            site = await session.get(Site, world.site_id)
            await save_plan(session, site, PlanSpec("flex", "Poste nomade", "workspace", "150,00", "20", "706", "month"))
            await save_plan(session, site, PlanSpec("fixe", "Poste fixe", "workspace", "220,00", "20", "706", "month"))
        gw = StripeGateway(e2e.settings)
        try:
            await sync_plans(sessions, gw)
        finally:
            await gw.aclose()
        return world

    return db_call(e2e.settings, go)


def confirm_join(e2e, client: httpx.Client, path: str, data: dict) -> httpx.Response:
    """An anonymous join through the live app: the form, the link of the email, its button."""
    import re

    sent = client.post(path, data=data)
    assert sent.status_code == 200 and "Nous venons d'\u00e9crire \u00e0" in sent.text.replace("&#39;", "'"), sent.text[:500]

    async def mail(sessions):
        async with sessions() as session:
            return await session.scalar(select(Email.body_text).where(Email.to_addr == data["email"].lower(),
                                                                      Email.dedupe_key.like("join:%")).order_by(Email.id.desc()))

    body = wait_for(lambda: db_call(e2e.settings, mail), what="the join email")
    link = re.search(r"https?://[^/\s]+(/coworking/\S+/confirmer/\S+)", body).group(1)
    page = client.get(link)
    assert page.status_code == 200, page.text[:500]
    return client.post(link, data={"csrf_token": csrf_of(page.text)})


def join(e2e, world, code: str, name: str, email: str) -> int:
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        response = confirm_join(e2e, client, f"/coworking/{world.site_slug}/adherer/{code}",
                                {"csrf_token": token, "name": name, "email": email})
        assert response.status_code == 303, response.text
        paid = pay_on_hosted_page(client, response.headers["location"], GOOD, name=name, email=None)
        assert paid.status_code in (302, 303)
        welcome = client.get(paid.headers["location"])
        assert welcome.status_code == 200 and "est actif" in welcome.text

    async def member_id(sessions):
        async with sessions() as session:
            return await session.scalar(select(Member.id).join(User, User.id == Member.user_id).where(User.email == email))

    return db_call(e2e.settings, member_id)


@contextlib.contextmanager
def member_client(e2e, member_id: int):
    """A browser session logged in as the member, through a magic link."""
    from funding.auth.service import issue_link

    async def link(sessions):
        async with transaction(sessions) as session:
            member = await session.get(Member, member_id)
            return await issue_link(session, await session.get(User, member.user_id), e2e.settings, next_path="/membre")

    path = db_call(e2e.settings, link).replace(e2e.settings.base_url, "")
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        page = client.get(path)
        assert client.post(path, data={"csrf_token": csrf_of(page.text)}).status_code == 303
        yield client


def change_card(e2e, member_id: int, card: str) -> None:
    with member_client(e2e, member_id) as client:
        portal = client.post("/membre/carte", data={"csrf_token": csrf_of(client.get("/membre").text)})
        assert portal.status_code == 303 and f"{SANDBOX_PATH}/portal/" in portal.headers["location"]
        saved = client.post(portal.headers["location"].split("?")[0],
                            data={"action": "update-card", "cardholder-name": "Membre", "card-number": card,
                                  "card-expiry": "12/34", "card-cvc": "123"})
        assert saved.status_code == 200 and "Votre carte est enregistrée" in saved.text


def advance(e2e, seconds: int) -> None:
    response = httpx.post(f"{e2e.url}{SANDBOX_PATH}/_admin/advance", data={"seconds": str(seconds)}, timeout=30)
    assert response.status_code == 200
    httpx.post(f"{e2e.url}{SANDBOX_PATH}/_admin/deliver", timeout=30)


def facts(e2e, member_id: int):
    """The member's subscription, invoices, VT/ST entries and emails, as the database has them."""
    async def go(sessions):
        async with sessions() as session:
            member = await session.get(Member, member_id)
            sub = await session.scalar(select(Subscription).where(Subscription.member_id == member_id))
            invoices = (await session.scalars(select(Invoice).where(Invoice.member_id == member_id).order_by(Invoice.id))).all()
            numbers = {i.number for i in invoices}
            entries = []
            for entry in (await session.scalars(select(Entry).where(Entry.journal_code.in_(("VT", "ST")))
                                                .order_by(Entry.number))).all():
                postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id)
                                                  .order_by(Posting.line_no))).all()
                if any(p.aux_code == member.aux_code for p in postings):
                    entries.append((entry.journal_code, entry.piece_ref,
                                    [(p.account_number, p.aux_code, p.amount) for p in postings]))
            emails = (await session.scalars(select(Email.dedupe_key).where(Email.user_id == member.user_id)
                                            .order_by(Email.id))).all()
        return sub, invoices, entries, list(emails), numbers

    return db_call(e2e.settings, go)


def settled(e2e, member_id: int, count: int):
    """Wait until ``count`` invoices are paid and both their entries are in the books."""
    def ready():
        sub, invoices, entries, emails, _numbers = facts(e2e, member_id)
        paid = [i for i in invoices if i.status == "paid"]
        return (sub, invoices, entries, emails) if len(paid) >= count and len(entries) >= 2 * count else None

    return wait_for(ready, timeout=30, what=f"{count} paid invoice(s) booked")


# --- SEPA Direct Debit through the sandbox ------------------------------------------------

SEPA_OK, SEPA_FAILS, SEPA_DISPUTED = "FR1420041010050500013M02606", "FR8420041010050500013M02607", "FR7920041010050500013M02600"


def pay_by_sepa_on_hosted_page(client: httpx.Client, url: str, iban: str, *, name: str = "Ana Martin",
                               email: str | None = None) -> httpx.Response:
    """Fill the sandbox's Checkout page's "Prélèvement SEPA" form (``email`` None: the session knows it)."""
    page = client.get(url)
    assert page.status_code == 200 and 'id="pay-sepa"' in page.text, page.text[:300]
    start = page.text.index('id="sepa"')
    form = {"method": "sepa_debit", "iban": iban, "account-holder-name": name}
    if email is not None:
        form["sepa-email"] = email
    return client.post(form_action(page.text[start:]), data=form)


def join_by_sepa(e2e, world, code: str, name: str, email: str, iban: str) -> int:
    """An anonymous join paid by SEPA Direct Debit: the Checkout completes, the debit processes."""
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        response = confirm_join(e2e, client, f"/coworking/{world.site_slug}/adherer/{code}",
                                {"csrf_token": token, "name": name, "email": email})
        assert response.status_code == 303, response.text
        paid = pay_by_sepa_on_hosted_page(client, response.headers["location"], iban, name=name)
        assert paid.status_code in (302, 303), paid.text[:500]
        welcome = client.get(paid.headers["location"])
        assert welcome.status_code == 200 and "prélèvement SEPA est en cours" in welcome.text.replace("&#39;", "'"), welcome.text[:800]

    async def member_id(sessions):
        async with sessions() as session:
            return await session.scalar(select(Member.id).join(User, User.id == Member.user_id).where(User.email == email))

    return db_call(e2e.settings, member_id)


def arm_sepa_failure(e2e, failure_code: str = "insufficient_funds") -> None:
    """The next SEPA debit to settle fails with ``failure_code``."""
    response = httpx.post(f"{e2e.url}{SANDBOX_PATH}/_admin/sepa/fail", data={"failure_code": failure_code}, timeout=30)
    assert response.status_code == 200, response.text


def replace_by_sepa(e2e, member_id: int, iban: str, *, name: str = "Membre") -> str:
    """From the member area, a new SEPA mandate on the setup Checkout; the member page after it."""
    with member_client(e2e, member_id) as client:
        opened = client.post("/membre/moyen-de-paiement", data={"csrf_token": csrf_of(client.get("/membre").text)})
        assert opened.status_code == 303 and "/checkout/" in opened.headers["location"], opened.text[:300]
        saved = pay_by_sepa_on_hosted_page(client, opened.headers["location"], iban, name=name,
                                           email=None if "sepa-email" not in client.get(opened.headers["location"]).text
                                           else "membre@example.org")
        assert saved.status_code in (302, 303), saved.text[:500]
        back = client.get(saved.headers["location"].replace(e2e.settings.base_url, ""))
        assert back.status_code == 303, back.text[:300]
        return client.get("/membre").text
