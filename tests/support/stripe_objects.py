"""Stripe objects in today's API shapes (2026-10-28.endive), and a respx fake of the API.

Unit tests fake Stripe's HTTP with respx; these builders keep the objects' real shape
(keys, nesting, ids) so a handler that reads the wrong field fails here too.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import ClassVar
from urllib.parse import parse_qsl

import httpx
import respx

from funding.stripe_gateway import API_VERSION

_ids = itertools.count(1)
BASE = "http://stripe.test"


def sid(prefix: str) -> str:
    return f"{prefix}_T{next(_ids):08d}x"


def now() -> int:
    return int(time.time())


def balance_transaction(*, amount: int, fee: int, type: str = "charge", source: str, category: str | None = None,
                        currency: str = "eur", created: int | None = None, txn_id: str | None = None) -> dict:
    created = created or now()
    return {
        "id": txn_id or sid("txn"), "object": "balance_transaction", "amount": amount, "available_on": created + 2 * 86400,
        "balance_type": "payments", "created": created, "currency": currency, "description": None, "exchange_rate": None,
        "fee": fee, "fee_details": ([{"amount": fee, "application": None, "currency": currency,
                                      "description": "Stripe processing fees", "type": "stripe_fee"}] if fee else []),
        "net": amount - fee, "reporting_category": category or type, "source": source, "status": "pending", "type": type,
    }


def charge(*, amount: int, txn: str | None, metadata: dict | None = None, payment_intent: str | None = None,
           refunds: list[dict] | None = None, amount_refunded: int = 0, charge_id: str | None = None,
           currency: str = "eur") -> dict:
    return {
        "id": charge_id or sid("ch"), "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": amount_refunded, "application": None, "application_fee": None, "application_fee_amount": None,
        "balance_transaction": txn,
        "billing_details": {"address": {"city": None, "country": "FR", "line1": None, "line2": None, "postal_code": None,
                                        "state": None}, "email": "ana@example.org", "name": "Ana", "phone": None, "tax_id": None},
        "calculated_statement_descriptor": "ENTRE-LAB", "captured": True, "created": now(), "currency": currency,
        "customer": None, "description": None, "disputed": False, "failure_balance_transaction": None, "failure_code": None,
        "failure_message": None, "fraud_details": {}, "livemode": False, "metadata": metadata or {},
        "on_behalf_of": None, "outcome": {"advice_code": None, "network_advice_code": None, "network_decline_code": None,
                                          "network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                                          "seller_message": "Payment complete.", "type": "authorized"},
        "paid": True, "payment_intent": payment_intent, "payment_method": sid("pm"),
        "payment_method_details": {"card": {"brand": "visa", "country": "FR", "exp_month": 12, "exp_year": 2030,
                                            "funding": "credit", "last4": "4242", "network": "visa"}, "type": "card"},
        "receipt_email": None, "receipt_url": None, "refunded": amount_refunded >= amount and amount_refunded > 0,
        "refunds": {"object": "list", "data": refunds or [], "has_more": False, "url": "/v1/refunds"},
        "review": None, "shipping": None, "source_transfer": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": "succeeded", "transfer_data": None, "transfer_group": None,
    }


def refund(*, amount: int, charge_id: str, txn: str | None, status: str = "succeeded") -> dict:
    return {
        "id": sid("re"), "object": "refund", "amount": amount, "balance_transaction": txn, "charge": charge_id,
        "created": now(), "currency": "eur", "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": {}, "payment_intent": None, "reason": "requested_by_customer", "receipt_number": None,
        "source_transfer_reversal": None, "status": status, "transfer_reversal": None, "customer": None,
        "payment_method": None,
    }


def dispute(*, amount: int, charge_id: str, status: str, txns: list[dict]) -> dict:
    return {
        "id": sid("dp"), "object": "dispute", "amount": amount, "balance_transactions": txns, "charge": charge_id,
        "created": now(), "currency": "eur", "evidence": {"uncategorized_text": None},
        "evidence_details": {"due_by": now() + 7 * 86400, "has_evidence": False, "past_due": False, "submission_count": 0},
        "is_charge_refundable": False, "livemode": False, "metadata": {}, "payment_intent": None,
        "payment_method_details": {"card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
                                   "type": "card"},
        "reason": "fraudulent", "status": status,
    }


def payout(*, amount: int, txn: str, status: str = "paid") -> dict:
    return {
        "id": sid("po"), "object": "payout", "amount": amount, "application_fee": None, "application_fee_amount": None,
        "arrival_date": now(), "automatic": True, "balance_transaction": txn, "created": now(), "currency": "eur",
        "description": "STRIPE PAYOUT", "destination": sid("ba"), "failure_balance_transaction": None, "failure_code": None,
        "failure_message": None, "livemode": False, "metadata": {}, "method": "standard", "original_payout": None,
        "reconciliation_status": "completed", "reversed_by": None, "source_type": "card", "statement_descriptor": None,
        "status": status, "type": "bank_account", "trace_id": {"status": "supported", "value": None}, "payout_method": None,
    }


def checkout_session(*, amount: int, metadata: dict, payment_intent: str | None, status: str = "complete",
                     payment_status: str = "paid", session_id: str | None = None) -> dict:
    return {
        "id": session_id or sid("cs_test"), "object": "checkout.session", "amount_subtotal": amount, "amount_total": amount,
        "cancel_url": "http://testserver/soutenir?annule=1", "client_reference_id": None, "created": now(),
        "currency": "eur", "customer": None, "customer_creation": "if_required",
        "customer_details": {"email": "ana@example.org", "name": "Ana", "address": None, "phone": None,
                             "tax_exempt": "none", "tax_ids": []},
        "customer_email": "ana@example.org", "expires_at": now() + 86400, "invoice": None, "livemode": False,
        "locale": "fr", "metadata": metadata, "mode": "payment", "payment_intent": payment_intent,
        "payment_method_types": ["card"], "payment_status": payment_status, "setup_intent": None,
        "status": status, "submit_type": None, "subscription": None,
        "success_url": "http://testserver/soutenir/merci?session_id={CHECKOUT_SESSION_ID}", "ui_mode": "hosted_page",
        "url": None if status == "complete" else "https://checkout.stripe.test/c/pay/x",
    }


def payment_intent(*, amount: int, metadata: dict, status: str = "succeeded", latest_charge: str | None = None) -> dict:
    return {
        "id": sid("pi"), "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_received": amount if status == "succeeded" else 0, "capture_method": "automatic_async",
        "client_secret": "pi_secret", "confirmation_method": "automatic", "created": now(), "currency": "eur",
        "customer": None, "description": None, "last_payment_error": None, "latest_charge": latest_charge,
        "livemode": False, "metadata": metadata, "next_action": None, "payment_method": sid("pm"),
        "payment_method_types": ["card"], "setup_future_usage": None, "status": status,
    }


def subscription(*, status: str, sub_id: str | None = None) -> dict:
    start = now() - 86400
    return {
        "id": sub_id or sid("sub"), "object": "subscription", "automatic_tax": {"enabled": False, "liability": None},
        "billing_cycle_anchor": start, "cancel_at": None, "cancel_at_period_end": False,
        "canceled_at": now() if status == "canceled" else None, "collection_method": "charge_automatically",
        "created": start, "currency": "eur", "customer": sid("cus"), "default_payment_method": None,
        "ended_at": now() if status == "canceled" else None,
        "items": {"object": "list", "data": [{"id": sid("si"), "object": "subscription_item", "current_period_start": start,
                                              "current_period_end": start + 30 * 86400, "quantity": 1,
                                              "price": {"id": sid("price"), "object": "price", "unit_amount": 15000,
                                                        "currency": "eur", "recurring": {"interval": "month",
                                                                                         "interval_count": 1}}}],
                  "has_more": False, "url": "/v1/subscription_items"},
        "latest_invoice": sid("in"), "livemode": False, "metadata": {}, "status": status,
    }


def event(type: str, obj: dict, *, created: int | None = None, event_id: str | None = None, livemode: bool = False) -> dict:
    return {
        "id": event_id or sid("evt"), "object": "event", "api_version": API_VERSION, "created": created or now(),
        "data": {"object": obj}, "livemode": livemode, "pending_webhooks": 1,
        "request": {"id": sid("req"), "idempotency_key": None}, "type": type,
    }


def tax_rate(*, percentage: str, inclusive: bool, metadata: dict | None = None, rate_id: str | None = None) -> dict:
    """A Tax Rate as Stripe returns it (2026-10-28.endive)."""
    return {"id": rate_id or sid("txr"), "object": "tax_rate", "active": True, "country": "FR", "created": now(),
            "description": None, "display_name": "TVA", "effective_percentage": float(percentage), "flat_amount": None,
            "inclusive": inclusive, "jurisdiction": "FR", "jurisdiction_level": None, "livemode": False,
            "metadata": metadata or {}, "percentage": float(percentage), "rate_type": "percentage", "state": None,
            "tax_type": "vat"}


class FakeStripe:
    """Objects served by id over respx, the way the API serves them (``expand`` honoured
    for the fields our handlers expand)."""

    RESOURCES: ClassVar[dict[str, str]] = {
        "charges": "ch", "balance_transactions": "txn", "refunds": "re", "disputes": "dp", "payouts": "po",
        "payment_intents": "pi", "checkout/sessions": "cs", "subscriptions": "sub", "invoices": "in", "events": "evt",
    }

    def __init__(self, router: respx.MockRouter):
        self.router = router
        self.objects: dict[str, dict] = {}
        self.requests: list[httpx.Request] = []
        self.lists: dict[str, list[dict]] = {}
        router.get(url__regex=rf"^{BASE}/v1/(?P<resource>payment_intents|customers|charges|invoices|subscriptions)/search(\?.*)?$").mock(
            side_effect=self._search)
        for resource in self.RESOURCES:
            router.get(url__regex=rf"^{BASE}/v1/{resource}/(?P<oid>[^/?]+)(\?.*)?$").mock(side_effect=self._get)
        router.get(url__regex=rf"^{BASE}/v1/(?P<resource>balance_transactions|payouts|events|invoiceitems)(\?.*)?$").mock(
            side_effect=self._list)
        router.post(f"{BASE}/v1/tax_rates").mock(side_effect=self._tax_rate)

    def _tax_rate(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = dict(parse_qsl(request.content.decode()))
        obj = tax_rate(percentage=params["percentage"], inclusive=params.get("inclusive") == "true",
                       metadata={k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")})
        self.objects[obj["id"]] = obj
        return httpx.Response(200, json=obj)

    def add(self, *objects: dict) -> None:
        for obj in objects:
            self.objects[obj["id"]] = obj

    def _expand(self, obj: dict, paths: list[str]) -> dict:
        obj = json.loads(json.dumps(obj))
        for path in paths:
            target = obj
            parts = path.split(".")
            for part in parts:
                value = target.get(part)
                if isinstance(value, str) and value in self.objects:
                    target[part] = json.loads(json.dumps(self.objects[value]))
                    value = target[part]
                if isinstance(value, dict):
                    target = value
                else:
                    break
        return obj

    def _get(self, request: httpx.Request, oid: str) -> httpx.Response:
        self.requests.append(request)
        if oid not in self.objects:
            return httpx.Response(404, json={"error": {"type": "invalid_request_error", "code": "resource_missing",
                                                       "message": f"No such object: '{oid}'"}})
        expand = [v for k, v in request.url.params.multi_items() if k.startswith("expand")]
        return httpx.Response(200, json=self._expand(self.objects[oid], expand))

    def _search(self, request: httpx.Request, resource: str) -> httpx.Response:
        """The Search API over what is held, for ``metadata['k']:'v'`` clauses joined by AND."""
        self.requests.append(request)
        wanted = dict(re.findall(r"metadata\['([^']+)'\]:'([^']*)'", request.url.params.get("query", "")))
        kind = {"payment_intents": "payment_intent", "customers": "customer", "charges": "charge", "invoices": "invoice",
                "subscriptions": "subscription"}[resource]
        data = [o for o in self.objects.values() if o.get("object") == kind
                and all((o.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
        return httpx.Response(200, json={"object": "search_result", "data": data, "has_more": False, "next_page": None,
                                         "url": f"/v1/{resource}/search"})

    def _list(self, request: httpx.Request, resource: str) -> httpx.Response:
        self.requests.append(request)
        params = dict(request.url.params.multi_items())
        data = list(self.lists.get(resource, []))
        if "payout" in params:
            data = [t for t in data if t.get("_payout") == params["payout"]]
        if "created[gte]" in params:
            data = [t for t in data if int(params["created[gte]"]) <= t.get("created", 0) <= int(params["created[lte]"])]
        if params.get("starting_after"):
            data = []
        clean = [{k: v for k, v in item.items() if not k.startswith("_")} for item in data]
        expand = [v[len("data."):] for k, v in request.url.params.multi_items() if k.startswith("expand") and v.startswith("data.")]
        clean = [self._expand(item, expand) for item in clean]
        return httpx.Response(200, json={"object": "list", "data": clean, "has_more": False, "url": f"/v1/{resource}"})


def sign(payload: bytes, secret: str, *, at: int | None = None) -> str:
    from funding.stripe_gateway import sign_payload

    return sign_payload(payload, secret, timestamp=at)


def as_body(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def idempotency_keys(router_calls) -> list[str]:
    return [c.request.headers.get("idempotency-key") for c in router_calls]

