"""Checkout Sessions: creation, completion from the hosted page (payment, setup, subscription), expiry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from stripe_sandbox import billing, cards, catalog, invoices, payments, sepa, taxes
from stripe_sandbox.encoding import Params
from stripe_sandbox.errors import invalid
from stripe_sandbox.invoices import new_invoice_item

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

DEFAULT_LIFETIME = 24 * 3_600
MIN_LIFETIME = 30 * 60
ALLOWED = {
    "mode", "line_items", "customer", "customer_email", "customer_creation", "client_reference_id", "metadata",
    "payment_intent_data", "setup_intent_data", "subscription_data", "success_url", "cancel_url", "return_url", "expires_at",
    "currency", "allowed_payment_method_types", "locale", "submit_type", "ui_mode", "allow_promotion_codes",
    "billing_address_collection", "payment_method_collection", "invoice_creation", "customer_update", "consent_collection",
    "custom_text",
}


def create_session(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known(ALLOWED)
    now = sb.now()
    mode = p.str("mode", required=True, choices=("payment", "setup", "subscription"))
    if p.str("ui_mode", default="hosted_page") != "hosted_page":  # endive renamed "hosted"
        raise invalid("The sandbox only offers hosted Checkout (ui_mode=hosted_page).", "ui_mode")
    customer_id = p.str("customer")
    if customer_id:
        catalog.find_customer(sb, customer_id)
    if customer_id and p.str("customer_email"):
        raise invalid("You may only specify one of these parameters: customer, customer_email.", "customer_email")
    creation = p.str("customer_creation", choices=("always", "if_required"))
    if creation and mode != "payment":
        raise invalid("`customer_creation` can only be used in `payment` mode.", "customer_creation")
    if creation and customer_id:
        raise invalid("You may only specify one of these parameters: customer, customer_creation.", "customer_creation")
    for key, allowed_mode in (("payment_intent_data", "payment"), ("setup_intent_data", "setup"), ("subscription_data", "subscription")):
        if key in p and mode != allowed_mode:
            raise invalid(f"You can not pass `{key}` in `{mode}` mode.", key)
    expires_at = p.int("expires_at", default=now + DEFAULT_LIFETIME)
    if not now + MIN_LIFETIME - 60 <= expires_at <= now + DEFAULT_LIFETIME + 60:
        raise invalid("The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.", "expires_at")
    line_items = _line_items(sb, p, mode)
    currency = line_items[0]["currency"] if line_items else catalog.parse_currency(p, required=False)
    if mode != "setup" and "currency" in p and catalog.parse_currency(p) != currency:
        raise invalid("The currency must match the line items' currency.", "currency")
    method_types = _method_types(p, currency)
    subtotal = sum(item["amount_subtotal"] for item in line_items)
    total = sum(item["amount_total"] for item in line_items)
    tax = sum(item["amount_tax"] for item in line_items)
    pid = p.dict("payment_intent_data")
    pid.check_known({"metadata", "description", "setup_future_usage", "receipt_email", "statement_descriptor", "statement_descriptor_suffix", "capture_method"})
    if pid.str("capture_method", default="automatic") not in ("automatic", "automatic_async"):
        raise invalid("The sandbox only supports automatic capture.", "payment_intent_data[capture_method]")
    sid = p.dict("setup_intent_data")
    sid.check_known({"metadata", "description", "on_behalf_of"})
    creation_params = p.dict("invoice_creation")
    creation_params.check_known({"enabled", "invoice_data"})
    if "invoice_creation" in p and mode != "payment":
        raise invalid("`invoice_creation` can only be used in `payment` mode.", "invoice_creation")
    invoice_data = creation_params.dict("invoice_data")
    invoice_data.check_known({"metadata", "description", "footer", "custom_fields", "account_tax_ids", "issuer", "rendering_options"})
    invoice_enabled = creation_params.bool("enabled", default=False)
    subd = p.dict("subscription_data")
    subd.check_known({"metadata", "description", "trial_period_days", "trial_end", "trial_settings", "billing_cycle_anchor", "proration_behavior"})
    texts = p.dict("custom_text")
    texts.check_known({"after_submit", "shipping_address", "submit", "terms_of_service_acceptance"})
    custom_text: dict[str, Any] = {"after_submit": None, "shipping_address": None, "submit": None,
                                   "terms_of_service_acceptance": None}
    for part in custom_text:
        text = texts.dict(part)
        text.check_known({"message"})
        message = text.str("message")
        if message is not None and len(message) > 1200:
            raise invalid("Custom text messages must be at most 1200 characters.", f"custom_text[{part}][message]")
        if message:
            custom_text[part] = {"message": message}
    ident = sb.store.new_id("checkout.session")
    session: dict[str, Any] = {
        "id": ident,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": subtotal if mode != "setup" else None,
        "amount_total": total if mode != "setup" else None,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": p.str("cancel_url"),
        "client_reference_id": p.str("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": custom_text,
        "customer": customer_id,
        "customer_account": None,
        "customer_creation": (creation or "if_required") if mode == "payment" and not customer_id else None,
        "customer_details": None,
        "customer_email": p.str("customer_email"),
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": (
            {
                "enabled": invoice_enabled,
                "invoice_data": {
                    "account_tax_ids": None, "custom_fields": None, "description": invoice_data.str("description"),
                    "footer": invoice_data.str("footer"), "issuer": None, "metadata": invoice_data.metadata() or {},
                    "rendering_options": None,
                },
            }
            if mode == "payment"
            else None
        ),
        "livemode": False,
        "locale": p.str("locale"),
        "managed_payments": {"enabled": False},
        "metadata": p.metadata() or {},
        "mode": mode,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always" if mode != "payment" else None,
        "branding_settings": None,
        "excluded_payment_method_types": None,
        "name_collection": None,
        "optional_items": None,
        "presentment_details": None,
        "redirect_on_completion": "always",
        "return_url": None,
        "tax_id_collection": {"enabled": False, "required": "never"},
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "allowed_payment_method_types": list(method_types),
        "payment_method_types": list(method_types),
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": p.str("submit_type"),
        "subscription": None,
        "success_url": p.str("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": tax} if mode != "setup" else None,
        "ui_mode": "hosted_page",
        "url": sb.url(f"/checkout/{ident}"),
        "wallet_options": None,
        "_line_items": line_items,
        "_payment_intent_data": {
            "metadata": pid.metadata() or {},
            "description": pid.str("description"),
            "setup_future_usage": pid.str("setup_future_usage", choices=("on_session", "off_session")),
            "receipt_email": pid.str("receipt_email"),
            "statement_descriptor": pid.str("statement_descriptor"),
            "statement_descriptor_suffix": pid.str("statement_descriptor_suffix"),
        },
        "_setup_intent_data": {"metadata": sid.metadata() or {}, "description": sid.str("description")},
        "_subscription_data": {
            "metadata": subd.metadata() or {},
            "description": subd.str("description"),
            "trial_period_days": subd.int("trial_period_days", minimum=1),
            "trial_end": subd.int("trial_end"),
        },
    }
    return sb.store.put("checkout.session", session)


SANDBOX_METHODS = ("card", "sepa_debit")


def _method_types(p: Params, currency: str | None) -> list[str]:
    """``allowed_payment_method_types`` (endive's name): the sandbox's page offers card and
    sepa_debit. SEPA Direct Debit takes euros only: a session in another currency offering it is
    refused when it is created, as Stripe refuses it (the message Stripe gives, quoted in
    stripe-samples/firebase-subscription-payments#39)."""
    param = "allowed_payment_method_types"
    types = p.strings(param)
    for kind in types:
        if kind not in SANDBOX_METHODS:
            raise invalid(f"The sandbox's Checkout page offers card and sepa_debit, not {kind}.", param)
    if "sepa_debit" in types and currency not in (None, "eur"):
        raise invalid(f"Invalid currency options `{currency}`. The payment method `sepa_debit` only supports the following "
                      "currencies: `eur`.", param)
    return list(dict.fromkeys(types)) or ["card"]


def offers(session: dict[str, Any], kind: str) -> bool:
    """Whether the session's page offers this payment method type (endive's field, or the older one
    a session stored before the rename may carry)."""
    return kind in (session.get("allowed_payment_method_types") or session.get("payment_method_types") or ["card"])


def _line_items(sb: Sandbox, p: Params, mode: str) -> list[dict[str, Any]]:
    entries = p.dicts("line_items")
    if mode == "setup":
        if entries:
            raise invalid("You can not pass `line_items` in `setup` mode.", "line_items")
        return []
    if not entries:
        raise invalid("`line_items` is required in `payment` and `subscription` mode.", "line_items", "parameter_missing")
    items = []
    for entry in entries:
        entry.check_known({"price", "price_data", "quantity", "adjustable_quantity", "tax_rates", "metadata"})
        if price_id := entry.str("price"):
            price = catalog.find_price(sb, price_id, entry._name("price"))
            if not price["active"]:
                raise invalid(f"The price specified ({price['id']}) is inactive. This field only accepts active prices.", entry._name("price"))
        elif "price_data" in entry:
            price = catalog.price_from_data(sb, entry.dict("price_data"))
        else:
            raise invalid("Each line item needs a `price` or `price_data`.", entry._name("price"), "parameter_missing")
        quantity = entry.int("quantity", default=1, minimum=1)
        if mode == "payment" and price["recurring"]:
            raise invalid(
                "You specified `payment` mode but passed a recurring price. "
                "Either switch to `subscription` mode or use only one-time prices.",
                entry._name("price"),
            )
        amount = price["unit_amount"] * quantity
        product = sb.store.get("product", price["product"])
        rates = taxes.parse_ids(sb, entry, "tax_rates")
        line_taxes = taxes.line_taxes(sb, amount, rates)
        items.append({
            "id": sb.store.sub_id("li"),
            "object": "item",
            "adjustable_quantity": None,
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": sum(t["amount"] for t in line_taxes),
            "amount_total": amount + taxes.exclusive_tax(line_taxes),
            "currency": price["currency"],
            "description": product["name"] if product else None,
            "metadata": entry.metadata() if "metadata" in entry else None,
            "price": dict(price),
            "quantity": quantity,
            "_tax_rates": rates,
        })
    if len({i["currency"] for i in items}) > 1:
        raise invalid("All line items must use the same currency.", "line_items")
    if mode == "subscription" and not any(i["price"]["recurring"] for i in items):
        raise invalid("You must provide at least one recurring price in `subscription` mode when using prices.", "line_items")
    return items


@dataclass
class Result:
    kind: str  # "done" | "error" | "challenge"
    url: str | None = None
    message: str | None = None


def redirect_target(session: dict[str, Any]) -> str | None:
    if not session["success_url"]:
        return None
    return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])


def submit_card(sb: Sandbox, session: dict[str, Any], *, number: str, exp_month: int, exp_year: int, name: str, email: str | None) -> Result:
    pm = payments.new_card_payment_method(sb, number, exp_month, exp_year, name=name, email=email)
    session["_pending"] = {"payment_method": pm["id"], "email": email, "name": name}
    return proceed(sb, session, authenticated=False)


def submit_sepa(sb: Sandbox, session: dict[str, Any], *, iban: sepa.Iban, name: str, email: str,
                acceptance: dict[str, Any]) -> Result:
    """The customer pays by SEPA Direct Debit: a sepa_debit PaymentMethod from the IBAN, and the
    mandate they accepted on the page (``acceptance``, as ``mandate_data[customer_acceptance]``)."""
    if not offers(session, "sepa_debit"):
        raise invalid("This Checkout Session does not offer sepa_debit.", "payment_method_types")
    pm = sepa.new_payment_method(sb, iban, name=name, email=email)
    session["_pending"] = {"payment_method": pm["id"], "email": email, "name": name, "mandate_data": acceptance}
    return proceed(sb, session, authenticated=False)


def proceed(sb: Sandbox, session: dict[str, Any], *, authenticated: bool) -> Result:
    pending = session["_pending"]
    pm = sb.store.ref("payment_method", pending["payment_method"])
    card = payments.card_of(pm)
    mode = session["mode"]
    if mode == "setup":
        outcome = cards.setup_outcome(card, authenticated=authenticated)
    else:
        outcome = cards.payment_outcome(card, off_session=False, set_up=pm["_set_up"], authenticated=authenticated)
    if outcome.kind == "requires_action":
        return Result("challenge", url=sb.url(f"/authenticate/{session['id']}"))
    if mode == "payment":
        return _pay(sb, session, pm, pending, authenticated)
    if mode == "setup":
        return _setup(sb, session, pm, pending, authenticated)
    if outcome.kind == "declined":
        return Result("error", message=cards.decline_message_fr(outcome.decline_code))
    return _subscribe(sb, session, pm, pending, authenticated)


@overload
def _customer(sb: Sandbox, session: dict[str, Any], pending: dict[str, Any], *, required: Literal[True]) -> dict[str, Any]: ...
@overload
def _customer(sb: Sandbox, session: dict[str, Any], pending: dict[str, Any], *, required: bool) -> dict[str, Any] | None: ...
def _customer(sb: Sandbox, session: dict[str, Any], pending: dict[str, Any], *, required: bool) -> dict[str, Any] | None:
    """The session's customer; created from the card form when ``required`` (or customer_creation=always)."""
    if session["customer"]:
        return sb.store.ref("customer", session["customer"])
    if not required and session["customer_creation"] != "always":
        return None
    customer = catalog.new_customer(sb, email=pending["email"], name=pending["name"])
    session["customer"] = customer["id"]
    return customer


def _pay(sb: Sandbox, session: dict[str, Any], pm: dict[str, Any], pending: dict[str, Any], authenticated: bool) -> Result:
    data = session["_payment_intent_data"]
    invoiced = bool((session["invoice_creation"] or {}).get("enabled"))
    customer = _customer(sb, session, pending, required=bool(data["setup_future_usage"]) or invoiced)
    pi = sb.store.get("payment_intent", session["payment_intent"]) if session["payment_intent"] else None
    if pi is None:
        pi = payments.new_payment_intent(
            sb,
            amount=session["amount_total"],
            currency=session["currency"],
            customer=customer["id"] if customer else None,
            payment_method=pm["id"],
            metadata=dict(data["metadata"]),
            description=data["description"],
            setup_future_usage=data["setup_future_usage"],
            receipt_email=data["receipt_email"] or pending["email"],
            statement_descriptor=data["statement_descriptor"],
            statement_descriptor_suffix=data["statement_descriptor_suffix"],
        )
        session["payment_intent"] = pi["id"]
    else:
        pi.update(payment_method=pm["id"], status="requires_confirmation")
    if sepa.is_sepa(pm):
        types = list(session["allowed_payment_method_types"])  # Checkout's PaymentIntent takes the session's types
        pi.update(payment_method_types=types, allowed_payment_method_types=list(types), automatic_payment_methods=None)
    payments.confirm_payment_intent(sb, pi, off_session=False, authenticated=authenticated, mandate_data=pending.get("mandate_data"))
    if pi["status"] == "processing":
        # A bank debit: the session is complete, its payment not yet made ("unpaid"); Stripe sends
        # checkout.session.async_payment_succeeded or _failed when the debit settles.
        session["_awaiting"] = pi["id"]
        _complete(sb, session, pending, "unpaid")
        return Result("done", url=redirect_target(session))
    if pi["status"] != "succeeded":
        error = pi["last_payment_error"] or {}
        return Result("error", message=cards.decline_message_fr(error.get("decline_code") or error.get("code")))
    if invoiced and customer is not None:
        _post_payment_invoice(sb, session, pi, customer)
    _complete(sb, session, pending, "paid")
    return Result("done", url=redirect_target(session))


def _post_payment_invoice(sb: Sandbox, session: dict[str, Any], pi: dict[str, Any], customer: dict[str, Any]) -> None:
    """``invoice_creation[enabled]``: once paid, an invoice of the session's lines (with their tax
    rates), paid by the session's PaymentIntent, as Stripe issues it for a one-off payment."""
    data = session["invoice_creation"]["invoice_data"]
    invoice = invoices.new_invoice(sb, customer=customer["id"], currency=session["currency"], billing_reason="manual",
                                   metadata=dict(data["metadata"]), description=data["description"], auto_advance=False)
    lines = []
    for item in session["_line_items"]:
        price = sb.store.ref("price", item["price"]["id"])
        entry = new_invoice_item(sb, customer=customer["id"], amount=price["unit_amount"] * item["quantity"], currency=price["currency"],
                                 description=item["description"], metadata={}, price=price, quantity=item["quantity"],
                                 invoice=invoice["id"], tax_rates=item.get("_tax_rates"))
        lines.append(invoices.item_line(sb, entry))
    invoices.add_lines(sb, invoice, lines)
    invoices.paid_by(sb, invoice, pi)
    session["invoice"] = invoice["id"]


def _setup(sb: Sandbox, session: dict[str, Any], pm: dict[str, Any], pending: dict[str, Any], authenticated: bool) -> Result:
    customer = _customer(sb, session, pending, required=True)
    data = session["_setup_intent_data"]
    seti = payments.new_setup_intent(sb, customer=customer["id"], payment_method=pm["id"], metadata=dict(data["metadata"]), description=data["description"])
    session["setup_intent"] = seti["id"]
    if sepa.is_sepa(pm):
        types = list(session["allowed_payment_method_types"])
        seti.update(payment_method_types=types, allowed_payment_method_types=list(types), automatic_payment_methods=None)
    payments.confirm_setup_intent(sb, seti, authenticated=authenticated, mandate_data=pending.get("mandate_data"))
    if seti["status"] != "succeeded":
        error = seti["last_setup_error"] or {}
        return Result("error", message=cards.decline_message_fr(error.get("decline_code") or error.get("code")))
    _complete(sb, session, pending, "no_payment_required")
    return Result("done", url=redirect_target(session))


def _subscribe(sb: Sandbox, session: dict[str, Any], pm: dict[str, Any], pending: dict[str, Any], authenticated: bool) -> Result:
    customer = _customer(sb, session, pending, required=True)
    payments.attach(sb, pm, customer["id"], validate=False)
    if sepa.is_sepa(pm):  # the mandate the customer accepted on the page: the invoices' debits use it
        sepa.ensure_mandate(sb, pm, pending.get("mandate_data"), off_session=False)
    data = session["_subscription_data"]
    specs = []
    for item in session["_line_items"]:
        price = sb.store.ref("price", item["price"]["id"])
        if price["recurring"]:
            specs.append(billing.ItemSpec(price, item["quantity"], {}, tax_rates=item.get("_tax_rates")))
        else:
            new_invoice_item(sb, customer=customer["id"], amount=price["unit_amount"] * item["quantity"], currency=price["currency"],
                             description=item["description"], metadata={}, price=price, quantity=item["quantity"], tax_rates=item.get("_tax_rates"))
    trial_end = data["trial_end"] or (sb.now() + data["trial_period_days"] * 86_400 if data["trial_period_days"] else None)
    sub = billing.create_subscription(
        sb, customer=customer, specs=specs, default_payment_method=pm["id"], metadata=dict(data["metadata"]),
        description=data["description"], trial_end=trial_end, authenticated=authenticated,
    )
    session["subscription"] = sub["id"]
    session["invoice"] = sub["latest_invoice"]
    invoice = sb.store.ref("invoice", sub["latest_invoice"])
    pi = sb.store.get("payment_intent", invoice["_payment_intent"]) if invoice["_payment_intent"] else None
    if pi is not None and pi["status"] == "processing":
        # The first invoice's debit is in flight: the subscription stays `incomplete` (Stripe, "How
        # subscriptions work", subscription statuses: "Subscriptions can also be incomplete if there's
        # a pending payment and the PaymentIntent status is processing") until the invoice is paid.
        session["_awaiting"] = pi["id"]
        _complete(sb, session, pending, "unpaid")
        return Result("done", url=redirect_target(session))
    if sub["status"] not in ("active", "trialing"):
        invoice = sb.store.ref("invoice", sub["latest_invoice"])
        pi = sb.store.get("payment_intent", invoice["_payment_intent"]) if invoice["_payment_intent"] else None
        error = (pi or {}).get("last_payment_error") or {}
        return Result("error", message=cards.decline_message_fr(error.get("decline_code") or error.get("code")))
    invoice = sb.store.ref("invoice", sub["latest_invoice"])
    _complete(sb, session, pending, "paid" if invoice["amount_due"] > 0 else "no_payment_required")
    return Result("done", url=redirect_target(session))


def _complete(sb: Sandbox, session: dict[str, Any], pending: dict[str, Any], payment_status: str) -> None:
    customer = sb.store.get("customer", session["customer"]) if session["customer"] else None
    email = pending["email"] or session["customer_email"] or (customer or {}).get("email")
    session.update(status="complete", payment_status=payment_status, url=None)
    session["customer_details"] = {
        "address": dict(payments.EMPTY_ADDRESS),
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": pending["name"],
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }
    session["collected_information"] = {"business_name": None, "individual_name": None, "shipping_details": None}
    session.pop("_pending", None)
    sb.emit("checkout.session.completed", session)


def after_async_payment(sb: Sandbox, pi: dict[str, Any], *, paid: bool) -> None:
    """A bank debit started on a Checkout page has settled: the session's ``payment_status`` becomes
    ``paid`` (or stays ``unpaid``) and Stripe sends ``checkout.session.async_payment_succeeded``
    (or ``checkout.session.async_payment_failed``)."""
    for session in sb.store.all("checkout.session"):
        if session.get("_awaiting") != pi["id"]:
            continue
        session.pop("_awaiting")
        if paid:
            invoiced = bool((session["invoice_creation"] or {}).get("enabled"))
            if session["mode"] == "payment" and invoiced and session["customer"]:
                _post_payment_invoice(sb, session, pi, sb.store.ref("customer", session["customer"]))
            session["payment_status"] = "paid"
        sb.emit("checkout.session.async_payment_succeeded" if paid else "checkout.session.async_payment_failed", session)


def expire(sb: Sandbox, session: dict[str, Any]) -> None:
    if session["status"] != "open":
        raise invalid(
            f"Only Checkout Sessions with a status in [\"open\"] can be expired; this one is {session['status']}.",
            code="checkout_session_expired" if session["status"] == "expired" else None,
        )
    session.update(status="expired", url=None)
    session.pop("_pending", None)
    sb.emit("checkout.session.expired", session)


def next_due(sb: Sandbox) -> int | None:
    dues = [s["expires_at"] for s in sb.store.scoped("checkout.session") if s["status"] == "open"]
    return min(dues) if dues else None


def run_due(sb: Sandbox) -> None:
    now = sb.now()
    for session in sb.store.scoped("checkout.session"):
        if session["status"] == "open" and session["expires_at"] <= now:
            expire(sb, session)
