"""Invoices, their lines, invoice items, invoice payments, finalisation, payment attempts and dunning."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_sandbox import money, payments, taxes, webhooks
from stripe_sandbox.errors import StripeError, invalid

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

DAY = 86_400
FINALIZE_AFTER = 3_600  # drafts of automatic invoices are finalised an hour after creation
RETRY_DAYS = (3, 5, 7)  # Smart Retries, simplified: after the first failure
NUMBER_PREFIX = "SBX"


def product_name(sb: Sandbox, price: dict[str, Any]) -> str:
    product = sb.store.get("product", price["product"])
    return product["name"] if product else price["product"]


def price_line(
    sb: Sandbox,
    price: dict[str, Any],
    quantity: int,
    period: tuple[int, int],
    *,
    subscription: dict[str, Any] | None,
    item_id: str | None,
    amount: int | None = None,
    proration: bool = False,
    description: str | None = None,
    tax_rates: list[str] | None = None,
) -> dict[str, Any]:
    unit = price["unit_amount"]
    if amount is None:
        amount = unit * quantity
    if description is None:
        every = f" / {price['recurring']['interval']}" if price.get("recurring") else ""
        description = f"{quantity} × {product_name(sb, price)} (at {money.format_amount(unit, price['currency'])}{every})"
    sub_id = subscription["id"] if subscription else None
    return {
        "id": sb.store.sub_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": dict(subscription["metadata"]) if subscription else {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": sub_id,
                "subscription_item": item_id,
            },
            "type": "subscription_item_details",
        },
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": {"price_details": {"price": price["id"], "product": price["product"]}, "type": "price_details", "unit_amount_decimal": str(unit)},
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": sub_id,
        "subtotal": amount,
        "taxes": [],
        "_tax_rates": list(tax_rates or []),
    }


def item_line(sb: Sandbox, item: dict[str, Any]) -> dict[str, Any]:
    sub_id = (item["parent"] or {}).get("subscription_details", {}).get("subscription") if item["parent"] else None
    return {
        "id": sb.store.sub_id("il"),
        "object": "line_item",
        "amount": item["amount"],
        "currency": item["currency"],
        "description": item["description"],
        "discount_amounts": [],
        "discountable": item["discountable"],
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": dict(item["metadata"]),
        "parent": {
            "invoice_item_details": {
                "invoice_item": item["id"],
                "proration": item["proration"],
                "proration_details": {"credited_items": None},
                "subscription": sub_id,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        },
        "period": dict(item["period"]),
        "pretax_credit_amounts": [],
        "pricing": item["pricing"],
        "quantity": item["quantity"],
        "quantity_decimal": str(item["quantity"]),
        "subscription": sub_id,
        "subtotal": item["amount"],
        "taxes": [],
        "_tax_rates": list(item["tax_rates"]),
    }


def new_invoice_item(
    sb: Sandbox,
    *,
    customer: str,
    amount: int,
    currency: str,
    description: str | None,
    metadata: dict[str, str],
    subscription: str | None = None,
    period: tuple[int, int] | None = None,
    proration: bool = False,
    price: dict[str, Any] | None = None,
    quantity: int = 1,
    invoice: str | None = None,
    tax_rates: list[str] | None = None,
) -> dict[str, Any]:
    now = sb.now()
    unit = price["unit_amount"] if price else (amount // quantity if quantity else amount)
    item = {
        "id": sb.store.new_id("invoiceitem"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "date": now,
        "description": description,
        "discountable": not proration,
        "discounts": [],
        "invoice": invoice,
        "livemode": False,
        "metadata": metadata,
        "net_amount": amount,
        "parent": {"subscription_details": {"subscription": subscription}, "type": "subscription_details"} if subscription else None,
        "period": {"end": period[1], "start": period[0]} if period else {"end": now, "start": now},
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]} if price else None,
            "type": "price_details",
            "unit_amount_decimal": str(unit),
        },
        "proration": proration,
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": list(tax_rates or []),
        "test_clock": None,
    }
    sb.store.put("invoiceitem", item)
    sb.emit("invoiceitem.created", item)
    return item


def item_subscription(item: dict[str, Any]) -> str | None:
    return item["parent"]["subscription_details"]["subscription"] if item["parent"] else None


def pending_items(sb: Sandbox, customer: str, subscription: str | None) -> list[dict[str, Any]]:
    """Pending invoice items that the next invoice for this customer (and subscription) picks up."""
    items = []
    for item in sb.store.all("invoiceitem"):
        if item["invoice"] or item["customer"] != customer or item.get("_deleted"):
            continue
        owner = item_subscription(item)
        if owner is None or owner == subscription:
            items.append(item)
    return sorted(items, key=lambda i: i["_seq"])


def new_invoice(
    sb: Sandbox,
    *,
    customer: str,
    currency: str,
    billing_reason: str,
    subscription: dict[str, Any] | None = None,
    period: tuple[int, int] | None = None,
    collection_method: str = "charge_automatically",
    auto_advance: bool = True,
    metadata: dict[str, str] | None = None,
    description: str | None = None,
    days_until_due: int | None = None,
    preview: bool = False,
) -> dict[str, Any]:
    now = sb.now()
    cus = sb.store.ref("customer", customer)
    ident = "upcoming_" + sb.store.new_id("invoice") if preview else sb.store.new_id("invoice")
    start, end = period or (now, now)
    invoice = {
        "id": ident,
        "object": "invoice",
        "account_country": "FR",
        "account_name": "Entre-Lab (bac à sable)",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": auto_advance,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None, "provider": None, "status": None},
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": collection_method,
        "created": now,
        "currency": currency,
        "custom_fields": [dict(f) for f in cus["invoice_settings"].get("custom_fields") or []] or None,
        "customer": customer,
        "customer_account": None,
        "customer_address": None,
        "customer_email": cus["email"],
        "customer_name": cus["name"],
        "customer_phone": cus["phone"],
        "customer_shipping": None,
        "customer_tax_exempt": cus.get("tax_exempt") or "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": list(subscription["default_tax_rates"]) if subscription else [],
        "description": description,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {"object": "list", "data": [], "has_more": False, "url": f"/v1/invoices/{ident}/lines"},
        "livemode": False,
        "metadata": metadata or {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": (
            {
                "quote_details": None,
                "subscription_details": {"metadata": dict(subscription["metadata"]), "subscription": subscription["id"]},
                "type": "subscription_details",
            }
            if subscription
            else None
        ),
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": end,
        "period_start": start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None, "voided_at": None},
        "status_details": None,
        "threshold_reason": None,
        "amount_paid_off_stripe": 0,
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None if preview else now,
        "_days_until_due": days_until_due,
        "_payment_intent": None,
    }
    if auto_advance and not preview:
        invoice["automatically_finalizes_at"] = now + FINALIZE_AFTER
    if not preview:
        sb.store.put("invoice", invoice)
    return invoice


def add_lines(sb: Sandbox, invoice: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    for line in lines:
        line["invoice"] = invoice["id"]
        invoice["lines"]["data"].append(line)
    recompute(sb, invoice)


def pull_pending_items(sb: Sandbox, invoice: dict[str, Any], subscription: str | None) -> None:
    lines = []
    for item in pending_items(sb, invoice["customer"], subscription):
        if item["currency"] != invoice["currency"]:
            continue
        item["invoice"] = invoice["id"]
        lines.append(item_line(sb, item))
    add_lines(sb, invoice, lines)


def line_tax_rates(invoice: dict[str, Any], line: dict[str, Any]) -> list[str]:
    """A line's own tax rates win; a line without any takes the invoice's default_tax_rates."""
    return line.get("_tax_rates") or invoice["default_tax_rates"]


def compute_taxes(sb: Sandbox, invoice: dict[str, Any]) -> None:
    """Each line's ``taxes`` and the invoice's subtotals, taxes and total (before any customer balance)."""
    lines = invoice["lines"]["data"]
    for line in lines:
        line["taxes"] = taxes.line_taxes(sb, line["amount"], line_tax_rates(invoice, line))
    subtotal = sum(line["amount"] for line in lines)
    inclusive = sum(taxes.inclusive_tax(line["taxes"]) for line in lines)
    exclusive = sum(taxes.exclusive_tax(line["taxes"]) for line in lines)
    invoice.update(
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal - inclusive,
        total=subtotal + exclusive,
        total_excluding_tax=subtotal - inclusive,
        total_taxes=taxes.total_taxes(lines),
    )


def recompute(sb: Sandbox, invoice: dict[str, Any], starting_balance: int = 0) -> None:
    compute_taxes(sb, invoice)
    due = invoice["total"] + starting_balance
    invoice["starting_balance"] = starting_balance
    invoice["amount_due"] = max(due, 0)
    invoice["amount_remaining"] = max(due, 0) - invoice["amount_paid"]


def finalize(sb: Sandbox, invoice: dict[str, Any]) -> None:
    """draft -> open (or paid when nothing is due). Payment is attempted separately."""
    if invoice["status"] != "draft":
        raise invalid("This invoice is already finalized, you can't re-finalize a non-draft invoice.", code="invoice_not_editable")
    now = sb.now()
    customer = sb.store.ref("customer", invoice["customer"])
    compute_taxes(sb, invoice)
    due = invoice["total"] + customer["balance"]
    if due > 0:  # the PaymentIntent must be possible before anything changes: a failure leaves a draft
        try:
            payments.check_amount(due, invoice["currency"], for_invoice=True)
        except StripeError as exc:
            _finalization_failed(sb, invoice, exc)
            raise
    recompute(sb, invoice, starting_balance=customer["balance"])
    ending = min(invoice["total"] + customer["balance"], 0)
    if customer["balance"] or invoice["total"] < 0:
        invoice["ending_balance"] = ending
        customer["balance"] = ending
    else:
        invoice["ending_balance"] = 0
    invoice.update(
        status="open",
        number=f"{NUMBER_PREFIX}-{sb.store.next_invoice_number():06d}",
        effective_at=now,
        automatically_finalizes_at=None,
        last_finalization_error=None,
        hosted_invoice_url=sb.url(f"/invoices/{invoice['id']}"),
        invoice_pdf=sb.url(f"/invoices/{invoice['id']}/pdf"),
    )
    invoice["status_transitions"]["finalized_at"] = now
    if invoice["_days_until_due"] is not None:
        invoice["due_date"] = now + invoice["_days_until_due"] * DAY
    for line in invoice["lines"]["data"]:
        if line["parent"]["invoice_item_details"]:
            item = sb.store.get("invoiceitem", line["parent"]["invoice_item_details"]["invoice_item"])
            if item:
                item["invoice"] = invoice["id"]
    if invoice["amount_due"] == 0:
        sb.emit("invoice.finalized", invoice)
        _mark_paid(sb, invoice)
        return
    subscription = _subscription(sb, invoice)
    pm = None
    if subscription:
        pm = subscription["default_payment_method"]
    pm = pm or customer["invoice_settings"]["default_payment_method"]
    reason = {"subscription_create": "Subscription creation", "subscription_cycle": "Subscription update", "subscription_update": "Subscription update"}
    pi = payments.new_payment_intent(
        sb,
        amount=invoice["amount_due"],
        currency=invoice["currency"],
        customer=invoice["customer"],
        payment_method=pm,
        description=reason.get(invoice["billing_reason"], f"Invoice {invoice['number']}"),
        invoice=invoice["id"],
    )
    invoice["_payment_intent"] = pi["id"]
    record = {
        "id": sb.store.new_id("invoice_payment"),
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": invoice["amount_due"],
        "created": now,
        "currency": invoice["currency"],
        "invoice": invoice["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": pi["id"], "type": "payment_intent"},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }
    sb.store.put("invoice_payment", record)
    sb.emit("invoice.finalized", invoice)


def paid_by(sb: Sandbox, invoice: dict[str, Any], pi: dict[str, Any]) -> None:
    """A draft already paid by ``pi`` (Checkout's post-payment invoice): finalized and paid at once."""
    now = sb.now()
    compute_taxes(sb, invoice)
    recompute(sb, invoice)
    invoice.update(status="open", number=f"{NUMBER_PREFIX}-{sb.store.next_invoice_number():06d}", effective_at=now,
                   automatically_finalizes_at=None, hosted_invoice_url=sb.url(f"/invoices/{invoice['id']}"),
                   invoice_pdf=sb.url(f"/invoices/{invoice['id']}/pdf"), attempt_count=1, attempted=True)
    invoice["status_transitions"]["finalized_at"] = now
    invoice["_payment_intent"] = pi["id"]
    sb.store.put("invoice_payment", {
        "id": sb.store.new_id("invoice_payment"), "object": "invoice_payment", "amount_paid": None,
        "amount_requested": invoice["amount_due"], "created": now, "currency": invoice["currency"], "invoice": invoice["id"],
        "is_default": True, "livemode": False, "payment": {"payment_intent": pi["id"], "type": "payment_intent"},
        "status": "open", "status_transitions": {"canceled_at": None, "paid_at": None}})
    sb.emit("invoice.finalized", invoice)
    _mark_paid(sb, invoice, pi)


def _finalization_failed(sb: Sandbox, invoice: dict[str, Any], error: StripeError) -> None:
    """Stripe's answer to a draft that cannot be finalized: it stays a draft, says why, and is not retried."""
    invoice["last_finalization_error"] = error.body()["error"]
    invoice["automatically_finalizes_at"] = None
    sb.emit("invoice.finalization_failed", invoice)


def _subscription(sb: Sandbox, invoice: dict[str, Any]) -> dict[str, Any] | None:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return sb.store.get("subscription", details["subscription"]) if details.get("subscription") else None


def attempt(
    sb: Sandbox,
    invoice: dict[str, Any],
    *,
    off_session: bool = True,
    authenticated: bool = False,
    automatic: bool = True,
    payment_method: str | None = None,
    return_url: str | None = None,
) -> bool:
    """Try to collect an open invoice; True when paid. Card errors are recorded, not raised."""
    if invoice["status"] != "open":
        raise invalid(f"Invoice {invoice['id']} is {invoice['status']}; only open invoices can be paid.", code="invoice_unexpected_state")
    pi = sb.store.ref("payment_intent", invoice["_payment_intent"])
    subscription = _subscription(sb, invoice)
    customer = sb.store.ref("customer", invoice["customer"])
    payment_method = (
        payment_method
        or (subscription["default_payment_method"] if subscription else None)
        or customer["invoice_settings"]["default_payment_method"]
        or pi["payment_method"]
    )
    if (payment_method and payment_method != pi["payment_method"]) or pi["status"] == "requires_payment_method":
        pi["payment_method"] = payment_method
        if pi["status"] in ("requires_payment_method", "requires_action") and payment_method:
            pi["status"] = "requires_confirmation"
    pi["_automatic"] = automatic
    if not pi["payment_method"]:
        _after_failure(sb, invoice, pi, action_required=False)
        return False
    if pi["status"] == "requires_action" and not authenticated and off_session:
        pi["status"] = "requires_confirmation"
    payments.confirm_payment_intent(sb, pi, off_session=off_session, authenticated=authenticated, return_url=return_url or invoice["hosted_invoice_url"])
    return invoice["status"] == "paid"


def after_invoice_attempt(sb: Sandbox, pi: dict[str, Any], *, paid: bool) -> None:
    """Called by payments when an invoice's PaymentIntent succeeds, fails or needs authentication."""
    invoice = sb.store.get("invoice", pi["_invoice"])
    if invoice is None or invoice["status"] != "open":
        return
    if paid:
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        _mark_paid(sb, invoice, pi)
    else:
        _after_failure(sb, invoice, pi, action_required=pi["status"] == "requires_action")


def _mark_paid(sb: Sandbox, invoice: dict[str, Any], pi: dict[str, Any] | None = None) -> None:
    now = sb.now()
    invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0, next_payment_attempt=None)
    invoice["status_transitions"]["paid_at"] = now
    if pi is not None:
        for record in sb.store.all("invoice_payment"):
            if record["invoice"] == invoice["id"] and record["payment"]["payment_intent"] == pi["id"]:
                record.update(status="paid", amount_paid=pi["amount_received"])
                record["status_transitions"]["paid_at"] = now
                sb.emit("invoice_payment.paid", record)
    sb.emit("invoice.paid", invoice)
    sb.emit("invoice.payment_succeeded", invoice)
    subscription = _subscription(sb, invoice)
    if subscription:
        sb.subscription_invoice_paid(subscription, invoice)


def _after_failure(sb: Sandbox, invoice: dict[str, Any], pi: dict[str, Any], *, action_required: bool) -> None:
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    subscription = _subscription(sb, invoice)
    automatic = pi.get("_automatic", True)
    retries = invoice["collection_method"] == "charge_automatically" and invoice["billing_reason"] != "subscription_create"
    if automatic and retries:
        dunning = invoice.setdefault("_dunning", {"first_failure": sb.now(), "failures": 0})
        dunning["failures"] += 1
        if dunning["failures"] <= len(RETRY_DAYS):
            invoice["next_payment_attempt"] = dunning["first_failure"] + RETRY_DAYS[dunning["failures"] - 1] * DAY
        else:
            invoice["next_payment_attempt"] = None
    if action_required:
        sb.emit("invoice.payment_action_required", invoice)
    sb.emit("invoice.payment_failed", invoice)
    if subscription:
        exhausted = automatic and retries and invoice["next_payment_attempt"] is None
        sb.subscription_invoice_failed(subscription, invoice, exhausted=exhausted)


def void(sb: Sandbox, invoice: dict[str, Any]) -> None:
    if invoice["status"] != "open":
        raise invalid(f"You can only void open invoices; this one is {invoice['status']}.", code="invoice_not_editable")
    now = sb.now()
    invoice.update(status="void", next_payment_attempt=None, amount_remaining=0)
    invoice["status_transitions"]["voided_at"] = now
    pi = sb.store.get("payment_intent", invoice["_payment_intent"]) if invoice["_payment_intent"] else None
    if pi and pi["status"] in ("requires_payment_method", "requires_confirmation", "requires_action"):
        payments.cancel_payment_intent(sb, pi, "void_invoice")
        for record in sb.store.all("invoice_payment"):
            if record["invoice"] == invoice["id"] and record["status"] == "open":
                record["status"] = "canceled"
                record["status_transitions"]["canceled_at"] = now
    sb.emit("invoice.voided", invoice)


def mark_paid_out_of_band(sb: Sandbox, invoice: dict[str, Any]) -> None:
    if invoice["status"] != "open":
        raise invalid(f"Invoice {invoice['id']} is {invoice['status']}; only open invoices can be paid.", code="invoice_unexpected_state")
    pi = sb.store.get("payment_intent", invoice["_payment_intent"]) if invoice["_payment_intent"] else None
    if pi and pi["status"] != "succeeded":
        payments.cancel_payment_intent(sb, pi, "void_invoice")
    _mark_paid(sb, invoice)


def apply_credit(sb: Sandbox, invoice: dict[str, Any], pre_payment: int, before: dict[str, Any]) -> None:
    """A credit note took ``pre_payment`` off an open invoice (negative: a voided note gives it back).

    The amounts due and the PaymentIntent still to be collected follow; ``invoice.updated`` says what
    changed since ``before``; an invoice left with nothing to pay is paid, as Stripe marks it.
    """
    invoice["amount_due"] -= pre_payment
    invoice["amount_remaining"] -= pre_payment
    pi = sb.store.get("payment_intent", invoice["_payment_intent"]) if invoice["_payment_intent"] else None
    if pi and pi["status"] in ("requires_payment_method", "requires_confirmation", "requires_action") and invoice["amount_remaining"] > 0:
        pi["amount"] = invoice["amount_remaining"]
        for record in sb.store.all("invoice_payment"):
            if record["invoice"] == invoice["id"] and record["status"] == "open":
                record["amount_requested"] = invoice["amount_remaining"]
    changes = webhooks.diff(before, sb.view(invoice))
    if changes:
        sb.emit("invoice.updated", invoice, changes)
    if invoice["status"] == "open" and invoice["amount_remaining"] == 0:
        mark_paid_out_of_band(sb, invoice)


def next_due(sb: Sandbox) -> int | None:
    due = []
    for invoice in sb.store.scoped("invoice"):
        if invoice["status"] == "draft" and invoice["auto_advance"] and invoice["automatically_finalizes_at"]:
            due.append(invoice["automatically_finalizes_at"])
        elif invoice["status"] == "open" and invoice["auto_advance"] and invoice["next_payment_attempt"]:
            due.append(invoice["next_payment_attempt"])
    return min(due) if due else None


def run_due(sb: Sandbox) -> None:
    now = sb.now()
    for invoice in sorted(sb.store.scoped("invoice"), key=lambda i: i["_seq"]):
        if invoice["status"] == "draft" and invoice["auto_advance"] and (invoice["automatically_finalizes_at"] or now + 1) <= now:
            try:
                finalize(sb, invoice)
            except StripeError:  # recorded on the invoice (invoice.finalization_failed); the clock goes on
                continue
            if invoice["status"] == "open" and invoice["collection_method"] == "charge_automatically":
                attempt(sb, invoice)
        elif invoice["status"] == "open" and invoice["auto_advance"] and (invoice["next_payment_attempt"] or now + 1) <= now:
            invoice["next_payment_attempt"] = None
            attempt(sb, invoice)
