"""Routes for customers, products, prices, payment methods, payment and setup intents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_sandbox import cards, catalog, payments, sepa, taxes
from stripe_sandbox.api import get_or_404, list_response, route, search_response
from stripe_sandbox.encoding import Params, merge_metadata
from stripe_sandbox.errors import StripeError, invalid, missing_param
from stripe_sandbox.webhooks import diff

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox


def updated(sb: Sandbox, obj: dict[str, Any], before: dict[str, Any], event: str) -> dict[str, Any]:
    after = sb.view(obj)
    changes = diff(before, after)
    if changes:
        sb.emit(event, obj, changes)
    return after


# customers -----------------------------------------------------------------

CUSTOMER_FIELDS = {
    "email", "name", "description", "phone", "metadata", "invoice_settings", "preferred_locales", "address", "payment_method",
    "test_clock", "tax_exempt", "balance",
}
TAX_EXEMPT = ("none", "exempt", "reverse")


@route("POST", "/v1/customers")
def create_customer(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known(CUSTOMER_FIELDS)
    customer = catalog.new_customer(
        sb,
        email=p.str("email"), name=p.str("name"), description=p.str("description"), phone=p.str("phone"),
        metadata=p.metadata() or {},
    )
    attached = None
    if pm_id := p.str("payment_method"):
        pm = payments.resolve_payment_method(sb, pm_id)
        payments.attach(sb, pm, customer["id"])
        attached = pm["id"]
    settings = p.dict("invoice_settings")
    if default_pm := settings.str("default_payment_method"):
        # Stripe's test PaymentMethods (pm_card_visa…) name the card just attached, as in its CLI fixtures
        _set_default_pm(sb, customer, attached if attached and default_pm == pm_id else default_pm)
    if "custom_fields" in settings:
        customer["invoice_settings"]["custom_fields"] = _custom_fields(settings)
    if p.int("balance") is not None:
        customer["balance"] = p.int("balance")
    if "tax_exempt" in p:
        customer["tax_exempt"] = p.str("tax_exempt", default="none", choices=TAX_EXEMPT)
    return sb.view(customer)


def _custom_fields(settings: Params) -> list[dict[str, str]] | None:
    """Up to 4 name/value pairs printed on the customer's invoices ("" clears them)."""
    fields = []
    for entry in settings.dicts("custom_fields"):
        entry.check_known({"name", "value"})
        name, value = entry.str("name", required=True), entry.str("value", required=True)
        if len(name) > 40 or len(value) > 140:
            raise invalid("Custom field names are limited to 40 characters and values to 140.", entry._name("name"))
        fields.append({"name": name, "value": value})
    if len(fields) > 4:
        raise invalid("You can have at most 4 custom fields.", "invoice_settings[custom_fields]")
    return fields or None


def _set_default_pm(sb: Sandbox, customer: dict[str, Any], pm_id: str) -> None:
    pm = get_or_404(sb, "payment_method", pm_id, "PaymentMethod")
    if pm["customer"] != customer["id"]:
        raise invalid(
            f"The customer does not have a payment method with the ID {pm_id}. The payment method must be attached to the customer.",
            "invoice_settings[default_payment_method]",
        )
    customer["invoice_settings"]["default_payment_method"] = pm_id


@route("GET", "/v1/customers/search")
def search_customers(sb: Sandbox, p: Params) -> dict[str, Any]:
    return search_response(sb, "customer", p, "/v1/customers/search")


@route("GET", "/v1/customers/{ident}")
def get_customer(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    customer = get_or_404(sb, "customer", ident)
    if customer.get("_deleted"):
        return {"id": ident, "object": "customer", "deleted": True}
    return sb.view(customer)


@route("POST", "/v1/customers/{ident}")
def update_customer(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known(CUSTOMER_FIELDS - {"payment_method", "test_clock"})
    customer = catalog.find_customer(sb, ident, "id")
    before = sb.view(customer)
    for field in ("email", "name", "description", "phone"):
        if field in p:
            customer[field] = p.str(field)
    if p.int("balance") is not None:
        customer["balance"] = p.int("balance")
    if "tax_exempt" in p:
        customer["tax_exempt"] = p.str("tax_exempt", default="none", choices=TAX_EXEMPT)
    customer["metadata"] = merge_metadata(customer["metadata"], p.metadata())
    settings = p.dict("invoice_settings")
    if "default_payment_method" in settings:
        if default_pm := settings.str("default_payment_method"):
            _set_default_pm(sb, customer, default_pm)
        else:
            customer["invoice_settings"]["default_payment_method"] = None
    if "custom_fields" in settings:
        customer["invoice_settings"]["custom_fields"] = _custom_fields(settings)
    return updated(sb, customer, before, "customer.updated")


@route("DELETE", "/v1/customers/{ident}")
def delete_customer(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    customer = catalog.find_customer(sb, ident, "id")
    from stripe_sandbox import billing

    for sub in sb.store.all("subscription"):
        if sub["customer"] == ident and sub["status"] in (*billing.LIVE_STATUSES, "incomplete", "paused"):
            billing.cancel_now(sb, sub)
    customer["_deleted"] = True
    sb.emit("customer.deleted", customer)
    return {"id": ident, "object": "customer", "deleted": True}


@route("GET", "/v1/customers")
def list_customers(sb: Sandbox, p: Params) -> dict[str, Any]:
    email, clock = p.str("email"), p.str("test_clock")
    return list_response(sb, "customer", p, "/v1/customers", lambda c: email in (None, c["email"]) and clock in (None, c.get("test_clock")),
                         extra={"email", "test_clock"})


@route("GET", "/v1/customers/{ident}/payment_methods")
def customer_payment_methods(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    catalog.find_customer(sb, ident, "customer")
    kind = p.str("type")
    return list_response(
        sb, "payment_method", p, f"/v1/customers/{ident}/payment_methods",
        lambda pm: pm["customer"] == ident and kind in (None, pm["type"]),
        extra={"type", "allow_redisplay"},
    )


@route("GET", "/v1/customers/{ident}/payment_methods/{pm_id}")
def customer_payment_method(sb: Sandbox, p: Params, ident: str, pm_id: str) -> dict[str, Any]:
    pm = get_or_404(sb, "payment_method", pm_id, "PaymentMethod")
    if pm["customer"] != ident:
        raise StripeError(404, f"No such PaymentMethod: '{pm_id}'", param="payment_method", code="resource_missing")
    return sb.view(pm)


# products and prices ---------------------------------------------------------


@route("POST", "/v1/products")
def create_product(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({
        "name", "description", "metadata", "active", "id", "default_price_data", "images", "tax_code", "unit_label",
        "statement_descriptor", "url", "shippable",
    })
    product = catalog.new_product(
        sb,
        name=p.str("name", required=True), description=p.str("description"), metadata=p.metadata() or {},
        active=p.bool("active", default=True), ident=p.str("id"),
    )
    data = p.dict("default_price_data")
    if data.data:
        data.check_known({"currency", "unit_amount", "recurring", "unit_amount_decimal", "tax_behavior"})
        price = catalog.new_price(
            sb,
            currency=catalog.parse_currency(data), unit_amount=data.int("unit_amount", required=True, minimum=0),
            product=product["id"], recurring=catalog.parse_recurring(data),
        )
        product["default_price"] = price["id"]
    return sb.view(product)


@route("GET", "/v1/products/search")
def search_products(sb: Sandbox, p: Params) -> dict[str, Any]:
    return search_response(sb, "product", p, "/v1/products/search")


@route("GET", "/v1/products/{ident}")
def get_product(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(get_or_404(sb, "product", ident))


@route("POST", "/v1/products/{ident}")
def update_product(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"name", "description", "metadata", "active", "default_price", "images", "unit_label", "statement_descriptor", "url"})
    product = get_or_404(sb, "product", ident)
    before = sb.view(product)
    for field in ("name", "description"):
        if field in p:
            product[field] = p.str(field)
    if "active" in p:
        product["active"] = p.bool("active")
    if "default_price" in p:
        price_id = p.str("default_price")
        product["default_price"] = catalog.find_price(sb, price_id, "default_price")["id"] if price_id else None
    product["metadata"] = merge_metadata(product["metadata"], p.metadata())
    product["updated"] = sb.now()
    return updated(sb, product, before, "product.updated")


@route("GET", "/v1/products")
def list_products(sb: Sandbox, p: Params) -> dict[str, Any]:
    active = p.bool("active")
    ids = set(p.strings("ids"))
    return list_response(
        sb, "product", p, "/v1/products",
        lambda o: (active is None or o["active"] == active) and (not ids or o["id"] in ids),
        extra={"active", "ids", "shippable", "url"},
    )


@route("POST", "/v1/prices")
def create_price(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({
        "currency", "unit_amount", "unit_amount_decimal", "product", "product_data", "recurring", "lookup_key",
        "transfer_lookup_key", "nickname", "metadata", "active", "tax_behavior", "billing_scheme",
    })
    if p.str("billing_scheme", default="per_unit") != "per_unit":
        raise invalid("The sandbox only supports per_unit prices.", "billing_scheme")
    currency = catalog.parse_currency(p)
    unit = p.int("unit_amount", minimum=0)
    if unit is None:
        decimal = p.str("unit_amount_decimal")
        if decimal is None:
            raise missing_param("unit_amount")
        if not decimal.isdigit():
            raise invalid("unit_amount_decimal: the sandbox only accepts whole minor units.", "unit_amount_decimal")
        unit = int(decimal)
    if product_id := p.str("product"):
        product = get_or_404(sb, "product", product_id)["id"]
    elif "product_data" in p:
        data = p.dict("product_data")
        data.check_known({"name", "metadata", "active", "statement_descriptor", "unit_label", "id", "tax_code"})
        product = catalog.new_product(sb, name=data.str("name", required=True), metadata=data.metadata() or {}, ident=data.str("id"))["id"]
    else:
        raise missing_param("product")
    lookup_key = p.str("lookup_key")
    if lookup_key:
        _claim_lookup_key(sb, lookup_key, p.bool("transfer_lookup_key", default=False))
    price = catalog.new_price(
        sb,
        currency=currency, unit_amount=unit, product=product, recurring=catalog.parse_recurring(p),
        lookup_key=lookup_key, nickname=p.str("nickname"), metadata=p.metadata() or {}, active=p.bool("active", default=True),
    )
    return sb.view(price)


def _claim_lookup_key(sb: Sandbox, lookup_key: str, transfer: bool, keep: str | None = None) -> None:
    for other in sb.store.all("price"):
        if other["lookup_key"] == lookup_key and other["id"] != keep:
            if not transfer:
                raise invalid(f"A price (`{other['id']}`) already uses that lookup key.", "lookup_key")
            other["lookup_key"] = None


@route("GET", "/v1/prices/search")
def search_prices(sb: Sandbox, p: Params) -> dict[str, Any]:
    return search_response(sb, "price", p, "/v1/prices/search")


@route("GET", "/v1/prices/{ident}")
def get_price(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(get_or_404(sb, "price", ident))


@route("POST", "/v1/prices/{ident}")
def update_price(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"active", "metadata", "nickname", "lookup_key", "transfer_lookup_key", "tax_behavior"})
    price = get_or_404(sb, "price", ident)
    before = sb.view(price)
    if "active" in p:
        price["active"] = p.bool("active")
    if "nickname" in p:
        price["nickname"] = p.str("nickname")
    if "lookup_key" in p:
        key = p.str("lookup_key")
        if key:
            _claim_lookup_key(sb, key, p.bool("transfer_lookup_key", default=False), keep=price["id"])
        price["lookup_key"] = key
    price["metadata"] = merge_metadata(price["metadata"], p.metadata())
    return updated(sb, price, before, "price.updated")


@route("GET", "/v1/prices")
def list_prices(sb: Sandbox, p: Params) -> dict[str, Any]:
    active, product, kind, currency = p.bool("active"), p.str("product"), p.str("type"), p.str("currency")
    lookup_keys = set(p.strings("lookup_keys"))
    interval = p.dict("recurring").str("interval")

    def where(price: dict[str, Any]) -> bool:
        return (
            (active is None or price["active"] == active)
            and product in (None, price["product"])
            and kind in (None, price["type"])
            and currency in (None, price["currency"])
            and (not lookup_keys or price["lookup_key"] in lookup_keys)
            and (interval is None or (price["recurring"] or {}).get("interval") == interval)
        )

    return list_response(sb, "price", p, "/v1/prices", where, extra={"active", "product", "type", "currency", "lookup_keys", "recurring"})


# payment methods -------------------------------------------------------------


@route("POST", "/v1/payment_methods")
def create_payment_method(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({"type", "card", "sepa_debit", "billing_details", "metadata", "allow_redisplay", "customer", "payment_method"})
    kind = p.str("type", required=True)
    if kind == "sepa_debit":
        return sb.view(sepa.from_params(sb, p))
    if kind != "card":
        raise invalid("The sandbox supports card and sepa_debit payment methods.", "type")
    card = p.dict("card")
    card.check_known({"token", "number", "exp_month", "exp_year", "cvc"})
    pm = card_from_params(sb, card)
    details = p.dict("billing_details")
    pm["billing_details"].update(name=details.str("name"), email=details.str("email"), phone=details.str("phone"))
    pm["metadata"] = p.metadata() or {}
    return sb.view(pm)


def card_from_params(sb: Sandbox, card: Params) -> dict[str, Any]:
    token = card.str("token")
    if token:
        if token not in cards.TEST_TOKENS:
            raise StripeError(404, f"No such token: '{token}'", param=card._name("token"), code="resource_missing")
        return payments.resolve_payment_method(sb, token)
    number = cards.normalise_number(card.str("number", required=True))
    if not number.isdigit() or not cards.luhn_ok(number):
        raise StripeError(402, "Your card number is incorrect.", type="card_error", code="incorrect_number", param=card._name("number"))
    month, year = card.int("exp_month", required=True), card.int("exp_year", required=True)
    if year < 100:
        year += 2000
    import datetime as dt

    today = dt.datetime.fromtimestamp(sb.now(), dt.UTC)
    if not 1 <= month <= 12:
        raise StripeError(402, "Your card's expiration month is invalid.", type="card_error", code="invalid_expiry_month", param=card._name("exp_month"))
    if (year, month) < (today.year, today.month):
        raise StripeError(402, "Your card's expiration year is invalid.", type="card_error", code="invalid_expiry_year", param=card._name("exp_year"))
    return payments.new_card_payment_method(sb, number, month, year)


@route("GET", "/v1/payment_methods/{ident}")
def get_payment_method(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    if ident in cards.TEST_PAYMENT_METHODS:
        return sb.view(payments.resolve_payment_method(sb, ident))
    return sb.view(get_or_404(sb, "payment_method", ident, "PaymentMethod"))


@route("POST", "/v1/payment_methods/{ident}")
def update_payment_method(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"metadata", "billing_details", "card", "allow_redisplay"})
    pm = get_or_404(sb, "payment_method", ident, "PaymentMethod")
    before = sb.view(pm)
    pm["metadata"] = merge_metadata(pm["metadata"], p.metadata())
    details = p.dict("billing_details")
    for field in ("name", "email", "phone"):
        if field in details:
            pm["billing_details"][field] = details.str(field)
    card = p.dict("card")
    for field in ("exp_month", "exp_year"):
        if field in card:
            pm["card"][field] = card.int(field)
    return updated(sb, pm, before, "payment_method.updated")


@route("POST", "/v1/payment_methods/{ident}/attach")
def attach_payment_method(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"customer"})
    customer = catalog.find_customer(sb, p.str("customer", required=True))
    pm = payments.resolve_payment_method(sb, ident, "payment_method")
    payments.attach(sb, pm, customer["id"])
    return sb.view(pm)


@route("POST", "/v1/payment_methods/{ident}/detach")
def detach_payment_method(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known(set())
    pm = get_or_404(sb, "payment_method", ident, "PaymentMethod")
    payments.detach(sb, pm)
    return sb.view(pm)


@route("GET", "/v1/payment_methods")
def list_payment_methods(sb: Sandbox, p: Params) -> dict[str, Any]:
    customer, kind = p.str("customer"), p.str("type")
    return list_response(
        sb, "payment_method", p, "/v1/payment_methods",
        lambda pm: customer in (None, pm["customer"]) and kind in (None, pm["type"]),
        extra={"customer", "type"},
    )


# tax rates -------------------------------------------------------------------

TAX_RATE_FIELDS = {"active", "description", "display_name", "jurisdiction", "metadata", "tax_type", "country", "state"}


@route("POST", "/v1/tax_rates")
def create_tax_rate(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known(TAX_RATE_FIELDS | {"percentage", "inclusive"})
    return sb.view(taxes.new_tax_rate(sb, p))


@route("GET", "/v1/tax_rates/{ident}")
def get_tax_rate(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(taxes.find(sb, ident))


@route("POST", "/v1/tax_rates/{ident}")
def update_tax_rate(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    rate = taxes.find(sb, ident)
    for immutable in ("percentage", "inclusive"):  # Stripe: create a new rate instead
        if immutable in p:
            raise StripeError(400, f"Received unknown parameter: {immutable}", param=immutable, code="parameter_unknown")
    p.check_known(TAX_RATE_FIELDS)
    before = sb.view(rate)
    taxes.set_fields(rate, p)
    return updated(sb, rate, before, "tax_rate.updated")


@route("GET", "/v1/tax_rates")
def list_tax_rates(sb: Sandbox, p: Params) -> dict[str, Any]:
    filters = {k: p.bool(k) for k in ("active", "inclusive")}
    return list_response(sb, "tax_rate", p, "/v1/tax_rates", lambda r: all(v in (None, r[k]) for k, v in filters.items()), extra=set(filters))
