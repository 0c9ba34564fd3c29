"""Auth, idempotency, errors, lists, search, expand and form decoding, through the real SDK."""

from __future__ import annotations

import contextlib

import httpx
import pytest
import stripe

from stripe_sandbox.encoding import decode_pairs
from stripe_sandbox.errors import StripeError
from tests.support.sandbox import make_client


def test_form_decoding_nested_lists_and_appends():
    decoded = decode_pairs(
        [
            ("metadata[pledge_id]", "12"),
            ("line_items[0][price_data][unit_amount]", "500"),
            ("line_items[0][quantity]", "2"),
            ("line_items[1][price]", "price_x"),
            ("expand[]", "latest_charge"),
            ("expand[]", "customer"),
            ("confirm", "true"),
        ]
    )
    assert decoded == {
        "metadata": {"pledge_id": "12"},
        "line_items": [{"price_data": {"unit_amount": "500"}, "quantity": "2"}, {"price": "price_x"}],
        "expand": ["latest_charge", "customer"],
        "confirm": "true",
    }
    with pytest.raises(StripeError):
        decode_pairs([("a[b]", "1"), ("a[b][c]", "2")])


def test_live_keys_and_missing_keys_are_refused(server, sb):
    live = stripe.StripeClient("sk_live_abcdefghijklmnop", http_client=stripe.HTTPXClient(allow_sync_methods=True), base_addresses={"api": server.base})
    with pytest.raises(stripe.AuthenticationError) as refused:
        live.v1.customers.create(params={"email": "x@example.org"})
    assert refused.value.http_status == 401
    assert "live" in refused.value.user_message
    response = httpx.get(server.base + "/v1/customers")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert sb.store.data["objects"]["customer"] == {}


def test_idempotent_replay_returns_the_stored_response(stripe_client, sb):
    params = {"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True, "metadata": {"pledge_id": "1"}}
    first = stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "pledge-1-charge-1"})
    again = stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "pledge-1-charge-1"})
    assert again["id"] == first["id"]
    assert again.last_response.headers.get("idempotent-replayed") == "true"
    assert again.last_response.body == first.last_response.body
    assert len(stripe_client.v1.charges.list(params={"payment_intent": first["id"]})["data"]) == 1
    assert sum(1 for e in sb.events if e["type"] == "payment_intent.succeeded") == 1


def test_same_key_with_other_params_is_an_idempotency_error(stripe_client):
    stripe_client.v1.customers.create(params={"email": "a@example.org"}, options={"idempotency_key": "member-1"})
    with pytest.raises(stripe.IdempotencyError) as error:
        stripe_client.v1.customers.create(params={"email": "b@example.org"}, options={"idempotency_key": "member-1"})
    assert error.value.http_status == 400
    assert error.value.json_body["error"]["type"] == "idempotency_error"
    assert len(stripe_client.v1.customers.list()["data"]) == 1


def test_idempotency_keys_expire_after_24_hours_of_sandbox_time(stripe_client, sb):
    first = stripe_client.v1.customers.create(params={"email": "a@example.org"}, options={"idempotency_key": "k"})
    sb.advance_clock(24 * 3600 + 1)
    second = stripe_client.v1.customers.create(params={"email": "a@example.org"}, options={"idempotency_key": "k"})
    assert second["id"] != first["id"]


def test_card_declines_are_replayed_too(stripe_client):
    params = {"amount": 5000, "currency": "eur", "payment_method": "pm_card_chargeDeclinedInsufficientFunds", "confirm": True}
    with pytest.raises(stripe.CardError) as first:
        stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "decline"})
    with pytest.raises(stripe.CardError) as second:
        stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "decline"})
    assert first.value.json_body == second.value.json_body
    assert len(stripe_client.v1.payment_intents.list()["data"]) == 1


@pytest.mark.stripe_refusal
def test_unknown_ids_unknown_params_and_bad_values(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.customers.retrieve("cus_doesnotexist")
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.customers.create(params={"emial": "typo@example.org"})
    assert unknown.value.param == "emial"
    with pytest.raises(stripe.InvalidRequestError) as bad:
        stripe_client.v1.payment_intents.create(params={"amount": 10, "currency": "eur"})
    assert bad.value.code == "amount_too_small"


def test_stripe_version_header_is_accepted_and_echoed(server, sb):
    response = httpx.post(
        server.base + "/v1/customers",
        data={"email": "v@example.org"},
        headers={"Authorization": "Bearer sk_test_x", "Stripe-Version": "2026-10-28.endive"},
    )
    assert response.status_code == 200
    assert response.headers["stripe-version"] == "2026-10-28.endive"
    assert response.headers["request-id"].startswith("req_")
    assert sb.events[-1]["request"]["id"] == response.headers["request-id"]


def test_lists_paginate_newest_first_with_created_filters(stripe_client, sb):
    ids = []
    for n in range(5):
        ids.append(stripe_client.v1.customers.create(params={"email": f"m{n}@example.org"})["id"])
        sb.advance_clock(10)
    page = stripe_client.v1.customers.list(params={"limit": 2})
    assert [c["id"] for c in page["data"]] == [ids[4], ids[3]]
    assert page["has_more"] is True and page["url"] == "/v1/customers"
    rest = stripe_client.v1.customers.list(params={"limit": 10, "starting_after": ids[3]})
    assert [c["id"] for c in rest["data"]] == [ids[2], ids[1], ids[0]] and rest["has_more"] is False
    before = stripe_client.v1.customers.list(params={"limit": 2, "ending_before": ids[1]})
    assert [c["id"] for c in before["data"]] == [ids[3], ids[2]]
    third = stripe_client.v1.customers.retrieve(ids[2])
    window = stripe_client.v1.customers.list(params={"created": {"gte": third["created"]}})
    assert [c["id"] for c in window["data"]] == [ids[4], ids[3], ids[2]]
    assert [c["id"] for c in stripe_client.v1.customers.list().auto_paging_iter()] == ids[::-1]


def test_search_by_metadata_and_status(stripe_client):
    for pledge, card in (("1", "pm_card_visa"), ("2", "pm_card_visa"), ("1", "pm_card_chargeDeclined")):
        with contextlib.suppress(stripe.CardError):  # the declined card: its PaymentIntent stays, to be searched
            stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "eur", "payment_method": card, "confirm": True,
                                                            "metadata": {"pledge_id": pledge, "campaign": "roof"}})
    found = stripe_client.v1.payment_intents.search(params={"query": "metadata['pledge_id']:'1' AND status:'succeeded'"})
    assert found["object"] == "search_result"
    assert len(found["data"]) == 1 and found["data"][0]["metadata"]["pledge_id"] == "1"
    assert len(stripe_client.v1.payment_intents.search(params={"query": "metadata['campaign']:'roof'"})["data"]) == 3
    stripe_client.v1.customers.create(params={"email": "Zoe@example.org", "metadata": {"member_id": "42"}})
    assert len(stripe_client.v1.customers.search(params={"query": 'metadata["member_id"]:"42"'})["data"]) == 1
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.search(params={"query": "metadata[member_id] = 42"})


def test_expand_inlines_nested_objects(stripe_client):
    pi = stripe_client.v1.payment_intents.create(
        params={"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True, "expand": ["latest_charge.balance_transaction"]}
    )
    charge = pi["latest_charge"]
    assert charge["object"] == "charge" and charge["balance_transaction"]["object"] == "balance_transaction"
    listed = stripe_client.v1.payment_intents.list(params={"expand": ["data.latest_charge"]})
    assert listed["data"][0]["latest_charge"]["id"] == charge["id"]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.retrieve(pi["id"], params={"expand": ["nonsense"]})


def test_objects_follow_the_current_api_shapes(stripe_client):
    pi = stripe_client.v1.payment_intents.create(params={"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True})
    charge = stripe_client.v1.charges.retrieve(pi["latest_charge"])
    for key in ("amount_captured", "balance_transaction", "billing_details", "outcome", "payment_method_details", "receipt_url",
                "livemode", "metadata"):
        assert key in charge
    assert "refunds" not in charge  # includable since 2022-11-15: only with expand[]=refunds
    assert charge["livemode"] is False and charge["paid"] is True and charge["captured"] is True
    assert charge["payment_method_details"]["card"]["last4"] == "4242"
    for key in ("amount_received", "client_secret", "latest_charge", "last_payment_error", "next_action", "payment_method_types", "status"):
        assert key in pi


@pytest.mark.anyio
async def test_async_variants(server, sb):
    client = make_client(server)
    customer = await client.v1.customers.create_async(params={"email": "async@example.org"}, options={"idempotency_key": "async-1"})
    again = await client.v1.customers.create_async(params={"email": "async@example.org"}, options={"idempotency_key": "async-1"})
    assert again["id"] == customer["id"]
    pm = await client.v1.payment_methods.attach_async("pm_card_visa", params={"customer": customer["id"]})
    listed = await client.v1.customers.payment_methods.list_async(customer["id"])
    assert [p["id"] for p in listed["data"]] == [pm["id"]]


def test_a_blank_customer_on_an_intent_update_is_a_missing_param(stripe_client):
    # It used to reach find_customer as None and answer 404 "No such customer: 'None'".
    pi = stripe_client.v1.payment_intents.create(params={"amount": 5000, "currency": "eur"})
    seti = stripe_client.v1.setup_intents.create(params={})
    for update, ident in ((stripe_client.v1.payment_intents.update, pi["id"]), (stripe_client.v1.setup_intents.update, seti["id"])):
        with pytest.raises(stripe.InvalidRequestError) as blank:
            update(ident, params={"customer": ""})
        assert (blank.value.http_status, blank.value.code, blank.value.param) == (400, "parameter_missing", "customer")
        assert "None" not in blank.value.user_message


def test_a_blank_amount_on_an_update_is_a_missing_param(stripe_client):
    # It used to be stored as None; confirming the PaymentIntent (or totalling the invoice) then answered 500.
    customer = stripe_client.v1.customers.create(params={"email": "blank@example.org"})
    pi = stripe_client.v1.payment_intents.create(params={"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa"})
    item = stripe_client.v1.invoice_items.create(params={"customer": customer["id"], "amount": 1200, "currency": "eur"})
    for update, ident in ((stripe_client.v1.payment_intents.update, pi["id"]), (stripe_client.v1.invoice_items.update, item["id"])):
        with pytest.raises(stripe.InvalidRequestError) as blank:
            update(ident, params={"amount": ""})
        assert (blank.value.http_status, blank.value.code, blank.value.param) == (400, "parameter_missing", "amount")
    assert stripe_client.v1.payment_intents.confirm(pi["id"])["amount_received"] == 5000
    assert stripe_client.v1.invoice_items.retrieve(item["id"])["amount"] == 1200


def test_a_reference_the_state_cannot_resolve_is_a_stripe_shaped_500(stripe_client, sb):
    from stripe_sandbox.state import BrokenReference

    pi = stripe_client.v1.payment_intents.create(params={"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa"})
    del sb.store.data["objects"]["payment_method"][pi["payment_method"]]  # a hand-edited state file, say
    with pytest.raises(BrokenReference):
        sb.store.ref("payment_method", pi["payment_method"])
    with pytest.raises(stripe.APIError) as broken:
        stripe_client.v1.payment_intents.confirm(pi["id"], options={"max_network_retries": 0})
    assert broken.value.http_status == 500
    assert broken.value.json_body["error"]["type"] == "api_error"
