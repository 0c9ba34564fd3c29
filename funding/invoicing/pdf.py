"""An :class:`InvoiceDocument` printed to PDF: ``templates/invoicing/document.html`` through WeasyPrint.

The Jinja environment, the stylesheet and WeasyPrint's font configuration are built once per
process and shared by every document. Most of a document's time is WeasyPrint's cascade and
layout (bench/invoices_bench.py): the stylesheet keeps to floats and fixed-layout tables,
which it lays out much faster than flex or grid.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import jinja2
from babel.dates import format_date
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from funding.invoicing.document import RECOVERY_INDEMNITY_MENTION, VAT_EXEMPT_MENTION, InvoiceDocument, rate_label
from funding.money import format_money
from funding.settings import PROJECT_ROOT

TEMPLATE_DIR = PROJECT_ROOT / "templates"
DOCUMENT_TEMPLATE = "invoicing/document.html"
STYLESHEET = TEMPLATE_DIR / "invoicing" / "document.css"


def _french_date(value: dt.date) -> str:
    return format_date(value, format="long", locale="fr_FR")


def _french_money(amount: int, currency: str) -> str:
    # A legal document is French whatever the reader's locale: not i18n.money, which follows it.
    return format_money(amount, currency, "fr")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=_french_money, date=_french_date, rate=rate_label)
    env.globals.update(vat_exempt_mention=VAT_EXEMPT_MENTION, recovery_indemnity_mention=RECOVERY_INDEMNITY_MENTION)
    return env


@cache
def fonts() -> FontConfiguration:
    return FontConfiguration()


@cache
def stylesheet() -> CSS:
    return CSS(filename=str(STYLESHEET), font_config=fonts())


def document_html(doc: InvoiceDocument, template: str = DOCUMENT_TEMPLATE) -> str:
    """The document as HTML; ``template`` may extend ``invoicing/document.html`` and replace its blocks."""
    return environment().get_template(template).render(doc=doc)


def html_pdf(html: str, *, stylesheets: list[CSS] | None = None, pdf_variant: str | None = None) -> bytes:
    """Any document of ours (HTML from ``environment()``'s templates) printed by WeasyPrint."""
    pdf: bytes = HTML(string=html, base_url=str(TEMPLATE_DIR / "invoicing")).write_pdf(
        stylesheets=stylesheets or [], font_config=fonts(), pdf_variant=pdf_variant)
    return pdf


def document_pdf(doc: InvoiceDocument, *, pdf_variant: str | None = None, template: str = DOCUMENT_TEMPLATE) -> bytes:
    """The PDF of ``doc``; ``pdf_variant="pdf/a-3b"`` for the base of a Factur-X."""
    return html_pdf(document_html(doc, template), stylesheets=[stylesheet()], pdf_variant=pdf_variant)
