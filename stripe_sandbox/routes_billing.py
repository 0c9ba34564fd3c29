"""Routes for Checkout Sessions, subscriptions, invoices, invoice items, invoice payments and the billing portal."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from stripe_sandbox import billing, catalog, checkout, invoices, payments, taxes
from stripe_sandbox.api import get_or_404, list_response, paginate, route, search_response
from stripe_sandbox.encoding import Params, merge_metadata
from stripe_sandbox.errors import StripeError, invalid, missing_param
from stripe_sandbox.routes_core import updated
from stripe_sandbox.state import public

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

# checkout ---------------------------------------------------------------------


@route("POST", "/v1/checkout/sessions")
def create_checkout_session(sb: Sandbox, p: Params) -> dict[str, Any]:
    return sb.view(checkout.create_session(sb, p))


@route("GET", "/v1/checkout/sessions/{ident}")
def get_checkout_session(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(get_or_404(sb, "checkout.session", ident, "checkout.session"))


@route("POST", "/v1/checkout/sessions/{ident}")
def update_checkout_session(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"metadata"})
    session = get_or_404(sb, "checkout.session", ident, "checkout.session")
    session["metadata"] = merge_metadata(session["metadata"], p.metadata())
    return sb.view(session)


@route("POST", "/v1/checkout/sessions/{ident}/expire")
def expire_checkout_session(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known(set())
    session = get_or_404(sb, "checkout.session", ident, "checkout.session")
    checkout.expire(sb, session)
    return sb.view(session)


@route("GET", "/v1/checkout/sessions/{ident}/line_items")
def checkout_line_items(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"limit", "starting_after", "ending_before"})
    session = get_or_404(sb, "checkout.session", ident, "checkout.session")
    page, more = paginate(session["_line_items"], p)
    return {"object": "list", "data": public(page), "has_more": more, "url": f"/v1/checkout/sessions/{ident}/line_items"}


@route("GET", "/v1/checkout/sessions")
def list_checkout_sessions(sb: Sandbox, p: Params) -> dict[str, Any]:
    filters = {k: p.str(k) for k in ("customer", "payment_intent", "subscription", "status", "payment_link")}
    return list_response(
        sb, "checkout.session", p, "/v1/checkout/sessions",
        lambda s: all(v in (None, s.get(k)) for k, v in filters.items()),
        extra=set(filters) | {"customer_details"},
    )


# subscriptions ---------------------------------------------------------------

ITEM_FIELDS = {"id", "price", "price_data", "quantity", "metadata", "deleted", "tax_rates", "discounts", "billing_thresholds", "clear_usage"}


def _item_specs(sb: Sandbox, p: Params, sub: dict[str, Any] | None = None, key: str = "items") -> list[billing.ItemSpec]:
    current = {i["id"]: i for i in sub["items"]["data"]} if sub else {}
    specs = []
    for entry in p.dicts(key):
        entry.check_known(ITEM_FIELDS)
        item_id = entry.str("id")
        existing = current.get(item_id) if item_id else None
        if item_id and existing is None:
            raise invalid(f"Subscription item {item_id} does not belong to this subscription.", entry._name("id"))
        if price_id := entry.str("price"):
            price = catalog.find_price(sb, price_id, entry._name("price"))
        elif "price_data" in entry:
            price = catalog.price_from_data(sb, entry.dict("price_data"))
        elif existing:
            price = sb.store.ref("price", existing["price"])
        else:
            raise missing_param(entry._name("price"))
        quantity = entry.int("quantity", default=existing["quantity"] if existing else 1, minimum=0)
        metadata = merge_metadata(existing["metadata"] if existing else {}, entry.metadata())
        rates = taxes.parse_ids(sb, entry, "tax_rates", keep=existing["tax_rates"] if existing else ()) if "tax_rates" in entry else None
        specs.append(billing.ItemSpec(price, quantity, metadata, item_id, entry.bool("deleted", default=False), rates))
    return specs


def _timestamp_or_now(sb: Sandbox, p: Params, key: str) -> int | None:
    if p.raw(key) == "now":
        return sb.now()
    return p.int(key)


@route("POST", "/v1/subscriptions")
def create_subscription(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({
        "customer", "items", "default_payment_method", "metadata", "description", "trial_period_days", "trial_end", "payment_behavior",
        "off_session", "cancel_at_period_end", "collection_method", "proration_behavior", "payment_settings", "trial_settings", "add_invoice_items",
        "default_tax_rates",
    })
    customer = catalog.find_customer(sb, p.str("customer", required=True))
    if p.str("collection_method", default="charge_automatically") != "charge_automatically":
        raise invalid("The sandbox supports collection_method=charge_automatically only for subscriptions.", "collection_method")
    specs = _item_specs(sb, p)
    if not specs:
        raise missing_param("items")
    default_rates = taxes.parse_ids(sb, p, "default_tax_rates")
    pm = p.str("default_payment_method")
    if pm:
        found = payments.resolve_payment_method(sb, pm, "default_payment_method")
        if found["customer"] != customer["id"]:
            raise invalid(
                f"The customer does not have a payment method with the ID {pm}. The payment method must be attached to the customer.",
                "default_payment_method",
            )
        pm = found["id"]
    trial_end = _timestamp_or_now(sb, p, "trial_end")
    days = p.int("trial_period_days", minimum=1)
    if days:
        trial_end = sb.now() + days * 86_400
    if trial_end is not None and trial_end <= sb.now():
        trial_end = None
    # Every parameter is read (and refused) before anything is created: a refused request creates nothing.
    extra_items: list[dict[str, Any]] = []
    for entry in p.dicts("add_invoice_items"):
        entry.check_known({"price", "price_data", "quantity", "metadata", "tax_rates"})
        price_id = entry.str("price")
        price = catalog.find_price(sb, price_id, entry._name("price")) if price_id else catalog.price_from_data(sb, entry.dict("price_data"))
        quantity = entry.int("quantity", default=1, minimum=1)
        extra_items.append({
            "amount": price["unit_amount"] * quantity, "currency": price["currency"], "description": invoices.product_name(sb, price),
            "metadata": entry.metadata() or {}, "price": price, "quantity": quantity, "tax_rates": taxes.parse_ids(sb, entry, "tax_rates"),
        })
    settings = p.dict("trial_settings").dict("end_behavior")
    metadata, description = p.metadata() or {}, p.str("description")
    payment_behavior = p.str(
        "payment_behavior",
        default="allow_incomplete",
        choices=("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete"),
    )
    off_session, cancel_at_period_end = p.bool("off_session", default=False), p.bool("cancel_at_period_end", default=False)
    missing_pm = settings.str("missing_payment_method", default="create_invoice", choices=("create_invoice", "cancel", "pause"))
    for item in extra_items:
        invoices.new_invoice_item(sb, customer=customer["id"], **item)
    sub = billing.create_subscription(
        sb,
        customer=customer,
        specs=specs,
        default_payment_method=pm,
        metadata=metadata,
        description=description,
        trial_end=trial_end,
        payment_behavior=payment_behavior,
        off_session=off_session,
        cancel_at_period_end=cancel_at_period_end,
        missing_payment_method=missing_pm,
        default_tax_rates=default_rates,
    )
    return sb.view(sub)


@route("GET", "/v1/subscriptions/search")
def search_subscriptions(sb: Sandbox, p: Params) -> dict[str, Any]:
    return search_response(sb, "subscription", p, "/v1/subscriptions/search")


@route("GET", "/v1/subscriptions/{ident}")
def get_subscription(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(billing.find_subscription(sb, ident, "id"))


@route("POST", "/v1/subscriptions/{ident}")
def update_subscription(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({
        "items", "proration_behavior", "proration_date", "cancel_at_period_end", "cancel_at", "metadata", "default_payment_method",
        "description", "payment_behavior", "cancellation_details", "off_session", "trial_end", "default_tax_rates",
        "pause_collection",
    })
    sub = billing.find_subscription(sb, ident, "id")
    if sub["status"] in ("canceled", "incomplete_expired") and set(p.data) - {"metadata", "cancellation_details", "expand"}:
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
    before = sb.view(sub)
    default_rates = taxes.parse_ids(sb, p, "default_tax_rates", keep=sub["default_tax_rates"]) if "default_tax_rates" in p else None
    pause = _pause_collection(sb, p) if "pause_collection" in p else False
    finish = None
    if "items" in p:
        behaviour = p.str("proration_behavior", default="create_prorations", choices=("create_prorations", "none", "always_invoice"))
        finish = billing.update_items(sb, sub, _item_specs(sb, p, sub), proration_behavior=behaviour, proration_date=p.int("proration_date"))
    if default_rates is not None:  # for the invoices to come, as Stripe: a tax change alone is not prorated
        sub["default_tax_rates"] = default_rates
    if pause is not False:
        sub["pause_collection"] = pause
    if "cancel_at_period_end" in p:
        flag = p.bool("cancel_at_period_end")
        sub["cancel_at_period_end"] = flag
        sub["cancel_at"] = billing._period(sub)[1] if flag else None
        sub["canceled_at"] = sb.now() if flag else None
        sub["cancellation_details"]["reason"] = "cancellation_requested" if flag else None
    if "cancel_at" in p:
        at = p.int("cancel_at")
        sub["cancel_at"] = at
        sub["cancel_at_period_end"] = bool(at) and at == billing._period(sub)[1]
        sub["canceled_at"] = sb.now() if at else None
    details = p.dict("cancellation_details")
    for field in ("comment", "feedback"):
        if field in details:
            sub["cancellation_details"][field] = details.str(field)
    if "default_payment_method" in p:
        pm_id = p.str("default_payment_method")
        if pm_id:
            pm = get_or_404(sb, "payment_method", pm_id, "PaymentMethod")
            if pm["customer"] != sub["customer"]:
                raise invalid(f"The customer does not have a payment method with the ID {pm_id}.", "default_payment_method")
        sub["default_payment_method"] = pm_id
    if "description" in p:
        sub["description"] = p.str("description")
    if p.raw("trial_end") == "now" and sub["status"] == "trialing":
        for item in sub["items"]["data"]:
            item["current_period_end"] = sb.now()
        sub["trial_end"] = sb.now()
    sub["metadata"] = merge_metadata(sub["metadata"], p.metadata())
    updated(sb, sub, before, "customer.subscription.updated")
    if finish:
        finish()
    if p.raw("trial_end") == "now":
        billing.run_due(sb)
    return sb.view(sub)


def _pause_collection(sb: Sandbox, p: Params) -> dict[str, Any] | None:
    """``pause_collection``: "" unsets it (collection resumes now); else a behavior for the invoices
    generated while paused, and when collection resumes by itself (none: until unset)."""
    if p.raw("pause_collection") == "":
        return None
    pause = p.dict("pause_collection")
    pause.check_known({"behavior", "resumes_at"})
    behavior = pause.str("behavior", required=True, choices=billing.PAUSE_BEHAVIORS)
    resumes_at = pause.int("resumes_at")
    if resumes_at is not None and resumes_at <= sb.now():
        raise invalid("resumes_at must be in the future.", pause._name("resumes_at"))
    return {"behavior": behavior, "resumes_at": resumes_at}


@route("DELETE", "/v1/subscriptions/{ident}")
def cancel_subscription(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"invoice_now", "prorate", "cancellation_details"})
    sub = billing.find_subscription(sb, ident, "id")
    details = p.dict("cancellation_details")
    for field in ("comment", "feedback"):
        if field in details:
            sub["cancellation_details"][field] = details.str(field)
    billing.cancel_now(sb, sub, prorate_unused=p.bool("prorate", default=False), invoice_now=p.bool("invoice_now", default=False))
    return sb.view(sub)


@route("POST", "/v1/subscriptions/{ident}/resume")
def resume_subscription(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"billing_cycle_anchor", "proration_behavior", "proration_date"})
    sub = billing.find_subscription(sb, ident, "id")
    billing.resume(sb, sub)
    return sb.view(sub)


@route("GET", "/v1/subscriptions")
def list_subscriptions(sb: Sandbox, p: Params) -> dict[str, Any]:
    customer, price, status = p.str("customer"), p.str("price"), p.str("status")

    def where(sub: dict[str, Any]) -> bool:
        if status == "all":
            status_ok = True
        elif status is None:
            status_ok = sub["status"] not in ("canceled", "incomplete_expired")
        elif status == "ended":
            status_ok = sub["status"] in ("canceled", "incomplete_expired")
        else:
            status_ok = sub["status"] == status
        price_ok = price is None or any(i["price"] == price for i in sub["items"]["data"])
        return status_ok and price_ok and customer in (None, sub["customer"])

    return list_response(
        sb, "subscription", p, "/v1/subscriptions", where,
        extra={"customer", "price", "status", "collection_method", "current_period_end", "current_period_start"},
    )


# invoices --------------------------------------------------------------------


@route("POST", "/v1/invoices")
def create_invoice(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({
        "customer", "subscription", "auto_advance", "collection_method", "days_until_due", "description", "metadata",
        "pending_invoice_items_behavior", "currency", "default_payment_method", "footer", "default_tax_rates",
    })
    customer = catalog.find_customer(sb, p.str("customer", required=True))
    sub_id = p.str("subscription")
    sub = billing.find_subscription(sb, sub_id) if sub_id else None
    default_rates = taxes.parse_ids(sb, p, "default_tax_rates")
    method = p.str("collection_method", default="charge_automatically", choices=("charge_automatically", "send_invoice"))
    days = p.int("days_until_due", minimum=0)
    if method == "send_invoice" and days is None:
        raise invalid("Invoices with collection_method=send_invoice need days_until_due.", "days_until_due", "parameter_missing")
    include = p.str("pending_invoice_items_behavior", default="exclude", choices=("include", "exclude")) == "include"
    currency = catalog.parse_currency(p, required=False) or (sub["currency"] if sub else None)
    pending = invoices.pending_items(sb, customer["id"], sub["id"] if sub else None)
    if currency is None:
        currency = pending[0]["currency"] if include and pending else "eur"
    invoice = invoices.new_invoice(
        sb, customer=customer["id"], currency=currency, billing_reason="manual", subscription=sub, collection_method=method,
        auto_advance=p.bool("auto_advance", default=False), metadata=p.metadata() or {}, description=p.str("description"), days_until_due=days,
    )
    if pm_id := p.str("default_payment_method"):
        invoice["default_payment_method"] = get_or_404(sb, "payment_method", pm_id, "PaymentMethod")["id"]
    if "default_tax_rates" in p:
        invoice["default_tax_rates"] = default_rates
    if include:
        invoices.pull_pending_items(sb, invoice, sub["id"] if sub else None)
    sb.emit("invoice.created", invoice)
    return sb.view(invoice)


@route("POST", "/v1/invoices/create_preview")
def preview_invoice(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({"customer", "subscription", "subscription_details", "currency", "preview_mode"})
    sub_id = p.str("subscription")
    sub = billing.find_subscription(sb, sub_id) if sub_id else None
    customer_id = p.str("customer") or (sub["customer"] if sub else None)
    if customer_id is None:
        raise missing_param("customer")
    customer = catalog.find_customer(sb, customer_id)
    details = p.dict("subscription_details")
    details.check_known({
        "items", "proration_behavior", "proration_date", "cancel_at_period_end", "cancel_now", "billing_cycle_anchor",
        "trial_end", "default_tax_rates", "cancel_at", "resume_at", "start_date",
    })
    specs = _item_specs(sb, details, sub) if "items" in details else None
    if specs and sub is None:
        raise invalid("The sandbox previews changes to an existing subscription only: pass `subscription`.", "subscription")
    behaviour = details.str("proration_behavior", default="create_prorations", choices=("create_prorations", "none", "always_invoice"))
    invoice = billing.preview(
        sb, customer, sub, specs,
        proration_behavior=behaviour,
        proration_date=details.int("proration_date"),
        cancel_at_period_end=details.bool("cancel_at_period_end"),
    )
    return sb.view(invoice)


@route("GET", "/v1/invoices/search")
def search_invoices(sb: Sandbox, p: Params) -> dict[str, Any]:
    return search_response(sb, "invoice", p, "/v1/invoices/search")


def _invoice(sb: Sandbox, ident: str) -> dict[str, Any]:
    invoice = get_or_404(sb, "invoice", ident)
    if invoice.get("_deleted"):
        raise StripeError(404, f"No such invoice: '{ident}'", param="id", code="resource_missing")
    return invoice


@route("GET", "/v1/invoices/{ident}")
def get_invoice(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(_invoice(sb, ident))


@route("POST", "/v1/invoices/{ident}")
def update_invoice(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"metadata", "description", "auto_advance", "days_until_due", "default_payment_method", "footer", "default_tax_rates"})
    invoice = _invoice(sb, ident)
    if invoice["status"] != "draft" and set(p.data) - {"metadata", "expand"}:
        raise invalid("Only draft invoices can be edited (metadata aside).", code="invoice_not_editable")
    before = sb.view(invoice)
    # Every parameter is read (and refused) before anything changes: a refused update changes nothing.
    default_rates = taxes.parse_ids(sb, p, "default_tax_rates", keep=invoice["default_tax_rates"]) if "default_tax_rates" in p else None
    metadata = merge_metadata(invoice["metadata"], p.metadata())
    description = p.str("description") if "description" in p else invoice["description"]
    auto_advance = p.bool("auto_advance") if "auto_advance" in p else None
    days = p.int("days_until_due", minimum=0) if "days_until_due" in p else invoice["_days_until_due"]
    invoice.update(metadata=metadata, description=description, _days_until_due=days)
    if auto_advance is not None:
        invoice["auto_advance"] = auto_advance
        invoice["automatically_finalizes_at"] = invoice["created"] + invoices.FINALIZE_AFTER if auto_advance else None
    if default_rates is not None:
        invoice["default_tax_rates"] = default_rates
        invoices.recompute(sb, invoice, invoice["starting_balance"])
    return updated(sb, invoice, before, "invoice.updated")


@route("DELETE", "/v1/invoices/{ident}")
def delete_invoice(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    invoice = _invoice(sb, ident)
    if invoice["status"] != "draft":
        raise invalid("You can only delete draft invoices.", code="invoice_not_editable")
    for line in invoice["lines"]["data"]:
        details = line["parent"]["invoice_item_details"]
        if details:
            item = sb.store.get("invoiceitem", details["invoice_item"])
            if item:
                item["invoice"] = None
    invoice["_deleted"] = True
    sb.emit("invoice.deleted", invoice)
    return {"id": ident, "object": "invoice", "deleted": True}


@route("POST", "/v1/invoices/{ident}/finalize")
def finalize_invoice(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"auto_advance"})
    invoice = _invoice(sb, ident)
    if "auto_advance" in p:
        invoice["auto_advance"] = p.bool("auto_advance")
    invoices.finalize(sb, invoice)
    if invoice["status"] == "open" and invoice["auto_advance"] and invoice["collection_method"] == "charge_automatically":
        invoice["next_payment_attempt"] = sb.now() + invoices.FINALIZE_AFTER
    return sb.view(invoice)


@route("POST", "/v1/invoices/{ident}/pay")
def pay_invoice(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"payment_method", "off_session", "paid_out_of_band", "forgive", "source", "mandate"})
    invoice = _invoice(sb, ident)
    if invoice["status"] == "draft":
        invoices.finalize(sb, invoice)
    if invoice["status"] == "paid":
        raise invalid("Invoice is already paid.")
    if p.bool("paid_out_of_band", default=False):
        invoices.mark_paid_out_of_band(sb, invoice)
        return sb.view(invoice)
    pm = p.str("payment_method")
    if pm:
        found = payments.resolve_payment_method(sb, pm)
        payments.check_payment_method_owner(sb, invoice["customer"], found)
        pm = found["id"]
    invoices.attempt(sb, invoice, off_session=p.bool("off_session", default=True), automatic=False, payment_method=pm)
    if invoice["status"] != "paid":
        pi = sb.store.ref("payment_intent", invoice["_payment_intent"])
        error = pi["last_payment_error"] or {}
        if pi["status"] == "requires_action":
            raise StripeError(
                402,
                "This payment requires additional user action before it can be completed successfully. "
                "Send the customer to the invoice's hosted_invoice_url.",
                type="card_error",
                code="invoice_payment_intent_requires_action",
                extra={"payment_intent": sb.view(pi)},
            )
        if not error:
            raise invalid("This customer has no attached payment source or default payment method. Please consider adding a default payment method.")
        raise StripeError(
            402, error["message"],
            type="card_error", code=error["code"], decline_code=error.get("decline_code"),
            extra={"payment_intent": sb.view(pi), "charge": error.get("charge")},
        )
    return sb.view(invoice)


@route("POST", "/v1/invoices/{ident}/void")
def void_invoice(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known(set())
    invoice = _invoice(sb, ident)
    invoices.void(sb, invoice)
    return sb.view(invoice)


@route("POST", "/v1/invoices/{ident}/mark_uncollectible")
def mark_uncollectible(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known(set())
    invoice = _invoice(sb, ident)
    if invoice["status"] != "open":
        raise invalid("Only open invoices can be marked uncollectible.", code="invoice_not_editable")
    invoice.update(status="uncollectible", next_payment_attempt=None)
    invoice["status_transitions"]["marked_uncollectible_at"] = sb.now()
    sb.emit("invoice.marked_uncollectible", invoice)
    return sb.view(invoice)


@route("GET", "/v1/invoices/{ident}/lines")
def invoice_lines(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"limit", "starting_after", "ending_before"})
    invoice = _invoice(sb, ident)
    page, more = paginate(invoice["lines"]["data"], p)
    return {"object": "list", "data": public(page), "has_more": more, "url": f"/v1/invoices/{ident}/lines"}


@route("GET", "/v1/invoices")
def list_invoices(sb: Sandbox, p: Params) -> dict[str, Any]:
    customer, sub, status, method = p.str("customer"), p.str("subscription"), p.str("status"), p.str("collection_method")

    def where(invoice: dict[str, Any]) -> bool:
        parent = (invoice["parent"] or {}).get("subscription_details") or {}
        return (
            customer in (None, invoice["customer"])
            and sub in (None, parent.get("subscription"))
            and status in (None, invoice["status"])
            and method in (None, invoice["collection_method"])
        )

    return list_response(sb, "invoice", p, "/v1/invoices", where, extra={"customer", "subscription", "status", "collection_method", "due_date"})


# invoice items -----------------------------------------------------------------


@route("POST", "/v1/invoiceitems")
def create_invoice_item(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({
        "customer", "amount", "currency", "description", "metadata", "subscription", "invoice", "period", "quantity",
        "pricing", "price_data", "unit_amount_decimal", "discountable", "tax_behavior", "tax_rates",
    })
    customer = catalog.find_customer(sb, p.str("customer", required=True))
    sub_id = p.str("subscription")
    sub = billing.find_subscription(sb, sub_id) if sub_id else None
    if sub and sub["customer"] != customer["id"]:
        raise invalid(f"Subscription {sub['id']} belongs to another customer.", "subscription")
    quantity = p.int("quantity", default=1, minimum=1)
    price_id = p.dict("pricing").str("price")
    price = catalog.find_price(sb, price_id, "pricing[price]") if price_id else None
    if price is None and "price_data" in p:
        price = catalog.price_from_data(sb, p.dict("price_data"))
    if price is not None:
        amount, currency = price["unit_amount"] * quantity, price["currency"]
    else:
        amount = p.int("amount")
        if amount is None:
            decimal = p.str("unit_amount_decimal")
            if decimal is None:
                raise missing_param("amount")
            amount = int(decimal) * quantity
        currency = catalog.parse_currency(p)
    if sub and currency != sub["currency"]:
        raise invalid(f"The currency of this invoice item ({currency}) must match the subscription's ({sub['currency']}).", "currency")
    period = p.dict("period")
    span = (period.int("start", required=True), period.int("end", required=True)) if period.data else None
    invoice_id = p.str("invoice")
    invoice = _invoice(sb, invoice_id) if invoice_id else None
    if invoice is not None and (invoice["status"] != "draft" or invoice["customer"] != customer["id"]):
        raise invalid("Invoice items can only be added to draft invoices of the same customer.", "invoice", "invoice_not_editable")
    rates = taxes.parse_ids(sb, p, "tax_rates")
    item = invoices.new_invoice_item(
        sb, customer=customer["id"], amount=amount, currency=currency, description=p.str("description"), metadata=p.metadata() or {},
        subscription=sub["id"] if sub else None, period=span, price=price, quantity=quantity, invoice=invoice["id"] if invoice else None,
        tax_rates=rates,
    )
    if "discountable" in p:
        item["discountable"] = p.bool("discountable")
    if invoice is not None:
        invoices.add_lines(sb, invoice, [invoices.item_line(sb, item)])
    return sb.view(item)


def _item(sb: Sandbox, ident: str) -> dict[str, Any]:
    item = get_or_404(sb, "invoiceitem", ident)
    if item.get("_deleted"):
        raise StripeError(404, f"No such invoiceitem: '{ident}'", param="id", code="resource_missing")
    return item


@route("GET", "/v1/invoiceitems/{ident}")
def get_invoice_item(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(_item(sb, ident))


@route("POST", "/v1/invoiceitems/{ident}")
def update_invoice_item(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"amount", "description", "metadata", "quantity", "discountable", "period", "tax_rates"})
    item = _item(sb, ident)
    if item["invoice"] and set(p.data) - {"metadata", "expand"}:
        invoice = sb.store.ref("invoice", item["invoice"])
        if invoice["status"] != "draft":
            raise invalid("This invoice item is on a finalized invoice and can no longer be edited.", code="invoice_not_editable")
    before = sb.view(item)
    rates = taxes.parse_ids(sb, p, "tax_rates", keep=item["tax_rates"]) if "tax_rates" in p else None
    if "amount" in p:  # a blank amount is a missing one, not an amount of None
        item["amount"] = item["net_amount"] = p.int("amount", required=True)
    if "description" in p:
        item["description"] = p.str("description")
    if rates is not None:
        item["tax_rates"] = rates
    item["metadata"] = merge_metadata(item["metadata"], p.metadata())
    if item["invoice"]:
        invoice = sb.store.ref("invoice", item["invoice"])
        for line in invoice["lines"]["data"]:
            if (line["parent"]["invoice_item_details"] or {}).get("invoice_item") == item["id"]:
                line.update(
                    amount=item["amount"], subtotal=item["amount"], description=item["description"], metadata=dict(item["metadata"]),
                    _tax_rates=list(item["tax_rates"]),
                )
        invoices.recompute(sb, invoice, invoice["starting_balance"])
    return updated(sb, item, before, "invoiceitem.updated")


@route("DELETE", "/v1/invoiceitems/{ident}")
def delete_invoice_item(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    item = _item(sb, ident)
    if item["invoice"]:
        invoice = sb.store.ref("invoice", item["invoice"])
        if invoice["status"] != "draft":
            raise invalid("This invoice item is on a finalized invoice and cannot be deleted.", code="invoice_not_editable")
        invoice["lines"]["data"] = [
            line for line in invoice["lines"]["data"]
            if (line["parent"]["invoice_item_details"] or {}).get("invoice_item") != item["id"]
        ]
        invoices.recompute(sb, invoice, invoice["starting_balance"])
    item["_deleted"] = True
    sb.emit("invoiceitem.deleted", item)
    return {"id": ident, "object": "invoiceitem", "deleted": True}


@route("GET", "/v1/invoiceitems")
def list_invoice_items(sb: Sandbox, p: Params) -> dict[str, Any]:
    customer, invoice, pending = p.str("customer"), p.str("invoice"), p.bool("pending")

    def where(item: dict[str, Any]) -> bool:
        return customer in (None, item["customer"]) and invoice in (None, item["invoice"]) and (pending is None or (item["invoice"] is None) == pending)

    return list_response(sb, "invoiceitem", p, "/v1/invoiceitems", where, extra={"customer", "invoice", "pending"})


@route("GET", "/v1/invoice_payments/{ident}")
def get_invoice_payment(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(get_or_404(sb, "invoice_payment", ident))


@route("GET", "/v1/invoice_payments")
def list_invoice_payments(sb: Sandbox, p: Params) -> dict[str, Any]:
    invoice = p.str("invoice")
    payment = p.dict("payment")
    pi = payment.str("payment_intent")
    return list_response(
        sb, "invoice_payment", p, "/v1/invoice_payments",
        lambda r: invoice in (None, r["invoice"]) and pi in (None, r["payment"]["payment_intent"]),
        extra={"invoice", "payment", "status"},
    )


# billing portal ----------------------------------------------------------------

PORTAL_LIFETIME = 3_600


@route("POST", "/v1/billing_portal/sessions")
def create_portal_session(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({"customer", "return_url", "configuration", "flow_data", "locale", "on_behalf_of"})
    customer = catalog.find_customer(sb, p.str("customer", required=True))
    ident = sb.store.new_id("billing_portal.session")
    flow = p.dict("flow_data")
    flow_type = flow.str("type", choices=("payment_method_update", "subscription_cancel", "subscription_update", "subscription_update_confirm"))
    session = {
        "id": ident,
        "object": "billing_portal.session",
        "configuration": p.str("configuration") or "bpc_sandbox_default",
        "created": sb.now(),
        "customer": customer["id"],
        "customer_account": None,
        "flow": {"type": flow_type, "after_completion": {"type": "portal_homepage", "hosted_confirmation": None, "redirect": None}} if flow_type else None,
        "livemode": False,
        "locale": p.str("locale"),
        "on_behalf_of": None,
        "return_url": p.str("return_url"),
        "url": sb.url(f"/portal/{ident}?s={secrets.token_urlsafe(12)}"),
        "_expires_at": sb.now() + PORTAL_LIFETIME,
    }
    sb.store.put("billing_portal.session", session)
    sb.emit("billing_portal.session.created", session)
    return sb.view(session)


@route("GET", "/v1/subscription_items/{ident}")
def get_subscription_item(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    from stripe_sandbox.views import subscription_item

    for sub in sb.store.all("subscription"):
        for item in sub["items"]["data"]:
            if item["id"] == ident:
                return public(subscription_item(sb, item))
    raise StripeError(404, f"No such subscription_item: '{ident}'", param="id", code="resource_missing")


@route("GET", "/v1/subscription_items")
def list_subscription_items(sb: Sandbox, p: Params) -> dict[str, Any]:
    from stripe_sandbox.views import subscription_item

    p.check_known({"subscription", "limit", "starting_after", "ending_before"})
    sub = billing.find_subscription(sb, p.str("subscription", required=True))
    page, more = paginate(sub["items"]["data"], p)
    return {"object": "list", "data": [public(subscription_item(sb, i)) for i in page], "has_more": more, "url": "/v1/subscription_items"}
