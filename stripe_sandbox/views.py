"""How stored objects are shown: nested objects inlined as Stripe does, ``expand`` and includable fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stripe_sandbox import money, taxes
from stripe_sandbox.errors import invalid
from stripe_sandbox.state import public

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox


def _dispute(sb: Sandbox, dispute: dict[str, Any]) -> dict[str, Any]:
    out = dict(dispute)
    out["balance_transactions"] = [sb.view(sb.store.ref("balance_transaction", t)) for t in dispute["balance_transactions"]]
    return out


def plan_of(price: dict[str, Any]) -> dict[str, Any] | None:
    recurring = price.get("recurring")
    if not recurring:
        return None
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring["interval"],
        "interval_count": recurring["interval_count"],
        "livemode": False,
        "metadata": price["metadata"],
        "meter": None,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def subscription_item(sb: Sandbox, item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    price = sb.store.ref("price", item["price"])
    out["price"] = public(price)
    out["plan"] = plan_of(price)
    out["tax_rates"] = taxes.view_rates(sb, item["tax_rates"])
    return out


def _subscription(sb: Sandbox, sub: dict[str, Any]) -> dict[str, Any]:
    out = dict(sub)
    out["items"] = dict(sub["items"], data=[subscription_item(sb, item) for item in sub["items"]["data"]])
    out["default_tax_rates"] = taxes.view_rates(sb, sub["default_tax_rates"])
    return out


def _invoice(sb: Sandbox, invoice: dict[str, Any]) -> dict[str, Any]:
    return dict(invoice, default_tax_rates=taxes.view_rates(sb, invoice["default_tax_rates"]))


def _invoice_item(sb: Sandbox, item: dict[str, Any]) -> dict[str, Any]:
    return dict(item, tax_rates=taxes.view_rates(sb, item["tax_rates"]))


VIEWS: dict[str, Callable[[Sandbox, dict[str, Any]], dict[str, Any]]] = {
    "balance_transaction": money.view_balance_transaction,
    "dispute": _dispute,
    "invoice": _invoice,
    "invoiceitem": _invoice_item,
    "subscription": _subscription,
}


def view(sb: Sandbox, obj: dict[str, Any]) -> dict[str, Any]:
    shown = VIEWS.get(obj.get("object", ""))
    return public(shown(sb, obj) if shown else obj)


# includable fields: absent unless expanded
def _invoice_payments(sb: Sandbox, invoice: dict[str, Any]) -> dict[str, Any]:
    payments = [sb.view(p) for p in sb.store.all("invoice_payment") if p["invoice"] == invoice["id"]]
    payments.sort(key=lambda p: p["created"], reverse=True)
    return {"object": "list", "data": payments, "has_more": False, "url": f"/v1/invoice_payments?invoice={invoice['id']}"}


def _charge_refunds(sb: Sandbox, charge: dict[str, Any]) -> dict[str, Any]:
    stored = sb.store.ref("charge", charge["id"])
    refunds = [sb.view(sb.store.ref("refund", rid)) for rid in reversed(stored.get("_refunds", []))]
    return {"object": "list", "data": refunds, "has_more": False, "url": f"/v1/charges/{charge['id']}/refunds"}


def _session_line_items(sb: Sandbox, session: dict[str, Any]) -> dict[str, Any]:
    stored = sb.store.ref("checkout.session", session["id"])
    return {"object": "list", "data": public(stored["_line_items"]), "has_more": False, "url": f"/v1/checkout/sessions/{session['id']}/line_items"}


def _confirmation_secret(sb: Sandbox, invoice: dict[str, Any]) -> dict[str, Any] | None:
    stored = sb.store.get("invoice", invoice["id"])
    pi = sb.store.get("payment_intent", stored["_payment_intent"]) if stored and stored.get("_payment_intent") else None
    return {"client_secret": pi["client_secret"], "type": "payment_intent"} if pi else None


INCLUDABLE: dict[str, dict[str, Callable[[Sandbox, dict[str, Any]], Any]]] = {
    "charge": {"refunds": _charge_refunds},  # not returned by default since 2022-11-15
    "invoice": {"payments": _invoice_payments, "confirmation_secret": _confirmation_secret},
    "checkout.session": {"line_items": _session_line_items},
}


def expand(sb: Sandbox, shown: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    for path in paths:
        if not isinstance(path, str) or not path:
            raise invalid("Invalid expand parameter.", "expand")
        parts = path.split(".")
        if len(parts) > 4:
            raise invalid(f"You cannot expand more than 4 levels of a property ({path}).", "expand")
        _expand(sb, shown, parts, path)
    return shown


def _expand(sb: Sandbox, node: Any, parts: list[str], path: str) -> None:
    if not parts or node is None:
        return
    if isinstance(node, list):
        for item in node:
            _expand(sb, item, parts, path)
        return
    if not isinstance(node, dict):
        raise invalid(f"This property cannot be expanded ({path}).", "expand")
    head, rest = parts[0], parts[1:]
    kind = node.get("object")
    if head == "data" and kind in ("list", "search_result"):
        _expand(sb, node["data"], rest, path)
        return
    includable = INCLUDABLE.get(kind or "", {})
    if head in includable:
        node[head] = includable[head](sb, node)
    elif head not in node:
        raise invalid(f"This property cannot be expanded ({path}).", "expand")
    elif isinstance(node[head], str):
        found = sb.store.find(node[head])
        if found is None:
            raise invalid(f"This property cannot be expanded ({path}).", "expand")
        node[head] = sb.view(found[1])
    elif isinstance(node[head], list) and all(isinstance(v, str) for v in node[head]):
        expanded = []
        for ident in node[head]:
            found = sb.store.find(ident)
            expanded.append(sb.view(found[1]) if found else ident)
        node[head] = expanded
    _expand(sb, node[head], rest, path)
