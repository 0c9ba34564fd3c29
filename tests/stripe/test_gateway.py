"""The gateway: pinned version, our idempotency keys, retries that never charge twice."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import respx
from sqlalchemy import select, update

from funding.payments.calls import create_once, resolve_unknown
from funding.payments.models import StripeRequest
from funding.settings import load_settings
from funding.stripe_gateway import API_VERSION, StripeGateway, StripeRefused, StripeUnknown
from tests.support.stripe_objects import BASE, payment_intent

SETTINGS = load_settings({"FUNDING_ENV": "test", "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
                          "STRIPE_API_BASE": BASE, "SECRET_KEY": "k" * 20, "STRIPE_IDEMPOTENCY_PREFIX": "entrelab"})


def gateway(**kw) -> tuple[StripeGateway, list[float]]:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    return StripeGateway(SETTINGS, sleep=sleep, timeout=2, **kw), slept


def error(status: int, type_: str, code: str | None = None, **extra) -> httpx.Response:
    return httpx.Response(status, json={"error": {"type": type_, "code": code, "message": f"{status} {code}", **extra}})


@respx.mock
async def test_create_sends_our_key_and_the_pinned_version():
    pi = payment_intent(amount=5000, metadata={"pledge_id": "12"})
    route = respx.post(f"{BASE}/v1/payment_intents").mock(return_value=httpx.Response(200, json=pi))
    gw, _ = gateway()
    obj = await gw.create("payment_intents", {"amount": 5000, "currency": "eur", "metadata": {"pledge_id": "12"}},
                          key="pledge-12-charge-1")
    assert obj["id"] == pi["id"] and isinstance(obj, dict)
    request = route.calls.last.request
    assert request.headers["idempotency-key"] == "pledge-12-charge-1"
    assert request.headers["stripe-version"] == API_VERSION
    assert b"metadata[pledge_id]=12" in request.content
    with pytest.raises(ValueError):
        await gw.create("payment_intents", {}, key="")
    await gw.aclose()


@respx.mock
async def test_a_500_is_retried_with_the_same_key_then_succeeds():
    pi = payment_intent(amount=5000, metadata={})
    route = respx.post(f"{BASE}/v1/payment_intents").mock(side_effect=[error(500, "api_error"), httpx.Response(200, json=pi)])
    gw, slept = gateway()
    assert (await gw.create("payment_intents", {"amount": 5000}, key="k-1"))["id"] == pi["id"]
    assert [c.request.headers["idempotency-key"] for c in route.calls] == ["k-1", "k-1"]
    assert slept == [0.5]


@respx.mock
async def test_429_and_409_back_off_and_timeouts_retry_with_the_same_key():
    pi = payment_intent(amount=5000, metadata={})
    route = respx.post(f"{BASE}/v1/payment_intents").mock(side_effect=[
        error(429, "invalid_request_error", "rate_limit"), error(409, "invalid_request_error", "lock_timeout"),
        httpx.ReadTimeout("slow"), httpx.Response(200, json=pi)])
    gw, slept = gateway(max_attempts=5)
    assert (await gw.create("payment_intents", {"amount": 5000}, key="k-2"))["id"] == pi["id"]
    assert {c.request.headers["idempotency-key"] for c in route.calls} == {"k-2"} and len(route.calls) == 4
    assert slept == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    "response, code",
    [
        (error(402, "card_error", "card_declined", decline_code="insufficient_funds"), "card_declined"),
        (error(400, "invalid_request_error", "parameter_missing"), "parameter_missing"),
        (error(400, "idempotency_error", "idempotency_key_in_use"), "idempotency_key_in_use"),
        (error(401, "invalid_request_error", None), None),
        (error(403, "invalid_request_error", None), None),
        (error(404, "invalid_request_error", "resource_missing"), "resource_missing"),
    ],
)
@respx.mock
async def test_4xx_answers_are_never_retried(response, code):
    route = respx.post(f"{BASE}/v1/payment_intents").mock(return_value=response)
    gw, slept = gateway()
    with pytest.raises(StripeRefused) as info:
        await gw.create("payment_intents", {"amount": 5000}, key="k-3")
    assert len(route.calls) == 1 and slept == []
    assert info.value.code == code and info.value.http_status == response.status_code
    if code == "card_declined":
        assert info.value.decline_code == "insufficient_funds"


@respx.mock
async def test_no_definite_answer_is_unknown_not_failed():
    respx.post(f"{BASE}/v1/payment_intents").mock(return_value=error(503, "api_error"))
    gw, slept = gateway(max_attempts=3)
    with pytest.raises(StripeUnknown):
        await gw.create("payment_intents", {"amount": 5000}, key="k-4")
    assert slept == [0.5, 1.0]


class StripeWithMemory:
    """Stripe's idempotency, faithfully: a key replays its first successful result."""

    def __init__(self, fail_first: int = 0, work_then_timeout: bool = False):
        self.created: dict[str, dict] = {}
        self.calls = 0
        self.fail_first = fail_first
        self.work_then_timeout = work_then_timeout

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        key = request.headers["idempotency-key"]
        if key not in self.created and self.calls > self.fail_first:
            form = dict(httpx.QueryParams(request.content.decode()))
            self.created[key] = payment_intent(amount=int(form["amount"]), metadata={
                k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")})
            if self.work_then_timeout and len(self.created) == 1 and self.calls == self.fail_first + 1:
                raise httpx.ReadTimeout("Stripe did the work, the answer never came back")
        if key in self.created:
            return httpx.Response(200, json=self.created[key])
        return error(500, "api_error")

    def search(self, request: httpx.Request) -> httpx.Response:
        """``metadata['k']:'v' AND …`` over what was created."""
        import re

        wanted = dict(re.findall(r"metadata\['([^']+)'\]:'([^']*)'", request.url.params["query"]))
        hits = [o for o in self.created.values() if all(o["metadata"].get(k) == v for k, v in wanted.items())]
        return httpx.Response(200, json={"object": "search_result", "data": hits, "has_more": False, "next_page": None,
                                         "url": "/v1/payment_intents/search"})


@respx.mock
async def test_a_timeout_after_stripe_did_the_work_gives_back_the_same_object(sessions):
    fake = StripeWithMemory(work_then_timeout=True)
    respx.post(f"{BASE}/v1/payment_intents").mock(side_effect=fake)
    gw, _ = gateway()
    obj = await create_once(sessions, gw, ref="pledge:7", resource="payment_intents", params={"amount": 5000, "currency": "eur"})
    assert fake.calls == 2 and len(fake.created) == 1
    assert obj["id"] == next(iter(fake.created.values()))["id"]
    async with sessions() as session:
        row = await session.scalar(select(StripeRequest))
    assert (row.status, row.stripe_id, row.idempotency_key) == ("succeeded", obj["id"], "entrelab-pledge-7-payment_intents-1")
    again = respx.get(f"{BASE}/v1/payment_intents/{obj['id']}").mock(return_value=httpx.Response(200, json=obj))
    assert (await create_once(sessions, gw, ref="pledge:7", resource="payment_intents", params={"amount": 5000}))["id"] == obj["id"]
    assert again.called and len(fake.created) == 1


@respx.mock
async def test_unknown_outcome_is_settled_by_the_sweep_with_one_object(sessions):
    fake = StripeWithMemory(fail_first=4)  # four 500s: the call gives up
    respx.post(f"{BASE}/v1/payment_intents").mock(side_effect=fake)
    respx.get(f"{BASE}/v1/payment_intents/search").mock(side_effect=fake.search)
    gw, _ = gateway(max_attempts=4)
    with pytest.raises(StripeUnknown):
        await create_once(sessions, gw, ref="pledge:8", resource="payment_intents", params={"amount": 2500, "currency": "eur"})
    async with sessions() as session:
        assert (await session.scalar(select(StripeRequest.status))) == "unknown"
    assert await resolve_unknown(sessions, SETTINGS, gw) == 1
    assert await resolve_unknown(sessions, SETTINGS, gw) == 0  # settled: nothing left to do
    async with sessions() as session:
        row = await session.scalar(select(StripeRequest))
    assert row.status == "succeeded" and len(fake.created) == 1 and row.stripe_id == next(iter(fake.created.values()))["id"]


@respx.mock
async def test_after_24_hours_the_sweep_searches_our_metadata_before_creating(sessions):
    respx.post(f"{BASE}/v1/payment_intents").mock(return_value=error(500, "api_error"))
    gw, _ = gateway(max_attempts=1)
    for ref in ("pledge:9", "pledge:10"):
        with pytest.raises(StripeUnknown):
            await create_once(sessions, gw, ref=ref, resource="payment_intents", params={"amount": 1000, "currency": "eur"})
    async with sessions() as session:
        await session.execute(update(StripeRequest).values(created_at=dt.datetime(2020, 1, 1)))
        await session.commit()
    found = payment_intent(amount=1000, metadata={"entrelab_ref": "pledge:9", "entrelab_installation": "entrelab"})

    def search(request):
        query = request.url.params["query"]
        return httpx.Response(200, json={"object": "search_result", "data": [found] if "pledge:9" in query else [],
                                         "has_more": False, "next_page": None, "url": "/v1/payment_intents/search"})

    respx.get(f"{BASE}/v1/payment_intents/search").mock(side_effect=search)
    created = payment_intent(amount=1000, metadata={"entrelab_ref": "pledge:10", "entrelab_installation": "entrelab"})
    create_route = respx.post(f"{BASE}/v1/payment_intents").mock(return_value=httpx.Response(200, json=created))
    create_route.calls.clear()
    await resolve_unknown(sessions, SETTINGS, gw)
    async with sessions() as session:
        rows = {(r.ref, r.attempt): r for r in (await session.scalars(select(StripeRequest))).all()}
    assert rows[("pledge:9", 1)].status == "succeeded" and rows[("pledge:9", 1)].stripe_id == found["id"]
    assert rows[("pledge:10", 1)].status == "failed" and rows[("pledge:10", 2)].stripe_id == created["id"]
    assert len(create_route.calls) == 1  # only the one nothing was found for
    assert create_route.calls.last.request.headers["idempotency-key"] == "entrelab-pledge-10-payment_intents-2"
    assert json.loads(rows[("pledge:10", 2)].params)["metadata"]["entrelab_ref"] == "pledge:10"


@respx.mock
async def test_a_retry_under_the_same_key_sends_what_the_first_attempt_sent(sessions):
    # Observed: a Checkout's expires_at was derived from the row's creation, so a pledge made a
    # while before its Checkout (a retry, the demo's backers) was refused by Stripe; now it is
    # derived from the call, and a retry under the same key repeats the first call's parameters.
    route = respx.post(f"{BASE}/v1/checkout/sessions").mock(return_value=error(500, "api_error"))
    gw, _ = gateway(max_attempts=1)
    with pytest.raises(StripeUnknown):
        await create_once(sessions, gw, ref="pledge:11", resource="checkout.sessions", params={"expires_at": 1000})
    with pytest.raises(StripeUnknown):
        await create_once(sessions, gw, ref="pledge:11", resource="checkout.sessions", params={"expires_at": 2000})
    first, second = (call.request for call in route.calls)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert b"expires_at=1000" in first.content and b"expires_at=1000" in second.content


def test_a_checkout_expires_31_minutes_after_it_is_opened_whenever_its_row_was_made():
    from funding.payments.service import checkout_expiry

    opened = dt.datetime(2026, 12, 4, 10, 0)
    assert checkout_expiry(opened) == int(dt.datetime(2026, 12, 4, 10, 31, tzinfo=dt.UTC).timestamp())
    now = dt.datetime.now(dt.UTC).timestamp()
    assert 30 * 60 < checkout_expiry() - now <= 31 * 60 + 1
