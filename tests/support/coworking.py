"""The coworking tests' world: plans on sale with their Stripe prices (:func:`make_catalogue`),
members, and Stripe Billing objects in today's API shapes (2026-10-28.endive) and a respx fake that
serves them, records what we ask Stripe to create or change, and answers like Stripe does.

Invoices reach their payments through ``invoice_payment`` objects; an invoice carries
its subscription's metadata in ``parent.subscription_details``; a subscription's period
lives on its items; line items name their price in ``pricing.price_details``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import parse_qsl

import httpx
import respx

from funding.coworking.lifecycle import apply_invoice, apply_subscription
from funding.coworking.members import check_details, enrol
from funding.coworking.models import Member, Plan, PlanPrice
from funding.coworking.plans import PlanSpec, price_ttc, save_plan
from funding.db import transaction
from funding.orgs.models import Site
from stripe_sandbox.encoding import decode_pairs
from tests.support.stripe_objects import (
    BASE,
    FakeStripe,
    balance_transaction,
    charge,
    event,
    now,
    payment_intent,
    sid,
)

DAY = 86_400
MONTH = 30 * DAY


def subscription(*, customer: str, price: dict, metadata: dict, status: str = "active", start: int | None = None,
                 end: int | None = None, sub_id: str | None = None, cancel_at_period_end: bool = False,
                 canceled_at: int | None = None, ended_at: int | None = None, created: int | None = None) -> dict:
    start = start or now() - DAY
    end = end or start + MONTH
    ident = sub_id or sid("sub")
    return {
        "id": ident, "object": "subscription", "application": None, "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": start, "billing_cycle_anchor_config": None, "billing_mode": {"flexible": None, "type": "classic"},
        "billing_thresholds": None, "cancel_at": end if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end, "canceled_at": canceled_at,
        "cancellation_details": {"comment": None, "feedback": None,
                                 "reason": "cancellation_requested" if cancel_at_period_end or canceled_at else None},
        "collection_method": "charge_automatically", "created": created or start, "currency": "eur", "customer": customer,
        "customer_account": None, "days_until_due": None, "default_payment_method": sid("pm"), "default_source": None,
        "default_tax_rates": [], "description": None, "discounts": [], "ended_at": ended_at,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {"object": "list", "has_more": False, "url": f"/v1/subscription_items?subscription={ident}", "data": [{
            "id": sid("si"), "object": "subscription_item", "billing_thresholds": None, "created": start,
            "current_period_start": start, "current_period_end": end, "discounts": [], "metadata": {}, "price": price,
            "quantity": 1, "subscription": ident, "tax_rates": []}]},
        "latest_invoice": None, "livemode": False, "metadata": metadata, "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None, "pause_collection": None,
        "payment_settings": {"payment_method_options": None, "payment_method_types": None, "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None, "pending_setup_intent": None, "pending_update": None, "schedule": None,
        "start_date": created or start, "status": status, "test_clock": None, "transfer_data": None, "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}}, "trial_start": None,
    }


def price(*, price_id: str, amount: int, product: str = "prod_x", interval: str | None = "month") -> dict:
    return {
        "id": price_id, "object": "price", "active": True, "billing_scheme": "per_unit", "created": now(), "currency": "eur",
        "custom_unit_amount": None, "livemode": False, "lookup_key": None, "metadata": {}, "nickname": None,
        "product": product,
        "recurring": {"interval": interval, "interval_count": 1, "meter": None, "trial_period_days": None,
                      "usage_type": "licensed"} if interval else None,
        "tax_behavior": "inclusive", "tiers_mode": None, "transform_quantity": None,
        "type": "recurring" if interval else "one_time", "unit_amount": amount, "unit_amount_decimal": str(amount),
    }


def line(*, price_id: str | None, amount: int, start: int, end: int, sub_id: str | None = None, proration: bool = False,
         metadata: dict | None = None, description: str = "1 × Poste nomade", invoice_item: str | None = None) -> dict:
    if invoice_item:
        parent = {"invoice_item_details": {"invoice_item": invoice_item, "proration": proration,
                                           "proration_details": {"credited_items": None}, "subscription": sub_id},
                  "subscription_item_details": None, "type": "invoice_item_details"}
    else:
        parent = {"invoice_item_details": None,
                  "subscription_item_details": {"invoice_item": None, "proration": proration,
                                                "proration_details": {"credited_items": None}, "subscription": sub_id,
                                                "subscription_item": sid("si")},
                  "type": "subscription_item_details"}
    return {
        "id": sid("il"), "object": "line_item", "amount": amount, "currency": "eur", "description": description,
        "discount_amounts": [], "discountable": True, "discounts": [], "invoice": None, "livemode": False,
        "metadata": metadata or {}, "parent": parent, "period": {"end": end, "start": start}, "pretax_credit_amounts": [],
        "pricing": {"price_details": {"price": price_id, "product": "prod_x"} if price_id else None, "type": "price_details",
                    "unit_amount_decimal": str(amount)},
        "quantity": 1, "quantity_decimal": "1", "subscription": sub_id, "subtotal": amount, "taxes": [],
    }


def invoice(*, customer: str, sub: dict | None, lines: list[dict], status: str = "paid", number: str | None = None,
            attempt_count: int = 1, billing_reason: str = "subscription_create", created: int | None = None,
            invoice_id: str | None = None, payments: list[dict] | None = None, next_payment_attempt: int | None = None,
            metadata: dict | None = None) -> dict:
    created = created or now()
    ident = invoice_id or sid("in")
    total = sum(item["amount"] for item in lines)
    paid = status == "paid"
    for item in lines:
        item["invoice"] = ident
    return {
        "id": ident, "object": "invoice", "account_country": "FR", "account_name": "Entre-Lab", "account_tax_ids": None,
        "amount_due": max(total, 0), "amount_overpaid": 0, "amount_paid": max(total, 0) if paid else 0,
        "amount_remaining": 0 if paid or status == "void" else max(total, 0), "amount_shipping": 0, "application": None,
        "attempt_count": attempt_count, "attempted": attempt_count > 0, "auto_advance": status == "open",
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None, "provider": None, "status": None},
        "automatically_finalizes_at": None, "billing_reason": billing_reason, "collection_method": "charge_automatically",
        "created": created, "currency": "eur", "custom_fields": None, "customer": customer, "customer_account": None,
        "customer_address": None, "customer_email": "membre@example.org", "customer_name": "Membre", "customer_phone": None,
        "customer_shipping": None, "customer_tax_exempt": "none", "customer_tax_ids": [], "default_payment_method": None,
        "default_source": None, "default_tax_rates": [], "description": None, "discounts": [], "due_date": None,
        "effective_at": created, "ending_balance": 0, "footer": None, "from_invoice": None,
        "hosted_invoice_url": f"https://invoice.stripe.test/i/{ident}", "invoice_pdf": f"https://pay.stripe.test/{ident}/pdf",
        "issuer": {"type": "self"}, "last_finalization_error": None, "latest_revision": None,
        "lines": {"object": "list", "data": lines, "has_more": False, "url": f"/v1/invoices/{ident}/lines"},
        "livemode": False, "metadata": metadata or {}, "next_payment_attempt": next_payment_attempt,
        "number": number or f"ENTRE-{ident[-6:]}", "on_behalf_of": None,
        "parent": ({"quote_details": None, "subscription_details": {"metadata": dict(sub["metadata"]), "subscription": sub["id"]},
                    "type": "subscription_details"} if sub else None),
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "payments": {"object": "list", "data": payments or [], "has_more": False, "url": f"/v1/invoice_payments?invoice={ident}"},
        "period_end": created, "period_start": created, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "receipt_number": None, "rendering": None, "shipping_cost": None,
        "shipping_details": None, "starting_balance": 0, "statement_descriptor": None, "status": status,
        "status_transitions": {"finalized_at": created, "marked_uncollectible_at": None, "paid_at": created if paid else None,
                               "voided_at": None},
        "subtotal": total, "subtotal_excluding_tax": total, "test_clock": None, "total": total,
        "total_discount_amounts": [], "total_excluding_tax": total, "total_pretax_credit_amounts": [], "total_taxes": [],
        "webhooks_delivered_at": created,
    }


def invoice_payment(*, invoice_id: str, pi_id: str, amount: int, status: str = "paid") -> dict:
    return {
        "id": sid("inpay"), "object": "invoice_payment", "amount_paid": amount if status == "paid" else None,
        "amount_requested": amount, "created": now(), "currency": "eur", "invoice": invoice_id, "is_default": True,
        "livemode": False, "payment": {"payment_intent": pi_id, "type": "payment_intent"}, "status": status,
        "status_transitions": {"canceled_at": None, "paid_at": now() if status == "paid" else None},
    }


class BillingStripe(FakeStripe):
    """FakeStripe plus the Billing endpoints: customers, products, prices, checkout sessions,
    subscription updates, invoice previews, invoice payments, billing portal sessions."""

    RESOURCES: ClassVar[dict[str, str]] = {**FakeStripe.RESOURCES, "customers": "cus", "products": "prod", "prices": "price"}

    def __init__(self, router: respx.MockRouter):
        super().__init__(router)
        self.posts: list[tuple[str, dict, str | None]] = []  # (path, params, idempotency key)
        self.preview: dict | None = None
        self.invoice_payments: list[dict] = []
        self.invoice_lines: dict[str, list[dict]] = {}  # every line of an invoice whose embedded list is one page
        router.get(url__regex=rf"^{BASE}/v1/invoice_payments(\?.*)?$").mock(side_effect=self._invoice_payments)
        router.get(url__regex=rf"^{BASE}/v1/invoices/(?P<oid>[^/?]+)/lines(\?.*)?$").mock(side_effect=self._lines)
        router.post(url__regex=rf"^{BASE}/v1/(?P<path>.+)$").mock(side_effect=self._post)

    # helpers for tests
    def posted(self, prefix: str) -> list[tuple[str, dict, str | None]]:
        return [p for p in self.posts if p[0].startswith(prefix)]

    def paid_invoice(self, inv: dict, *, fee: int = 0) -> tuple[dict, dict, dict]:
        """Make ``inv`` paid by card: a PaymentIntent, its charge and balance transaction, an invoice_payment."""
        amount = inv["amount_due"]
        ch_id = sid("ch")
        pi = payment_intent(amount=amount, metadata={}, latest_charge=ch_id)
        pi["customer"] = inv["customer"]
        txn = balance_transaction(amount=amount, fee=fee or (amount * 15 + 500) // 1000 + 25, source=ch_id)
        ch = charge(amount=amount, txn=txn["id"], metadata={}, payment_intent=pi["id"], charge_id=ch_id)
        record = invoice_payment(invoice_id=inv["id"], pi_id=pi["id"], amount=amount)
        inv["payments"]["data"] = [record]
        self.invoice_payments.append(record)
        self.add(inv, pi, ch, txn)
        return pi, ch, txn

    def paginate_lines(self, inv: dict, *, first_page: int) -> None:
        """Embed only the first ``first_page`` lines of ``inv``, as Stripe does past a page; the
        rest are served by GET /v1/invoices/{id}/lines."""
        self.invoice_lines[inv["id"]] = list(inv["lines"]["data"])
        inv["lines"] = {**inv["lines"], "data": inv["lines"]["data"][:first_page], "has_more": True}
        self.add(inv)

    # endpoints
    def _lines(self, request: httpx.Request, oid: str) -> httpx.Response:
        self.requests.append(request)
        lines = self.invoice_lines.get(oid, [])
        after = request.url.params.get("starting_after")
        start = next((i + 1 for i, item in enumerate(lines) if item["id"] == after), 0) if after else 0
        limit = int(request.url.params.get("limit", 10))
        page = lines[start:start + limit]
        return httpx.Response(200, json={"object": "list", "data": page, "has_more": start + limit < len(lines),
                                         "url": f"/v1/invoices/{oid}/lines"})

    def _invoice_payments(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = decode_pairs(request.url.params.multi_items())
        pi = (params.get("payment") or {}).get("payment_intent")
        invoice_id = params.get("invoice")
        data = [p for p in self.invoice_payments if pi in (None, p["payment"]["payment_intent"])
                and invoice_id in (None, p["invoice"])]
        return httpx.Response(200, json={"object": "list", "data": data, "has_more": False, "url": "/v1/invoice_payments"})

    def _post(self, request: httpx.Request, path: str) -> httpx.Response:
        self.requests.append(request)
        params = decode_pairs(parse_qsl(request.content.decode(), keep_blank_values=True))
        key = request.headers.get("idempotency-key")
        self.posts.append((path, params, key))
        parts = path.split("/")
        if path == "customers":
            obj = {"id": sid("cus"), "object": "customer", "email": params.get("email"), "name": params.get("name"),
                   "metadata": params.get("metadata", {}), "invoice_settings": {
                       "custom_fields": params.get("invoice_settings", {}).get("custom_fields") or None,
                       "default_payment_method": None, "footer": None, "rendering_options": None}}
        elif parts[0] in ("customers", "products", "prices") and len(parts) == 2:
            obj = self.objects.get(parts[1])
            if obj is None:
                return httpx.Response(404, json={"error": {"type": "invalid_request_error", "code": "resource_missing",
                                                           "message": f"No such object: '{parts[1]}'"}})
            obj = {**obj, **{k: (v == "true") if v in ("true", "false") else v for k, v in params.items() if k != "metadata"}}
        elif path == "products":
            obj = {"id": sid("prod"), "object": "product", "name": params["name"], "active": params.get("active", "true") == "true",
                   "metadata": params.get("metadata", {})}
        elif path == "prices":
            recurring = params.get("recurring")
            obj = price(price_id=sid("price"), amount=int(params["unit_amount"]), product=params["product"],
                        interval=recurring["interval"] if recurring else None)
            obj["metadata"] = params.get("metadata", {})
        elif path == "checkout/sessions":
            obj = {"id": sid("cs_test"), "object": "checkout.session", "mode": params["mode"], "status": "open",
                   "metadata": params.get("metadata", {}), "customer": params.get("customer"),
                   "url": f"https://checkout.stripe.test/c/pay/{len(self.posts)}", "subscription": None,
                   "payment_intent": None, "payment_status": "unpaid"}
        elif parts[0] == "checkout" and path.endswith("/expire"):
            obj = {**self.objects.get(parts[2], {"id": parts[2], "object": "checkout.session"}), "status": "expired"}
        elif path == "invoices/create_preview":
            obj = self.preview or {"object": "invoice", "lines": {"data": []}, "total": 0, "amount_due": 0, "currency": "eur"}
        elif parts[0] == "subscriptions" and len(parts) == 2:
            obj = self._update_subscription(parts[1], params)
        elif path == "billing_portal/sessions":
            obj = {"id": sid("bps"), "object": "billing_portal.session", "customer": params["customer"],
                   "return_url": params.get("return_url"), "url": f"https://billing.stripe.test/p/session/{len(self.posts)}"}
        else:
            return httpx.Response(400, json={"error": {"type": "invalid_request_error", "message": f"unexpected POST /{path}"}})
        if "id" in obj:
            self.objects[obj["id"]] = obj
        return httpx.Response(200, json=obj)

    def _update_subscription(self, sub_id: str, params: dict) -> dict:
        sub = copy.deepcopy(self.objects[sub_id])
        if "cancel_at_period_end" in params:
            flag = params["cancel_at_period_end"] == "true"
            item = sub["items"]["data"][0]
            sub.update(cancel_at_period_end=flag, cancel_at=item["current_period_end"] if flag else None,
                       canceled_at=now() if flag else None)
        for entry in params.get("items") or []:
            item = sub["items"]["data"][0]
            if "price" in entry:
                item["price"] = self.objects.get(entry["price"]) or price(price_id=entry["price"], amount=0)
            if "tax_rates" in entry:
                item["tax_rates"] = [self.objects[r] for r in entry["tax_rates"]]
        if "pause_collection" in params:  # "" unsets it, as Stripe
            pause = params["pause_collection"]
            sub["pause_collection"] = ({"behavior": pause["behavior"],
                                        "resumes_at": int(pause["resumes_at"]) if pause.get("resumes_at") else None}
                                       if pause else None)
        sub["metadata"] = {**sub["metadata"], **params.get("metadata", {})}
        self.objects[sub_id] = sub
        return sub


def body_of(request: httpx.Request) -> dict:
    return decode_pairs(parse_qsl(request.content.decode(), keep_blank_values=True))


def as_json(obj: dict) -> str:
    return json.dumps(obj)


def unix(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(12), dt.UTC).timestamp())


@dataclass
class Catalogue:
    plans: dict[str, Plan]
    prices: dict[str, dict]  # Stripe price objects by plan code

    def price_id(self, code: str) -> str:
        return self.prices[code]["id"]


PLANS = [
    PlanSpec("flex", "Poste nomade", "workspace", "150,00", "20", "706", "month", position=1),
    PlanSpec("fixe", "Poste fixe", "workspace", "220,00", "20", "706", "month", position=2),
    PlanSpec("bureau", "Bureau privatif", "workspace", "390,00", "20", "706", "month", company_only=True, position=3),
    PlanSpec("adhesion", "Adhésion annuelle", "membership", "30,00", "0", "7562", "year", position=4),
    PlanSpec("carnet-10", "Carnet de 10 journées", "pass", "150,00", "20", "706", pass_days=10, position=5),
]


async def make_catalogue(sessions, world, fake) -> Catalogue:
    """The central site's plans, with a Stripe price each (as after `funding plans sync`)."""
    plans, prices = {}, {}
    async with transaction(sessions) as session:
        site = await session.get(Site, world.site_id)
        for spec in PLANS:
            plan = await save_plan(session, site, spec)
            plan.stripe_product_id = sid("prod")
            amount = price_ttc(plan.price_ht, plan.vat_rate)
            obj = price(price_id=sid("price"), amount=amount, product=plan.stripe_product_id, interval=plan.interval)
            session.add(PlanPrice(plan_id=plan.id, seq=1, amount=amount, price_ht=plan.price_ht, vat_rate=plan.vat_rate,
                                  currency="EUR", interval=plan.interval, stripe_price_id=obj["id"], status="active"))
            fake.add(obj)
            plans[spec.code], prices[spec.code] = plan, obj
    return Catalogue(plans, prices)


async def new_member(sessions, world, *, name: str = "Julie Fayolle", email: str | None = None, company: str = "",
                     siren: str = "", vat: str = "", customer: str | None = None) -> Member:
    email = email or f"{name.split()[0].lower()}.{sid('x')[-5:].lower()}@example.org"
    details = check_details(name=name, email=email, company_name=company, siren=siren, vat_number=vat)
    async with transaction(sessions) as session:
        site = await session.get(Site, world.site_id)
        member, _ = await enrol(session, site, details)
        member.stripe_customer_id = customer or sid("cus")
    return member


def sub_metadata(member: Member, plan: Plan) -> dict:
    return {"purpose": "coworking", "member_id": str(member.id), "site_id": str(plan.site_id), "org_id": str(member.org_id),
            "plan_id": str(plan.id), "kind": plan.kind, "checkout_id": "1"}


async def active_member(sessions, world, catalogue, fake, *, code: str = "flex", name: str = "Julie Fayolle"):
    """A member with a live subscription and a paid first invoice, known to the fake and to us."""
    member = await new_member(sessions, world, name=name)
    start = now() - 5 * DAY
    sub = subscription(customer=member.stripe_customer_id, price=catalogue.prices[code],
                       metadata=sub_metadata(member, catalogue.plans[code]), start=start, end=start + MONTH)
    fake.add(sub)
    inv = invoice(customer=member.stripe_customer_id, sub=sub, created=start, lines=[
        line(price_id=catalogue.price_id(code), amount=catalogue.prices[code]["unit_amount"], start=start, end=start + MONTH,
             sub_id=sub["id"])])
    async with transaction(sessions) as session:
        row = await apply_subscription(session, sub, now())
        await apply_invoice(session, inv, now())
    return member, sub, row, inv


class Story:
    """One member's subscription as Stripe holds it (the fake serves the current state)."""

    def __init__(self, fake, member, catalogue, code: str = "flex", start: int | None = None):
        self.fake, self.member, self.catalogue = fake, member, catalogue
        self.plan = catalogue.plans[code]
        self.start = start or now() - 2 * DAY
        self.sub = subscription(customer=member.stripe_customer_id, price=catalogue.prices[code],
                                metadata=sub_metadata(member, self.plan), start=self.start, end=self.start + MONTH)
        fake.add(self.sub)
        self.t = now() - 100  # event clock: every event is newer than the previous one

    def tick(self) -> int:
        self.t += 1
        return self.t

    def evt(self, type_: str, obj: dict) -> dict:
        return event(type_, obj, created=self.tick())

    def set(self, **changes) -> dict:
        self.sub.update(changes)
        self.fake.add(self.sub)
        return self.sub

    def period(self, n: int = 0) -> tuple[int, int]:
        return self.start + n * MONTH, self.start + (n + 1) * MONTH

    def bill(self, *, n: int = 0, status: str = "paid", reason: str = "subscription_create", lines=None, attempts: int = 1,
             fee: int | None = None, next_attempt: int | None = None):
        start, end = self.period(n)
        lines = lines or [line(price_id=self.catalogue.price_id(self.plan.code), amount=self.catalogue.prices[self.plan.code]
                               ["unit_amount"], start=start, end=end, sub_id=self.sub["id"])]
        inv = invoice(customer=self.member.stripe_customer_id, sub=self.sub, lines=lines, status=status, billing_reason=reason,
                      attempt_count=attempts, created=start, next_payment_attempt=next_attempt)
        charge = None
        if status == "paid" and inv["amount_due"] > 0:
            _pi, charge, _txn = self.fake.paid_invoice(inv, fee=fee or 0)
        self.fake.add(inv)
        return inv, charge
