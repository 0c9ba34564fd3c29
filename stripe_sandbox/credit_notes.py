"""Credit Notes (``cn_…``): what they credit, how they change their invoice, and voiding them.

A credit note is computed whole from the request (``build``) before anything is stored, so a
refused request changes nothing; ``issue`` then applies it. Its lines are taxed exactly like
invoice lines (stripe_sandbox.taxes): a line that credits an invoice line carries that line's
tax rates, a custom line the ``tax_rates`` it names.

The credit first lowers the invoice's ``amount_remaining`` (and ``amount_due``), never below
zero (``pre_payment_amount``); the rest (``post_payment_amount``) must be exactly covered by
refunds, customer balance credit (``credit_amount``) and ``out_of_band_amount``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from stripe_sandbox import invoices, payments, taxes
from stripe_sandbox.encoding import Params, merge_metadata
from stripe_sandbox.errors import StripeError, invalid, missing_param, not_found
from stripe_sandbox.money import format_amount

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")
LINE_TYPES = ("invoice_line_item", "custom_line_item")
CREATE_PARAMS = {
    "invoice", "lines", "amount", "reason", "memo", "metadata", "refunds", "refund", "refund_amount", "credit_amount",
    "out_of_band_amount", "effective_at", "email_type", "shipping_cost",
}
LINE_PARAMS = {"type", "invoice_line_item", "quantity", "amount", "unit_amount", "unit_amount_decimal", "description", "tax_rates", "metadata"}
CREDITABLE = ("open", "paid")


@dataclass
class Draft:
    """A credit note computed from a request, not stored yet."""

    invoice: dict[str, Any]
    note: dict[str, Any]
    lines: list[dict[str, Any]]
    new_refund: int | None = None  # refund_amount: a refund to create on the invoice's charge
    linked: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # (refund, amount applied to this note)


def find(sb: Sandbox, ident: str) -> dict[str, Any]:
    note = sb.store.get("credit_note", ident)
    if note is None:
        raise not_found("credit_note", ident)
    return note


def notes_of(sb: Sandbox, invoice_id: str) -> list[dict[str, Any]]:
    return sorted((n for n in sb.store.all("credit_note") if n["invoice"] == invoice_id), key=lambda n: n["_seq"])


def _creditable_invoice(sb: Sandbox, p: Params) -> dict[str, Any]:
    ident = p.str("invoice", required=True)
    invoice = sb.store.get("invoice", ident)
    if invoice is None or invoice.get("_deleted"):
        raise not_found("invoice", ident, "invoice")
    if invoice["status"] not in CREDITABLE:
        raise invalid(
            f"Invoice {ident} is {invoice['status']}: credit notes can only be issued for open or paid invoices.", "invoice", "invoice_not_editable",
        )
    return invoice


def _credited_by_line(sb: Sandbox, invoice_id: str) -> dict[str, tuple[int, int]]:
    """(amount, quantity) already credited per invoice line by the notes that are not void."""
    credited: dict[str, tuple[int, int]] = {}
    for note in notes_of(sb, invoice_id):
        if note["status"] == "void":
            continue
        for line in note["lines"]["data"]:
            if line["type"] == "invoice_line_item":
                amount, quantity = credited.get(line["invoice_line_item"], (0, 0))
                credited[line["invoice_line_item"]] = (amount + line["amount"], quantity + (line["_quantity_credited"] or 0))
    return credited


def _invoice_line(invoice: dict[str, Any], entry: Params) -> dict[str, Any]:
    ident = entry.str("invoice_line_item", required=True)
    for line in invoice["lines"]["data"]:
        if line["id"] == ident:
            return line
    raise invalid(f"Invoice line item {ident} is not a line of invoice {invoice['id']}.", entry._name("invoice_line_item"))


def _line(sb: Sandbox, invoice: dict[str, Any], entry: Params, credited: dict[str, tuple[int, int]]) -> dict[str, Any]:
    entry.check_known(LINE_PARAMS)
    kind = entry.str("type", required=True, choices=LINE_TYPES)
    metadata = entry.metadata()
    if kind == "invoice_line_item":
        for only_custom in ("unit_amount", "unit_amount_decimal", "description", "tax_rates"):
            if only_custom in entry:
                raise invalid(f"{entry._name(only_custom)} is only valid when the type is custom_line_item.", entry._name(only_custom))
        source = _invoice_line(invoice, entry)
        done_amount, done_quantity = credited.get(source["id"], (0, 0))
        amount, quantity = entry.int("amount", minimum=1), entry.int("quantity", minimum=1)
        if amount is not None and quantity is not None:
            raise invalid("Pass either amount or quantity for an invoice line item, not both.", entry._name("quantity"))
        if quantity is not None:
            if done_quantity + quantity > source["quantity"]:
                raise invalid(
                    f"You cannot credit more than the quantity of invoice line item {source['id']} "
                    f"({source['quantity']}, {done_quantity} already credited).", entry._name("quantity"),
                )
            unit = Decimal(source["pricing"]["unit_amount_decimal"]) if source.get("pricing") else Decimal(source["amount"]) / source["quantity"]
            amount = int((unit * quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        elif amount is None:
            amount = source["amount"] - done_amount  # neither: what is left of the line
        if amount <= 0 or done_amount + amount > source["amount"]:
            raise invalid(
                f"The amount to credit on invoice line item {source['id']} ({format_amount(amount, invoice['currency'])}) exceeds what is left "
                f"to credit on it ({format_amount(source['amount'] - done_amount, invoice['currency'])}).", entry._name("amount"),
            )
        credited[source["id"]] = (done_amount + amount, done_quantity + (quantity or 0))  # a second line on the same item sees this one
        rate_ids = invoices.line_tax_rates(invoice, source)
        return {
            "object": "credit_note_line_item", "type": kind, "amount": amount, "description": source["description"],
            "invoice_line_item": source["id"], "quantity": quantity or 1, "unit_amount": None, "unit_amount_decimal": None,
            "metadata": metadata, "_tax_rates": list(rate_ids), "_quantity_credited": quantity,
        }
    if "invoice_line_item" in entry or "amount" in entry:
        name = entry._name("invoice_line_item" if "invoice_line_item" in entry else "amount")
        raise invalid(f"{name} is only valid when the type is invoice_line_item.", name)
    quantity = entry.int("quantity", default=1, minimum=1)
    if "unit_amount" in entry and "unit_amount_decimal" in entry:
        raise invalid("Only one of unit_amount and unit_amount_decimal can be set.", entry._name("unit_amount_decimal"))
    unit = entry.int("unit_amount", minimum=1)
    if unit is None:
        decimal = entry.str("unit_amount_decimal")
        if decimal is None:
            raise missing_param(entry._name("unit_amount"))
        if not decimal.isdigit() or int(decimal) < 1:
            raise invalid("unit_amount_decimal: the sandbox takes whole minor units (e.g. 1250).", entry._name("unit_amount_decimal"))
        unit = int(decimal)
    rate_ids = taxes.parse_ids(sb, entry, "tax_rates")
    return {
        "object": "credit_note_line_item", "type": kind, "amount": unit * quantity, "description": entry.str("description"),
        "quantity": quantity, "unit_amount": unit, "unit_amount_decimal": str(unit), "metadata": metadata,
        "_tax_rates": list(rate_ids), "_quantity_credited": None,
    }


def _refunds(sb: Sandbox, invoice: dict[str, Any], p: Params) -> tuple[list[tuple[dict[str, Any], int]], int | None]:
    """The existing refunds linked (each with the amount it covers) and the amount of a refund to create."""
    pi = sb.store.get("payment_intent", invoice["_payment_intent"]) if invoice.get("_payment_intent") else None
    entries = [(e, e._name("refund")) for e in p.dicts("refunds")]
    if "refund" in p:  # the API before `refunds`: one refund, wholly applied
        entries.append((Params({"refund": p.raw("refund")}), "refund"))
    used: dict[str, int] = {}
    for note in sb.store.all("credit_note"):
        if note["status"] != "void":
            for link in note["refunds"]:
                used[link["refund"]] = used.get(link["refund"], 0) + link["amount_refunded"]
    linked = []
    for entry, name in entries:
        entry.check_known({"refund", "amount_refunded", "type", "payment_record_refund"})
        if entry.str("type", default="refund", choices=("refund", "payment_record_refund")) != "refund":
            raise invalid("The sandbox links refunds of type `refund` only (no PaymentRecords).", entry._name("type"))
        ident = entry.str("refund", required=True)
        refund = sb.store.get("refund", ident)
        if refund is None:
            raise not_found("refund", ident, name)
        if pi is None or refund["payment_intent"] != pi["id"]:
            raise invalid(f"Refund {ident} is not a refund of invoice {invoice['id']}'s payment.", name)
        left = refund["amount"] - used.get(ident, 0)
        amount = entry.int("amount_refunded", minimum=1, default=refund["amount"])  # Stripe: "defaults to the entire refund amount"
        if amount > left:
            raise invalid(
                f"Refund {ident} has {format_amount(max(left, 0), refund['currency'])} left to link to a credit note.",
                entry._name("amount_refunded") if "amount_refunded" in entry else name,
            )
        used[ident] = used.get(ident, 0) + amount
        linked.append((refund, amount))
    new_refund = p.int("refund_amount", minimum=1)
    if new_refund is not None:
        charge = sb.store.get("charge", pi["latest_charge"]) if pi and pi["latest_charge"] else None
        if charge is None or charge["status"] != "succeeded":
            raise invalid(f"Invoice {invoice['id']} has no successful charge to refund.", "refund_amount", "charge_not_refundable")
        # a disputed charge or too large an amount: payments.create_refund refuses it in issue(), before anything changes
    return linked, new_refund


def build(sb: Sandbox, p: Params, *, preview: bool = False) -> Draft:
    """The credit note a create (or preview) request describes; raises a StripeError, changing nothing, when it is refused."""
    p.check_known(CREATE_PARAMS)
    invoice = _creditable_invoice(sb, p)
    if "shipping_cost" in p:
        raise invalid("The sandbox has no shipping rates: credit notes take lines or amount.", "shipping_cost")
    credited = _credited_by_line(sb, invoice["id"])
    lines = [_line(sb, invoice, entry, credited) for entry in p.dicts("lines")]
    amount = p.int("amount", minimum=1)
    if not lines and amount is None:
        raise invalid("One of amount, lines, or shipping_cost must be provided.", "lines", "parameter_missing")
    for line in lines:
        line["taxes"] = taxes.line_taxes(sb, line["amount"], line["_tax_rates"])
        line["tax_rates"] = taxes.view_rates(sb, line["_tax_rates"])  # as issued: a credit note is a document
        line.update(discount_amount=0, discount_amounts=[], livemode=False, pretax_credit_amounts=[])
    if lines:
        subtotal = sum(line["amount"] for line in lines)
        inclusive = sum(taxes.inclusive_tax(line["taxes"]) for line in lines)
        total = subtotal + sum(taxes.exclusive_tax(line["taxes"]) for line in lines)
        if amount is not None and amount != total:
            raise invalid(f"amount ({amount}) must equal the total of the lines ({total}).", "amount")
    else:  # amount alone: one sum, no lines and no tax
        subtotal, inclusive, total = amount or 0, 0, amount or 0
    already = sum(n["total"] for n in notes_of(sb, invoice["id"]) if n["status"] != "void")
    if already + total > invoice["total"]:
        raise invalid(
            f"The credit note total ({format_amount(total, invoice['currency'])}) exceeds what is left to credit on invoice {invoice['id']} "
            f"({format_amount(invoice['total'] - already, invoice['currency'])}).", "lines" if lines else "amount",
        )
    pre = min(total, invoice["amount_remaining"]) if invoice["status"] == "open" else 0
    post = total - pre
    linked, new_refund = _refunds(sb, invoice, p)
    credit_amount = p.int("credit_amount", minimum=0) or 0
    out_of_band = p.int("out_of_band_amount", minimum=0)
    covered = sum(a for _, a in linked) + (new_refund or 0) + credit_amount + (out_of_band or 0)
    if covered != post:
        raise invalid(
            f"The sum of refunds, credit_amount and out_of_band_amount ({format_amount(covered, invoice['currency'])}) must equal the credit "
            f"note's post_payment_amount ({format_amount(post, invoice['currency'])}): on a paid invoice that is the whole credit note.",
        )
    reason = p.str("reason", choices=REASONS)
    p.str("email_type", choices=("credit_note", "none"))  # checked; the sandbox sends no email
    memo, effective_at = p.str("memo"), p.int("effective_at", minimum=0)
    metadata = p.metadata() or {}
    now = sb.now()
    ident = "cn_preview_" + secrets.token_hex(8) if preview else sb.store.new_id("credit_note")
    note = {
        "id": ident,
        "object": "credit_note",
        "amount": total,
        "amount_shipping": 0,
        "created": now,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "customer_account": None,
        "customer_balance_transaction": None,
        "discount_amount": 0,
        "discount_amounts": [],
        "effective_at": effective_at if effective_at is not None else now,
        "invoice": invoice["id"],
        "lines": {"object": "list", "data": lines, "has_more": False, "url": f"/v1/credit_notes/{ident}/lines"},
        "livemode": False,
        "memo": memo,
        "metadata": metadata,
        "number": f"{invoice['number']}-CN-{len(notes_of(sb, invoice['id'])) + 1:02d}",
        "out_of_band_amount": out_of_band,
        "pdf": sb.url(f"/credit_notes/{ident}/pdf"),
        "post_payment_amount": post,
        "pre_payment_amount": pre,
        "pretax_credit_amounts": [],
        "reason": reason,
        "refunds": [],
        "shipping_cost": None,
        "status": "issued",
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal - inclusive,
        "total": total,
        "total_excluding_tax": subtotal - inclusive,
        "total_taxes": taxes.total_taxes(lines),
        "type": "pre_payment" if post == 0 else ("post_payment" if pre == 0 else "mixed"),
        "voided_at": None,
        "_credit_amount": credit_amount,
    }
    if preview:
        for line in lines:
            line["id"] = "cnli_preview_" + secrets.token_hex(7)
        note["lines"]["url"] = "/v1/credit_notes/preview/lines"
        note["refunds"] = [_link(refund["id"], amount) for refund, amount in linked]
    return Draft(invoice, note, lines, new_refund, linked)


def _link(refund_id: str, amount: int) -> dict[str, Any]:
    return {"amount_refunded": amount, "payment_record_refund": None, "refund": refund_id, "type": "refund"}


def issue(sb: Sandbox, draft: Draft) -> dict[str, Any]:
    """Store a built credit note and apply it: refunds, customer balance, the invoice's amounts, events."""
    note, invoice = draft.note, draft.invoice
    links = [_link(refund["id"], amount) for refund, amount in draft.linked]
    if draft.new_refund is not None:  # first: create_refund checks everything before it changes anything
        pi = sb.store.ref("payment_intent", invoice["_payment_intent"])
        charge = sb.store.ref("charge", pi["latest_charge"])
        refund = payments.create_refund(sb, charge, draft.new_refund, reason=None, metadata={})
        links.append(_link(refund["id"], draft.new_refund))
    for line in draft.lines:
        line["id"] = sb.store.sub_id("cnli")
    note["refunds"] = links
    if note["_credit_amount"]:
        customer = sb.store.ref("customer", invoice["customer"])
        customer["balance"] -= note["_credit_amount"]
    before = sb.view(invoice)
    sb.store.put("credit_note", note)
    sb.emit("credit_note.created", note)
    invoice["pre_payment_credit_notes_amount"] += note["pre_payment_amount"]
    invoice["post_payment_credit_notes_amount"] += note["post_payment_amount"]
    invoices.apply_credit(sb, invoice, note["pre_payment_amount"], before)
    return note


def update(sb: Sandbox, note: dict[str, Any], p: Params) -> dict[str, Any]:
    p.check_known({"memo", "metadata"})
    memo = p.str("memo") if "memo" in p else note["memo"]
    metadata = merge_metadata(note["metadata"], p.metadata())
    before = sb.view(note)
    note.update(memo=memo, metadata=metadata)
    return before


def void(sb: Sandbox, note: dict[str, Any]) -> None:
    """issued -> void: the invoice gets back what the note took off it, the customer's balance its credit."""
    if note["status"] != "issued":
        raise invalid(f"Credit note {note['id']} is already void.", code="credit_note_unexpected_state")
    invoice = sb.store.ref("invoice", note["invoice"])
    if invoice["status"] != "open":
        raise StripeError(
            400, f"You can only void a credit note while its invoice is open; invoice {invoice['id']} is {invoice['status']}.",
            code="invoice_not_editable",
        )
    before = sb.view(invoice)
    note.update(status="void", voided_at=sb.now())
    if note["_credit_amount"]:
        sb.store.ref("customer", invoice["customer"])["balance"] += note["_credit_amount"]
    sb.emit("credit_note.voided", note)
    invoice["pre_payment_credit_notes_amount"] -= note["pre_payment_amount"]
    invoice["post_payment_credit_notes_amount"] -= note["post_payment_amount"]
    invoices.apply_credit(sb, invoice, -note["pre_payment_amount"], before)
