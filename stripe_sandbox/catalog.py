"""Customers, products and prices."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Literal, overload

from stripe_sandbox.encoding import Params
from stripe_sandbox.errors import invalid, not_found

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

INTERVALS = ("day", "week", "month", "year")


def new_customer(
    sb: Sandbox,
    *,
    email: str | None = None,
    name: str | None = None,
    description: str | None = None,
    phone: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    customer: dict[str, Any] = {
        "id": sb.store.new_id("customer"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": sb.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "invoice_prefix": secrets.token_hex(4).upper(),
        "business_name": None,
        "individual_name": None,
        "customer_account": None,
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None, "rendering_options": None},
        "livemode": False,
        "metadata": metadata or {},
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": sb.store.clock,  # a customer created on a test clock lives on it
    }
    sb.store.put("customer", customer)
    sb.emit("customer.created", customer)
    return customer


def find_customer(sb: Sandbox, ident: str, param: str = "customer") -> dict[str, Any]:
    customer = sb.store.get("customer", ident)
    if customer is None or customer.get("_deleted"):
        raise not_found("customer", ident, param)
    return customer


def new_product(
    sb: Sandbox,
    *,
    name: str,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    active: bool = True,
    ident: str | None = None,
) -> dict[str, Any]:
    now = sb.now()
    if ident and sb.store.get("product", ident):
        raise invalid("Product already exists.", "id", "resource_already_exists")
    product = {
        "id": ident or sb.store.new_id("product"),
        "object": "product",
        "active": active,
        "created": now,
        "default_price": None,
        "description": description,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata or {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    sb.store.put("product", product)
    sb.emit("product.created", product)
    return product


def new_price(
    sb: Sandbox,
    *,
    currency: str,
    unit_amount: int,
    product: str,
    recurring: dict[str, Any] | None = None,
    lookup_key: str | None = None,
    nickname: str | None = None,
    metadata: dict[str, str] | None = None,
    active: bool = True,
    inline: bool = False,
) -> dict[str, Any]:
    price = {
        "id": sb.store.new_id("price"),
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": sb.now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": metadata or {},
        "nickname": nickname,
        "product": product,
        "recurring": (
            {
                "interval": recurring["interval"],
                "interval_count": recurring["interval_count"],
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
            if recurring
            else None
        ),
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
        "_inline": inline,
    }
    sb.store.put("price", price)
    if not inline:
        sb.emit("price.created", price)
    return price


@overload
def parse_currency(p: Params, key: str = ..., required: Literal[True] = ...) -> str: ...
@overload
def parse_currency(p: Params, key: str = ..., *, required: bool) -> str | None: ...
def parse_currency(p: Params, key: str = "currency", required: bool = True) -> str | None:
    currency = p.str(key, required=required)
    if currency is None:
        return None
    if len(currency) != 3 or not currency.isalpha():
        raise invalid(f"Invalid currency: {currency}.", p._name(key))
    return currency.lower()


def parse_recurring(p: Params) -> dict[str, Any] | None:
    if "recurring" not in p:
        return None
    recurring = p.dict("recurring")
    recurring.check_known({"interval", "interval_count", "usage_type", "trial_period_days"})
    interval = recurring.str("interval", required=True, choices=INTERVALS)
    count = recurring.int("interval_count", default=1, minimum=1)
    return {"interval": interval, "interval_count": count}


def price_from_data(sb: Sandbox, data: Params) -> dict[str, Any]:
    """An inline price from ``price_data`` (Checkout line items, subscription items, invoice items)."""
    data.check_known({"currency", "unit_amount", "unit_amount_decimal", "product", "product_data", "recurring", "tax_behavior"})
    currency = parse_currency(data)
    unit = data.int("unit_amount", minimum=0)
    if unit is None:
        decimal = data.str("unit_amount_decimal", required=True)
        if not decimal.isdigit():
            raise invalid("unit_amount_decimal: the sandbox only accepts whole minor units.", data._name("unit_amount_decimal"))
        unit = int(decimal)
    product_id = data.str("product")
    if product_id:
        if not sb.store.get("product", product_id):
            raise not_found("product", product_id, data._name("product"))
    else:
        pdata = data.dict("product_data")
        pdata.check_known({"name", "description", "metadata", "images", "tax_code", "unit_label"})
        product_id = new_product(sb, name=pdata.str("name", required=True), description=pdata.str("description"), metadata=pdata.metadata() or {})["id"]
    return new_price(sb, currency=currency, unit_amount=unit, product=product_id, recurring=parse_recurring(data), active=False, inline=True)


def find_price(sb: Sandbox, ident: str, param: str) -> dict[str, Any]:
    price = sb.store.get("price", ident)
    if price is None:
        raise not_found("price", ident, param)
    return price
