"""Checkout Sessions completed through the hosted pages, driven with plain HTTP form posts."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest
import stripe

from tests.support.sandbox import authenticate, card_form, submit, types_since


def _payment_session(client, server, **extra):
    params = {
        "mode": "payment",
        "line_items": [
            {"price_data": {"currency": "eur", "unit_amount": 2500, "product_data": {"name": "Contribution toit solaire"}}, "quantity": 2},
        ],
        "metadata": {"pledge_id": "12"},
        "payment_intent_data": {"metadata": {"pledge_id": "12"}},
        "success_url": server.root + "/merchant/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": server.root + "/merchant/cancel",
    } | extra
    return client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "pledge-12-checkout"})


def test_payment_mode_through_the_hosted_page(stripe_client, sb, server):
    session = _payment_session(stripe_client, server)
    assert session["status"] == "open" and session["payment_status"] == "unpaid" and session["amount_total"] == 5000
    assert session["url"].startswith(server.base + "/checkout/cs_test_")
    assert session["payment_intent"] is None
    page = httpx.get(session["url"])
    assert page.status_code == 200
    html = page.text
    assert "Bac à sable Stripe — aucun paiement réel" in html and 'lang="fr"' in html
    for field in ("card-number", "card-expiry", "card-cvc", "cardholder-name", "email"):
        assert f'id="{field}"' in html and f'name="{field}"' in html and f'for="{field}"' in html
    assert 'id="pay"' in html and "50,00" in html
    done = submit(session["url"], card_form())
    assert done.status_code == 200
    assert str(done.url) == f"{server.root}/merchant/success?session_id={session['id']}"
    assert done.text == f"merchant success {session['id']}"
    session = stripe_client.v1.checkout.sessions.retrieve(session["id"], params={"expand": ["payment_intent.latest_charge", "line_items"]})
    assert session["status"] == "complete" and session["payment_status"] == "paid" and session["url"] is None
    assert session["customer"] is None and session["customer_details"]["email"] == "camille@example.org"
    pi = session["payment_intent"]
    assert pi["status"] == "succeeded" and pi["metadata"]["pledge_id"] == "12" and pi["amount"] == 5000
    assert pi["latest_charge"]["billing_details"]["name"] == "Camille Martin"
    assert session["line_items"]["data"][0]["quantity"] == 2
    assert types_since(sb, 0)[-4:] == ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded", "checkout.session.completed"]
    completed = sb.events[-1]["data"]["object"]
    assert completed["payment_status"] == "paid" and completed["metadata"] == {"pledge_id": "12"}
    items = stripe_client.v1.checkout.sessions.line_items.list(session["id"])
    assert items["data"][0]["amount_total"] == 5000 and items["data"][0]["description"] == "Contribution toit solaire"
    again = httpx.get(session_url := f"{server.base}/checkout/{session['id']}")
    assert "déjà effectué" in unescape(again.text) and session_url


def test_hosted_page_rejects_malformed_cards_in_french(stripe_client, sb, server):
    session = _payment_session(stripe_client, server)
    answer = submit(session["url"], card_form("4242 4242 4242 4241", expiry="01/20", cvc=""))
    assert answer.status_code == 400
    text = unescape(answer.text)
    assert "Le numéro de carte est invalide." in text
    assert "La date d'expiration de la carte est dépassée." in text
    assert "Saisissez le code de sécurité (CVC)." in text
    assert 'aria-invalid="true"' in text and 'role="alert"' in text
    answer = submit(session["url"], card_form(expiry="13/30", email="not-an-email"))
    text = unescape(answer.text)
    assert "La date d'expiration doit être au format MM/AA." in text and "adresse e-mail valide" in text
    assert stripe_client.v1.checkout.sessions.retrieve(session["id"])["status"] == "open"
    assert stripe_client.v1.payment_intents.list()["data"] == []


def test_declined_card_on_the_hosted_page_then_another_card(stripe_client, sb, server):
    session = _payment_session(stripe_client, server)
    declined = submit(session["url"], card_form("4000 0000 0000 9995"))
    assert declined.status_code == 402 and "fonds insuffisants" in unescape(declined.text)
    assert "payment_intent.payment_failed" in types_since(sb, 0)
    paid = submit(session["url"], card_form())
    assert paid.status_code == 200
    session = stripe_client.v1.checkout.sessions.retrieve(session["id"])
    assert session["payment_status"] == "paid"
    charges = stripe_client.v1.charges.list(params={"payment_intent": session["payment_intent"]})["data"]
    assert [c["status"] for c in charges] == ["succeeded", "failed"]


def test_three_d_secure_challenge_on_checkout(stripe_client, sb, server):
    session = _payment_session(stripe_client, server)
    challenge = submit(session["url"], card_form("4000 0025 0000 3155"), follow=False)
    assert challenge.status_code == 303
    url = challenge.headers["location"]
    page = httpx.get(url)
    assert "Authentifier" in page.text and "Échouer" in page.text and 'id="authenticate"' in page.text
    failed = authenticate(url, ok=False)
    assert failed.status_code == 402 and "3-D Secure a échoué" in unescape(failed.text)
    challenge = submit(session["url"], card_form("4000 0025 0000 3155"), follow=False)
    done = authenticate(challenge.headers["location"])
    assert str(done.url).startswith(server.root + "/merchant/success")
    session = stripe_client.v1.checkout.sessions.retrieve(session["id"], params={"expand": ["payment_intent.latest_charge"]})
    assert session["payment_status"] == "paid"
    assert session["payment_intent"]["latest_charge"]["payment_method_details"]["card"]["three_d_secure"]["result"] == "authenticated"


def test_setup_mode_saves_the_card_for_later(stripe_client, sb, server):
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "currency": "eur",
            "customer_email": "backer@example.org",
            "metadata": {"pledge_id": "31"},
            "setup_intent_data": {"metadata": {"pledge_id": "31"}},
            "success_url": server.root + "/merchant/success?session_id={CHECKOUT_SESSION_ID}",
        }
    )
    page = httpx.get(session["url"])
    assert "backer@example.org" in page.text and 'id="email"' not in page.text
    done = submit(session["url"], card_form("4000 0000 0000 0341", email=None))
    assert done.status_code == 200
    session = stripe_client.v1.checkout.sessions.retrieve(session["id"], params={"expand": ["setup_intent"]})
    assert session["status"] == "complete" and session["payment_status"] == "no_payment_required"
    seti = session["setup_intent"]
    assert seti["status"] == "succeeded" and seti["metadata"].to_dict() == {"pledge_id": "31"} and seti["customer"] == session["customer"]
    customer = stripe_client.v1.customers.retrieve(session["customer"])
    assert customer["email"] == "backer@example.org"
    methods = stripe_client.v1.customers.payment_methods.list(customer["id"])["data"]
    assert [m["id"] for m in methods] == [seti["payment_method"]]
    assert types_since(sb, 0) == ["customer.created", "setup_intent.created", "payment_method.attached", "setup_intent.succeeded", "checkout.session.completed"]
    # the deadline: an off-session charge on the saved 0341 card is declined
    with pytest.raises(stripe.CardError):
        stripe_client.v1.payment_intents.create(params={"amount": 5000, "currency": "eur", "customer": customer["id"],
                                                        "payment_method": seti["payment_method"], "off_session": True, "confirm": True})


def test_setup_mode_with_an_authenticating_card(stripe_client, sb, server):
    customer = stripe_client.v1.customers.create(params={"email": "x@example.org"})
    session = stripe_client.v1.checkout.sessions.create(params={"mode": "setup", "customer": customer["id"], "success_url": server.root + "/merchant/success"})
    challenge = submit(session["url"], card_form("4000 0027 6000 3184", email=None), follow=False)
    assert challenge.status_code == 303
    authenticate(challenge.headers["location"])
    assert stripe_client.v1.checkout.sessions.retrieve(session["id"])["status"] == "complete"


def test_session_validation_and_expiry(stripe_client, sb, server):
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.create(params={"mode": "payment", "success_url": "https://x.example"})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.create(
            params={"mode": "payment", "line_items": [{"price_data": {"currency": "eur", "unit_amount": 100, "product_data": {"name": "x"},
                                                                      "recurring": {"interval": "month"}}}]}
        )
    session = _payment_session(stripe_client, server)
    expired = stripe_client.v1.checkout.sessions.expire(session["id"])
    assert expired["status"] == "expired" and expired["url"] is None
    assert sb.events[-1]["type"] == "checkout.session.expired"
    assert httpx.get(session["url"]).status_code == 410
    other = stripe_client.v1.checkout.sessions.create(
        params={"mode": "payment", "line_items": [{"price_data": {"currency": "eur", "unit_amount": 900, "product_data": {"name": "y"}}}],
                "expires_at": sb.now() + 1800}
    )
    events = sb.advance_clock(1801)
    assert [e["type"] for e in events] == ["checkout.session.expired"]
    assert stripe_client.v1.checkout.sessions.retrieve(other["id"])["status"] == "expired"


def test_customer_creation_always_and_existing_prices(stripe_client, sb, server):
    product = stripe_client.v1.products.create(params={"name": "Adhésion"})
    price = stripe_client.v1.prices.create(params={"product": product["id"], "currency": "eur", "unit_amount": 1500, "lookup_key": "adhesion"})
    session = stripe_client.v1.checkout.sessions.create(
        params={"mode": "payment", "customer_creation": "always", "line_items": [{"price": price["id"], "quantity": 1}],
                "success_url": server.root + "/merchant/success"}
    )
    submit(session["url"], card_form())
    session = stripe_client.v1.checkout.sessions.retrieve(session["id"])
    assert session["customer"].startswith("cus_")
    pi = stripe_client.v1.payment_intents.retrieve(session["payment_intent"])
    assert pi["customer"] == session["customer"]
    stripe_client.v1.prices.update(price["id"], params={"active": False})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.create(params={"mode": "payment", "line_items": [{"price": price["id"]}]})
    assert stripe_client.v1.prices.list(params={"lookup_keys": ["adhesion"]})["data"][0]["active"] is False
    assert re.match(r"^price_", stripe_client.v1.prices.list(params={"active": False})["data"][0]["id"])
