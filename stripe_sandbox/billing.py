"""Subscriptions: creation, renewals on the clock, plan changes with prorations, cancellation, dunning, previews."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stripe_sandbox import cards, invoices, money, payments
from stripe_sandbox.errors import StripeError, invalid, not_found
from stripe_sandbox.webhooks import diff

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

DAY = 86_400
INCOMPLETE_EXPIRES_AFTER = 23 * 3_600
TRIAL_WILL_END_BEFORE = 3 * DAY
LIVE_STATUSES = ("trialing", "active", "past_due", "unpaid")
PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")


@dataclass
class ItemSpec:
    price: dict[str, Any]
    quantity: int
    metadata: dict[str, str]
    item_id: str | None = None  # an existing subscription item
    deleted: bool = False
    tax_rates: list[str] | None = None  # None: keep the item's (none for a new item)


def period_end(start: int, anchor: int, interval: str, count: int) -> int:
    """The end of the period that starts at ``start``, keeping the anchor's day of month and time of day."""
    if interval == "day":
        return start + count * DAY
    if interval == "week":
        return start + 7 * count * DAY
    months = count * (12 if interval == "year" else 1)
    begin = dt.datetime.fromtimestamp(start, dt.UTC)
    anchor_at = dt.datetime.fromtimestamp(anchor, dt.UTC)
    index = begin.year * 12 + (begin.month - 1) + months
    year, month = divmod(index, 12)
    day = min(anchor_at.day, calendar.monthrange(year, month + 1)[1])
    end = dt.datetime(year, month + 1, day, anchor_at.hour, anchor_at.minute, anchor_at.second, tzinfo=dt.UTC)
    return int(end.timestamp())


def prorate(amount: int, remaining: int, total: int) -> int:
    return money.div_half_up(amount * remaining, total) if total > 0 else 0


def _price(sb: Sandbox, sub_or_item: dict[str, Any]) -> dict[str, Any]:
    return sb.store.ref("price", sub_or_item["price"])


def _period(sub: dict[str, Any]) -> tuple[int, int]:
    item = sub["items"]["data"][0]
    return item["current_period_start"], item["current_period_end"]


def _recurring(sub: dict[str, Any], sb: Sandbox) -> dict[str, Any]:
    return _price(sb, sub["items"]["data"][0])["recurring"]


def check_items(specs: list[ItemSpec]) -> None:
    live = [s for s in specs if not s.deleted]
    if not live:
        raise invalid("A subscription needs at least one item.", "items")
    currencies = {s.price["currency"] for s in live}
    if len(currencies) > 1:
        raise invalid("All prices on a subscription must use the same currency.", "items")
    for spec in live:
        if not spec.price.get("recurring"):
            raise invalid(f"The price specified ({spec.price['id']}) is a one-time price; subscriptions need recurring prices.", "items")
        if not spec.price["active"] and not spec.price.get("_inline") and spec.item_id is None:
            raise invalid(f"The price specified ({spec.price['id']}) is inactive. This field only accepts active prices.", "items")
    intervals = {(s.price["recurring"]["interval"], s.price["recurring"]["interval_count"]) for s in live}
    if len(intervals) > 1:
        raise invalid("All prices on a subscription must have the same recurring interval.", "items")


def _new_item(sb: Sandbox, sub: dict[str, Any], spec: ItemSpec, period: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": sb.store.sub_id("si"),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": sb.now(),
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": spec.metadata,
        "price": spec.price["id"],
        "quantity": spec.quantity,
        "subscription": sub["id"],
        "tax_rates": list(spec.tax_rates or []),
    }


def create_subscription(
    sb: Sandbox,
    *,
    customer: dict[str, Any],
    specs: list[ItemSpec],
    default_payment_method: str | None,
    metadata: dict[str, str],
    description: str | None = None,
    trial_end: int | None = None,
    payment_behavior: str = "allow_incomplete",
    off_session: bool = False,
    cancel_at_period_end: bool = False,
    missing_payment_method: str = "create_invoice",
    authenticated: bool = False,
    default_tax_rates: list[str] | None = None,
) -> dict[str, Any]:
    check_items(specs)
    now = sb.now()
    pm_id = default_payment_method or customer["invoice_settings"]["default_payment_method"]
    if payment_behavior == "error_if_incomplete" and not trial_end:
        if not pm_id:
            raise invalid("This customer has no attached payment source or default payment method.", "default_payment_method", "resource_missing")
        pm = sb.store.ref("payment_method", pm_id)
        outcome = cards.payment_outcome(payments.card_of(pm), off_session=off_session, set_up=pm["_set_up"], authenticated=authenticated)
        if outcome.kind != "succeeded":
            if outcome.kind != "declined":
                outcome = cards.Outcome("declined", "authentication_required", "authentication_required")
            raise payments.card_error(outcome)
    recurring = specs[0].price["recurring"]
    anchor = trial_end or now
    end = trial_end or period_end(now, now, recurring["interval"], recurring["interval_count"])
    sub = {
        "id": sb.store.new_id("subscription"),
        "object": "subscription",
        "presentment_details": None,
        "status_details": None,
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": anchor,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": end if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": now if cancel_at_period_end else None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": "cancellation_requested" if cancel_at_period_end else None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": specs[0].price["currency"],
        "customer": customer["id"],
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": list(default_tax_rates or []),
        "description": description,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "custom_fields": None, "description": None, "footer": None, "issuer": {"type": "self"}},
        "items": {"object": "list", "data": [], "has_more": False, "url": ""},
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {"payment_method_options": None, "payment_method_types": None, "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "trialing" if trial_end else "incomplete",
        "test_clock": None,
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": missing_payment_method}},
        "trial_start": now if trial_end else None,
    }
    sub["items"]["url"] = f"/v1/subscription_items?subscription={sub['id']}"
    sub["items"]["data"] = [_new_item(sb, sub, spec, (now, end)) for spec in specs]
    sb.store.put("subscription", sub)
    sb.emit("customer.subscription.created", sub)
    invoice = invoices.new_invoice(sb, customer=customer["id"], currency=sub["currency"], billing_reason="subscription_create", subscription=sub)
    lines = []
    for item in sub["items"]["data"]:
        price = _price(sb, item)
        if trial_end:
            lines.append(invoices.price_line(
                sb, price, item["quantity"], (now, end),
                subscription=sub, item_id=item["id"],
                amount=0, description=f"Trial period for {invoices.product_name(sb, price)}", tax_rates=item["tax_rates"],
            ))
        else:
            lines.append(invoices.price_line(sb, price, item["quantity"], (now, end), subscription=sub, item_id=item["id"], tax_rates=item["tax_rates"]))
    invoices.add_lines(sb, invoice, lines)
    if not trial_end:
        invoices.pull_pending_items(sb, invoice, sub["id"])
    sub["latest_invoice"] = invoice["id"]
    sb.emit("invoice.created", invoice)
    invoices.finalize(sb, invoice)
    if invoice["status"] == "open" and payment_behavior != "default_incomplete":
        invoices.attempt(sb, invoice, off_session=off_session, authenticated=authenticated, automatic=False)
    return sub


def after_invoice_paid(sb: Sandbox, sub: dict[str, Any], invoice: dict[str, Any]) -> None:
    if sub["status"] in ("incomplete", "past_due", "unpaid"):
        others = [i for i in sb.store.all("invoice") if i["status"] == "open" and invoices._subscription(sb, i) is sub]
        if not others:
            _set_status(sb, sub, "active")


def after_invoice_failed(sb: Sandbox, sub: dict[str, Any], invoice: dict[str, Any], *, exhausted: bool) -> None:
    if invoice["billing_reason"] == "subscription_create":
        return
    if sub["status"] in ("active", "trialing"):
        _set_status(sb, sub, "past_due")
    if exhausted and sub["status"] == "past_due":
        if sb.after_last_failure == "canceled":
            cancel_now(sb, sub, reason="payment_failed")
        else:
            _set_status(sb, sub, "unpaid")


def _set_status(sb: Sandbox, sub: dict[str, Any], status: str) -> None:
    before = sb.view(sub)
    sub["status"] = status
    sb.emit("customer.subscription.updated", sub, diff(before, sb.view(sub)))


def cancel_now(
    sb: Sandbox,
    sub: dict[str, Any],
    *,
    reason: str = "cancellation_requested",
    at: int | None = None,
    prorate_unused: bool = False,
    invoice_now: bool = False,
) -> None:
    if sub["status"] in ("canceled", "incomplete_expired"):
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.", code="resource_missing")
    moment = at or sb.now()
    if prorate_unused and sub["status"] in ("active", "past_due"):
        start, end = _period(sub)
        for item in sub["items"]["data"]:
            price = _price(sb, item)
            credit = prorate(price["unit_amount"] * item["quantity"], end - moment, end - start)
            if credit:
                invoices.new_invoice_item(
                    sb, customer=sub["customer"], amount=-credit, currency=price["currency"], subscription=sub["id"], proration=True,
                    description=f"Unused time on {item['quantity']} × {invoices.product_name(sb, price)} after {_date(moment)}",
                    metadata={}, period=(moment, end), price=price, quantity=item["quantity"], tax_rates=item["tax_rates"],
                )
    sub.update(status="canceled", ended_at=moment, canceled_at=sub["canceled_at"] or moment)
    sub["cancellation_details"]["reason"] = sub["cancellation_details"]["reason"] or reason
    sb.emit("customer.subscription.deleted", sub)
    stop_collection(sb, sub["customer"])
    if invoice_now and invoices.pending_items(sb, sub["customer"], sub["id"]):
        _invoice_immediately(sb, sub, "subscription_update", period=(moment, moment))


def stop_collection(sb: Sandbox, customer: str) -> None:
    """What Stripe does on a cancellation: "By default, upon subscription cancellation, Stripe stops
    automatic collection of all finalized invoices for the customer" (API reference, Cancel a
    subscription) — no retry of an open invoice after the customer has left; one can still pay it."""
    for invoice in sb.store.all("invoice"):
        if invoice["customer"] == customer and invoice["status"] == "open" and invoice["auto_advance"]:
            before = sb.view(invoice)
            invoice.update(auto_advance=False, next_payment_attempt=None)
            sb.emit("invoice.updated", invoice, diff(before, sb.view(invoice)))


def _item_line(sb: Sandbox, sub: dict[str, Any], item: dict[str, Any], period: tuple[int, int]) -> dict[str, Any]:
    """The invoice line billing a subscription item for ``period``, with the item's tax rates."""
    return invoices.price_line(sb, _price(sb, item), item["quantity"], period, subscription=sub, item_id=item["id"], tax_rates=item["tax_rates"])


def _spec_line(sb: Sandbox, sub: dict[str, Any], spec: ItemSpec, period: tuple[int, int]) -> dict[str, Any]:
    """The line a previewed item (``spec``) would bill for ``period``."""
    current = {i["id"]: i for i in sub["items"]["data"]}
    rates = spec.tax_rates if spec.tax_rates is not None else (current[spec.item_id]["tax_rates"] if spec.item_id in current else [])
    return invoices.price_line(sb, spec.price, spec.quantity, period, subscription=sub, item_id=spec.item_id, tax_rates=rates)


def _date(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%d %b %Y")


def _invoice_immediately(
    sb: Sandbox,
    sub: dict[str, Any],
    reason: str,
    *,
    period: tuple[int, int],
    lines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    invoice = invoices.new_invoice(sb, customer=sub["customer"], currency=sub["currency"], billing_reason=reason, subscription=sub, period=period)
    invoices.add_lines(sb, invoice, lines or [])
    invoices.pull_pending_items(sb, invoice, sub["id"])
    sub["latest_invoice"] = invoice["id"]
    sb.emit("invoice.created", invoice)
    invoices.finalize(sb, invoice)
    if invoice["status"] == "open":
        invoices.attempt(sb, invoice)
    return invoice


# plan changes --------------------------------------------------------------


def _proration_lines(sb: Sandbox, sub: dict[str, Any], specs: list[ItemSpec], moment: int) -> tuple[list[dict[str, Any]], bool]:
    """Proration entries (as dicts for invoice items) for moving the current items to ``specs``, and whether the interval changes."""
    start, end = _period(sub)
    current = {item["id"]: item for item in sub["items"]["data"]}
    old_interval = _recurring(sub, sb)
    live = [s for s in specs if not s.deleted]
    new_interval = live[0].price["recurring"] if live else old_interval
    resets = (new_interval["interval"], new_interval["interval_count"]) != (old_interval["interval"], old_interval["interval_count"])
    entries = []
    remaining, total = end - moment, end - start
    touched = {s.item_id for s in specs if s.item_id}
    for spec in specs:
        old = current.get(spec.item_id) if spec.item_id else None
        new_rates = spec.tax_rates if spec.tax_rates is not None else (old["tax_rates"] if old else [])
        changed = (
            old is None or spec.deleted or old["price"] != spec.price["id"] or old["quantity"] != spec.quantity or resets
            or new_rates != old["tax_rates"]
        )
        if not changed:
            continue
        if old is not None:
            old_price = _price(sb, old)
            entries.append({
                "amount": -prorate(old_price["unit_amount"] * old["quantity"], remaining, total),
                "price": old_price, "quantity": old["quantity"], "tax_rates": old["tax_rates"],
                "description": f"Unused time on {old['quantity']} × {invoices.product_name(sb, old_price)} after {_date(moment)}",
            })
        if not spec.deleted and not resets:
            entries.append({
                "amount": prorate(spec.price["unit_amount"] * spec.quantity, remaining, total),
                "price": spec.price, "quantity": spec.quantity, "tax_rates": new_rates,
                "description": f"Remaining time on {spec.quantity} × {invoices.product_name(sb, spec.price)} after {_date(moment)}",
            })
    if resets:  # items not mentioned are replaced too when the interval changes
        for item_id, item in current.items():
            if item_id not in touched:
                old_price = _price(sb, item)
                entries.append({
                    "amount": -prorate(old_price["unit_amount"] * item["quantity"], remaining, total),
                    "price": old_price, "quantity": item["quantity"], "tax_rates": item["tax_rates"],
                    "description": f"Unused time on {item['quantity']} × {invoices.product_name(sb, old_price)} after {_date(moment)}",
                })
    for entry in entries:
        entry["period"] = (moment, end)
    return [e for e in entries if e["amount"]], resets


def merged_specs(sb: Sandbox, sub: dict[str, Any], specs: list[ItemSpec]) -> list[ItemSpec]:
    """The subscription's items after applying ``specs`` (updates by id, additions, deletions)."""
    by_id = {s.item_id: s for s in specs if s.item_id}
    merged = []
    for item in sub["items"]["data"]:
        spec = by_id.get(item["id"])
        merged.append(spec or ItemSpec(_price(sb, item), item["quantity"], item["metadata"], item["id"], tax_rates=item["tax_rates"]))
    merged += [s for s in specs if not s.item_id]
    return merged


def update_items(
    sb: Sandbox,
    sub: dict[str, Any],
    specs: list[ItemSpec],
    *,
    proration_behavior: str,
    proration_date: int | None,
) -> Callable[[], object] | None:
    """Apply an item change; returns what is left to do once the change is announced (an immediate invoice), if anything."""
    if sub["status"] in ("canceled", "incomplete_expired"):
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
    for spec in specs:
        if spec.item_id and spec.item_id not in {i["id"] for i in sub["items"]["data"]}:
            raise invalid(f"Subscription item {spec.item_id} does not belong to subscription {sub['id']}.", "items")
    merged = merged_specs(sb, sub, specs)
    check_items(merged)
    moment = proration_date or sb.now()
    entries, resets = _proration_lines(sb, sub, merged, moment)
    if proration_behavior != "none":
        for entry in entries:
            invoices.new_invoice_item(
                sb, customer=sub["customer"], amount=entry["amount"], currency=sub["currency"], subscription=sub["id"], proration=True,
                description=entry["description"], metadata={}, period=entry["period"], price=entry["price"], quantity=entry["quantity"],
                tax_rates=entry["tax_rates"],
            )
    start, end = _period(sub)
    if resets:
        recurring = next(s for s in merged if not s.deleted).price["recurring"]
        start, end = moment, period_end(moment, moment, recurring["interval"], recurring["interval_count"])
        sub["billing_cycle_anchor"] = moment
    items = []
    existing = {i["id"]: i for i in sub["items"]["data"]}
    for spec in merged:
        if spec.deleted:
            continue
        item = existing.get(spec.item_id) if spec.item_id else None
        if item is None:
            item = _new_item(sb, sub, spec, (start, end))
        item.update(price=spec.price["id"], quantity=spec.quantity, metadata=spec.metadata, current_period_start=start, current_period_end=end)
        if spec.tax_rates is not None:
            item["tax_rates"] = list(spec.tax_rates)
        items.append(item)
    sub["items"]["data"] = items
    if resets:
        lines = [_item_line(sb, sub, i, (start, end)) for i in items]
        return lambda: _invoice_immediately(sb, sub, "subscription_update", period=(moment, moment), lines=lines)
    if proration_behavior == "always_invoice" and invoices.pending_items(sb, sub["customer"], sub["id"]):
        return lambda: _invoice_immediately(sb, sub, "subscription_update", period=(moment, moment))
    return None


def preview(
    sb: Sandbox,
    customer: dict[str, Any],
    sub: dict[str, Any] | None,
    specs: list[ItemSpec] | None,
    *,
    proration_behavior: str,
    proration_date: int | None,
    cancel_at_period_end: bool | None,
) -> dict[str, Any]:
    """The invoice a change would produce (always_invoice) or the next renewal invoice; nothing is stored."""
    if sub is None:
        items = invoices.pending_items(sb, customer["id"], None)
        if not items:
            raise StripeError(404, f"No upcoming invoices for customer: {customer['id']}", code="invoice_upcoming_none")
        invoice = invoices.new_invoice(sb, customer=customer["id"], currency=items[0]["currency"], billing_reason="upcoming", preview=True)
        invoices.add_lines(sb, invoice, [invoices.item_line(sb, i) for i in items if i["currency"] == invoice["currency"]])
        return invoice
    if sub["status"] not in LIVE_STATUSES:
        raise StripeError(404, f"No upcoming invoices for customer: {customer['id']}", code="invoice_upcoming_none")
    cancel = sub["cancel_at_period_end"] if cancel_at_period_end is None else cancel_at_period_end
    moment = proration_date or sb.now()
    start, end = _period(sub)
    merged = merged_specs(sb, sub, specs or [])
    check_items(merged)
    entries, resets = _proration_lines(sb, sub, merged, moment) if specs else ([], False)
    proration_lines = []
    if proration_behavior != "none":
        for entry in entries:
            line = invoices.price_line(
                sb, entry["price"], entry["quantity"], entry["period"],
                subscription=sub, item_id=None,
                amount=entry["amount"], proration=True, description=entry["description"], tax_rates=entry["tax_rates"],
            )
            proration_lines.append(line)
    pending = [invoices.item_line(sb, i) for i in invoices.pending_items(sb, customer["id"], sub["id"])]
    live = [s for s in merged if not s.deleted]
    if resets or proration_behavior == "always_invoice":
        invoice = invoices.new_invoice(
            sb, customer=customer["id"], currency=sub["currency"],
            billing_reason="subscription_update", subscription=sub, period=(moment, moment), preview=True,
        )
        lines = proration_lines + pending
        if resets:
            recurring = live[0].price["recurring"]
            new_end = period_end(moment, moment, recurring["interval"], recurring["interval_count"])
            lines += [_spec_line(sb, sub, s, (moment, new_end)) for s in live]
        invoices.add_lines(sb, invoice, lines)
    else:
        if cancel:
            raise StripeError(404, f"No upcoming invoices for customer: {customer['id']}", code="invoice_upcoming_none")
        recurring = live[0].price["recurring"]
        next_end = period_end(end, sub["billing_cycle_anchor"], recurring["interval"], recurring["interval_count"])
        invoice = invoices.new_invoice(
            sb, customer=customer["id"], currency=sub["currency"],
            billing_reason="upcoming", subscription=sub, period=(start, end), preview=True,
        )
        invoice["created"] = end
        renewal = [_spec_line(sb, sub, s, (end, next_end)) for s in live]
        invoices.add_lines(sb, invoice, pending + proration_lines + renewal)
    invoices.recompute(sb, invoice, starting_balance=customer["balance"])
    invoice["automatically_finalizes_at"] = None
    return invoice


# the clock -----------------------------------------------------------------


def _renew(sb: Sandbox, sub: dict[str, Any]) -> None:
    start, end = _period(sub)
    if sub["cancel_at"] and sub["cancel_at"] <= end:
        cancel_now(sb, sub, at=sub["cancel_at"])
        return
    before = sb.view(sub)
    if sub["status"] == "trialing":
        has_pm = sub["default_payment_method"] or sb.store.ref("customer", sub["customer"])["invoice_settings"]["default_payment_method"]
        behaviour = sub["trial_settings"]["end_behavior"]["missing_payment_method"]
        if not has_pm and behaviour == "cancel":
            cancel_now(sb, sub, at=end, reason="cancellation_requested")
            return
        if not has_pm and behaviour == "pause":
            sub["status"] = "paused"
            sb.emit("customer.subscription.paused", sub)
            sb.emit("customer.subscription.updated", sub, diff(before, sb.view(sub)))
            return
        sub["status"] = "active"
    recurring = _recurring(sub, sb)
    new_end = period_end(end, sub["billing_cycle_anchor"], recurring["interval"], recurring["interval_count"])
    for item in sub["items"]["data"]:
        item["current_period_start"], item["current_period_end"] = end, new_end
    invoice = invoices.new_invoice(
        sb, customer=sub["customer"], currency=sub["currency"],
        billing_reason="subscription_cycle", subscription=sub, period=(start, end),
        auto_advance=sub["status"] != "unpaid",
    )
    lines = [_item_line(sb, sub, i, (end, new_end)) for i in sub["items"]["data"]]
    invoices.add_lines(sb, invoice, lines)
    invoices.pull_pending_items(sb, invoice, sub["id"])
    sub["latest_invoice"] = invoice["id"]
    sb.emit("invoice.created", invoice)
    if _collection_paused(sub, end):
        _paused_invoice(sb, invoice, sub["pause_collection"]["behavior"])
    sb.emit("customer.subscription.updated", sub, diff(before, sb.view(sub)))


def _collection_paused(sub: dict[str, Any], moment: int) -> bool:
    """Whether an invoice generated at ``moment`` falls in the subscription's paused collection:
    "All invoices generated before the resumes_at date" are handled as the pause says (none: until unset)."""
    pause = sub.get("pause_collection")
    return pause is not None and (pause["resumes_at"] is None or moment < pause["resumes_at"])


def _paused_invoice(sb: Sandbox, invoice: dict[str, Any], behavior: str) -> None:
    """What Stripe does with an invoice generated while collection is paused (Pause payment
    collection, docs.stripe.com/billing/subscriptions/pause-payment): ``void`` — "immediately marked
    as void and won't use the customer credit balance"; ``keep_as_draft`` — left in ``draft`` with
    ``auto_advance`` false; ``mark_uncollectible`` — finalized and marked uncollectible, never attempted.
    No payment is ever attempted."""
    now = sb.now()
    if behavior == "keep_as_draft":
        invoice.update(auto_advance=False, automatically_finalizes_at=None)
        return
    if behavior == "void":
        invoices.recompute(sb, invoice, starting_balance=0)
        invoice.update(status="void", auto_advance=False, automatically_finalizes_at=None, next_payment_attempt=None,
                       amount_remaining=0, effective_at=now)
        invoice["status_transitions"]["voided_at"] = now
        sb.emit("invoice.voided", invoice)
        return
    invoice["auto_advance"] = False
    invoices.finalize(sb, invoice)
    if invoice["status"] == "open":
        invoice.update(status="uncollectible", next_payment_attempt=None)
        invoice["status_transitions"]["marked_uncollectible_at"] = now
        sb.emit("invoice.marked_uncollectible", invoice)


def resume(sb: Sandbox, sub: dict[str, Any]) -> None:
    if sub["status"] != "paused":
        raise invalid("Only paused subscriptions can be resumed.")
    now = sb.now()
    before = sb.view(sub)
    recurring = _recurring(sub, sb)
    end = period_end(now, now, recurring["interval"], recurring["interval_count"])
    sub["billing_cycle_anchor"] = now
    for item in sub["items"]["data"]:
        item["current_period_start"], item["current_period_end"] = now, end
    sub["status"] = "active"
    sb.emit("customer.subscription.resumed", sub)
    sb.emit("customer.subscription.updated", sub, diff(before, sb.view(sub)))
    lines = [_item_line(sb, sub, i, (now, end)) for i in sub["items"]["data"]]
    _invoice_immediately(sb, sub, "subscription_cycle", period=(now, now), lines=lines)


def _upcoming_due(sb: Sandbox, sub: dict[str, Any]) -> int | None:
    """When Stripe sends ``invoice.upcoming`` for the subscription's renewal: ``sb.upcoming_days``
    days before it (the account's Billing setting), once per period, for a renewal that will make
    an invoice charged automatically — not when the subscription ends at the period's end, nor
    when its collection is paused, nor when the period is shorter than the notice."""
    if not sb.upcoming_days or sub["status"] not in LIVE_STATUSES or sub["collection_method"] != "charge_automatically":
        return None
    start, end = _period(sub)
    if sub["cancel_at_period_end"] or (sub["cancel_at"] and sub["cancel_at"] <= end) or sub.get("pause_collection"):
        return None
    due = end - sb.upcoming_days * DAY
    if due <= start or sub.get("_upcoming_sent") == end:
        return None
    return due


def _send_upcoming(sb: Sandbox, sub: dict[str, Any]) -> None:
    """``invoice.upcoming``: the renewal's invoice as it would be (a preview: it has no id)."""
    _start, end = _period(sub)
    sub["_upcoming_sent"] = end
    try:
        invoice = preview(sb, sb.store.ref("customer", sub["customer"]), sub, None, proration_behavior="none",
                          proration_date=None, cancel_at_period_end=None)
    except StripeError:  # nothing to invoice after all
        return
    invoice.pop("id", None)
    invoice["next_payment_attempt"] = end + invoices.FINALIZE_AFTER  # finalised and charged an hour after it is made
    for line in invoice["lines"]["data"]:
        line["invoice"] = None
    sb.emit("invoice.upcoming", invoice)


def _subscription_dues(sb: Sandbox, sub: dict[str, Any]) -> list[int]:
    dues = []
    if (upcoming := _upcoming_due(sb, sub)) is not None:
        dues.append(upcoming)
    if sub["status"] in LIVE_STATUSES:
        dues.append(_period(sub)[1])
        if sub["cancel_at"]:
            dues.append(sub["cancel_at"])
    if sub["status"] == "trialing" and not sub.get("_trial_will_end_sent") and sub["trial_end"]:
        dues.append(sub["trial_end"] - TRIAL_WILL_END_BEFORE)
    if sub["status"] == "incomplete" and not _first_debit_in_flight(sb, sub):
        dues.append(sub["created"] + INCOMPLETE_EXPIRES_AFTER)
    if sub.get("pause_collection") and sub["pause_collection"]["resumes_at"]:
        dues.append(sub["pause_collection"]["resumes_at"])
    return dues


def _first_debit_in_flight(sb: Sandbox, sub: dict[str, Any]) -> bool:
    """An incomplete subscription whose first invoice is being paid by a bank debit (``processing``)
    is not expired after 23 hours: the debit takes days. The sandbox's choice (Stripe documents the
    subscription `incomplete` while the payment is processing, not when it expires); if the debit
    fails later than 23 hours after the subscription's creation, it expires at once."""
    invoice = sb.store.get("invoice", sub["latest_invoice"]) if sub["latest_invoice"] else None
    pi_id = invoice.get("_payment_intent") if invoice else None
    pi = sb.store.get("payment_intent", pi_id) if pi_id else None
    return pi is not None and pi["status"] == "processing"


def next_due(sb: Sandbox) -> int | None:
    dues = [d for sub in sb.store.scoped("subscription") for d in _subscription_dues(sb, sub)]
    invoice_due = invoices.next_due(sb)
    if invoice_due is not None:
        dues.append(invoice_due)
    return min(dues) if dues else None


def run_due(sb: Sandbox) -> None:
    now = sb.now()
    for sub in sorted(sb.store.scoped("subscription"), key=lambda s: s["_seq"]):
        if sub["status"] == "trialing" and not sub.get("_trial_will_end_sent") and sub["trial_end"] and sub["trial_end"] - TRIAL_WILL_END_BEFORE <= now:
            sub["_trial_will_end_sent"] = True
            sb.emit("customer.subscription.trial_will_end", sub)
        if sub["status"] == "incomplete" and sub["created"] + INCOMPLETE_EXPIRES_AFTER <= now and not _first_debit_in_flight(sb, sub):
            before = sb.view(sub)
            sub.update(status="incomplete_expired", ended_at=now)
            for invoice in sb.store.all("invoice"):
                if invoice["status"] == "open" and invoices._subscription(sb, invoice) is sub:
                    invoices.void(sb, invoice)
            sb.emit("customer.subscription.deleted", sub, diff(before, sb.view(sub)))
            continue
        if sub["status"] in LIVE_STATUSES and sub["cancel_at"] and sub["cancel_at"] <= now and sub["cancel_at"] < _period(sub)[1]:
            cancel_now(sb, sub, at=sub["cancel_at"])
            continue
        pause = sub.get("pause_collection")
        if pause and pause["resumes_at"] and pause["resumes_at"] <= now:  # Stripe unsets it by itself at resumes_at
            before = sb.view(sub)
            sub["pause_collection"] = None
            sb.emit("customer.subscription.updated", sub, diff(before, sb.view(sub)))
        upcoming = _upcoming_due(sb, sub)
        if upcoming is not None and upcoming <= now:
            _send_upcoming(sb, sub)
        guard = 0
        while sub["status"] in LIVE_STATUSES and _period(sub)[1] <= now and guard < 1000:
            _renew(sb, sub)
            guard += 1
    invoices.run_due(sb)


def find_subscription(sb: Sandbox, ident: str, param: str = "subscription") -> dict[str, Any]:
    sub = sb.store.get("subscription", ident)
    if sub is None:
        raise not_found("subscription", ident, param)
    return sub
