"""A member's invoices and credit notes as documents French law accepts, from what we booked.

Stripe's own PDF cannot carry every mention (the buyer's SIREN, the 293 B mention, the 40 €
indemnity…): the product prints its own (funding.invoicing) from the invoice's lines as
booked — Stripe's figures, line by line — and from the seller's and buyer's records. A
company gets Factur-X (the PDF with its EN 16931 XML inside), anyone else the plain PDF.
Printing takes a CPU for a fraction of a second: it runs in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from funding.auth.models import User
from funding.clock import local_day
from funding.coworking.lifecycle import from_unix
from funding.coworking.models import CreditNote, Invoice, InvoiceStatus, Member
from funding.db import must_get
from funding.invoicing.document import DocumentKind, DocumentLine, InvoiceDocument, InvoiceDocumentError, Party
from funding.orgs.models import Organisation, Site

PAYMENT_TERMS = ("Payable à réception, par prélèvement sur la carte bancaire enregistrée (ou en ligne, "
                 "par le lien reçu par e-mail). Pas d'escompte pour paiement anticipé.")
LATE_PENALTY = "En cas de retard de paiement : pénalités au taux de trois fois le taux d'intérêt légal, exigibles de plein droit."


def _description(text: str) -> str:
    """Stripe's line text without what the document states in its own columns (English, too):
    "1 × Poste fixe — Thiers (at 264,00 € / month)" → "Poste fixe — Thiers"."""
    text = re.sub(r"^\d+ × ", "", text or "")
    return re.sub(r"\s*\((at|à) [^()]*\)$", "", text).strip() or "Prestation"


def _lines(booked: list[dict]) -> tuple[DocumentLine, ...]:
    out = []
    for line in booked:
        start, end = from_unix(line.get("period_start")), from_unix(line.get("period_end"))
        period = (local_day(start), max(local_day(start), local_day(end) - dt.timedelta(days=1))) if start and end else (None, None)
        out.append(DocumentLine(description=_description(line.get("description") or ""), quantity=1, unit_amount_ht=line["base"],
                                vat_rate=int(line["vat_rate"]), amount_ht=line["base"], vat_amount=line["vat"],
                                period_start=period[0], period_end=period[1]))
    return tuple(out)


async def _parties(session: AsyncSession, member: Member, site_id: int) -> tuple[Party, Party, bool]:
    site = await must_get(session, Site, site_id)
    org = await must_get(session, Organisation, site.org_id)
    user = await must_get(session, User, member.user_id)
    seller = Party(name=org.name, address=tuple(filter(None, (org.address or "").splitlines())), siren=org.siren,
                   vat_number=org.vat_number if org.vat_liable else None, is_company=True)
    if not (member.address or "").strip():
        raise InvoiceDocumentError("Votre adresse postale manque : complétez « Mes coordonnées » pour obtenir vos factures "
                                   "(la loi exige l'adresse du client sur une facture).")
    buyer = Party(name=member.company_name or user.name, address=tuple(filter(None, member.address.splitlines())),
                  siren=member.siren if member.company_name else None,
                  vat_number=member.vat_number if member.company_name else None, is_company=bool(member.company_name))
    return seller, buyer, not org.vat_liable


def _span(lines: tuple[DocumentLine, ...], fallback: dt.date) -> tuple[dt.date, dt.date | None]:
    starts = [line.period_start for line in lines if line.period_start]
    ends = [line.period_end for line in lines if line.period_end]
    return (min(starts), max(ends)) if starts and ends else (fallback, None)


async def invoice_document(session: AsyncSession, invoice: Invoice) -> InvoiceDocument:
    if invoice.status == InvoiceStatus.DRAFT or not invoice.number:
        raise InvoiceDocumentError("Cette facture n'est pas encore émise.")
    member = await must_get(session, Member, invoice.member_id)
    seller, buyer, exempt = await _parties(session, member, invoice.site_id)
    lines = _lines(json.loads(invoice.lines or "[]"))
    issued = local_day(invoice.issued_at)
    start, end = _span(lines, issued)
    total_ht, total_vat = sum(line.amount_ht for line in lines), sum(line.vat_amount for line in lines)
    return InvoiceDocument(
        kind=DocumentKind.INVOICE, number=invoice.number, issue_date=issued, service_date=start, service_end=end,
        due_date=issued, currency=invoice.currency, seller=seller, buyer=buyer, lines=lines, total_ht=total_ht,
        total_vat=total_vat, total_ttc=total_ht + total_vat, payment_terms=PAYMENT_TERMS, late_penalty=LATE_PENALTY,
        amount_paid=min(invoice.amount_paid, total_ht + total_vat), vat_exempt=exempt)


async def credit_note_document(session: AsyncSession, note: CreditNote) -> InvoiceDocument:
    if not note.number or note.issued_at is None:
        raise InvoiceDocumentError("Cet avoir n'est pas encore émis.")
    invoice = await must_get(session, Invoice, note.invoice_id)
    member = await must_get(session, Member, note.member_id)
    seller, buyer, exempt = await _parties(session, member, note.site_id)
    lines = _lines(json.loads(note.lines or "[]"))
    issued = local_day(note.issued_at)
    total_ht, total_vat = sum(line.amount_ht for line in lines), sum(line.vat_amount for line in lines)
    return InvoiceDocument(
        kind=DocumentKind.CREDIT_NOTE, number=note.number, issue_date=issued, service_date=local_day(invoice.issued_at),
        due_date=issued, currency=note.currency, seller=seller, buyer=buyer, lines=lines, total_ht=total_ht,
        total_vat=total_vat, total_ttc=total_ht + total_vat, payment_terms="Avoir remboursé sur le moyen de paiement d'origine.",
        late_penalty=LATE_PENALTY, vat_exempt=exempt, credited_invoice_number=invoice.number or invoice.stripe_invoice_id)


async def printed(doc: InvoiceDocument) -> bytes:
    """The PDF: Factur-X for a company (the same PDF, with its XML), plain for a person."""
    if doc.buyer.is_company:
        from funding.invoicing.facturx import facturx_pdf

        return await run_in_threadpool(facturx_pdf, doc)
    from funding.invoicing.pdf import document_pdf

    return await run_in_threadpool(document_pdf, doc)


def filename(doc: InvoiceDocument) -> str:
    kind = "avoir" if doc.kind == DocumentKind.CREDIT_NOTE else "facture"
    return f"{kind}-{doc.number}.pdf".replace("/", "-")
