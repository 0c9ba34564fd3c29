"""The sandbox refuses what Stripe refuses for its API version (parameters from stripe-python's
typed *Params, stripe_sandbox/spec/endive.json), with Stripe's error shape."""

from __future__ import annotations

import json

import httpx
import pytest

from stripe_sandbox import validation
from stripe_sandbox.spec import generate

pytestmark = pytest.mark.stripe_refusal

KEY = {"Authorization": "Bearer sk_test_validation"}


def _post(server, path, data):
    return httpx.post(server.base + path, data=data, headers=KEY)


def _session(server, **extra):
    data = {
        "mode": "payment", "success_url": server.root + "/ok", "cancel_url": server.root + "/ko",
        "line_items[0][price_data][currency]": "eur", "line_items[0][price_data][unit_amount]": "2500",
        "line_items[0][price_data][product_data][name]": "Toit solaire", "line_items[0][quantity]": "1",
        "metadata[pledge_id]": "12", "metadata[any_free_key]": "x", "expand[]": "payment_intent",
    }
    return _post(server, "/v1/checkout/sessions", data | extra)


def test_the_data_is_what_the_generator_makes_from_the_installed_stripe():
    assert validation.SPEC.read_text(encoding="utf-8") == generate.render()
    data = json.loads(validation.SPEC.read_text(encoding="utf-8"))
    assert data["api_version"] == "2026-10-28.endive"
    assert len(data["endpoints"]) >= 100


def test_payment_method_types_on_checkout_is_refused_as_stripe_refuses_it(server, sb):
    answer = _session(server, **{"payment_method_types[0]": "card"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "parameter_unknown"
    assert error["param"] == "payment_method_types"
    assert error["message"] == "Received unknown parameter: payment_method_types"
    assert error["request_log_url"].startswith("https://dashboard.stripe.com/test/logs/req_")
    assert error["doc_url"] == "https://stripe.com/docs/error-codes/parameter-unknown"
    refused = httpx.get(server.base + "/_admin/refused").json()
    assert refused["count"] == 1 and refused["refused"][0]["param"] == "payment_method_types"


def test_the_endive_names_nested_keys_metadata_and_expand_pass(server, sb):
    answer = _session(server, **{"allowed_payment_method_types[0]": "card", "payment_intent_data[metadata][x]": "1"})
    assert answer.status_code == 200, answer.text
    assert sb.refused == []


@pytest.mark.parametrize(("extra", "param", "code"), [
    ({"line_items[0][price_data][bogus]": "1"}, "line_items[0][price_data][bogus]", "parameter_unknown"),
    ({"line_items[0][quantity]": "two"}, "line_items[0][quantity]", "parameter_invalid_integer"),
    ({"mode": "lifetime"}, "mode", "parameter_invalid"),
    ({"customer_creation": "sometimes"}, "customer_creation", "parameter_invalid"),
])
def test_ill_typed_or_unknown_nested_parameters_are_refused(server, sb, extra, param, code):
    answer = _session(server, **extra)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error.get("code") == code
    assert len(sb.refused) == 1


def test_list_query_parameters_are_checked_too(server, sb):
    assert httpx.get(server.base + "/v1/customers", params={"limit": "3"}, headers=KEY).status_code == 200
    answer = httpx.get(server.base + "/v1/customers", params={"colour": "blue"}, headers=KEY)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "colour"


def test_sandbox_only_endpoints_are_not_stripe_and_not_checked(server, sb):
    assert httpx.get(server.base + "/_admin/events").status_code == 200
    assert httpx.post(server.base + "/_admin/refused").json()["count"] == 0


def test_every_stripe_route_the_sandbox_serves_is_one_stripe_has():
    """A route Stripe lacks would let the product call something live Stripe answers 404 to."""
    data = json.loads(validation.SPEC.read_text(encoding="utf-8"))
    assert data["not_in_stripe"] == []


def test_checkout_sessions_have_no_search_as_in_stripe(server, sb):
    answer = httpx.get(server.base + "/v1/checkout/sessions/search", params={"query": "status:'open'"}, headers=KEY)
    assert answer.status_code in (400, 404)
    assert answer.json()["error"]["type"] == "invalid_request_error"
