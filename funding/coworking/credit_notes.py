"""Credit notes (avoirs): a refunded or lost invoice is cancelled the way French law wants it.

1. A refund, or a dispute lost, on a member's invoice calls for a credit note: a row here,
   once per cause (its Stripe id), written in the same transaction that books the money
   (``note_intents``, from the charge, refund and dispute handlers).
2. The worker issues it in Stripe (``issue_pending``; key: the row): the credited amount spread
   over the invoice's lines in proportion (each line keeps its Tax Rate, so Stripe states the
   VAT credited per rate), linked to the refund, or out of band for a dispute (the money is
   already gone). Stripe numbers it in the invoice's series (``…-CN-01``).
3. Stripe's note, however it reaches us (the worker's answer, ``credit_note.*`` events, a note
   made in the Dashboard), is mirrored and booked once (``apply_credit_note``): [VT] D 706…
   · D 4457x · C 411 at its date, its number as the piece; a voided note is reversed. The
   member gets it by email, like an invoice.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.auth.models import User
from funding.clock import local_day
from funding.coworking.lifecycle import apply_invoice, fetched_version, from_unix, member_account
from funding.coworking.models import CreditNote, CreditNoteCause, CreditNoteStatus, Invoice, Member
from funding.db import Sessions, insert_ignore, must_get, row_id, transaction, utcnow
from funding.ledger.chart import vat_account
from funding.ledger.models import FundingSource
from funding.ledger.service import EntryDraft, Line, post, reversal_by_key
from funding.mail.compose import render
from funding.mail.service import enqueue
from funding.money import proportional_shares
from funding.orgs.models import Site
from funding.payments.books import TxnContext, dated_for_open_period, with_all_lines
from funding.payments.calls import create_once
from funding.payments.tax_rates import rates_by_stripe_id, stated_tax
from funding.settings import Settings
from funding.stripe_gateway import StripeGateway, StripeRefused, StripeUnknown, stripe_id

log = logging.getLogger("funding.coworking")
BAR_REVENUE = "707"  # lines another domain booked (the bar's tabs) were sold on 707



# --- 1. called for ----------------------------------------------------------------------


async def note_intents(session: AsyncSession, contexts: list[TxnContext]) -> list[int]:
    """Refunds and lost disputes among these balance transactions that touch a member's
    invoice: each calls for one credit note (recorded once, whatever the replays)."""
    made = []
    for ctx in contexts:
        source = ctx.txn.get("source")
        if ctx.metadata.get("purpose") != "invoice" or not isinstance(source, dict):
            continue
        if source.get("object") == "refund" and source.get("status") in ("succeeded", "pending"):
            cause = CreditNoteCause.REFUND
        elif source.get("object") == "dispute" and source.get("status") == "lost":
            cause = CreditNoteCause.DISPUTE
        else:
            continue
        row_id = await _intent(session, ctx.metadata, cause, str(source["id"]), int(source.get("amount") or 0),
                               str(source.get("currency") or "eur"))
        if row_id is not None:
            made.append(row_id)
    return made


async def _intent(session: AsyncSession, metadata: dict, cause: CreditNoteCause, cause_id: str, amount: int,
                  currency: str) -> int | None:
    fetched = metadata.get("invoice_object")
    if isinstance(fetched, dict):
        invoice = await apply_invoice(session, fetched, await fetched_version(session, Invoice, fetched["id"]))
    else:
        invoice = await session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == metadata.get("invoice", "")))
    if invoice is None or amount <= 0:
        return None
    return await insert_ignore(session, CreditNote, {
        "invoice_id": invoice.id, "member_id": invoice.member_id, "site_id": invoice.site_id, "cause": cause,
        "cause_id": cause_id, "amount": min(amount, invoice.total), "currency": currency.upper(),
        "status": CreditNoteStatus.PENDING, "lines": "[]", "created_at": utcnow(),
    }, ["cause_id"])


# --- 2. issued --------------------------------------------------------------------------


def note_params(row: CreditNote, invoice: dict) -> dict:
    """What we ask Stripe: the amount over the invoice's positive lines, in proportion."""
    lines = [line for line in (invoice.get("lines") or {}).get("data") or [] if int(line.get("amount") or 0) > 0]
    shares = proportional_shares(row.amount, {n: int(line["amount"]) for n, line in enumerate(lines)})
    params: dict[str, Any] = {
        "invoice": invoice["id"],
        "lines": [{"type": "invoice_line_item", "invoice_line_item": lines[n]["id"], "amount": share}
                  for n, share in sorted(shares.items()) if share],
        "memo": ("Avoir pour le remboursement de la facture " if row.cause == CreditNoteCause.REFUND
                 else "Avoir : paiement de la facture contesté et perdu, ") + str(invoice.get("number") or ""),
        "metadata": {"purpose": "coworking", "credit_note_id": str(row.id), "member_id": str(row.member_id)},
    }
    if row.cause == CreditNoteCause.REFUND:
        params["refunds"] = [{"refund": row.cause_id, "amount_refunded": row.amount}]
    else:
        params["reason"] = "fraudulent"
        params["out_of_band_amount"] = row.amount
    return params


async def issue_pending(sessions: Sessions, settings: Settings | None, gw: StripeGateway, *, limit: int = 50) -> int:
    """Worker: issue the credit notes called for (each once: the key is the row)."""
    async with sessions() as session:
        rows = (await session.scalars(select(CreditNote).where(CreditNote.status == CreditNoteStatus.PENDING)
                                      .order_by(CreditNote.id).limit(limit))).all()
        invoices = {row.id: await must_get(session, Invoice, row.invoice_id) for row in rows}
    done = 0
    for row in rows:
        try:
            invoice = await with_all_lines(gw, await gw.retrieve("invoices", invoices[row.id].stripe_invoice_id))
            note = await create_once(sessions, gw, ref=f"credit-note:{row.id}", resource="credit_notes",
                                     params=note_params(row, invoice))
        except StripeRefused as exc:
            async with transaction(sessions) as session:
                await session.execute(update(CreditNote).where(CreditNote.id == row.id, CreditNote.status == CreditNoteStatus.PENDING)
                                      .values(status=CreditNoteStatus.REFUSED, last_error=str(exc)[:500]))
            log.warning("credit note %s refused by Stripe: %s", row.id, exc)
            continue
        except StripeUnknown:
            continue  # the sweep settles the request; the next round sends the same key
        async with transaction(sessions) as session:
            await apply_credit_note(session, await with_all_note_lines(gw, note))
        done += 1
    return done


async def with_all_note_lines(gw: StripeGateway, note: dict) -> dict:
    return await with_all_lines(gw, note, resource="credit_notes.line_items")


# --- 3. mirrored and booked ---------------------------------------------------------------


async def apply_credit_note(session: AsyncSession, note: dict) -> CreditNote | None:
    """Stripe's credit note into its row (inserted if someone else issued it), booked once,
    reversed once if void, sent to the member once."""
    invoice = await session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == stripe_id(note.get("invoice"))))
    if invoice is None:
        return None  # not a member's invoice (or not seen yet: the invoice's own events will bring it, then this again)
    ours = row_id((note.get("metadata") or {}).get("credit_note_id"))
    row = await session.get(CreditNote, ours) if ours is not None else None
    if row is None:
        row = await session.scalar(select(CreditNote).where(CreditNote.stripe_credit_note_id == note["id"]))
    if row is None:
        await insert_ignore(session, CreditNote, {
            "invoice_id": invoice.id, "member_id": invoice.member_id, "site_id": invoice.site_id, "cause": CreditNoteCause.STRIPE,
            "cause_id": note["id"], "amount": max(int(note.get("total") or 0), 1), "currency": invoice.currency,
            "status": CreditNoteStatus.PENDING, "lines": "[]", "created_at": utcnow()}, ["cause_id"])
        row = await session.scalar(select(CreditNote).where(CreditNote.cause_id == note["id"]))
    if row is None or row.invoice_id != invoice.id:
        return None
    void = note.get("status") == "void"
    booked = await booked_note_lines(session, invoice, note)
    await session.execute(update(CreditNote).where(CreditNote.id == row.id).values(
        stripe_credit_note_id=note["id"], number=note.get("number"), lines=json.dumps(booked, sort_keys=True),
        status=CreditNoteStatus.VOID if void else CreditNoteStatus.ISSUED, pdf_url=note.get("pdf"),
        issued_at=from_unix(note.get("effective_at") or note.get("created")) or utcnow(),
        voided_at=from_unix(note.get("voided_at")) if void else None, last_error=None))
    await session.refresh(row)
    await _book(session, row, invoice, note)
    if not void:
        await _send(session, row, invoice)
    return row


async def booked_note_lines(session: AsyncSession, invoice: Invoice, note: dict) -> list[dict]:
    """Each credited line as booked: base and VAT (Stripe's figures) on the invoice line's accounts."""
    known_rates = await rates_by_stripe_id(session)
    sold = {line.get("id"): line for line in json.loads(invoice.lines or "[]")}
    out = []
    for line in (note.get("lines") or {}).get("data") or []:
        amount = int(line.get("amount") or 0)
        origin = sold.get(line.get("invoice_line_item")) or {}
        base, vat, stated = stated_tax(line, known_rates) or (amount, 0, None)
        rate = int(origin.get("vat_rate") or 0) if stated is None else stated
        account = origin.get("account", "706") if origin else "706"
        out.append({"description": (line.get("description") or origin.get("description") or "")[:200], "amount": amount,
                    "base": base, "vat": vat, "vat_rate": rate, "account": account or BAR_REVENUE,
                    "invoice_line_item": line.get("invoice_line_item")})
    return out


def note_key(note_id: str) -> str:
    return f"stripe:{note_id}"


async def _book(session: AsyncSession, row: CreditNote, invoice: Invoice, note: dict) -> None:
    site = await must_get(session, Site, row.site_id)
    member = await must_get(session, Member, row.member_id)
    number = row.number or note["id"]
    debits: dict[str, int] = defaultdict(int)
    for line in json.loads(row.lines):
        debits[line["account"]] += line["base"]
        if line["vat"]:
            debits[vat_account(line["vat_rate"])] += line["vat"]
    total = sum(debits.values())
    if total <= 0:
        return
    who, code = await member_account(session, member, site.org_id)
    day = local_day(row.issued_at or utcnow())
    draft = EntryDraft(
        org_id=site.org_id, site_id=site.id, journal="VT", entry_date=day, piece_date=day,
        label=f"Avoir {number} sur facture {invoice.number or invoice.stripe_invoice_id} — {who}"[:200], piece_ref=number[:100],
        funding_source=FundingSource.SELF, source_key=note_key(note["id"]),
        lines=[*(Line(account, amount, row.currency) for account, amount in sorted(debits.items()) if amount),
               Line("411", -total, row.currency, aux=code, label=who[:200])])
    await post(session, await dated_for_open_period(session, [draft]))
    if row.status == CreditNoteStatus.VOID:
        reversal = await reversal_by_key(session, site.org_id, note_key(note["id"]), key=f"{note_key(note['id'])}:void",
                                         label=f"Avoir {number} annulé", entry_date=local_day(row.voided_at or utcnow()))
        if reversal is not None:
            await post(session, await dated_for_open_period(session, [reversal]))


async def _send(session: AsyncSession, row: CreditNote, invoice: Invoice) -> None:
    member = await must_get(session, Member, row.member_id)
    user = await must_get(session, User, member.user_id)
    number = row.number or row.stripe_credit_note_id
    await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id,
                  dedupe_key=f"coworking:{row.stripe_credit_note_id}:credit-note",
                  **render("coworking/credit_note", user.locale, name=user.name, number=number, invoice=invoice.number or "",
                           amount=row.amount, currency=row.currency, refund=row.cause == CreditNoteCause.REFUND,
                           link=row.pdf_url or ""))


async def credit_notes_of(session: AsyncSession, member_id: int) -> list[CreditNote]:
    return list((await session.scalars(select(CreditNote).where(
        CreditNote.member_id == member_id, CreditNote.status.in_((CreditNoteStatus.ISSUED, CreditNoteStatus.VOID)))
        .order_by(CreditNote.issued_at.desc(), CreditNote.id.desc()))).all())
