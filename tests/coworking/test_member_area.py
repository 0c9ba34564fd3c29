"""Joining and the member area over HTTP, with Stripe faked by respx: what we ask Stripe,
with which idempotency keys, and what the member sees."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select

from funding.auth.models import User
from funding.auth.service import grants_of
from funding.coworking.jobs import forget_unpaid_joins
from funding.coworking.models import Checkout, JoinRequest, Member, Pass, Subscription
from funding.db import utcnow
from funding.i18n import money
from funding.ledger.models import Entry, Posting
from funding.mail.models import Email
from funding.payments.models import Payment
from tests.support.coworking import active_member, line, subscription
from tests.support.stripe_objects import (
    balance_transaction,
    charge,
    checkout_session,
    event,
    now,
    payment_intent,
    sid,
)
from tests.support.web import csrf, csrf_of, join_by_email, login_as, text_of
from tests.support.webhooks import deliver
from webhooks.processing import drain


async def test_plans_are_listed_per_site_with_prices_before_and_after_vat(app_client, world, catalogue):
    page = await app_client.get(f"/coworking/{world.site_slug}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert f"{money(18000)} TTC ({money(15000)} HT + TVA 20 %) par mois" in text
    assert f"{money(3000)} par an (non soumis à la TVA)" in text
    assert "Réservé aux entreprises incubées" in text and "10 jours, valables un an" in text
    assert (await app_client.get("/coworking/nulle-part")).status_code == 404
    assert world.site_slug in (await app_client.get("/coworking")).text


async def test_a_join_opens_checkout_for_its_own_customer_and_makes_no_account_before_the_payment(app_client, sessions, world,
                                                                                                 catalogue, fake):
    token = await csrf(app_client)
    response = await join_by_email(app_client, sessions, f"/coworking/{world.site_slug}/adherer/bureau", {
        "csrf_token": token, "name": "Nadia Chassaing", "email": "Nadia@Atelier-Livradois.example.fr", "phone": "04 73 80 00 00",
        "company_name": "Atelier Numérique du Livradois SAS", "siren": "918 734 021", "vat_number": "FR 37 918734021"})
    assert response.status_code == 303 and response.headers["location"].startswith("https://checkout.stripe.test/")
    (_path, customer, key), = fake.posted("customers")
    assert customer["name"] == "Atelier Numérique du Livradois SAS" and customer["email"] == "nadia@atelier-livradois.example.fr"
    assert customer["invoice_settings"]["custom_fields"] == [
        {"name": "SIREN", "value": "918734021"}, {"name": "N° TVA intracommunautaire", "value": "FR37918734021"},
        {"name": "Contact", "value": "Nadia Chassaing"}]
    async with sessions() as session:
        join = await session.scalar(select(JoinRequest))
        accounts = await session.scalar(select(func.count(User.id)).where(User.email == join.email))
        members = await session.scalar(select(func.count(Member.id)))
        checkouts = await session.scalar(select(func.count(Checkout.id)))
    # Nobody's account before the payment: the join request holds the details and its customer.
    assert (accounts, members, checkouts, join.status) == (0, 0, 0, "open")
    assert (join.siren, join.vat_number, join.phone) == ("918734021", "FR37918734021", "0473800000")
    assert customer["metadata"]["join_id"] == str(join.id) and "member_id" not in customer["metadata"]
    assert key == f"entrelab-coworking-join-{join.id}-customers-1"
    (_path, params, key), = fake.posted("checkout/sessions")
    assert params["mode"] == "subscription" and params["customer"] == join.stripe_customer_id
    assert int(params["expires_at"]) <= now() + 31 * 60  # a session that cannot complete holds nothing for long
    [rate_id] = params["line_items"][0].pop("tax_rates")  # the plan's VAT rate, as a Stripe Tax Rate
    assert params["line_items"] == [{"price": catalogue.price_id("bureau"), "quantity": "1"}]
    assert fake.objects[rate_id]["percentage"] == 20.0 and fake.objects[rate_id]["inclusive"] is True
    meta = params["subscription_data"]["metadata"]
    assert (meta["purpose"], meta["join_id"], meta["plan_id"], meta["site_id"]) == (
        "coworking", str(join.id), str(catalogue.plans["bureau"].id), str(world.site_id))
    assert key == f"entrelab-coworking-join-checkout-{join.id}-1-checkout-sessions-1"
    assert fake.objects[join.checkout_session_id]["url"] == response.headers["location"]


async def test_the_account_is_made_by_the_payments_first_event_whichever_it_is_and_once(app_client, engine, sessions, world,
                                                                                      catalogue, fake, gw):
    await join_by_email(app_client, sessions, f"/coworking/{world.site_slug}/adherer/flex", {
        "csrf_token": await csrf(app_client), "name": "Inès Roche", "email": "ines@example.org", "phone": "0473000001"})
    async with sessions() as session:
        join = await session.scalar(select(JoinRequest))
    (_path, params, _key), = fake.posted("checkout/sessions")
    sub = subscription(customer=join.stripe_customer_id, price=catalogue.prices["flex"], metadata=params["subscription_data"]["metadata"])
    fake.add(sub)
    fake.objects[join.checkout_session_id].update(status="complete", subscription=sub["id"], payment_status="paid")
    # The subscription's event first, the checkout's after, each twice: one account, one member, one checkout row.
    await deliver(engine, event("customer.subscription.created", sub), event("customer.subscription.created", sub),
                  event("checkout.session.completed", fake.objects[join.checkout_session_id]),
                  event("checkout.session.completed", fake.objects[join.checkout_session_id]))
    await drain(sessions, gw)
    async with sessions() as session:
        users = (await session.scalars(select(User).where(User.email == "ines@example.org"))).all()
        member = await session.scalar(select(Member))
        join = await session.get(JoinRequest, join.id)
        row = await session.scalar(select(Subscription))
        checkout = (await session.scalars(select(Checkout))).all()
        grants = await grants_of(session, users[0].id)
    assert len(users) == 1 and users[0].name == "Inès Roche" and grants == {(world.org_id, "member")}
    assert (member.user_id, member.stripe_customer_id, member.phone) == (users[0].id, join.stripe_customer_id, "0473000001")
    assert (join.status, join.member_id) == ("joined", member.id) and join.joined_at is not None
    assert (row.member_id, row.status) == (member.id, "active")
    assert [(c.member_id, c.status, c.stripe_subscription_id) for c in checkout] == [(member.id, "complete", sub["id"])]


async def test_a_join_that_is_never_paid_leaves_no_account(app_client, engine, sessions, world, catalogue, fake, gw):
    await join_by_email(app_client, sessions, f"/coworking/{world.site_slug}/adherer/flex", {
        "csrf_token": await csrf(app_client), "name": "Paul Imbert", "email": "paul@example.org"})
    async with sessions() as session:
        join = await session.scalar(select(JoinRequest))
    fake.objects[join.checkout_session_id].update(status="expired")
    await deliver(engine, event("checkout.session.expired", fake.objects[join.checkout_session_id]))
    await drain(sessions, gw)
    page = await app_client.get(f"/coworking/bienvenue?session_id={join.checkout_session_id}")
    async with sessions() as session:
        users = await session.scalar(select(func.count(User.id)).where(User.email == "paul@example.org"))
        members = await session.scalar(select(func.count(Member.id)))
    assert (users, members) == (0, 0) and page.status_code == 404
    # The address is still free: a login asked for it sends nothing of an account.
    assert (await app_client.get("/membre")).status_code in (302, 303)


async def test_bad_join_input_is_refused_and_creates_nothing(app_client, sessions, world, catalogue, fake):
    token = await csrf(app_client)
    base = {"csrf_token": token, "name": "Léo Martin", "email": "leo@example.org", "phone": "", "company_name": "",
            "siren": "", "vat_number": ""}
    cases = [
        ("flex", {"name": ""}, "Indiquez votre nom"),
        ("flex", {"email": "leo-at-example"}, "Adresse e-mail invalide"),
        ("flex", {"email": "mallory@example.org,eve"}, "une seule adresse"),
        ("flex", {"phone": "appelez-moi"}, "Numéro de téléphone invalide"),
        ("flex", {"company_name": "Léo SARL", "siren": "123456789"}, "SIREN invalide"),
        ("flex", {"company_name": "Léo SARL", "siren": "918734021", "vat_number": "FR00918734021"}, "TVA intracommunautaire invalide"),
        ("flex", {"siren": "918734021"}, "nom de l'entreprise"),
        ("bureau", {}, "réservée aux entreprises"),
    ]
    for code, changes, message in cases:
        response = await app_client.post(f"/coworking/{world.site_slug}/adherer/{code}", data={**base, **changes})
        assert response.status_code == 400 and message in text_of(response.text), (changes, text_of(response.text)[:300])
    assert (await app_client.post(f"/coworking/{world.site_slug}/adherer/inconnue", data=base)).status_code == 404
    async with sessions() as session:
        assert await session.scalar(select(func.count(Member.id))) == 0
    assert fake.posts == []


async def test_an_existing_members_address_gets_a_login_link_instead_of_a_checkout(app_client, sessions, world, catalogue, fake):
    member, *_ = await active_member(sessions, world, catalogue, fake)
    async with sessions() as session:
        user = await session.get(User, member.user_id)
    response = await app_client.post(f"/coworking/{world.site_slug}/adherer/adhesion", data={
        "csrf_token": await csrf(app_client), "name": "Quelqu'un d'autre", "email": user.email, "company_name": "Autre SA",
        "siren": "918734021"})
    assert response.status_code == 200 and "Nous venons d'écrire à" in text_of(response.text)
    assert fake.posted("checkout/sessions") == []
    async with sessions() as session:
        mail = await session.scalar(select(Email).where(Email.to_addr == user.email, Email.dedupe_key.like("login:%")))
        unchanged = await session.get(Member, member.id)
    assert f"/coworking/{world.site_slug}/adherer/adhesion" not in mail.body_text  # the path is inside the signed link
    assert "/login/" in mail.body_text and unchanged.company_name is None

    # An account without a coworking record yet (a bar regular) is treated the same way.
    async with sessions() as session:
        regular = await session.get(User, world.users["member"])
    response = await app_client.post(f"/coworking/{world.site_slug}/adherer/flex", data={
        "csrf_token": await csrf(app_client), "name": "Usurpateur", "email": regular.email, "company_name": "Fausse SARL",
        "siren": "918734021"})
    assert response.status_code == 200 and "Nous venons d'écrire à" in text_of(response.text)
    assert fake.posted("checkout/sessions") == []
    async with sessions() as session:
        record = await session.scalar(select(Member).where(Member.user_id == regular.id))
        mail = await session.scalar(select(Email).where(Email.to_addr == regular.email, Email.dedupe_key.like("login:%")))
    assert record is None  # nothing is created for an account before its owner logs in
    assert "Vous avez déjà un compte Entre-Lab avec cette adresse" in mail.body_text


def _without_csrf(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


async def test_joining_answers_alike_for_a_member_a_team_address_and_a_stranger(app_client, sessions, world, catalogue, fake):
    member, *_ = await active_member(sessions, world, catalogue, fake)
    async with sessions() as session:
        member_address = (await session.get(User, member.user_id)).email
        staff_address = (await session.get(User, world.users["staff"])).email
    pages = {}
    for address in (member_address, staff_address, "inconnue@example.org"):
        # The form's values are those typed (the same here), only the address differs, and it is shown back.
        response = await app_client.post(f"/coworking/{world.site_slug}/adherer/flex", data={
            "csrf_token": await csrf(app_client), "name": "Camille Dumas", "email": address})
        pages[address] = (response.status_code, _without_csrf(response.text).replace(address, "ADRESSE"))
    assert len(set(pages.values())) == 1 and pages[member_address][0] == 200
    assert "équipe" not in pages[staff_address][1]

    # Ten more tries with the member's address: one email in all, then the same limit for every address.
    statuses = []
    for _ in range(9):
        response = await app_client.post(f"/coworking/{world.site_slug}/adherer/flex", data={
            "csrf_token": await csrf(app_client), "name": "Camille Dumas", "email": member_address})
        statuses.append(response.status_code)
    assert statuses == [200] * 4 + [429] * 5 and "retry-after" in response.headers
    async with sessions() as session:
        to_member = (await session.scalars(select(Email.dedupe_key).where(Email.to_addr == member_address))).all()
        to_staff = (await session.scalars(select(Email.body_text).where(Email.to_addr == staff_address))).all()
        stranger = (await session.scalars(select(Email.body_text).where(Email.to_addr == "inconnue@example.org"))).all()
        users = await session.scalar(select(func.count(User.id)).where(User.email == "inconnue@example.org"))
    assert len([k for k in to_member if k.startswith("login:")]) == 1
    assert len(to_staff) == 1 and "compte de l'équipe" in to_staff[0]
    assert len(stranger) == 1 and "/confirmer/" in stranger[0] and users == 0  # no account before the link is followed
    assert fake.posted("checkout/sessions") == []


async def test_the_join_link_is_checked_and_serves_its_address_once(app_client, sessions, world, catalogue, fake):
    path = f"/coworking/{world.site_slug}/adherer/flex"
    response = await join_by_email(app_client, sessions, path, {
        "csrf_token": await csrf(app_client), "name": "Rose Chabrier", "email": "rose@example.org"})
    assert response.status_code == 303 and response.headers["location"].startswith("https://checkout.stripe.test/")
    async with sessions() as session:
        link = re.search(r"http://testserver(\S+/confirmer/\S+)", await session.scalar(
            select(Email.body_text).where(Email.to_addr == "rose@example.org"))).group(1)
        join = await session.scalar(select(JoinRequest))
    first = join.checkout_session_id
    # Followed again before paying (Checkout closed, say): the same request, a new session, the first expired.
    page = await app_client.get(link)
    again = await app_client.post(link, data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 303 and again.headers["location"].startswith("https://checkout.stripe.test/")
    keys = [key for path, _params, key in fake.posted("checkout/sessions") if path == "checkout/sessions"]
    assert keys[0].endswith(f"-{join.id}-1-checkout-sessions-1") and keys[-1].endswith(f"-{join.id}-2-checkout-sessions-1")
    assert fake.objects[first]["status"] == "expired" and len(fake.posted("customers")) == 1
    async with sessions() as session:
        assert await session.scalar(select(func.count(JoinRequest.id))) == 1
        join = await session.get(JoinRequest, join.id)
    # Paid: the account exists now, and the link leads its owner to log in.
    sub = subscription(customer=join.stripe_customer_id, price=catalogue.prices["flex"],
                       metadata=fake.posted("checkout/sessions")[-1][1]["subscription_data"]["metadata"])
    fake.add(sub)
    fake.objects[join.checkout_session_id].update(status="complete", subscription=sub["id"], payment_status="paid")
    assert (await app_client.get(f"/coworking/bienvenue?session_id={join.checkout_session_id}")).status_code == 200
    app_client.cookies.clear()
    page = await app_client.get(link)
    again = await app_client.post(link, data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 303 and again.headers["location"].startswith("/login?next=")
    assert len([p for p, _params, _key in fake.posted("checkout/sessions") if p == "checkout/sessions"]) == 2
    # Altered, or for another plan: refused, nothing created.
    bad = await app_client.get(link[:-4] + "AAAA")
    assert bad.status_code == 400 and "invalide" in text_of(bad.text)
    other = await app_client.get(link.replace("/adherer/flex/", "/adherer/adhesion/"))
    assert other.status_code == 400 and "invalide" in text_of(other.text)


async def test_a_pass_is_paid_in_payment_mode_and_gives_its_days(app_client, engine, sessions, world, catalogue, fake, gw):
    response = await join_by_email(app_client, sessions, f"/coworking/{world.site_slug}/adherer/carnet-10", {
        "csrf_token": await csrf(app_client), "name": "Hugo Morel", "email": "hugo@example.org"})
    assert response.status_code == 303
    (_path, params, _key), = fake.posted("checkout/sessions")
    assert params["mode"] == "payment" and params["metadata"]["purpose"] == "pass"
    assert params["line_items"][0]["price_data"]["unit_amount"] == "18000"
    meta = params["metadata"]
    async with sessions() as session:
        payment = await session.scalar(select(Payment))
        join = await session.scalar(select(JoinRequest))
        members = await session.scalar(select(func.count(Member.id)))
    assert (payment.purpose, payment.amount, members) == ("pass", 18000, 0)  # no account before the payment
    assert params["customer"] == join.stripe_customer_id and meta["join_id"] == str(join.id)
    ch_id = sid("ch")
    pi = payment_intent(amount=18000, metadata=meta, latest_charge=ch_id)
    txn = balance_transaction(amount=18000, fee=295, source=ch_id)
    ch = charge(amount=18000, txn=txn["id"], metadata=meta, payment_intent=pi["id"], charge_id=ch_id)
    cs = checkout_session(amount=18000, metadata=meta, payment_intent=pi["id"], session_id=payment.checkout_session_id)
    fake.add(pi, txn, ch, cs)
    await deliver(engine, event("checkout.session.completed", cs), event("charge.succeeded", ch))
    await drain(sessions, gw)
    async with sessions() as session:
        bought = await session.scalar(select(Pass))
        entry = await session.scalar(select(Entry))
        lines = [(p.account_number, p.amount) for p in (await session.scalars(
            select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()]
        hugo = await session.scalar(select(Member).join(User, User.id == Member.user_id).where(User.email == "hugo@example.org"))
    assert (bought.days_total, bought.days_used, bought.member_id) == (10, 0, hugo.id)
    assert hugo.stripe_customer_id == join.stripe_customer_id
    assert entry.journal_code == "ST" and lines == [("5115", 17705), ("627", 295), ("706", -15000), ("445711", -3000)]


async def test_the_member_area_shows_plan_status_next_payment_and_invoices(app_client, sessions, settings, world, catalogue,
                                                                           fake):
    member, _sub, _row, inv = await active_member(sessions, world, catalogue, fake)
    await login_as(app_client, sessions, settings, member.user_id)
    page = await app_client.get("/membre")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Poste nomade" in text and "actif" in text and f"{money(18000)}" in text
    assert "Prochain paiement" in text and inv["number"] in text
    invoice_id = re.search(r'href="/membre/factures/(\d+)/pdf"', page.text).group(1)
    pdf = await app_client.get(f"/membre/factures/{invoice_id}/pdf")  # our own document (tests/coworking/test_documents.py)
    assert pdf.status_code == 303 and pdf.headers["location"] == "/membre/coordonnees"  # once the address is given
    assert (await app_client.get(f"/membre/factures/{invoice_id}/autre")).status_code == 404


async def test_changing_plan_shows_stripes_proration_preview_then_applies_exactly_it(app_client, sessions, settings, world,
                                                                                     catalogue, fake):
    member, sub, row, _inv = await active_member(sessions, world, catalogue, fake)
    await login_as(app_client, sessions, settings, member.user_id)
    page = await app_client.get(f"/membre/formule?subscription={row.id}")
    assert page.status_code == 200
    options = re.findall(r'name="plan" value="(\d+)"', page.text)
    assert options == [str(catalogue.plans["fixe"].id)]  # same kind and period, on sale; the office needs a company
    moment = now() - 10
    end = sub["items"]["data"][0]["current_period_end"]
    fake.preview = {"object": "invoice", "currency": "eur", "total": 5600, "amount_due": 5600, "lines": {"data": [
        line(price_id=catalogue.price_id("flex"), amount=-12000, start=moment, end=end, proration=True, invoice_item="ii_1"),
        line(price_id=catalogue.price_id("fixe"), amount=17600, start=moment, end=end, proration=True, invoice_item="ii_2")]}}
    preview = await app_client.post("/membre/formule", data={"csrf_token": csrf_of(page.text), "subscription": str(row.id),
                                                             "plan": str(catalogue.plans["fixe"].id)})
    assert preview.status_code == 200
    text = text_of(preview.text)
    assert "Crédit pour le temps non utilisé de « Poste nomade »" in text and f"-{money(12000)}" in text.replace("−", "-")
    assert "À payer maintenant" in text and money(5600) in text
    (_path, asked, _key), = fake.posted("invoices/create_preview")
    assert asked["subscription"] == sub["id"] and asked["subscription_details"]["proration_behavior"] == "always_invoice"
    assert asked["subscription_details"]["items"][0]["price"] == catalogue.price_id("fixe")
    token = re.search(r'name="token" value="([^"]+)"', preview.text).group(1)

    form = {"csrf_token": csrf_of(preview.text), "token": token}
    done = await app_client.post("/membre/formule/confirmer", data=form)
    assert done.status_code == 303 and done.headers["location"] == "/membre"
    (_path, update, _key), = fake.posted(f"subscriptions/{sub['id']}")
    [rate_id] = update["items"][0].pop("tax_rates")
    assert update["items"][0] == {"id": sub["items"]["data"][0]["id"], "price": catalogue.price_id("fixe")}
    assert asked["subscription_details"]["items"][0]["tax_rates"] == [rate_id]  # the preview priced the same tax
    assert update["proration_behavior"] == "always_invoice" and update["proration_date"] == str(moment)
    async with sessions() as session:
        assert (await session.get(Subscription, row.id)).plan_id == catalogue.plans["fixe"].id
    assert "Votre formule est maintenant « Poste fixe »" in text_of((await app_client.get("/membre")).text)
    # A double submission repeats the same idempotency key: Stripe applies it once.
    await app_client.post("/membre/formule/confirmer", data=form)
    keys = [k for p, _, k in fake.posted(f"subscriptions/{sub['id']}")]
    assert len(keys) <= 2 and len(set(keys)) == 1
    # A forged or altered token changes nothing.
    before = len(fake.posts)
    bad = await app_client.post("/membre/formule/confirmer", data={"csrf_token": form["csrf_token"], "token": token[:-2] + "xx"})
    assert bad.status_code == 303 and len(fake.posts) == before


async def test_the_cancellation_message_states_its_day_in_english_words_for_an_english_member(app_client, sessions, settings,
                                                                                              world, catalogue, fake):
    member, _sub, row, _inv = await active_member(sessions, world, catalogue, fake)
    async with sessions() as session, session.begin():
        (await session.get(User, member.user_id)).locale = "en"
    await login_as(app_client, sessions, settings, member.user_id)
    token = csrf_of((await app_client.get("/membre")).text)
    await app_client.post("/membre/resilier", data={"csrf_token": token, "subscription": str(row.id)})
    flash = re.search(r"Your subscription will end on ([^;]+);", text_of((await app_client.get("/membre")).text))
    assert flash is not None and re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4}", flash.group(1)), flash  # 5 January 2027, not 05/01/2027


async def test_cancel_at_period_end_then_resume(app_client, sessions, settings, world, catalogue, fake):
    member, sub, row, _inv = await active_member(sessions, world, catalogue, fake)
    await login_as(app_client, sessions, settings, member.user_id)
    token = csrf_of((await app_client.get("/membre")).text)
    response = await app_client.post("/membre/resilier", data={"csrf_token": token, "subscription": str(row.id)})
    assert response.status_code == 303
    (_path, params, key), = fake.posted(f"subscriptions/{sub['id']}")
    assert params == {"cancel_at_period_end": "true"} and key.startswith(f"entrelab-coworking-cancel-{row.id}-1-")
    page = text_of((await app_client.get("/membre")).text)
    assert "prendra fin le" in page and "Fin de l'abonnement" in page and "Reprendre mon abonnement" in page
    async with sessions() as session:
        assert (await session.get(Subscription, row.id)).cancel_at_period_end is True
    await app_client.post("/membre/reprendre", data={"csrf_token": token, "subscription": str(row.id)})
    assert fake.posted(f"subscriptions/{sub['id']}")[-1][1] == {"cancel_at_period_end": "false"}
    async with sessions() as session:
        assert (await session.get(Subscription, row.id)).cancel_at_period_end is False


async def test_the_card_is_updated_through_a_billing_portal_session(app_client, sessions, settings, world, catalogue, fake):
    member, *_ = await active_member(sessions, world, catalogue, fake)
    await login_as(app_client, sessions, settings, member.user_id)
    response = await app_client.post("/membre/carte", data={"csrf_token": csrf_of((await app_client.get("/membre")).text)})
    assert response.status_code == 303 and response.headers["location"].startswith("https://billing.stripe.test/p/session/")
    (_path, params, key), = fake.posted("billing_portal/sessions")
    assert params == {"customer": member.stripe_customer_id, "return_url": "http://testserver/membre", "locale": "fr"}
    assert key.startswith(f"entrelab-coworking-portal-{member.id}-")


async def test_member_details_are_checked_and_sent_to_the_stripe_customer(app_client, sessions, settings, world, catalogue,
                                                                          fake):
    member, *_ = await active_member(sessions, world, catalogue, fake)
    await login_as(app_client, sessions, settings, member.user_id)
    token = csrf_of((await app_client.get("/membre/coordonnees")).text)
    bad = await app_client.post("/membre/coordonnees", data={"csrf_token": token, "name": "Julie Fayolle",
                                                             "company_name": "Fayolle Conseil", "siren": "12345678"})
    assert bad.status_code == 400 and "SIREN invalide" in bad.text and fake.posted("customers") == []
    ok = await app_client.post("/membre/coordonnees", data={"csrf_token": token, "name": "Julie Fayolle",
                                                            "company_name": "Fayolle Conseil", "siren": "934561200",
                                                            "vat_number": "FR74934561200", "phone": ""})
    assert ok.status_code == 303
    (_path, params, _key), = fake.posted(f"customers/{member.stripe_customer_id}")
    assert params["name"] == "Fayolle Conseil" and params["invoice_settings"]["custom_fields"][0] == {
        "name": "SIREN", "value": "934561200"}
    async with sessions() as session:
        assert (await session.get(Member, member.id)).vat_number == "FR74934561200"


async def test_the_return_from_checkout_applies_the_subscription_at_once(app_client, sessions, world, catalogue, fake):
    token = await csrf(app_client)
    await join_by_email(app_client, sessions, f"/coworking/{world.site_slug}/adherer/flex", {
        "csrf_token": token, "name": "Marc Vidal", "email": "marc@example.org"})
    async with sessions() as session:
        join = await session.scalar(select(JoinRequest))
    assert (await app_client.get("/membre")).status_code in (302, 303)  # nobody to log in before the payment
    (_path, params, _key), = fake.posted("checkout/sessions")
    sub = subscription(customer=join.stripe_customer_id, price=catalogue.prices["flex"],
                       metadata=params["subscription_data"]["metadata"])
    fake.add(sub)
    fake.objects[join.checkout_session_id].update(status="complete", subscription=sub["id"], payment_status="paid")
    page = await app_client.get(f"/coworking/bienvenue?session_id={join.checkout_session_id}")
    assert page.status_code == 200 and "Votre abonnement « Poste nomade » est actif" in page.text
    async with sessions() as session:
        member = await session.scalar(select(Member))
        checkout = await session.scalar(select(Checkout))
        row = await session.scalar(select(Subscription))
    assert checkout.status == "complete" and (row.status, row.member_id) == ("active", member.id)
    # The browser that followed the join's link is logged in to the account the payment made.
    home = await app_client.get("/membre")
    assert home.status_code == 200 and "Poste nomade" in text_of(home.text)
    assert (await app_client.get("/coworking/bienvenue?session_id=nope")).status_code == 404


async def test_another_browser_back_from_the_same_checkout_is_not_logged_in(app_client, sessions, world, catalogue, fake):
    await join_by_email(app_client, sessions, f"/coworking/{world.site_slug}/adherer/flex", {
        "csrf_token": await csrf(app_client), "name": "Marc Vidal", "email": "marc@example.org"})
    async with sessions() as session:
        join = await session.scalar(select(JoinRequest))
    (_path, params, _key), = fake.posted("checkout/sessions")
    sub = subscription(customer=join.stripe_customer_id, price=catalogue.prices["flex"], metadata=params["subscription_data"]["metadata"])
    fake.add(sub)
    fake.objects[join.checkout_session_id].update(status="complete", subscription=sub["id"], payment_status="paid")
    app_client.cookies.clear()  # the return address, replayed elsewhere: the page, not the account
    page = await app_client.get(f"/coworking/bienvenue?session_id={join.checkout_session_id}")
    assert page.status_code == 200 and (await app_client.get("/membre")).status_code in (302, 303)


async def test_a_logged_in_account_without_a_member_record_joins_without_a_detour(app_client, sessions, settings, world,
                                                                                 catalogue, fake):
    """A bar regular, logged in, joins: their own account, so straight to Checkout with the details they typed."""
    await login_as(app_client, sessions, settings, world.users["member"])
    page = await app_client.get(f"/coworking/{world.site_slug}/adherer/flex")
    response = await app_client.post(f"/coworking/{world.site_slug}/adherer/flex", data={
        "csrf_token": csrf_of(page.text), "name": "Membre Habitué", "email": "autre@example.org",
        "company_name": "Habitué Conseil", "siren": "934561200"})
    assert response.status_code == 303 and response.headers["location"].startswith("https://checkout.stripe.test/")
    async with sessions() as session:
        member = await session.scalar(select(Member).where(Member.user_id == world.users["member"]))
        user = await session.get(User, world.users["member"])
    assert (member.company_name, member.siren, user.name) == ("Habitué Conseil", "934561200", "Membre Habitué")
    assert fake.posted("customers")[0][1]["email"] == user.email  # their address, not the one typed


async def test_an_unpaid_join_is_forgotten_after_thirty_days_and_a_paid_one_kept(sessions, world, catalogue, settings, gw):
    async with sessions() as session, session.begin():
        for digest, status, age in (("a" * 64, "open", 31), ("b" * 64, "open", 29), ("c" * 64, "joined", 90)):
            session.add(JoinRequest(org_id=world.org_id, site_id=world.site_id, plan_id=catalogue.plans["flex"].id,
                                    link_digest=digest, email=f"{digest[0]}@example.org", name="X", status=status,
                                    created_at=utcnow() - dt.timedelta(days=age)))
    assert await forget_unpaid_joins(sessions, settings, gw) == 1
    async with sessions() as session:
        left = sorted((j.link_digest[0], j.status) for j in (await session.scalars(select(JoinRequest))).all())
    assert left == [("b", "open"), ("c", "joined")]
