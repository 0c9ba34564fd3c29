"""A tax receipt for every gift — /soutenir's one-off gifts as much as campaign pledges — with
every mention the cerfa asks for, as a PDF emailed and downloadable, voided by a refund or a
lost chargeback; the donor's address asked for whenever a receipt is due."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from funding.campaigns import receipt_pdf, receipts, settle
from funding.campaigns.donors import DonorDetails
from funding.campaigns.models import Pledge, TaxReceipt
from funding.db import transaction
from funding.donations.service import donor_token
from funding.mail.models import Email
from funding.mail.service import load_attachments
from funding.orgs.models import Organisation
from funding.payments.models import Payment
from tests.support.campaigns import make_campaign, paid_pledge
from tests.support.stripe_objects import balance_transaction, dispute, event, refund, sid
from tests.support.web import csrf_of
from tests.support.webhooks import deliver, paid_donation, workers_on
from webhooks.inbox import store
from webhooks.processing import drain

ADDRESS = "12 rue de la Coutellerie\n63300 Thiers\nFrance"
COMPANY = DonorDetails(street="8 avenue des Couteliers", postcode="63300", town="Thiers", company=True,
                       company_name="Coutellerie Dumas SARL", siren="732 829 320")


def flat(text: str) -> str:
    """Text with every run of spaces (no-break ones included) as one space."""
    return " ".join(text.split())


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return flat(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


async def gift(sessions, world, *, amount: int = 5000, name: str = "Martine Chabrier", address: str | None = ADDRESS,
               company: tuple[str, str] | None = None) -> Payment:
    """A gift made on /soutenir, as the form records it (Checkout opened, not paid yet)."""
    async with transaction(sessions) as session:
        payment = Payment(org_id=world.org_id, site_id=world.site_id, purpose="donation", amount=amount, currency="EUR",
                          description="Don", email="martine@example.fr", name=name, status="open", donor_address=address,
                          company_name=company[0] if company else None, company_siren=company[1] if company else None)
        session.add(payment)
    return payment


async def receipts_of(sessions) -> list[TaxReceipt]:
    async with sessions() as session:
        return list((await session.scalars(select(TaxReceipt).order_by(TaxReceipt.id))).all())


async def emails(sessions) -> list[Email]:
    async with sessions() as session:
        return list((await session.scalars(select(Email).order_by(Email.id))).all())


async def pay(engine, sessions, gw, fake_stripe, world, payment: Payment, *, twice: bool = True):
    """Stripe's events of the gift paid, each delivered twice under two ids (at least once, any order)."""
    cs, pi, ch, txn = paid_donation(fake_stripe, world, payment)
    events = [event("payment_intent.succeeded", pi), event("charge.succeeded", ch), event("checkout.session.completed", cs)]
    await deliver(engine, *events)
    await drain(sessions, gw)
    if twice:
        await deliver(engine, *({**e, "id": sid("evt")} for e in reversed(events)))
        await drain(sessions, gw)
    return cs, pi, ch, txn


async def test_a_soutenir_gift_gets_one_receipt_even_when_its_webhook_is_delivered_twice(engine, sessions, world, gw,
                                                                                       fake_stripe, settings):
    payment = await gift(sessions, world)
    await pay(engine, sessions, gw, fake_stripe, world, payment)
    (receipt,) = await receipts_of(sessions)
    assert (receipt.payment_id, receipt.pledge_id, receipt.campaign_id) == (payment.id, None, None)
    assert (receipt.number, receipt.amount, receipt.donor_name, receipt.donor_address) == (1, 5000, "Martine Chabrier", ADDRESS)
    assert receipt.donor_siren is None
    (mail,) = await emails(sessions)
    assert mail.dedupe_key == f"payment:{payment.id}:receipt"
    assert f"reçu fiscal n° {receipts.receipt_code(receipt)}" in mail.body_text and "66 %" in mail.body_text
    assert "60 %" not in mail.body_text
    # The email carries the receipt as a PDF, built when it is sent.
    assert json.loads(mail.attachments) == [{"kind": "tax-receipt", "receipt_id": receipt.id}]
    ((filename, mime, data),) = await load_attachments(sessions, settings, mail)
    assert (filename, mime) == (f"recu-fiscal-{receipts.receipt_code(receipt)}.pdf", "application/pdf")
    assert "Martine Chabrier" in pdf_text(data)


async def test_numbering_has_no_gap_across_campaign_and_soutenir_gifts(engine, sessions, world, gw, fake_stripe):
    campaign = await make_campaign(sessions, world)
    first = await paid_pledge(sessions, campaign.id, amount="30")
    payment = await gift(sessions, world)
    await pay(engine, sessions, gw, fake_stripe, world, payment)
    third = await paid_pledge(sessions, campaign.id, amount="40")
    found = await receipts_of(sessions)
    assert [(r.number, r.pledge_id, r.payment_id, r.amount) for r in found] == [
        (1, first.id, None, 3000), (2, None, payment.id, 5000), (3, third.id, None, 4000)]
    assert len({r.year for r in found}) == 1


async def test_the_pdf_states_every_mandatory_mention_and_is_downloaded_through_the_signed_link(
        engine, sessions, world, gw, fake_stripe, client, settings):
    async with transaction(sessions) as session:
        org = await session.get(Organisation, world.org_id)
        org.address = "Maison des associations\n5 rue Conchette\n63300 Thiers"
    payment = await gift(sessions, world, amount=123456)
    await pay(engine, sessions, gw, fake_stripe, world, payment, twice=False)
    (receipt,) = await receipts_of(sessions)
    token = donor_token(settings.secret_key, payment.id)
    page = await client.get(f"/soutenir/recu/{token}")
    assert page.status_code == 200 and f"/soutenir/recu/{token}/pdf" in page.text
    response = await client.get(f"/soutenir/recu/{token}/pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert "no-store" in response.headers["cache-control"]
    text = pdf_text(response.content)
    async with sessions() as session:
        view = await receipts.view(session, receipt.id)
    for mention in [
        "Cerfa n° 11580*05", "Reçu au titre des dons à certains organismes d'intérêt général",
        f"Numéro d'ordre du reçu : {receipts.receipt_code(receipt)}",
        view.org.name, view.org.siren, "Maison des associations 5 rue Conchette 63300 Thiers",  # the organisation
        "Objet", "animation de tiers-lieux", "Association d'intérêt général",  # its object and quality
        "Martine Chabrier", "12 rue de la Coutellerie 63300 Thiers France",  # the donor and their address
        "1 234,56 €", "mille deux cent trente-quatre euros et cinquante-six centimes",  # in figures and in words
        "Date du versement ou du don",
        "Le bénéficiaire certifie sur l'honneur que les dons et versements qu'il reçoit ouvrent droit à la "
        "réduction d'impôt prévue à l'article 200 du CGI",
        "[X] Article 200 du CGI", "[ ] Article 238 bis du CGI", "[ ] Article 978 du CGI",
        "[ ] Acte authentique", "[ ] Acte sous seing privé", "[X] Déclaration de don manuel", "[ ] Autres",
        "[X] Numéraire", "[ ] Chèque", "[X] Virement, prélèvement, carte bancaire", "[ ] Espèces",
        "66 %", "Fait à", "Signature",
    ]:
        assert mention in text, mention
    assert "60 %" not in text and "16216" not in text
    # Another gift's link, or one tampered with, shows nothing.
    assert (await client.get(f"/soutenir/recu/{token[:-2]}xx/pdf")).status_code == 400
    assert (await client.get(f"/soutenir/recu/{donor_token(settings.secret_key, payment.id + 1)}/pdf")).status_code == 404


async def test_a_company_gets_the_receipt_for_companies_never_told_66_percent(sessions, world, client):
    campaign = await make_campaign(sessions, world)
    made = await paid_pledge(sessions, campaign.id, amount="500", name="Jean Dumas", address="", donor=COMPANY)
    (receipt,) = await receipts_of(sessions)
    assert (receipt.donor_name, receipt.donor_siren) == ("Coutellerie Dumas SARL", "732829320")
    assert receipt.donor_address == "8 avenue des Couteliers\n63300 Thiers\nFrance"
    async with sessions() as session:
        mail = await session.scalar(select(Email).where(Email.dedupe_key == f"campaign-pledge:{made.id}:paid"))
    assert "60 %" in mail.body_text and "238 bis" in mail.body_text and "66 %" not in mail.body_text
    response = await client.get(f"/contributions/{made.access_token}/recu/pdf")
    assert response.status_code == 200
    text = pdf_text(response.content)
    for mention in ["Cerfa n° 16216*01", "au titre de l'article 238 bis du code général des impôts",
                    "Coutellerie Dumas SARL", "732829320", "8 avenue des Couteliers 63300 Thiers France",
                    "réduction d'impôt prévue à l'article 238 bis du CGI", "[X] Article 238 bis du CGI",
                    "[ ] Article 200 du CGI", "60 %", "cinq cents euros"]:
        assert mention in text, mention
    assert "66 %" not in text
    page = await client.get(f"/contributions/{made.access_token}/recu")
    assert page.status_code == 200 and "60 %" in page.text and "66 %" not in page.text


async def test_a_refund_voids_the_receipt_and_the_donor_is_told_in_euros(engine, sessions, world, gw, fake_stripe):
    payment = await gift(sessions, world, amount=8000)
    _cs, _pi, ch, _txn = await pay(engine, sessions, gw, fake_stripe, world, payment, twice=False)
    # A partial refund of 30 €: the receipt is voided, a new one (next number) states the 50 € that remain.
    re_txn = balance_transaction(amount=-3000, fee=0, type="refund", source="re_x")
    re = refund(amount=3000, charge_id=ch["id"], txn=re_txn["id"])
    partly = {**ch, "amount_refunded": 3000, "refunds": {**ch["refunds"], "data": [re]}}
    fake_stripe.add(re_txn, re, partly)
    await deliver(engine, event("charge.refunded", partly), event("refund.created", re), event("refund.updated", re))
    await drain(sessions, gw)
    first, second = await receipts_of(sessions)
    assert first.voided_at is not None and flat(first.void_reason) == "remboursement de 30,00 €"
    assert (second.number, second.amount, second.voided_at, second.payment_id) == (2, 5000, None, payment.id)
    # The rest refunded: the second receipt is voided too, none replaces it.
    re2 = refund(amount=5000, charge_id=ch["id"], txn=None)
    whole = {**ch, "amount_refunded": 8000, "refunds": {**ch["refunds"], "data": [re, re2]}}
    fake_stripe.add(re2, whole)
    await deliver(engine, event("charge.refunded", whole), event("charge.refunded", whole))
    await drain(sessions, gw)
    found = await receipts_of(sessions)
    assert len(found) == 2 and all(r.voided_at is not None for r in found)
    told = [m for m in await emails(sessions) if "taken-back" in m.dedupe_key]
    assert [flat(m.body_text).split("\n")[0] for m in told] and len(told) == 2
    partial, full = (flat(m.body_text) for m in told)
    assert "Nous vous avons remboursé 30,00 €" in partial and "le remplace pour 50,00 €" in partial
    assert "Nous vous avons remboursé 50,00 €" in full and f"reçu fiscal n° {receipts.receipt_code(second)} est annulé" in full
    assert "3000" not in partial and "5000" not in full and "unités mineures" not in partial + full


async def test_a_lost_chargeback_voids_the_receipt(engine, sessions, world, gw, fake_stripe):
    payment = await gift(sessions, world)
    _cs, _pi, ch, _txn = await pay(engine, sessions, gw, fake_stripe, world, payment, twice=False)
    withdrawal = balance_transaction(amount=-5000, fee=2000, type="adjustment", category="dispute", source="dp_x")
    lost = dispute(amount=5000, charge_id=ch["id"], status="lost", txns=[withdrawal])
    withdrawal["source"] = lost["id"]
    fake_stripe.add(withdrawal, lost)
    await deliver(engine, event("charge.dispute.closed", lost), event("charge.dispute.funds_withdrawn", lost))
    await drain(sessions, gw)
    (receipt,) = await receipts_of(sessions)
    assert receipt.voided_at is not None and flat(receipt.void_reason) == "litige perdu de 50,00 €"
    (told,) = [m for m in await emails(sessions) if "taken-back" in m.dedupe_key]
    assert "50,00 €" in flat(told.body_text) and "est annulé" in told.body_text


async def test_a_gift_without_the_address_when_a_receipt_is_due_is_refused_and_changes_nothing(client, sessions, world):
    token = csrf_of((await client.get("/soutenir")).text)
    base = {"csrf_token": token, "site": world.site_slug, "amount": "20", "other": "", "name": "Ana Martin",
            "email": "ana@example.org", "street": "3 rue Durolle", "postcode": "63300", "town": "Thiers", "country": "France"}
    for data, message in [
        ({"street": ""}, "Indiquez votre adresse postale complète"),
        ({"town": " "}, "Indiquez votre adresse postale complète"),
        ({"postcode": "6330"}, "Code postal invalide : 6330 (5 chiffres en France)"),
        ({"company": "1", "company_name": ""}, "Indiquez le nom de l&#39;entreprise"),
        ({"company": "1", "company_name": "Dumas", "siren": "123456789"}, "SIREN invalide : 123456789"),
    ]:
        response = await client.post("/soutenir", data={**base, **data})
        assert response.status_code == 400 and message in response.text, (data, response.text[-2000:])
        assert 'value="Ana Martin"' in response.text  # what was typed is kept
    campaign = await make_campaign(sessions, world)
    page = await client.get(f"/campagnes/{campaign.slug}")
    assert 'name="street"' in page.text and 'name="siren"' in page.text
    response = await client.post(f"/campagnes/{campaign.slug}/contribuer", data={
        "csrf_token": csrf_of(page.text), "currency": "EUR", "tier": "", "amount": "25", "name": "Ana Martin",
        "email": "ana@example.org", "street": "", "postcode": "", "town": ""})
    assert response.status_code == 400 and "Indiquez votre adresse postale complète" in response.text
    async with sessions() as session:
        assert await session.scalar(select(func.count(Payment.id))) == 0
        assert await session.scalar(select(func.count(Pledge.id))) == 0
        assert await session.scalar(select(func.count(TaxReceipt.id))) == 0


async def test_the_receipt_pdf_renders_without_a_request(sessions, world):
    """The email's attachment is built by the mail worker, outside any request or locale."""
    campaign = await make_campaign(sessions, world)
    await paid_pledge(sessions, campaign.id, amount="20")
    (receipt,) = await receipts_of(sessions)
    async with sessions() as session:
        view = await receipts.view(session, receipt.id)
    text = pdf_text(receipt_pdf.receipt_pdf(view))
    assert "vingt euros" in text and "Campagne" in text and "3 rue Durolle 63300 Thiers France" in text


@pytest.mark.postgres_only
async def test_workers_racing_on_a_gifts_events_issue_one_receipt_on_postgresql(pg_url, fake_stripe):
    from tests.support.world import make_world

    async with workers_on(pg_url, 4) as workers:
        world = await make_world(workers.sessions)
        payment = await gift(workers.sessions, world)
        cs, pi, ch, _txn = paid_donation(fake_stripe, world, payment)
        events = [event("charge.succeeded", ch), event("checkout.session.completed", cs), event("payment_intent.succeeded", pi)]
        await asyncio.gather(*(store(workers.engine, e, json.dumps(e)) for e in events for _ in range(4)))
        await asyncio.gather(*(drain(workers.sessions, g, batch=1) for g in workers.gateways))
        await drain(workers.sessions, workers.gateways[0])
        (receipt,) = await receipts_of(workers.sessions)
        assert (receipt.payment_id, receipt.number) == (payment.id, 1)
        assert len([m for m in await emails(workers.sessions) if m.attachments]) == 1


async def test_a_refunded_campaign_gift_says_its_amounts_in_euros_on_the_voided_receipt_and_in_the_email(sessions, world,
                                                                                                       client):
    campaign = await make_campaign(sessions, world)
    paid = await paid_pledge(sessions, campaign.id, amount="1 250")
    async with transaction(sessions) as session:
        await settle.apply_refund(session, paid.id, 5000)
    first, second = await receipts_of(sessions)
    assert flat(first.void_reason) == "remboursement de 50,00 €" and second.amount == 120000
    async with sessions() as session:
        mail = await session.scalar(select(Email).where(Email.dedupe_key == f"campaign-pledge:{paid.id}:refund-5000"))
    body = flat(mail.body_text)
    assert "Nous vous avons remboursé 50,00 €" in body and "pour 1 200,00 €" in body and "5000" not in body
    assert json.loads(mail.attachments) == [{"kind": "tax-receipt", "receipt_id": second.id}]
    page = await client.get(f"/contributions/{paid.access_token}/recu")  # the latest: the one in force
    assert page.status_code == 200 and receipts.receipt_code(second) in page.text
    async with sessions() as session:
        voided = await receipts.view(session, first.id)
    text = pdf_text(receipt_pdf.receipt_pdf(voided))
    assert "REÇU ANNULÉ" in text and "remboursement de 50,00 €" in text


def test_a_gift_is_dated_when_stripe_took_the_money_not_when_we_heard_of_it():
    """A gift charged at 23:50 on 31 December in Paris whose webhook is processed after midnight
    keeps its day and its year: the receipt states the charge's day (as the books date it)."""
    import datetime as dt

    from funding.clock import local_day
    from funding.payments.service import stripe_paid_at

    new_year_eve = int(dt.datetime(2025, 12, 31, 22, 50, tzinfo=dt.UTC).timestamp())  # 23:50 in Paris
    charge = {"object": "charge", "id": "ch_1", "created": new_year_eve}
    pi = {"object": "payment_intent", "id": "pi_1", "created": new_year_eve - 60, "latest_charge": charge}
    checkout = {"object": "checkout.session", "id": "cs_1", "created": new_year_eve - 3600, "payment_intent": pi}
    assert {stripe_paid_at(o) for o in (charge, pi, checkout)} == {dt.datetime(2025, 12, 31, 22, 50)}
    assert local_day(stripe_paid_at(checkout)) == dt.date(2025, 12, 31)
    # A PaymentIntent whose charge is not expanded: its own creation; a session that does not say: None (now).
    assert stripe_paid_at({**pi, "latest_charge": "ch_1"}) == dt.datetime(2025, 12, 31, 22, 49)
    assert stripe_paid_at({**checkout, "payment_intent": "pi_1"}) is None and stripe_paid_at(None) is None


async def test_a_gift_charged_on_new_year_s_eve_heard_of_later_keeps_its_day_on_the_receipt(engine, sessions, world, gw,
                                                                                              fake_stripe):
    """Its events processed whenever (here: today), the receipt states the day of the charge."""
    import datetime as dt

    payment = await gift(sessions, world)
    cs, pi, ch, txn = paid_donation(fake_stripe, world, payment)
    charged = int(dt.datetime(2025, 12, 31, 22, 50, tzinfo=dt.UTC).timestamp())  # 23:50 in Paris
    for obj in (pi, ch, cs, txn):
        obj["created"] = charged
    await deliver(engine, event("checkout.session.completed", cs), event("charge.succeeded", ch),
                  event("payment_intent.succeeded", pi))
    await drain(sessions, gw)
    (receipt,) = await receipts_of(sessions)
    assert receipt.paid_on == dt.date(2025, 12, 31)
