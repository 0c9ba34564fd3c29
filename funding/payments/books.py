"""Stripe's balance transactions into the ledger: one entry per balance transaction.

Every charge, refund, dispute movement, payout and fee moves the Stripe balance through
a balance transaction (``amount``, ``fee``, ``net``). Its entry is keyed by the balance
transaction id (``source_key = "stripe:txn_…"``), so it is posted once whichever path
brings it. Fees come from the balance transaction, never from a formula:

    [ST] D 5115 net · D 627 fee · C <revenue of the purpose> amount      (charge)
    [ST] D <revenue> · C 5115 (refund, dispute withdrawal, with its fee on 627)
    [ST] D 512 · C 5115                                                  (payout)
    [ST] mirror of the payout's / the refund's entry, ``reverses_id`` set  (payout_failure, refund_failure)

A payout the bank sends back (``payout_failure``) or a refund the card network refuses
(``refund_failure``) puts the money back in the Stripe balance: its entry is the reversing
entry of the payout's (or refund's) own, never an UPDATE, and never a suspense line on 467.
If that entry is not in the books yet (events in any order), it is posted first.

Fetching (network) and posting (database) are separate, so no Stripe call ever runs
while the ledger's head is locked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.clock import local_date, paris_today
from funding.db import Sessions
from funding.errors import FundingError
from funding.ledger.models import Entry, FundingSource, LedgerHead
from funding.ledger.service import EntryDraft, Line, Posted, post, reversal_by_key
from funding.orgs.models import Organisation, Site
from funding.payments import purposes
from funding.stripe_gateway import StripeGateway, stripe_id

REVENUE_TYPES = {"charge", "payment", "refund", "payment_refund", "refund_failure", "payment_failure_refund",
                 "adjustment"}
FEE_TYPES = {"stripe_fee", "application_fee", "tax_fee", "stripe_fx_fee", "payment_network_reserve_hold",
             "payment_network_reserve_release"}


class BooksError(FundingError):
    pass


@dataclass
class TxnContext:
    txn: dict[str, Any]
    charge: dict[str, Any] | None
    metadata: dict[str, Any]
    original: TxnContext | None = None  # a failure's: the payout's or refund's own balance transaction


FAILURES = {"payout_failure": "Virement Stripe rejeté par la banque", "payout_cancel": "Virement Stripe annulé",
            "refund_failure": "Remboursement refusé par la banque de la carte"}


def failure_of(txn: dict[str, Any]) -> str | None:
    """``payout_failure`` / ``payout_cancel`` / ``refund_failure`` (or None): money back from a
    payout that failed or was canceled, or from a refund that failed."""
    kind = txn.get("type")
    if kind in FAILURES:
        return str(kind)
    if txn.get("reporting_category") == "payout_reversal":
        return "payout_failure"
    return None


def source_key(txn_id: str) -> str:
    return f"stripe:{txn_id}"


async def fetch_context(gw: StripeGateway, txn_id: str) -> TxnContext:
    """Everything needed to post a balance transaction, read from Stripe now."""
    txn = await gw.retrieve("balance_transactions", txn_id, expand=["source"])
    source = txn.get("source")
    charge = None
    if isinstance(source, dict):
        kind = source.get("object")
        if kind == "charge":
            charge = source
        elif kind in ("refund", "dispute") and source.get("charge"):
            charge_ref = source["charge"]
            charge = charge_ref if isinstance(charge_ref, dict) else await gw.retrieve("charges", charge_ref)
    original = None
    if failure_of(txn) and isinstance(source, dict) and source.get("balance_transaction"):
        first = source["balance_transaction"]
        original = await fetch_context(gw, first["id"] if isinstance(first, dict) else first)
    metadata = dict((charge or {}).get("metadata") or {})
    if charge and "purpose" not in metadata and charge.get("payment_intent"):
        pi = charge["payment_intent"]
        pi = pi if isinstance(pi, dict) else await gw.retrieve("payment_intents", pi)
        metadata = {**(pi.get("metadata") or {}), **metadata}
        if "purpose" not in metadata:
            metadata = {**(await invoice_metadata(gw, pi["id"])), **metadata}
    return TxnContext(txn, charge, metadata, original)


async def paid_invoice_contexts(gw: StripeGateway, invoice: dict[str, Any]) -> list[TxnContext]:
    """The balance transactions of a paid invoice's paid payments (``invoice`` fetched with ``expand=["payments"]``)."""
    contexts: list[TxnContext] = []
    if invoice.get("status") != "paid":
        return contexts
    for payment in (invoice.get("payments") or {}).get("data") or []:
        pi_id = stripe_id((payment.get("payment") or {}).get("payment_intent"))
        if payment.get("status") != "paid" or not pi_id:
            continue
        pi = await gw.retrieve("payment_intents", pi_id, expand=["latest_charge"])
        charge = pi.get("latest_charge")
        txn = stripe_id(charge.get("balance_transaction")) if isinstance(charge, dict) else None
        if txn:
            contexts.append(await fetch_context(gw, txn))
    return contexts


async def with_all_lines(gw: StripeGateway, invoice: dict[str, Any], *, resource: str = "invoices.line_items") -> dict[str, Any]:
    """``invoice`` (or a credit note: ``resource="credit_notes.line_items"``) with every line:
    Stripe embeds the first page of the lines only (``lines.has_more``); the rest are fetched,
    so a sale is booked from all of them."""
    lines = invoice.get("lines") or {}
    if not lines.get("has_more") or not lines.get("data"):
        return invoice
    data = list(lines.get("data") or [])
    while True:
        page = await gw.call(resource, "list", invoice["id"], params={"limit": 100, "starting_after": data[-1]["id"]})
        data += page["data"]
        if not page.get("has_more") or not page["data"]:
            break
    return {**invoice, "lines": {**lines, "data": data, "has_more": False}}


async def invoice_metadata(gw: StripeGateway, payment_intent_id: str) -> dict[str, Any]:
    """Invoices' payments carry no metadata: they reach their invoice through
    ``invoice_payment`` objects, and the invoice its subscription's metadata through
    ``parent.subscription_details``. Such a charge has the purpose ``invoice`` (a member's
    invoice), or its subscription's own where that purpose bills its invoices (a recurring gift); the
    invoice itself, as fetched now, rides along (``invoice_object``) for its purpose."""
    found = await gw.list("invoice_payments", {"payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                                               "limit": 1})
    if not found.get("data"):
        return {}
    invoice_ref = found["data"][0]["invoice"]
    invoice = await with_all_lines(gw, invoice_ref if isinstance(invoice_ref, dict) else await gw.retrieve("invoices", invoice_ref))
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    customer = invoice.get("customer")
    own = (details.get("metadata") or {}).get("purpose")
    return {**(details.get("metadata") or {}), **(invoice.get("metadata") or {}),
            "purpose": own if purposes.bills_invoices(own) else "invoice", "invoice": invoice["id"],
            "customer": customer.get("id") if isinstance(customer, dict) else customer or "",
            "invoice_object": invoice}


async def stripe_org(session: AsyncSession) -> tuple[int, int]:
    """(organisation, site) that keep the Stripe account's own movements (fees, payouts)."""
    orgs = (await session.scalars(select(Organisation).order_by(Organisation.uses_stripe.desc(), Organisation.id))).all()
    flagged = [o for o in orgs if o.uses_stripe]
    if not flagged and len(orgs) != 1:
        raise BooksError("no organisation keeps the Stripe account: set one with uses_stripe")
    org = (flagged or orgs)[0]
    site = await session.scalar(select(Site).where(Site.org_id == org.id).order_by(Site.is_central.desc(), Site.id))
    if site is None:
        raise BooksError(f"organisation {org.siren} has no site")
    return org.id, site.id


async def already_posted(session: AsyncSession, txn_id: str) -> Posted | None:
    row = (await session.execute(select(Entry.id, Entry.number, Entry.hash).where(Entry.source_key == source_key(txn_id)))).first()
    return Posted(row.id, row.number, row.hash, source_key(txn_id), created=False) if row else None


async def draft_for(session: AsyncSession, ctx: TxnContext, *, before: list[EntryDraft] | None = None) -> EntryDraft | None:
    """The entry of a balance transaction; the entries its purpose needs in the books first (an
    invoice's sale before its settlement) are added to ``before``, to be posted with it."""
    txn = ctx.txn
    amount, fee, net = int(txn["amount"]), int(txn["fee"]), int(txn["net"])
    currency = txn["currency"].upper()
    if amount == 0 and fee == 0:
        return None
    if amount - fee != net:
        raise BooksError(f"balance transaction {txn['id']}: amount − fee ≠ net")
    source = txn.get("source")
    source_id = source.get("id") if isinstance(source, dict) else source
    kind = txn["type"]
    if failure_of(txn) and ctx.original is not None:
        # None when a person already reversed the original by hand: booking the money back again
        # would count it twice; the failure stays without entry, and reconciliation shows it.
        return await failure_draft(session, ctx)
    stripe_lines = [Line("5115", net, currency)] if net else []
    if fee:
        stripe_lines.append(Line("627", fee, currency, label="Frais Stripe"))

    if kind == "payout" or txn.get("reporting_category") == "payout":
        org_id, site_id = await stripe_org(session)
        lines = [Line("512", -amount, currency), Line("5115", amount, currency)]
        return _draft(org_id, site_id, txn, FundingSource.INTERNAL, "Virement Stripe vers la banque", source_id, lines)
    if failure_of(txn) in ("payout_failure", "payout_cancel"):  # no payout transaction to reverse: the money comes back
        org_id, site_id = await stripe_org(session)
        lines = [Line("5115", amount, currency), Line("512", -amount, currency)]
        return _draft(org_id, site_id, txn, FundingSource.INTERNAL, _failure_label(txn), source_id, lines)
    if kind in REVENUE_TYPES and ctx.charge is not None:
        allocation = None
        resolve = purposes.resolver(ctx.metadata.get("purpose"))
        if resolve is not None:
            allocation = await resolve(session, ctx.metadata, amount, currency)
        if allocation is None:
            org_id, site_id = await stripe_org(session)
            allocation = purposes.Allocation(org_id, site_id, FundingSource.INTERNAL, "Paiement Stripe non affecté",
                                             [Line("467", -amount, currency)])
        if sum(line.amount for line in allocation.lines) != -amount:
            raise BooksError(f"purpose {ctx.metadata.get('purpose')}: revenue lines do not sum to the amount")
        label = allocation.label
        category = txn.get("reporting_category") or kind
        if category in ("refund", "partial_capture_reversal") or kind in ("refund", "payment_refund"):
            label = f"Remboursement : {label}"
        elif category == "dispute":
            label = f"Litige (fonds retenus) : {label}"
        elif category == "dispute_reversal":
            label = f"Litige gagné (fonds restitués) : {label}"
        elif kind == "refund_failure":
            label = f"Remboursement refusé (fonds restitués) : {label}"
        if before is not None:
            before += allocation.before
        return _draft(allocation.org_id, allocation.site_id, txn, allocation.funding_source, label, source_id,
                      stripe_lines + allocation.lines)
    # Stripe's own fees and anything else: against the Stripe balance, fees on 627, the rest in suspense.
    org_id, site_id = await stripe_org(session)
    counterpart = "627" if kind in FEE_TYPES else "467"
    lines = [Line("5115", net, currency), Line(counterpart, -net, currency)]
    return _draft(org_id, site_id, txn, FundingSource.INTERNAL, txn.get("description") or f"Stripe : {kind}", source_id, lines)


def _failure_label(txn: dict[str, Any]) -> str:
    source = txn.get("source")
    source = source if isinstance(source, dict) else {}
    why = source.get("failure_code") or source.get("failure_reason")
    label = FAILURES[failure_of(txn) or "payout_failure"]
    return f"{label} ({why})" if why else label


async def failure_draft(session: AsyncSession, ctx: TxnContext) -> EntryDraft | None:
    """The reversing entry of a failed payout's or refund's own entry, keyed by the failure's
    balance transaction. The original is posted first if the books do not have it yet; None
    if it is already reversed (by hand), or if it books nothing."""
    original_ctx = ctx.original
    if original_ctx is None:
        return None
    key = source_key(original_ctx.txn["id"])
    original = await session.scalar(select(Entry).where(Entry.source_key == key))
    if original is None:
        first = await draft_for(session, original_ctx)
        if first is None:
            return None
        await post(session, await dated_for_open_period(session, [first]))
        original = await session.scalar(select(Entry).where(Entry.source_key == key))
        if original is None:  # pragma: no cover - post either books it or raises
            return None
    return await reversal_by_key(session, original.org_id, key, key=source_key(ctx.txn["id"]), label=_failure_label(ctx.txn),
                                 entry_date=local_date(ctx.txn["created"]))


def _draft(org_id: int, site_id: int, txn: dict[str, Any], funding_source: FundingSource, label: str, source_id: str | None,
           lines: list[Line]) -> EntryDraft:
    day = local_date(txn["created"])
    return EntryDraft(
        org_id=org_id, site_id=site_id, journal="ST", entry_date=day, label=label[:200],
        piece_ref=(source_id or txn["id"])[:100], piece_date=day, funding_source=funding_source,
        lines=[line for line in lines if line.amount], source_key=source_key(txn["id"]),
    )


async def drafts_for(session: AsyncSession, contexts: list[TxnContext]) -> list[EntryDraft]:
    """Drafts as Stripe dated them; whoever posts them dates them for the open period."""
    out: list[EntryDraft] = []
    for ctx in contexts:
        draft = await draft_for(session, ctx, before=out)  # what its purpose needs numbered first, then it
        if draft is not None:
            out.append(draft)
    return out


async def dated_for_open_period(session: AsyncSession, drafts: list[EntryDraft]) -> list[EntryDraft]:
    """A movement Stripe dated in a closed period (or in the sandbox's future) is booked on
    the first open day, never into a closed month; its piece keeps Stripe's date."""
    today = paris_today()
    heads = {}
    for draft in drafts:
        if draft.org_id not in heads:
            heads[draft.org_id] = await session.scalar(select(LedgerHead.closed_through).where(LedgerHead.org_id == draft.org_id))
        closed = heads[draft.org_id]
        if closed is not None and draft.entry_date <= closed:
            draft.entry_date = closed + dt.timedelta(days=1)
        draft.entry_date = min(draft.entry_date, today)
        draft.piece_date = min(draft.piece_date or draft.entry_date, draft.entry_date)
    return drafts


async def post_contexts(session: AsyncSession, contexts: list[TxnContext]) -> list[Posted]:
    """Post the entries of several balance transactions in one go (one head lock)."""
    drafts = await dated_for_open_period(session, await drafts_for(session, contexts))
    if not drafts:
        return []
    return (await post(session, drafts)).entries


async def ingest(sessions: Sessions, gw: StripeGateway, txn_ids: list[str]) -> list[Posted]:
    """Fetch and post balance transactions that are not in the books yet (any path may call it)."""
    from funding.db import transaction

    async with sessions() as session:
        todo = [t for t in dict.fromkeys(txn_ids) if t and not await already_posted(session, t)]
    if not todo:
        return []
    contexts = [await fetch_context(gw, t) for t in todo]
    async with transaction(sessions) as session:
        return await post_contexts(session, contexts)
