"""Signed webhook delivery with retries, the Events API and its delivery_success filter."""

from __future__ import annotations

import json
import time

import anyio
import pytest
import stripe

from tests.support.sandbox import SECRET


@pytest.mark.anyio
async def test_deliveries_are_signed_like_stripe(stripe_client, sb, server):
    await stripe_client.v1.payment_intents.create_async(
        params={"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}, options={"idempotency_key": "pi-1"})
    created = len(sb.events)
    assert created >= 3 and all(e["pending_webhooks"] == 1 for e in sb.events)
    assert server.receiver.received == []  # nothing is sent from inside the API call
    assert await sb.deliver_pending() == created
    received = server.receiver.received
    assert len(received) == created
    for delivery in received:
        assert stripe.WebhookSignature.verify_header(delivery["body"].decode(), delivery["signature"], SECRET, tolerance=300)
        event = stripe.Webhook.construct_event(delivery["body"], delivery["signature"], SECRET)
        assert event["object"] == "event" and event["livemode"] is False
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(received[0]["body"].decode() + " ", received[0]["signature"], SECRET)
    bodies = [json.loads(d["body"]) for d in received]
    assert [b["id"] for b in bodies] == [e["id"] for e in sb.events]
    assert bodies[0]["request"]["idempotency_key"] == "pi-1" and bodies[0]["request"]["id"].startswith("req_")
    assert all(e["pending_webhooks"] == 0 for e in sb.events)
    assert await sb.deliver_pending() == 0


@pytest.mark.anyio
async def test_failed_deliveries_are_retried_with_backoff_and_found_by_the_events_api(stripe_client, sb, server):
    server.receiver.status = 500
    customer = await stripe_client.v1.customers.create_async(params={"email": "hook@example.org"}, options={"idempotency_key": "member-hook"})
    assert await sb.deliver_pending() == 0
    assert len(server.receiver.received) == 1
    missed = (await stripe_client.v1.events.list_async(params={"delivery_success": False}))["data"]
    assert [e["type"] for e in missed] == ["customer.created"] and missed[0]["pending_webhooks"] == 1
    assert missed[0]["data"]["object"]["id"] == customer["id"]
    assert await sb.deliver_pending() == 0 and len(server.receiver.received) == 1  # next attempt 1 s later
    sb.advance_clock(1)
    assert await sb.deliver_pending() == 0 and len(server.receiver.received) == 2
    sb.advance_clock(1)
    assert await sb.deliver_pending() == 0 and len(server.receiver.received) == 2  # then 5 s
    server.receiver.status = 200
    sb.advance_clock(4)
    assert await sb.deliver_pending() == 1
    assert len({json.loads(d["body"])["id"] for d in server.receiver.received}) == 1
    assert stripe_client.v1.events.list(params={"delivery_success": False})["data"] == []
    assert [e["id"] for e in stripe_client.v1.events.list(params={"delivery_success": True})["data"]] == [missed[0]["id"]]


@pytest.mark.anyio
async def test_a_clock_jump_never_drops_an_event_on_its_first_failure(stripe_client, sb, server):
    await stripe_client.v1.customers.create_async(params={"email": "jump@example.org"}, options={"idempotency_key": "jump"})
    sb.advance_clock(5 * 86_400)  # older than Stripe's three days of retries, never attempted yet
    server.receiver.status = 503
    await sb.deliver_pending()
    assert len(server.receiver.received) >= 1
    server.receiver.status = 200
    sb.advance_clock(5)
    assert await sb.deliver_pending() >= 1  # retried, not given up
    assert stripe_client.v1.events.list(params={"delivery_success": False})["data"] == []


@pytest.mark.anyio
async def test_background_delivery_task(stripe_client, sb, server):
    sb.start_delivery(interval=0.05)
    try:
        await stripe_client.v1.customers.create_async(params={"email": "bg@example.org"})
        with anyio.fail_after(5):
            # The receiver runs on the server's thread and loop: no event of ours can be set from there.
            while not server.receiver.received:  # noqa: ASYNC110  (polls another thread's list)
                await anyio.sleep(0.05)
    finally:
        await sb.stop_delivery()
    assert json.loads(server.receiver.received[0]["body"])["type"] == "customer.created"


def test_events_api_filters(stripe_client, sb):
    stripe_client.v1.customers.create(params={"email": "a@example.org"})
    sb.advance_clock(100)
    stripe_client.v1.payment_intents.create(params={"amount": 700, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True})
    events = stripe_client.v1.events.list(params={"limit": 100})["data"]
    assert [e["type"] for e in events] == ["payment_intent.succeeded", "charge.succeeded", "payment_intent.created", "customer.created"]
    assert [e["type"] for e in stripe_client.v1.events.list(params={"type": "charge.succeeded"})["data"]] == ["charge.succeeded"]
    assert len(stripe_client.v1.events.list(params={"type": "payment_intent.*"})["data"]) == 2
    assert len(stripe_client.v1.events.list(params={"types": ["customer.created", "charge.succeeded"]})["data"]) == 2
    first = events[-1]
    later = stripe_client.v1.events.list(params={"created": {"gt": first["created"]}})["data"]
    assert first["id"] not in [e["id"] for e in later] and len(later) == 3
    assert stripe_client.v1.events.retrieve(first["id"])["data"]["object"]["email"] == "a@example.org"
    sb.advance_clock(31 * 86_400)
    remaining = stripe_client.v1.events.list(params={"limit": 100})["data"]
    assert {e["type"] for e in remaining} == {"payout.created", "payout.paid"}  # the Events API keeps 30 days


def test_no_webhook_url_means_nothing_pending(server):
    from tests.support.sandbox import make_client, make_sandbox

    sb = make_sandbox(server, webhook_url=None)
    client = make_client(server)
    client.v1.customers.create(params={"email": "quiet@example.org"})
    assert sb.events[0]["pending_webhooks"] == 0
    assert anyio.run(sb.deliver_pending) == 0


@pytest.mark.anyio
async def test_an_event_with_no_url_to_deliver_to_fails_alone(stripe_client, sb, server):
    # Deliveries carry their URL; one without any (an older or hand-edited state file, and a sandbox
    # started without webhook_url) used to raise TypeError from httpx and stop the whole batch.
    await stripe_client.v1.customers.create_async(params={"email": "a@example.org"})
    await stripe_client.v1.customers.create_async(params={"email": "b@example.org"})
    first = sb.store.data["objects"]["event"][sb.events[0]["id"]]
    del first["_delivery"]["url"]
    sb.webhook_url = None
    assert await sb.deliver_pending() == 1
    assert [json.loads(d["body"])["id"] for d in server.receiver.received] == [sb.events[1]["id"]]
    assert first["_delivery"]["attempts"] == 1 and "no webhook URL" in first["_delivery"]["last_error"]
    assert first["_delivery"]["next_at"] == sb.now() + 1  # retried on the usual schedule


def test_signature_helper_matches_stripe():
    from stripe_sandbox import signature_header

    header = signature_header('{"id": "evt_1"}', SECRET, timestamp=int(time.time()))
    assert stripe.WebhookSignature.verify_header('{"id": "evt_1"}', header, SECRET, tolerance=300)
