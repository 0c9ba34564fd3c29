"""A tax receipt printed to PDF, the way invoices are (funding.invoicing.pdf, WeasyPrint):
``templates/campaigns/receipt_pdf.html`` around the receipt's legal content, which the web
page shows too (``campaigns/_receipt_body.html``). French whatever the reader's locale.

Emailed to the donor (an attachment of kind ``tax-receipt``, built when the email is sent)
and downloaded from the donor's signed links.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import jinja2
from babel.dates import format_date
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.concurrency import run_in_threadpool

from funding.campaigns import receipts
from funding.campaigns.receipts import ReceiptView
from funding.invoicing.pdf import environment, html_pdf
from funding.mail.service import AttachmentError, register_attachment
from funding.settings import Settings

TEMPLATE = "campaigns/receipt_pdf.html"
ATTACHMENT_KIND = "tax-receipt"


def _french_date(value: dt.date, fmt: str = "long") -> str:
    return format_date(value, format=fmt, locale="fr_FR")


@cache
def _environment() -> jinja2.Environment:
    env = environment().overlay()
    env.filters["date"] = _french_date
    return env


def receipt_html(view: ReceiptView) -> str:
    return _environment().get_template(TEMPLATE).render(r=view)


def receipt_pdf(view: ReceiptView) -> bytes:
    return html_pdf(receipt_html(view))


async def render(view: ReceiptView) -> bytes:
    """The PDF, laid out off the event loop (WeasyPrint takes tens of milliseconds)."""
    return await run_in_threadpool(receipt_pdf, view)


def attachment(receipt_id: int) -> dict:
    """The reference an email keeps: the PDF is built from the receipt when the email is sent."""
    return {"kind": ATTACHMENT_KIND, "receipt_id": receipt_id}


async def load_attachment(sessions: async_sessionmaker, settings: Settings, ref: dict) -> tuple[str, str, bytes]:
    async with sessions() as session:
        view = await receipts.view(session, int(ref.get("receipt_id") or 0))
    if view is None:
        raise AttachmentError(f"tax receipt {ref.get('receipt_id')!r} does not exist")
    return view.filename, "application/pdf", await render(view)


register_attachment(ATTACHMENT_KIND, load_attachment)
