"""Invoices and credit notes as the member and the staff get them: our own PDF with every
legal mention, read back as text; Factur-X for a company; no PDF without the buyer's address."""

from __future__ import annotations

import io
import re

from facturx import get_xml_from_pdf
from pypdf import PdfReader
from sqlalchemy import select, update

from funding.coworking.members import french_vat_key
from funding.coworking.models import Invoice, Member
from funding.db import transaction
from funding.orgs.models import Organisation
from tests.support.coworking import active_member
from tests.support.web import login_as, text_of


def pdf_text(content: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(content)).pages)


async def seller_details(sessions, world) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(Organisation).where(Organisation.id == world.org_id).values(
            address="Maison des Associations\n2 rue Conchette\n63300 Thiers",
            vat_number=f"FR{french_vat_key(world.siren):02d}{world.siren}"))


async def test_the_member_gets_a_legal_invoice_once_their_address_is_known(app_client, sessions, settings, world, catalogue, fake):
    await seller_details(sessions, world)
    member, _sub, _row, inv = await active_member(sessions, world, catalogue, fake)
    await login_as(app_client, sessions, settings, member.user_id)
    page = await app_client.get("/membre")
    invoice_id = re.search(r'href="/membre/factures/(\d+)/pdf"', page.text).group(1)

    # No address yet: no invoice, and the member is told why and where to give it.
    refused = await app_client.get(f"/membre/factures/{invoice_id}/pdf")
    assert refused.status_code == 303 and refused.headers["location"] == "/membre/coordonnees"
    assert "adresse postale manque" in text_of((await app_client.get("/membre/coordonnees")).text)

    async with transaction(sessions) as session:
        await session.execute(update(Member).where(Member.id == member.id).values(address="12 rue de la Coutellerie\n63300 Thiers"))
    pdf = await app_client.get(f"/membre/factures/{invoice_id}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "private, no-store"
    text = pdf_text(pdf.content)
    for mention in (f"Facture n° {inv['number']}", "Association Test", world.siren, "2 rue Conchette", "Julie Fayolle",
                    "12 rue de la Coutellerie", "150,00 €", "30,00 €", "180,00 €", "20 %", "pénalités"):
        assert mention in text, mention
    assert "40 €" not in text  # the recovery indemnity is for companies only
    assert "Poste nomade" in text and "1 × Poste" not in text  # Stripe's line text, without what the columns say
    assert (await app_client.get(f"/membre/factures/{invoice_id}/autre")).status_code == 404


async def test_a_company_gets_factur_x_and_another_member_gets_nothing(app_client, sessions, settings, world, catalogue, fake):
    await seller_details(sessions, world)
    member, _sub, _row, inv = await active_member(sessions, world, catalogue, fake, name="Nadia Chassaing")
    other, *_ = await active_member(sessions, world, catalogue, fake, name="Marc Vidal")
    async with transaction(sessions) as session:
        await session.execute(update(Member).where(Member.id == member.id).values(
            company_name="Atelier Numérique du Livradois SAS", siren="918734021", vat_number="FR37918734021",
            address="18 rue des Forges\n63300 Thiers"))
        invoice_id = await session.scalar(select(Invoice.id).where(Invoice.member_id == member.id))
    await login_as(app_client, sessions, settings, member.user_id)
    pdf = await app_client.get(f"/membre/factures/{invoice_id}/pdf")
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    assert "918734021" in text and "FR37918734021" in text and "40 €" in text
    _name, xml = get_xml_from_pdf(pdf.content, check_xsd=True)
    assert inv["number"].encode() in xml and b"918734021" in xml

    # Another member, and the staff's view of the same invoice.
    await login_as(app_client, sessions, settings, other.user_id)
    assert (await app_client.get(f"/membre/factures/{invoice_id}/pdf")).status_code == 404
    await login_as(app_client, sessions, settings, world.users["accountant"])
    staff = await app_client.get(f"/admin/coworking/factures/{invoice_id}.pdf")
    assert staff.status_code == 200 and pdf_text(staff.content) == text
