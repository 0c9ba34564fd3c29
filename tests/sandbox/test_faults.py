"""Injected faults: the product must survive them with idempotency keys and retries."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.support.sandbox import make_client

PLEDGE = {"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True, "metadata": {"pledge_id": "9"}}


def test_error_500_does_nothing_and_a_retry_with_the_same_key_works(raw_client, sb):
    sb.inject_fault("POST", "/v1/payment_intents", "error_500")
    with pytest.raises(stripe.APIError) as failed:
        raw_client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    assert failed.value.http_status == 500 and failed.value.json_body["error"]["type"] == "api_error"
    assert raw_client.v1.payment_intents.list()["data"] == []
    pi = raw_client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    assert pi["status"] == "succeeded"
    assert len(raw_client.v1.charges.list()["data"]) == 1


def test_an_sdk_with_network_retries_recovers_from_a_500_on_its_own(server, sb):
    client = make_client(server, max_network_retries=2)
    sb.inject_fault("POST", "/v1/customers", "error_500")
    customer = client.v1.customers.create(params={"email": "r@example.org"})
    assert customer["id"].startswith("cus_")
    assert len(client.v1.customers.list()["data"]) == 1


def test_error_500_after_the_work_replays_the_result_on_retry(raw_client, sb):
    sb.inject_fault("POST", "/v1/payment_intents", "error_500_after")
    with pytest.raises(stripe.APIError):
        raw_client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    made = raw_client.v1.payment_intents.search(params={"query": "metadata['pledge_id']:'9'"})["data"]
    assert len(made) == 1 and made[0]["status"] == "succeeded"  # Stripe did the work
    retried = raw_client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    assert retried["id"] == made[0]["id"]
    assert retried.last_response.headers.get("idempotent-replayed") == "true"
    assert len(raw_client.v1.charges.list()["data"]) == 1


def test_timeout_after_the_work_then_the_retry_returns_the_same_object(server, sb):
    client = make_client(server, timeout=1.0, max_network_retries=0)
    sb.inject_fault("POST", "/v1/payment_intents", "timeout_after")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    retried = client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    assert retried["status"] == "succeeded"
    assert [p["id"] for p in client.v1.payment_intents.list()["data"]] == [retried["id"]]
    assert len(client.v1.charges.list()["data"]) == 1


def test_error_429_is_a_rate_limit(raw_client, sb):
    sb.inject_fault("*", "/v1/customers", "error_429", count=2)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as limited:
            raw_client.v1.customers.list()
        assert limited.value.http_status == 429
    assert raw_client.v1.customers.list()["data"] == []
    with pytest.raises(ValueError):
        sb.inject_fault("POST", "/v1/customers", "explode")


def test_admin_endpoints_over_http(raw_client, sb, server):
    admin = server.base + "/_admin"
    assert httpx.post(admin + "/faults", json={"method": "POST", "path_prefix": "/v1/customers", "mode": "error_500"}).json()["faults"][0]["count"] == 1
    with pytest.raises(stripe.APIError):
        raw_client.v1.customers.create(params={"email": "e2e@example.org"})
    assert httpx.post(admin + "/faults", data={"clear": "true"}).json() == {"faults": []}
    raw_client.v1.customers.create(params={"email": "e2e@example.org"})
    before = httpx.get(admin + "/clock").json()["now"]
    advanced = httpx.post(admin + "/advance", data={"seconds": "3600"}).json()
    assert advanced["now"] >= before + 3600 and advanced["events"] == []
    events = httpx.get(admin + "/events").json()["data"]
    assert [e["type"] for e in events] == ["customer.created"] and events[0]["sandbox_delivery"]["attempts"] == 0
    assert httpx.post(admin + "/deliver").json() == {"delivered": 1}
    assert httpx.post(admin + "/advance", json={"seconds": -1}).status_code == 400
