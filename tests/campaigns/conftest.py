"""Stripe faked over respx for the campaign tests: the webhook tests' fixtures, plus the
off-session PaymentIntents, Checkout expiry and cancellations the deadline job calls."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest

from tests.stripe_objects import BASE, balance_transaction, charge, payment_intent, sid
from tests.webhooks.conftest import (  # noqa: F401  (fixtures)
    SECRET,
    fake_stripe,
    gw,
    hook_client,
    stripe_settings,
)

# How each test payment method behaves off session (Stripe's documented test cards).
DECLINES = {
    "pm_card_authenticationRequired": ("authentication_required", "authentication_required"),
    "pm_card_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_chargeCustomerFail": ("card_declined", "generic_decline"),
}


class OffSession:
    """POST /v1/payment_intents (off session, confirm=true) as Stripe answers it, idempotency
    keys honoured: the same key replays the first answer and creates nothing."""

    def __init__(self, fake):
        self.fake = fake
        self.created: list[dict] = []  # PaymentIntents actually created
        self.keys: list[str] = []  # idempotency key of every POST
        self.by_key: dict[str, httpx.Response] = {}
        self.fail_next = 0  # answer 500 to this many POSTs (no definite answer)
        self.fee = 100
        self.canceled: list[str] = []
        fake.router.post(f"{BASE}/v1/payment_intents").mock(side_effect=self._create)
        fake.router.post(url__regex=rf"^{BASE}/v1/payment_intents/(?P<pi>[^/]+)/cancel$").mock(side_effect=self._cancel)

    def _create(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        self.keys.append(key)
        if self.fail_next:
            self.fail_next -= 1
            return httpx.Response(500, json={"error": {"type": "api_error", "message": "boom"}})
        if key in self.by_key:
            return self.by_key[key]
        params = dict(parse_qsl(request.content.decode()))
        metadata = {k[len("metadata["):-1]: v for k, v in params.items() if k.startswith("metadata[")}
        amount = int(params["amount"])
        pm = params["payment_method"]
        if pm in DECLINES:
            code, decline = DECLINES[pm]
            pi = payment_intent(amount=amount, metadata=metadata, status="requires_payment_method")
            pi["last_payment_error"] = {"code": code, "decline_code": decline, "message": "Your card was declined.",
                                        "type": "card_error"}
            self.fake.add(pi)
            response = httpx.Response(402, json={"error": {"type": "card_error", "code": code, "decline_code": decline,
                                                           "message": "Your card was declined.", "payment_intent": pi}})
        else:
            ch_id = sid("ch")
            txn = balance_transaction(amount=amount, fee=self.fee, source=ch_id)
            pi = payment_intent(amount=amount, metadata=metadata, latest_charge=ch_id)
            ch = charge(amount=amount, txn=txn["id"], metadata=metadata, payment_intent=pi["id"], charge_id=ch_id)
            self.fake.add(txn, ch, pi)
            response = httpx.Response(200, json=pi)
        self.created.append(pi)
        self.by_key[key] = response
        return response

    def _cancel(self, request: httpx.Request, pi: str) -> httpx.Response:
        self.canceled.append(pi)
        obj = self.fake.objects.get(pi, {"id": pi})
        obj["status"] = "canceled"
        return httpx.Response(200, json=obj)


@pytest.fixture
def off_session(fake_stripe):  # noqa: F811  (the fixture imported above)
    return OffSession(fake_stripe)
