"""Injected faults: the product must survive them with idempotency keys and retries."""

from __future__ import annotations

import threading
import time

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
    assert failed.value.headers["stripe-should-retry"] == "true"  # nothing was done, nothing saved: retry
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


def test_error_500_after_the_work_is_saved_and_replayed_for_24_hours_as_stripe_does(raw_client, sb):
    sb.inject_fault("POST", "/v1/payment_intents", "error_500_after")
    with pytest.raises(stripe.APIError) as failed:
        raw_client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    assert failed.value.headers["stripe-should-retry"] == "false"  # the 500 is saved: a retry only replays it
    made = raw_client.v1.payment_intents.search(params={"query": "metadata['pledge_id']:'9'"})["data"]
    assert len(made) == 1 and made[0]["status"] == "succeeded"  # Stripe did the work
    with pytest.raises(stripe.APIError) as replayed:
        raw_client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    assert replayed.value.http_status == 500 and replayed.value.headers["idempotent-replayed"] == "true"
    assert replayed.value.headers["stripe-should-retry"] == "false"
    sb.advance_clock(24 * 3600 - 60)
    with pytest.raises(stripe.APIError):  # still within the window
        raw_client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    assert len(raw_client.v1.charges.list()["data"]) == 1
    sb.advance_clock(120)  # past 24 h the key is forgotten: the same request creates again, as at Stripe
    again = raw_client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    assert again["id"] != made[0]["id"] and again.last_response.headers.get("idempotent-replayed") is None
    assert len(raw_client.v1.charges.list()["data"]) == 2


def test_a_card_error_is_saved_and_a_validation_error_is_not(raw_client, sb):
    declined = {**PLEDGE, "payment_method": "pm_card_chargeDeclined"}
    for _ in range(2):
        with pytest.raises(stripe.CardError) as refused:
            raw_client.v1.payment_intents.create(params=declined, options={"idempotency_key": "pledge-9-charge-2"})
    assert refused.value.headers["idempotent-replayed"] == "true" and refused.value.headers["stripe-should-retry"] == "false"
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.payment_intents.create(params={**PLEDGE, "amount": -1}, options={"idempotency_key": "pledge-9-charge-3"})
    pi = raw_client.v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-3"})
    assert pi["status"] == "succeeded"


def test_a_key_reused_with_other_parameters_is_an_idempotency_error(raw_client, sb):
    raw_client.v1.customers.create(params={"email": "a@example.org"}, options={"idempotency_key": "k-1"})
    with pytest.raises(stripe.IdempotencyError) as refused:
        raw_client.v1.customers.create(params={"email": "b@example.org"}, options={"idempotency_key": "k-1"})
    assert refused.value.http_status == 400 and refused.value.json_body["error"]["type"] == "idempotency_error"
    assert refused.value.headers["stripe-should-retry"] == "false"


def test_a_twin_request_while_the_first_is_in_flight_gets_409_key_in_use(server, sb):
    sb.fault_timeout = 1.0
    sb.inject_fault("POST", "/v1/payment_intents", "delay_before")
    first: dict = {}

    def send_first() -> None:
        first["pi"] = make_client(server, max_network_retries=0).v1.payment_intents.create(
            params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})

    thread = threading.Thread(target=send_first)
    thread.start()
    deadline = time.monotonic() + 5
    while not sb.keys_in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(stripe.APIError) as locked:  # stripe-python has no class of its own for a 409
        make_client(server, max_network_retries=0).v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    assert locked.value.http_status == 409 and locked.value.json_body["error"]["type"] == "idempotency_error"
    assert locked.value.json_body["error"]["code"] == "idempotency_key_in_use"
    assert locked.value.headers["stripe-should-retry"] == "true" and locked.value.headers["retry-after"] == "1"
    thread.join(10)
    twin = make_client(server, max_network_retries=0).v1.payment_intents.create(params=PLEDGE, options={"idempotency_key": "pledge-9-charge-1"})
    assert twin["id"] == first["pi"]["id"] and twin.last_response.headers["idempotent-replayed"] == "true"
    assert len(make_client(server).v1.charges.list()["data"]) == 1


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
        assert limited.value.headers["stripe-should-retry"] == "true" and limited.value.headers["retry-after"] == "1"
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
