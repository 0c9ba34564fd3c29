"""Verify, store, acknowledge: nothing unverified is ever stored."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from funding.payments.models import StripeEvent
from tests.support.stripe_objects import event, payout, sid, sign
from tests.support.webhooks import SECRET


def delivery(evt: dict, *, secret: str = SECRET, at: int | None = None) -> tuple[bytes, dict]:
    body = json.dumps(evt).encode()
    return body, {"stripe-signature": sign(body, secret, at=at), "content-type": "application/json"}


async def count(sessions) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count(StripeEvent.id)))


async def test_a_signed_event_is_stored_once_and_acknowledged_every_time(hook_client, sessions):
    evt = event("payout.paid", payout(amount=1000, txn=sid("txn")))
    body, headers = delivery(evt)
    first = await hook_client.post("/webhooks/stripe", content=body, headers=headers)
    again = await hook_client.post("/webhooks/stripe", content=body, headers=headers)
    assert first.status_code == again.status_code == 200  # never 4xx for a duplicate: Stripe would retry forever
    assert first.json() == {"received": True, "duplicate": False} and again.json()["duplicate"] is True
    async with sessions() as session:
        row = await session.get(StripeEvent, evt["id"])
    assert (row.type, row.status, row.object_id, row.source) == ("payout.paid", "pending", evt["data"]["object"]["id"], "webhook")
    assert json.loads(row.payload) == evt


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body, {k: v for k, v in headers.items() if k != "stripe-signature"}),
        lambda body, headers: (body.replace(b'"amount": 1000', b'"amount": 9000'), headers),
        lambda body, headers: (body, {**headers, "stripe-signature": sign(body, SECRET, at=int(time.time()) - 301)}),
        lambda body, headers: (body, {**headers, "stripe-signature": sign(body, "whsec_someone_else")}),
        lambda body, headers: (body, {**headers, "stripe-signature": "t=abc,v1=def"}),
        lambda body, headers: (body, {**headers, "stripe-signature": "garbage"}),
    ],
    ids=["missing header", "tampered body", "older than 300 s", "wrong secret", "malformed", "garbage"],
)
async def test_unverifiable_deliveries_get_400_and_store_nothing(hook_client, sessions, tamper):
    body, headers = delivery(event("payout.paid", payout(amount=1000, txn=sid("txn"))))
    body, headers = tamper(body, headers)
    response = await hook_client.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 400 and "error" in response.json()
    assert await count(sessions) == 0


async def test_any_v1_signature_is_accepted_while_secrets_roll(hook_client, sessions):
    body, headers = delivery(event("payout.paid", payout(amount=1000, txn=sid("txn"))))
    old = sign(body, "whsec_old_secret").split(",")[1]
    headers["stripe-signature"] = headers["stripe-signature"].replace(",v1=", f",{old},v1=")
    assert (await hook_client.post("/webhooks/stripe", content=body, headers=headers)).status_code == 200


@pytest.mark.parametrize(
    "evt, message",
    [
        (event("payout.paid", {"id": "po_1"}, livemode=True), "livemode"),
        ({"id": "evt_1", "object": "charge"}, "not a Stripe event"),
        ({"id": "nope", "object": "event", "type": "x", "data": {}}, "not a Stripe event"),
    ],
)
async def test_events_that_are_not_ours_are_refused(hook_client, sessions, evt, message):
    body, headers = delivery(evt)
    response = await hook_client.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 400 and message in response.json()["error"]
    assert await count(sessions) == 0


async def test_a_body_that_is_not_json_is_refused(hook_client, sessions):
    body = b"not json"
    response = await hook_client.post("/webhooks/stripe", content=body, headers={"stripe-signature": sign(body, SECRET)})
    assert response.status_code == 400 and await count(sessions) == 0


async def test_the_webhook_needs_no_csrf_token_and_only_accepts_post(hook_client):
    assert (await hook_client.get("/webhooks/stripe")).status_code == 405


async def test_an_oversized_body_is_refused_unread_and_the_answer_carries_the_security_headers(hook_client, sessions):
    from webhooks.routes import MAX_BODY

    body = b'{"padding": "' + b"x" * MAX_BODY + b'"}'
    response = await hook_client.post("/webhooks/stripe", content=body, headers={"stripe-signature": sign(body, SECRET)})
    assert response.status_code == 400 and "too large" in response.json()["error"]
    assert await count(sessions) == 0
    ok_body, headers = delivery(event("payout.paid", payout(amount=1000, txn=sid("txn"))))
    ok = await hook_client.post("/webhooks/stripe", content=ok_body, headers=headers)
    assert ok.headers["content-type"] == "application/json" and ok.headers["x-content-type-options"] == "nosniff"
    assert int(ok.headers["content-length"]) == len(ok.content)


def test_the_inbox_writer_inserts_every_column_a_delivery_fills():
    """The PostgreSQL group insert names its columns and their types by hand: they must follow the table."""
    from sqlalchemy.dialects import postgresql

    from webhooks.inbox import _TYPES, _row

    row = _row(event("payout.paid", payout(amount=1000, txn=sid("txn"))), "{}", "webhook")
    assert list(row) == list(_TYPES)
    table = StripeEvent.__table__.c
    for name, sql_type in _TYPES.items():
        compiled = table[name].type.compile(dialect=postgresql.dialect()).lower()
        assert compiled.split("(")[0].replace("varchar", "text").replace("without time zone", "").strip() == sql_type, name
