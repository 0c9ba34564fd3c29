"""SEPA Direct Debit on SetupIntents and on the hosted Checkout page (issue 18, second part): the
mandate set up without a debit, the page's "Prélèvement SEPA" form (IBAN, holder, email, the mandate
text), sessions completed ``unpaid`` while the debit is in flight then
``checkout.session.async_payment_succeeded`` / ``_failed``, the subscription ``incomplete`` until
its first invoice is paid, euros only, and French errors that create nothing."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest
import stripe

from tests.support.sandbox import submit, types_since

DAY = 86_400
SUCCEEDS, FAILS = "FR1420041010050500013M02606", "FR8420041010050500013M02607"
ACCEPTANCE = {"customer_acceptance": {"type": "online", "online": {"ip_address": "203.0.113.7", "user_agent": "Firefox"}}}
HOLDER = {"name": "Élise Martin", "email": "elise@example.org"}


def sepa_form(iban: str = SUCCEEDS, *, name: str = "Élise Martin", email: str | None = "elise@example.org") -> dict[str, str]:
    form = {"method": "sepa_debit", "iban": iban, "account-holder-name": name}
    if email is not None:
        form["sepa-email"] = email
    return form


def _session(client, server, mode="payment", currency="eur", types=("card", "sepa_debit"), **extra):
    params = {
        "mode": mode,
        "allowed_payment_method_types": list(types),
        "success_url": server.root + "/merchant/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": server.root + "/merchant/cancel",
    } | extra
    if mode == "payment":
        params["line_items"] = [{"price_data": {"currency": currency, "unit_amount": 4500, "product_data": {"name": "Don"}}, "quantity": 1}]
    elif mode == "subscription":
        params["line_items"] = [{"price_data": {"currency": currency, "unit_amount": 18000, "product_data": {"name": "Poste nomade"},
                                                "recurring": {"interval": "month"}}, "quantity": 1}]
    else:
        params["currency"] = currency
    return client.v1.checkout.sessions.create(params=params)


def _event(sb, kind):
    return next(e for e in reversed(sb.events) if e["type"] == kind)["data"]["object"]


# SetupIntents ------------------------------------------------------------------------------


def test_a_setup_intent_with_a_sepa_debit_method_needs_the_mandate_and_succeeds_at_once(stripe_client, sb):
    customer = stripe_client.v1.customers.create(params={"email": "elise@example.org"})
    pm = stripe_client.v1.payment_methods.create(params={"type": "sepa_debit", "sepa_debit": {"iban": SUCCEEDS}, "billing_details": HOLDER})
    seti = stripe_client.v1.setup_intents.create(params={"customer": customer["id"], "payment_method": pm["id"]})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.setup_intents.confirm(seti["id"])
    assert (refused.value.param, refused.value.code) == ("mandate_data", "parameter_missing")
    assert stripe_client.v1.setup_intents.retrieve(seti["id"])["status"] == "requires_confirmation"
    first = len(sb.events)
    seti = stripe_client.v1.setup_intents.confirm(seti["id"], params={"mandate_data": ACCEPTANCE})
    assert seti["status"] == "succeeded" and seti["mandate"].startswith("mandate_")
    mandate = stripe_client.v1.mandates.retrieve(seti["mandate"])
    assert (mandate["status"], mandate["type"], mandate["payment_method"]) == ("active", "multi_use", pm["id"])
    assert mandate["customer_acceptance"]["online"]["ip_address"] == "203.0.113.7"
    assert stripe_client.v1.payment_methods.retrieve(pm["id"])["customer"] == customer["id"]
    assert "setup_intent.succeeded" in types_since(sb, first)
    assert list(sb.store.all("charge")) == []  # setting up debits nothing
    # A later debit off session uses that mandate.
    pi = stripe_client.v1.payment_intents.create(params={
        "amount": 1500, "currency": "eur", "customer": customer["id"], "payment_method": pm["id"], "confirm": True,
        "off_session": True, "expand": ["latest_charge"]})
    assert pi["status"] == "processing"
    assert pi["latest_charge"]["payment_method_details"]["sepa_debit"]["mandate"] == seti["mandate"]


def test_a_setup_intent_created_and_confirmed_in_one_call_and_one_that_does_not_allow_sepa(stripe_client, sb):
    seti = stripe_client.v1.setup_intents.create(params={
        "payment_method_data": {"type": "sepa_debit", "sepa_debit": {"iban": SUCCEEDS}, "billing_details": HOLDER},
        "allowed_payment_method_types": ["sepa_debit"], "confirm": True, "mandate_data": ACCEPTANCE})
    assert seti["status"] == "succeeded" and seti["mandate"] and seti["allowed_payment_method_types"] == ["sepa_debit"]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.setup_intents.create(params={
            "payment_method_data": {"type": "sepa_debit", "sepa_debit": {"iban": SUCCEEDS}, "billing_details": HOLDER},
            "allowed_payment_method_types": ["card"], "confirm": True, "mandate_data": ACCEPTANCE})
    assert refused.value.param == "payment_method"


# the hosted page --------------------------------------------------------------------------------


def test_the_page_offers_sepa_beside_the_card_when_the_session_allows_it(stripe_client, sb, server):
    session = _session(stripe_client, server)
    assert session["allowed_payment_method_types"] == ["card", "sepa_debit"]
    html = unescape(httpx.get(session["url"]).text)
    assert "Prélèvement SEPA" in html and 'id="pay-sepa"' in html and 'id="pay"' in html
    for field in ("iban", "account-holder-name", "sepa-email", "card-number"):
        assert f'id="{field}"' in html and f'for="{field}"' in html
    mandate = re.search(r'<p class="hint" id="sepa-mandate">(.*?)</p>', html, re.S).group(1)
    assert "vous autorisez (A) Entre-Lab (bac à sable) et Stripe" in mandate and "débiter votre compte" in mandate
    card_only = _session(stripe_client, server, types=("card",))
    assert 'id="iban"' not in httpx.get(card_only["url"]).text
    sepa_only = _session(stripe_client, server, types=("sepa_debit",))
    page = httpx.get(sepa_only["url"]).text
    assert 'id="iban"' in page and 'id="card-number"' not in page


def test_payment_mode_completes_unpaid_then_the_debit_settles_and_stripe_says_so(stripe_client, sb, server):
    session = _session(stripe_client, server, payment_intent_data={"metadata": {"pledge_id": "12"}})
    first = len(sb.events)
    done = submit(session["url"], sepa_form(), follow=True)
    assert done.status_code == 200 and done.text == f"merchant success {session['id']}"
    session = stripe_client.v1.checkout.sessions.retrieve(session["id"], params={"expand": ["payment_intent.latest_charge"]})
    assert (session["status"], session["payment_status"]) == ("complete", "unpaid")
    assert session["customer_details"]["email"] == "elise@example.org" and session["customer_details"]["name"] == "Élise Martin"
    pi = session["payment_intent"]
    assert pi["status"] == "processing" and pi["metadata"]["pledge_id"] == "12"
    assert pi["allowed_payment_method_types"] == ["card", "sepa_debit"]
    details = pi["latest_charge"]["payment_method_details"]["sepa_debit"]
    mandate = stripe_client.v1.mandates.retrieve(details["mandate"])
    assert mandate["customer_acceptance"]["type"] == "online" and mandate["customer_acceptance"]["online"]["ip_address"] == "127.0.0.1"
    assert mandate["customer_acceptance"]["online"]["user_agent"].startswith("python-httpx")
    kinds = types_since(sb, first)
    assert kinds[-3:] == ["charge.pending", "payment_intent.processing", "checkout.session.completed"]
    assert _event(sb, "checkout.session.completed")["payment_status"] == "unpaid"

    sb.advance_clock(8 * DAY)
    kinds = types_since(sb, first)
    assert kinds.index("payment_intent.succeeded") < kinds.index("checkout.session.async_payment_succeeded")
    assert "checkout.session.async_payment_failed" not in kinds
    assert _event(sb, "checkout.session.async_payment_succeeded")["payment_status"] == "paid"
    assert stripe_client.v1.checkout.sessions.retrieve(session["id"])["payment_status"] == "paid"


def test_payment_mode_with_a_debit_that_fails_late_says_async_payment_failed(stripe_client, sb, server):
    session = _session(stripe_client, server)
    submit(session["url"], sepa_form(FAILS))
    first = len(sb.events)
    sb.advance_clock(8 * DAY)
    kinds = types_since(sb, first)
    assert kinds.index("payment_intent.payment_failed") < kinds.index("checkout.session.async_payment_failed")
    assert "checkout.session.async_payment_succeeded" not in kinds
    failed = _event(sb, "checkout.session.async_payment_failed")
    assert failed["payment_status"] == "unpaid" and failed["status"] == "complete"


def test_setup_mode_completes_with_the_mandate(stripe_client, sb, server):
    session = _session(stripe_client, server, mode="setup")
    done = submit(session["url"], sepa_form())
    assert done.status_code == 200
    session = stripe_client.v1.checkout.sessions.retrieve(session["id"], params={"expand": ["setup_intent"]})
    assert (session["status"], session["payment_status"]) == ("complete", "no_payment_required")
    seti = session["setup_intent"]
    assert seti["status"] == "succeeded" and seti["customer"] == session["customer"]
    mandate = stripe_client.v1.mandates.retrieve(seti["mandate"])
    assert mandate["status"] == "active" and mandate["payment_method"] == seti["payment_method"]
    assert stripe_client.v1.payment_methods.retrieve(seti["payment_method"])["type"] == "sepa_debit"
    assert list(sb.store.all("charge")) == []


def test_subscription_mode_is_incomplete_while_the_first_debit_is_processing_then_active(stripe_client, sb, server):
    session = _session(stripe_client, server, mode="subscription")
    first = len(sb.events)
    assert submit(session["url"], sepa_form()).status_code == 200
    session = stripe_client.v1.checkout.sessions.retrieve(session["id"], params={"expand": ["subscription.latest_invoice"]})
    assert (session["status"], session["payment_status"]) == ("complete", "unpaid")
    sub = session["subscription"]
    assert sub["status"] == "incomplete" and sub["latest_invoice"]["status"] == "open"
    assert sub["default_payment_method"]
    assert "invoice.payment_failed" not in types_since(sb, first)
    sb.advance_clock(DAY + 3_600)  # past Stripe's 23 hours: a debit in flight does not expire it
    assert stripe_client.v1.subscriptions.retrieve(sub["id"])["status"] == "incomplete"
    sb.advance_clock(8 * DAY)
    sub = stripe_client.v1.subscriptions.retrieve(sub["id"])
    assert sub["status"] == "active"
    assert stripe_client.v1.invoices.retrieve(sub["latest_invoice"])["status"] == "paid"
    kinds = types_since(sb, first)
    assert kinds.index("invoice.paid") < kinds.index("checkout.session.async_payment_succeeded")
    assert _event(sb, "checkout.session.async_payment_succeeded")["payment_status"] == "paid"


def test_subscription_mode_whose_first_debit_fails_expires(stripe_client, sb, server):
    session = _session(stripe_client, server, mode="subscription")
    submit(session["url"], sepa_form(FAILS))
    sub_id = stripe_client.v1.checkout.sessions.retrieve(session["id"])["subscription"]
    first = len(sb.events)
    sb.advance_clock(8 * DAY)
    kinds = types_since(sb, first)
    assert "checkout.session.async_payment_failed" in kinds and "customer.subscription.deleted" in kinds
    assert stripe_client.v1.subscriptions.retrieve(sub_id)["status"] == "incomplete_expired"


@pytest.mark.parametrize("mode", ["payment", "subscription", "setup"])
def test_sepa_is_refused_for_a_session_in_another_currency(stripe_client, sb, server, mode):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        _session(stripe_client, server, mode=mode, currency="usd")
    assert refused.value.param == "allowed_payment_method_types" and "eur" in str(refused.value)
    assert _session(stripe_client, server, mode=mode, currency="usd", types=("card",))["status"] == "open"
    with pytest.raises(stripe.InvalidRequestError):
        _session(stripe_client, server, mode=mode, types=("card", "ideal"))


@pytest.mark.parametrize(("form", "field", "message"), [
    (sepa_form("FR1420041010050500013M02607"), "iban", "Cet IBAN est invalide"),  # checksum
    (sepa_form("FR14 2004"), "iban", "Cet IBAN est invalide"),  # too short
    (sepa_form("TR330006100519786457841326"), "iban", "ne font pas partie de la zone SEPA"),
    (sepa_form(""), "iban", "Saisissez votre IBAN."),
    (sepa_form(name="  "), "account-holder-name", "Saisissez le nom du titulaire du compte."),
    (sepa_form(email="elise"), "sepa-email", "Saisissez une adresse e-mail valide."),
])
def test_a_bad_sepa_form_shows_a_french_error_beside_the_field_keeps_the_values_and_creates_nothing(
        stripe_client, sb, server, form, field, message):
    session = _session(stripe_client, server)
    answer = submit(session["url"], form)
    assert answer.status_code == 400
    html = unescape(answer.text)
    error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', html)
    assert error and message in error.group(1)
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html)
    for kept in ("iban", "account-holder-name", "sepa-email"):
        if kept != field and form.get(kept, "").strip():
            assert f'value="{form[kept]}"' in html
    assert list(sb.store.all("payment_method")) == [] and list(sb.store.all("mandate")) == []
    assert stripe_client.v1.payment_intents.list()["data"] == []
    assert stripe_client.v1.checkout.sessions.retrieve(session["id"])["status"] == "open"


def test_a_sepa_form_posted_to_a_card_only_session_is_refused(stripe_client, sb, server):
    session = _session(stripe_client, server, types=("card",))
    answer = submit(session["url"], sepa_form())
    assert answer.status_code == 400 and "pas proposé" in unescape(answer.text)
    assert list(sb.store.all("payment_method")) == []
