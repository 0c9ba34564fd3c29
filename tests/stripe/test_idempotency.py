"""The gateway honours Stripe-Should-Retry and Retry-After; our keys carry the installation's prefix (issue 16)."""

from __future__ import annotations

import re

import httpx
import pytest
import respx
from sqlalchemy import select

from funding.payments.calls import create_once, key_prefix
from funding.payments.models import InstallationFact, StripeRequest
from funding.settings import ConfigError, load_settings
from funding.stripe_gateway import StripeGateway, StripeRefused, StripeUnknown
from tests.support.stripe_objects import BASE, payment_intent

BASE_ENV = {"FUNDING_ENV": "test", "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
            "STRIPE_API_BASE": BASE, "SECRET_KEY": "k" * 20}


def gateway(**env) -> tuple[StripeGateway, list[float]]:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    return StripeGateway(load_settings({**BASE_ENV, **env}), sleep=sleep, timeout=2), slept


def error(status: int, type_: str, code: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={"error": {"type": type_, "code": code, "message": f"{status} {code}"}})


@respx.mock
async def test_a_500_stripe_says_not_to_retry_is_unknown_at_once_never_retried():
    route = respx.post(f"{BASE}/v1/payment_intents").mock(return_value=error(
        500, "api_error", headers={"Stripe-Should-Retry": "false", "Idempotent-Replayed": "true"}))
    gw, slept = gateway()
    with pytest.raises(StripeUnknown) as unknown:
        await gw.create("payment_intents", {"amount": 5000}, key="k-1")
    assert len(route.calls) == 1 and slept == []
    assert unknown.value.final and unknown.value.replayed
    await gw.aclose()


@respx.mock
async def test_a_500_stripe_says_to_retry_is_retried_with_the_same_key():
    pi = payment_intent(amount=5000, metadata={})
    route = respx.post(f"{BASE}/v1/payment_intents").mock(side_effect=[
        error(500, "api_error", headers={"Stripe-Should-Retry": "true"}), httpx.Response(200, json=pi)])
    gw, slept = gateway()
    assert (await gw.create("payment_intents", {"amount": 5000}, key="k-2"))["id"] == pi["id"]
    assert [c.request.headers["idempotency-key"] for c in route.calls] == ["k-2", "k-2"] and slept == [0.5]
    await gw.aclose()


@respx.mock
async def test_a_409_key_in_use_and_a_429_wait_retry_after_then_retry():
    pi = payment_intent(amount=5000, metadata={})
    route = respx.post(f"{BASE}/v1/payment_intents").mock(side_effect=[
        error(409, "idempotency_error", "idempotency_key_in_use", {"Stripe-Should-Retry": "true", "Retry-After": "3"}),
        error(429, "invalid_request_error", "rate_limit", {"Stripe-Should-Retry": "true", "Retry-After": "2"}),
        httpx.Response(200, json=pi)])
    gw, slept = gateway()
    assert (await gw.create("payment_intents", {"amount": 5000}, key="k-3"))["id"] == pi["id"]
    assert len(route.calls) == 3 and slept == [3.0, 2.0]  # Retry-After, when longer than our back-off
    await gw.aclose()


@respx.mock
async def test_a_refusal_stripe_says_not_to_retry_stays_a_refusal():
    route = respx.post(f"{BASE}/v1/payment_intents").mock(return_value=error(
        400, "idempotency_error", None, {"Stripe-Should-Retry": "false"}))
    gw, _ = gateway()
    with pytest.raises(StripeRefused):
        await gw.create("payment_intents", {"amount": 5000}, key="k-4")
    assert len(route.calls) == 1
    await gw.aclose()


@respx.mock
async def test_keys_and_metadata_carry_the_database_s_own_prefix_drawn_at_first_use(sessions):
    seen: list[httpx.Request] = []

    def create(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=payment_intent(amount=100, metadata={}))

    respx.post(f"{BASE}/v1/payment_intents").mock(side_effect=create)
    gw, _ = gateway()  # no STRIPE_IDEMPOTENCY_PREFIX
    await create_once(sessions, gw, ref="pledge:1", resource="payment_intents", params={"amount": 100, "currency": "eur"})
    await create_once(sessions, gw, ref="pledge:2", resource="payment_intents", params={"amount": 100, "currency": "eur"})
    async with sessions() as session:
        prefix = await session.scalar(select(InstallationFact.value).where(InstallationFact.name == "stripe_key_prefix"))
        keys = (await session.scalars(select(StripeRequest.idempotency_key).order_by(StripeRequest.id))).all()
    assert prefix and re.fullmatch(r"entrelab-[0-9a-f]{10}", prefix)
    assert keys == [f"{prefix}-pledge-1-payment_intents-1", f"{prefix}-pledge-2-payment_intents-1"]
    assert [r.headers["idempotency-key"] for r in seen] == keys
    assert all(f"metadata[entrelab_installation]={prefix}" in r.content.decode() for r in seen)
    assert await key_prefix(sessions, gw) == prefix  # stable: the same database, the same prefix
    await gw.aclose()
    chosen, _ = gateway(STRIPE_IDEMPOTENCY_PREFIX="coop-lyon")
    assert await key_prefix(sessions, chosen) == "coop-lyon"
    await chosen.aclose()


def test_a_malformed_prefix_is_refused():
    with pytest.raises(ConfigError, match="STRIPE_IDEMPOTENCY_PREFIX"):
        load_settings({**BASE_ENV, "STRIPE_IDEMPOTENCY_PREFIX": "a b"})
