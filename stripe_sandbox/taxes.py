"""Tax Rates (``txr_…``) and how Stripe applies them to invoice lines, invoices and Checkout line items.

Stripe computes tax per line and rounds it per line (half away from zero):
exclusive rates add ``amount × rate`` on top of the line; inclusive rates are already in
the line's amount, whose taxable part is ``amount / (1 + rate)`` and tax ``amount − taxable``.
An invoice's ``total_taxes`` adds the lines' taxes up per rate.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from stripe_sandbox.encoding import Params, merge_metadata
from stripe_sandbox.errors import invalid, missing_param, not_found

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

MAX_RATES_PER_LINE = 10  # "You can add up to ten tax rates to each line item" (docs.stripe.com/invoicing/taxes/tax-rates)
TAX_TYPES = (
    "amusement_tax", "communications_tax", "gst", "hst", "igst", "jct", "lease_tax", "pst", "qst", "retail_delivery_fee", "rst",
    "sales_tax", "service_tax", "vat",
)


def parse_percentage(p: Params) -> Decimal:
    raw = p.raw("percentage")
    if raw is None or raw == "":
        raise missing_param("percentage")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise invalid(f"Invalid decimal: {raw}", "percentage") from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise invalid("percentage must be a number between 0 and 100.", "percentage")
    return value


def new_tax_rate(sb: Sandbox, p: Params) -> dict[str, Any]:
    display_name = p.str("display_name", required=True)
    percentage = parse_percentage(p)
    inclusive = p.bool("inclusive")
    if inclusive is None:
        raise missing_param("inclusive")
    rate = {
        "id": sb.store.new_id("tax_rate"),
        "object": "tax_rate",
        "active": p.bool("active", default=True),
        "country": None,
        "created": sb.now(),
        "description": None,
        "display_name": display_name,
        "effective_percentage": float(percentage),
        "flat_amount": None,
        "inclusive": inclusive,
        "jurisdiction": None,
        "jurisdiction_level": None,
        "livemode": False,
        "metadata": {},
        "percentage": float(percentage),  # a float in Stripe's API: 20.0, 5.5
        "rate_type": "percentage",
        "state": None,
        "tax_type": None,
    }
    set_fields(rate, p)
    sb.store.put("tax_rate", rate)
    sb.emit("tax_rate.created", rate)
    return rate


def set_fields(rate: dict[str, Any], p: Params) -> None:
    """The fields both create and update take; all are checked before any is changed."""
    changes: dict[str, Any] = {"metadata": merge_metadata(rate["metadata"], p.metadata())}
    for field in ("description", "jurisdiction", "state"):
        if field in p:
            changes[field] = p.str(field)
    if "display_name" in p:
        changes["display_name"] = p.str("display_name", required=True)
    if "country" in p:
        country = p.str("country")
        if country is not None and (len(country) != 2 or not country.isalpha()):
            raise invalid("Country must be a two-letter ISO 3166-1 alpha-2 code.", "country")
        changes["country"] = country.upper() if country else None
    if "tax_type" in p:
        changes["tax_type"] = p.str("tax_type", choices=TAX_TYPES)
    if "active" in p:
        changes["active"] = p.bool("active", default=True)
    rate.update(changes)


def find(sb: Sandbox, ident: str, param: str = "id") -> dict[str, Any]:
    """The tax rate ``ident`` names (``param``: where the request named it, for the 404)."""
    if (rate := sb.store.get("tax_rate", ident)) is None:
        raise not_found("tax_rate", ident, param)
    return rate


def parse_ids(sb: Sandbox, p: Params, key: str, *, keep: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The tax rate ids of ``p[key]`` ("" clears them); new ones must exist and be active, as Stripe checks."""
    ids = p.strings(key)
    if len(ids) > MAX_RATES_PER_LINE:
        raise invalid(f"You can pass at most {MAX_RATES_PER_LINE} tax rates.", p._name(key))
    for index, ident in enumerate(ids):
        rate = find(sb, ident, f"{p._name(key)}[{index}]")
        if not rate["active"] and ident not in keep:
            raise invalid(f"Tax rate {ident} is inactive and cannot be applied to new objects.", f"{p._name(key)}[{index}]")
    if len(set(ids)) != len(ids):
        raise invalid("Each tax rate can only be applied once.", p._name(key))
    return ids


def view_rates(sb: Sandbox, ids: list[str]) -> list[dict[str, Any]]:
    """Tax rates as objects, the way Stripe inlines ``tax_rates`` and ``default_tax_rates``."""
    return [dict(sb.store.ref("tax_rate", ident)) for ident in ids]


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line_taxes(sb: Sandbox, amount: int, ids: list[str]) -> list[dict[str, Any]]:
    """A line's ``taxes``: one entry per rate, each rounded on its own.

    Tax Rates are applied as given: the customer's ``tax_exempt`` only matters to Stripe Tax, which the sandbox does not do.
    """
    rates = [sb.store.ref("tax_rate", ident) for ident in ids]
    inclusive = [r for r in rates if r["inclusive"]]
    inclusive_sum = sum((Decimal(str(r["percentage"])) for r in inclusive), Decimal(0))
    net = _round(Decimal(amount) * 100 / (100 + inclusive_sum)) if inclusive else amount
    taxes = []
    for rate in rates:
        # one inclusive rate: the tax is what the amount holds beyond its taxable part (no cent lost to rounding twice)
        sole_inclusive = rate["inclusive"] and len(inclusive) == 1
        tax = amount - net if sole_inclusive else _round(Decimal(net) * Decimal(str(rate["percentage"])) / 100)
        taxes.append({
            "amount": tax,
            "tax_behavior": "inclusive" if rate["inclusive"] else "exclusive",
            "tax_rate_details": {"tax_rate": rate["id"]},
            "taxability_reason": "standard_rated",
            "taxable_amount": net,
            "type": "tax_rate_details",
        })
    return taxes


def inclusive_tax(taxes: list[dict[str, Any]]) -> int:
    return sum(t["amount"] for t in taxes if t["tax_behavior"] == "inclusive")


def exclusive_tax(taxes: list[dict[str, Any]]) -> int:
    return sum(t["amount"] for t in taxes if t["tax_behavior"] == "exclusive")


def total_taxes(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An invoice's ``total_taxes``: the lines' taxes added up per rate, in order of first use."""
    by_rate: dict[str, dict[str, Any]] = {}
    for line in lines:
        for tax in line["taxes"]:
            key = tax["tax_rate_details"]["tax_rate"]
            if key in by_rate:
                by_rate[key]["amount"] += tax["amount"]
                by_rate[key]["taxable_amount"] += tax["taxable_amount"]
            else:
                by_rate[key] = {**tax, "tax_rate_details": dict(tax["tax_rate_details"])}
    return list(by_rate.values())
