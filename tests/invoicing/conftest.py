"""Documents to print: an invoice to an individual, to a company, from a seller under art. 293 B,
with mixed rates, and a credit note (the ``case`` fixture gives each in turn). ``document``
builds one from changes to the individual's invoice, its totals computed from its lines unless
given; ``line`` builds a line with its VAT; ``pdf_text`` reads a PDF's text."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from pypdf import PdfReader

from funding.coworking.plans import vat_of
from funding.invoicing.document import DocumentKind, DocumentLine, InvoiceDocument, Party

SELLER = Party("Entre-Lab", ("12 rue de la Coutellerie", "63300 Thiers"), siren="912345675",
               vat_number="FR65912345675", is_company=True)
EXEMPT_SELLER = Party("Les Ateliers de Celles", ("Le Bourg", "63250 Celles-sur-Durolle"), siren="732829320", is_company=True)
PERSON = Party("Camille Martin", ("4 rue Durolle", "63300 Thiers"))
COMPANY = Party("Coutellerie du Pirou SARL", ("3 place du Pirou", "Bâtiment B", "63300 Thiers"), siren="552081317",
                vat_number="FR03552081317", is_company=True)


def make_line(description: str, quantity: int, unit: int, rate: int, **extra: Any) -> DocumentLine:
    ht = quantity * unit
    return DocumentLine(description, quantity, unit, rate, ht, vat_of(ht, rate), **extra)


DESK = make_line("Bureau fermé, décembre 2026", 1, 25000, 200, period_start=dt.date(2026, 12, 1), period_end=dt.date(2026, 12, 31))


def build(**changes: Any) -> InvoiceDocument:
    fields: dict[str, Any] = {
        "kind": DocumentKind.INVOICE, "number": "F-2026-0042", "issue_date": dt.date(2026, 12, 1),
        "service_date": dt.date(2026, 12, 1), "due_date": dt.date(2026, 12, 31), "currency": "EUR",
        "seller": SELLER, "buyer": PERSON, "lines": (DESK,),
        "payment_terms": "Paiement par carte à l'émission, sans escompte",
        "late_penalty": "trois fois le taux d'intérêt légal",
    } | changes
    lines = fields["lines"]
    fields.setdefault("total_ht", sum(item.amount_ht for item in lines))
    fields.setdefault("total_vat", sum(item.vat_amount for item in lines))
    fields.setdefault("total_ttc", fields["total_ht"] + fields["total_vat"])
    return InvoiceDocument(**fields)


CASES: dict[str, Callable[[], InvoiceDocument]] = {
    "individual": lambda: build(),
    "company": lambda: build(buyer=COMPANY, service_end=dt.date(2026, 12, 31)),
    "vat_exempt": lambda: build(seller=EXEMPT_SELLER, vat_exempt=True, buyer=COMPANY,
                                lines=(make_line("Atelier coutellerie, 3 heures", 3, 4000, 0),)),
    "mixed_rates": lambda: build(lines=(
        make_line("Poste nomade, 10 jours", 10, 12345, 200),
        make_line("Plateau repas", 4, 1250, 100),
        make_line("Jus de pomme en bouteille", 6, 290, 55),
        make_line("Revue de l'association", 1, 800, 21),
    ), amount_paid=100),
    "credit_note": lambda: build(kind=DocumentKind.CREDIT_NOTE, number="F-2026-0057", buyer=COMPANY,
                                 credited_invoice_number="F-2026-0042", issue_date=dt.date(2026, 12, 15),
                                 due_date=dt.date(2026, 12, 15), lines=(make_line("Bureau fermé : remise d'un mois", 1, 25000, 200),)),
}


def flat(text: str) -> str:
    """Whitespace of any kind (line breaks, French narrow no-break spaces) as one space."""
    return re.sub(r"\s+", " ", text).strip()


def pdf_text(pdf: bytes) -> str:
    return flat(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


@pytest.fixture
def cases() -> dict[str, Callable[[], InvoiceDocument]]:
    return CASES


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, InvoiceDocument]:
    return request.param, CASES[request.param]()


@pytest.fixture
def document() -> Callable[..., InvoiceDocument]:
    return build


@pytest.fixture
def line() -> Callable[..., DocumentLine]:
    return make_line


@pytest.fixture(name="pdf_text")
def pdf_text_fixture() -> Callable[[bytes], str]:
    return pdf_text


@pytest.fixture(name="flat")
def flat_fixture() -> Callable[[str], str]:
    return flat
