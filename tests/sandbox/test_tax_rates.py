"""Tax Rates in the sandbox, through the stripe SDK: the objects, and the taxes they put on lines, invoices and Checkout.

Every expected amount below is computed by hand (per line, rounded half up): exclusive tax = amount × rate;
inclusive taxable amount = amount / (1 + rate), tax = amount − taxable amount.
"""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.support.sandbox import card_form, submit

DAY = 86_400


def _rate(client, percentage, *, inclusive=False, name="TVA", **extra):
    params = {"display_name": name, "percentage": percentage, "inclusive": inclusive, "country": "FR", "jurisdiction": "FR", "tax_type": "vat"}
    return client.v1.tax_rates.create(params=params | extra)


def _customer(client, *, card=False):
    customer = client.v1.customers.create(params={"email": "tva@example.org", "name": "Camille Martin"})
    if card:
        pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer["id"]})
        client.v1.customers.update(customer["id"], params={"invoice_settings": {"default_payment_method": pm["id"]}})
    return customer


def _draft(client, lines, **invoice_params):
    """A draft invoice holding one invoice item per (amount, tax rates or None) in ``lines``."""
    customer = _customer(client)
    invoice = client.v1.invoices.create(params={"customer": customer["id"], "auto_advance": False, **invoice_params})
    for amount, rates in lines:
        params = {"customer": customer["id"], "amount": amount, "currency": "eur", "invoice": invoice["id"], "description": f"Ligne {amount}"}
        if rates is not None:
            params["tax_rates"] = [r["id"] for r in rates]
        client.v1.invoice_items.create(params=params)
    return client.v1.invoices.retrieve(invoice["id"])


def _tax(amount, rate, taxable, behavior="exclusive"):
    return {
        "amount": amount, "tax_behavior": behavior, "tax_rate_details": {"tax_rate": rate["id"]},
        "taxability_reason": "standard_rated", "taxable_amount": taxable, "type": "tax_rate_details",
    }


def _plain(stripe_list):
    return [t.to_dict() for t in stripe_list]


def _by_rate(invoice):
    return {t["tax_rate_details"]["tax_rate"]: (t["amount"], t["taxable_amount"], t["tax_behavior"]) for t in invoice["total_taxes"]}


def test_a_tax_rate_has_stripes_shape_and_lists_like_the_other_objects(stripe_client):
    rate = _rate(stripe_client, 5.5, name="TVA réduite", description="Boissons", metadata={"code": "R"})
    assert rate["id"].startswith("txr_") and rate["object"] == "tax_rate"
    assert rate.to_dict() == {
        "id": rate["id"], "object": "tax_rate", "active": True, "country": "FR", "created": rate["created"], "description": "Boissons",
        "display_name": "TVA réduite", "effective_percentage": 5.5, "flat_amount": None, "inclusive": False, "jurisdiction": "FR",
        "jurisdiction_level": None, "livemode": False, "metadata": {"code": "R"}, "percentage": 5.5, "rate_type": "percentage",
        "state": None, "tax_type": "vat",
    }
    assert stripe_client.v1.tax_rates.retrieve(rate["id"]).to_dict() == rate.to_dict()
    changed = stripe_client.v1.tax_rates.update(rate["id"], params={
        "display_name": "TVA 5,5", "description": "Restauration", "jurisdiction": "FR-75", "state": "IDF", "metadata": {"code": "", "x": "1"},
        "active": False, "tax_type": "vat", "country": "fr",
    })
    assert (changed["display_name"], changed["description"], changed["jurisdiction"], changed["state"], changed["country"]) == (
        "TVA 5,5", "Restauration", "FR-75", "IDF", "FR",
    )
    assert changed["metadata"].to_dict() == {"x": "1"} and changed["active"] is False and changed["percentage"] == 5.5

    inclusive = _rate(stripe_client, 20, inclusive=True)
    normal = _rate(stripe_client, 20)
    assert normal["percentage"] == 20.0
    assert [r["id"] for r in stripe_client.v1.tax_rates.list()["data"]] == [normal["id"], inclusive["id"], rate["id"]]
    assert [r["id"] for r in stripe_client.v1.tax_rates.list(params={"active": True})["data"]] == [normal["id"], inclusive["id"]]
    assert [r["id"] for r in stripe_client.v1.tax_rates.list(params={"inclusive": True})["data"]] == [inclusive["id"]]
    first = stripe_client.v1.tax_rates.list(params={"limit": 2})
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = stripe_client.v1.tax_rates.list(params={"limit": 2, "starting_after": first["data"][-1]["id"]})
    assert [r["id"] for r in rest["data"]] == [rate["id"]] and rest["has_more"] is False


@pytest.mark.stripe_refusal
def test_bad_tax_rate_parameters_are_refused_as_stripe_does(stripe_client):
    for missing, params in (
        ("display_name", {"percentage": 20, "inclusive": False}),
        ("percentage", {"display_name": "TVA", "inclusive": False}),
        ("inclusive", {"display_name": "TVA", "percentage": 20}),
    ):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            stripe_client.v1.tax_rates.create(params=params)
        assert refused.value.code == "parameter_missing" and refused.value.param == missing
    for bad in ("abc", "-1", "100.5"):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            stripe_client.v1.tax_rates.create(params={"display_name": "TVA", "percentage": bad, "inclusive": False})
        assert refused.value.param == "percentage"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.tax_rates.create(params={"display_name": "TVA", "percentage": 20, "inclusive": False, "tax_type": "income"})
    assert refused.value.param == "tax_type"
    assert stripe_client.v1.tax_rates.list()["data"] == []
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.tax_rates.retrieve("txr_missing")
    assert refused.value.http_status == 404 and refused.value.code == "resource_missing"


@pytest.mark.stripe_refusal
def test_percentage_and_inclusive_cannot_change_after_creation(stripe_client):
    rate = _rate(stripe_client, 20)
    for field, value in (("percentage", 5.5), ("inclusive", True)):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            stripe_client.v1.tax_rates.update(rate["id"], params={field: value, "display_name": "Changée"})
        assert refused.value.param == field and refused.value.code == "parameter_unknown"
    assert stripe_client.v1.tax_rates.retrieve(rate["id"]).to_dict() == rate.to_dict()


# percentage, inclusive, line amount -> tax, taxable amount, total excluding tax, total
ONE_LINE = [
    (20, False, 1000, 200, 1000, 1000, 1200),
    (20, True, 1000, 167, 833, 833, 1000),  # 1000 / 1.2 = 833.33
    (20, True, 603, 100, 503, 503, 603),  # 603 / 1.2 = 502.5 -> 503
    (5.5, False, 300, 17, 300, 300, 317),  # 16.5 -> 17
    (5.5, False, 1999, 110, 1999, 1999, 2109),  # 109.945 -> 110
    (5.5, True, 999, 52, 947, 947, 999),  # 999 / 1.055 = 946.92 -> 947
    (10, False, 1005, 101, 1005, 1005, 1106),  # 100.5 -> 101
    (10, True, 1005, 91, 914, 914, 1005),  # 1005 / 1.1 = 913.64 -> 914
    (10, True, 1001, 91, 910, 910, 1001),  # exactly 910
    (0, False, 1234, 0, 1234, 1234, 1234),
]


@pytest.mark.parametrize(("percentage", "inclusive", "amount", "tax", "taxable", "excluding", "total"), ONE_LINE)
def test_one_line_is_taxed_and_rounded_per_line(stripe_client, percentage, inclusive, amount, tax, taxable, excluding, total):
    rate = _rate(stripe_client, percentage, inclusive=inclusive)
    invoice = _draft(stripe_client, [(amount, [rate])])
    behavior = "inclusive" if inclusive else "exclusive"
    line = invoice["lines"]["data"][0]
    assert line["amount"] == amount and _plain(line["taxes"]) == [_tax(tax, rate, taxable, behavior)]
    assert _plain(invoice["total_taxes"]) == [_tax(tax, rate, taxable, behavior)]
    assert invoice["subtotal"] == amount
    assert invoice["subtotal_excluding_tax"] == invoice["total_excluding_tax"] == excluding
    assert invoice["total"] == invoice["amount_due"] == total
    item = stripe_client.v1.invoice_items.retrieve(line["parent"]["invoice_item_details"]["invoice_item"])
    assert [r["id"] for r in item["tax_rates"]] == [rate["id"]] and item["tax_rates"][0]["object"] == "tax_rate"


def test_mixed_rates_on_one_invoice_add_up_per_rate(stripe_client):
    normal, reduced, ten = _rate(stripe_client, 20), _rate(stripe_client, 5.5), _rate(stripe_client, 10)
    included = _rate(stripe_client, 20, inclusive=True)
    invoice = _draft(stripe_client, [(1000, [normal]), (300, [reduced]), (1005, [ten]), (500, [normal]), (1000, [included]), (700, None)])
    assert [_plain(line["taxes"]) for line in invoice["lines"]["data"]] == [
        [_tax(200, normal, 1000)], [_tax(17, reduced, 300)], [_tax(101, ten, 1005)], [_tax(100, normal, 500)],
        [_tax(167, included, 833, "inclusive")], [],
    ]
    assert _by_rate(invoice) == {
        normal["id"]: (300, 1500, "exclusive"), reduced["id"]: (17, 300, "exclusive"), ten["id"]: (101, 1005, "exclusive"),
        included["id"]: (167, 833, "inclusive"),
    }
    assert invoice["subtotal"] == 4505
    assert invoice["subtotal_excluding_tax"] == invoice["total_excluding_tax"] == 4505 - 167
    assert invoice["total"] == invoice["amount_due"] == 4505 + 300 + 17 + 101

    finalized = stripe_client.v1.invoices.finalize_invoice(invoice["id"])
    assert finalized["total"] == finalized["amount_due"] == 4923 and _by_rate(finalized) == _by_rate(invoice)


def test_invoice_default_tax_rates_apply_to_lines_without_their_own(stripe_client):
    normal, reduced = _rate(stripe_client, 20), _rate(stripe_client, 5.5)
    invoice = _draft(stripe_client, [(1000, None), (300, [reduced])], default_tax_rates=[normal["id"]])
    assert [r["id"] for r in invoice["default_tax_rates"]] == [normal["id"]]
    assert [_plain(line["taxes"]) for line in invoice["lines"]["data"]] == [[_tax(200, normal, 1000)], [_tax(17, reduced, 300)]]
    assert invoice["total"] == 1517 and invoice["total_excluding_tax"] == 1300

    cleared = stripe_client.v1.invoices.update(invoice["id"], params={"default_tax_rates": ""})
    assert cleared["default_tax_rates"] == [] and cleared["total"] == 1317 and _by_rate(cleared) == {reduced["id"]: (17, 300, "exclusive")}


def test_a_zero_rate_exemption_shows_zero_tax_and_untaxed_invoices_are_unchanged(stripe_client):
    exempt = _rate(stripe_client, 0, name="TVA non applicable, art. 293 B du CGI")
    invoice = _draft(stripe_client, [(2500, [exempt])])
    assert _plain(invoice["total_taxes"]) == [_tax(0, exempt, 2500)]
    assert invoice["total"] == invoice["total_excluding_tax"] == invoice["amount_due"] == 2500
    untaxed = _draft(stripe_client, [(2500, None)])
    assert untaxed["total_taxes"] == [] and untaxed["lines"]["data"][0]["taxes"] == [] and untaxed["default_tax_rates"] == []
    assert untaxed["total"] == untaxed["total_excluding_tax"] == untaxed["subtotal_excluding_tax"] == 2500


def _price(client, amount):
    return client.v1.prices.create(params={
        "currency": "eur", "unit_amount": amount, "recurring": {"interval": "month"}, "product_data": {"name": f"Poste {amount}"},
    })


def test_subscription_default_tax_rates_and_an_item_overriding_them(stripe_client, sb):
    normal, reduced = _rate(stripe_client, 20), _rate(stripe_client, 5.5)
    customer = _customer(stripe_client, card=True)
    desk, coffee = _price(stripe_client, 2000), _price(stripe_client, 999)
    sub = stripe_client.v1.subscriptions.create(params={
        "customer": customer["id"], "default_tax_rates": [normal["id"]],
        "items": [{"price": desk["id"]}, {"price": coffee["id"], "tax_rates": [reduced["id"]]}],
    })
    assert sub["status"] == "active" and [r["id"] for r in sub["default_tax_rates"]] == [normal["id"]]
    assert [[r["id"] for r in i["tax_rates"]] for i in sub["items"]["data"]] == [[], [reduced["id"]]]
    for invoice_id in (sub["latest_invoice"], None):
        if invoice_id is None:  # the renewal is taxed the same way
            sb.advance_clock(32 * DAY)
            invoice_id = stripe_client.v1.subscriptions.retrieve(sub["id"])["latest_invoice"]
        invoice = stripe_client.v1.invoices.retrieve(invoice_id)
        assert [r["id"] for r in invoice["default_tax_rates"]] == [normal["id"]]
        assert [_plain(line["taxes"]) for line in invoice["lines"]["data"]] == [[_tax(400, normal, 2000)], [_tax(55, reduced, 999)]]  # 54.945 -> 55
        assert invoice["total_excluding_tax"] == 2999 and invoice["total"] == invoice["amount_due"] == invoice["amount_paid"] == 3454
        assert invoice["status"] == "paid"

    with pytest.raises(stripe.InvalidRequestError):  # a bad item leaves the new default rates unapplied too
        stripe_client.v1.subscriptions.update(sub["id"], params={"default_tax_rates": "", "items": [{"price": "price_missing"}]})
    assert [r["id"] for r in stripe_client.v1.subscriptions.retrieve(sub["id"])["default_tax_rates"]] == [normal["id"]]
    changed = stripe_client.v1.subscriptions.update(sub["id"], params={"default_tax_rates": ""})
    assert changed["default_tax_rates"] == []
    upcoming = stripe_client.v1.invoices.create_preview(params={"subscription": sub["id"]})
    assert [_plain(line["taxes"]) for line in upcoming["lines"]["data"]] == [[], [_tax(55, reduced, 999)]]
    assert upcoming["total"] == 3054 and upcoming["total_excluding_tax"] == 2999


def test_a_proration_on_upgrade_carries_the_items_tax_rate(stripe_client, sb):
    ten = _rate(stripe_client, 10)
    customer = _customer(stripe_client, card=True)
    small, large = _price(stripe_client, 2005), _price(stripe_client, 3011)
    sub = stripe_client.v1.subscriptions.create(params={"customer": customer["id"], "items": [{"price": small["id"], "tax_rates": [ten["id"]]}]})
    first = stripe_client.v1.invoices.retrieve(sub["latest_invoice"])
    assert first["total"] == first["amount_paid"] == 2005 + 201  # 200.5 -> 201
    item = sub["items"]["data"][0]
    start, end = item["current_period_start"], item["current_period_end"]
    half = (end - start) // 2  # whole days: the half is exact
    sb.advance_clock(half + DAY)
    updated = stripe_client.v1.subscriptions.update(sub["id"], params={
        "items": [{"id": item["id"], "price": large["id"]}], "proration_behavior": "always_invoice", "proration_date": start + half,
    })
    assert [r["id"] for r in updated["items"]["data"][0]["tax_rates"]] == [ten["id"]]
    invoice = stripe_client.v1.invoices.retrieve(updated["latest_invoice"])
    assert invoice["billing_reason"] == "subscription_update"
    # unused half of 20.05 € = -10.025 -> -10.03 (away from zero), tax -1.003 -> -1.00; remaining half of 30.11 € = 15.055 -> 15.06, tax 1.506 -> 1.51
    assert [(line["amount"], _plain(line["taxes"])) for line in invoice["lines"]["data"]] == [
        (-1003, [_tax(-100, ten, -1003)]), (1506, [_tax(151, ten, 1506)]),
    ]
    assert _plain(invoice["total_taxes"]) == [_tax(51, ten, 503)]
    assert invoice["total_excluding_tax"] == 503 and invoice["total"] == invoice["amount_due"] == invoice["amount_paid"] == 554


def test_checkout_line_item_tax_rates(stripe_client, server):
    normal = _rate(stripe_client, 20)
    session = stripe_client.v1.checkout.sessions.create(params={
        "mode": "payment",
        "line_items": [{"price_data": {"currency": "eur", "unit_amount": 1005, "product_data": {"name": "Café"}}, "quantity": 2, "tax_rates": [normal["id"]]}],
        "success_url": server.root + "/merchant/success?session_id={CHECKOUT_SESSION_ID}",
    })
    assert session["amount_subtotal"] == 2010 and session["total_details"]["amount_tax"] == 402 and session["amount_total"] == 2412
    line = stripe_client.v1.checkout.sessions.line_items.list(session["id"])["data"][0]
    assert (line["amount_subtotal"], line["amount_tax"], line["amount_total"]) == (2010, 402, 2412)
    assert submit(session["url"], card_form()).status_code == 200
    paid = stripe_client.v1.checkout.sessions.retrieve(session["id"], params={"expand": ["payment_intent"]})
    assert paid["payment_status"] == "paid" and paid["payment_intent"]["amount_received"] == 2412

    sub_session = stripe_client.v1.checkout.sessions.create(params={
        "mode": "subscription",
        "line_items": [{"price": _price(stripe_client, 2000)["id"], "tax_rates": [normal["id"]]}],
        "success_url": server.root + "/merchant/success?session_id={CHECKOUT_SESSION_ID}",
    })
    assert sub_session["amount_total"] == 2400
    assert submit(sub_session["url"], card_form()).status_code == 200
    sub_id = stripe_client.v1.checkout.sessions.retrieve(sub_session["id"])["subscription"]
    sub = stripe_client.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert [r["id"] for r in sub["items"]["data"][0]["tax_rates"]] == [normal["id"]]
    assert sub["latest_invoice"]["total"] == sub["latest_invoice"]["amount_paid"] == 2400


def test_a_one_off_checkout_payment_can_issue_its_paid_invoice_with_the_lines_tax(stripe_client, server):
    """invoice_creation[enabled]: once paid, the invoice of the session's lines, paid by its PaymentIntent."""
    rate = _rate(stripe_client, 20, inclusive=True)
    customer = _customer(stripe_client)
    session = stripe_client.v1.checkout.sessions.create(params={
        "mode": "payment", "customer": customer["id"],
        "line_items": [{"price_data": {"currency": "eur", "unit_amount": 18000, "product_data": {"name": "Carnet"}}, "quantity": 1,
                        "tax_rates": [rate["id"]]}],
        "invoice_creation": {"enabled": True, "invoice_data": {"metadata": {"member_id": "7"}, "description": "Carnet de 10 jours"}},
        "success_url": server.root + "/merchant/success?session_id={CHECKOUT_SESSION_ID}",
    })
    assert session["invoice_creation"]["enabled"] is True and session["invoice"] is None
    assert submit(session["url"], card_form()).status_code == 200
    paid = stripe_client.v1.checkout.sessions.retrieve(session["id"], params={"expand": ["invoice"]})
    invoice = paid["invoice"]
    assert (invoice["status"], invoice["billing_reason"], invoice["metadata"]["member_id"]) == ("paid", "manual", "7")
    assert (invoice["total"], invoice["total_excluding_tax"], invoice["amount_paid"]) == (18000, 15000, 18000)
    assert invoice["number"] and invoice["status_transitions"]["finalized_at"] and invoice["status_transitions"]["paid_at"]
    [record] = stripe_client.v1.invoice_payments.list(params={"invoice": invoice["id"]})["data"]
    assert (record["status"], record["payment"]["payment_intent"]) == ("paid", paid["payment_intent"])
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.create(params={
            "mode": "subscription", "line_items": [{"price": _price(stripe_client, 2000)["id"]}],
            "invoice_creation": {"enabled": True}, "success_url": server.root + "/ok"})


def test_hosted_invoice_page_and_pdf_show_each_rate_and_the_total_excluding_tax(stripe_client):
    normal, reduced = _rate(stripe_client, 20), _rate(stripe_client, 5.5)
    invoice = _draft(stripe_client, [(1000, [normal]), (300, [reduced])], collection_method="send_invoice", days_until_due=30)
    invoice = stripe_client.v1.invoices.finalize_invoice(invoice["id"])
    html = httpx.get(invoice["hosted_invoice_url"]).text
    assert "Total HT" in html and "13,00\u00a0€" in html
    assert "TVA 20 % sur 10,00\u00a0€" in html and "2,00\u00a0€" in html
    assert "TVA 5,5 % sur 3,00\u00a0€" in html and "0,17\u00a0€" in html
    assert "Total TTC" in html and "15,17\u00a0€" in html
    pdf = httpx.get(invoice["invoice_pdf"]).content
    assert b"Total HT : 13,00" in pdf and b"TVA 20 % sur 10,00" in pdf and b"TVA 5,5 % sur 3,00" in pdf and b"Total : 15,17" in pdf


def test_unknown_or_inactive_tax_rates_are_refused_and_change_nothing(stripe_client):
    customer = _customer(stripe_client, card=True)
    invoice = stripe_client.v1.invoices.create(params={"customer": customer["id"], "auto_advance": False})
    item = {"customer": customer["id"], "amount": 1000, "currency": "eur", "invoice": invoice["id"]}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.invoice_items.create(params=item | {"tax_rates": ["txr_missing"]})
    assert refused.value.http_status == 404 and refused.value.code == "resource_missing" and refused.value.param == "tax_rates[0]"

    old = _rate(stripe_client, 19.6, name="TVA 2013")
    stripe_client.v1.tax_rates.update(old["id"], params={"active": False})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.invoice_items.create(params=item | {"tax_rates": [old["id"]]})
    assert refused.value.http_status == 400 and refused.value.param == "tax_rates[0]"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.update(invoice["id"], params={"default_tax_rates": [old["id"]]})
    price = _price(stripe_client, 2000)
    for params in ({"items": [{"price": price["id"], "tax_rates": [old["id"]]}]}, {"items": [{"price": price["id"]}], "default_tax_rates": ["txr_missing"]}):
        with pytest.raises(stripe.InvalidRequestError):
            stripe_client.v1.subscriptions.create(params={"customer": customer["id"]} | params)
    assert stripe_client.v1.invoice_items.list(params={"customer": customer["id"]})["data"] == []
    assert stripe_client.v1.subscriptions.list(params={"customer": customer["id"], "status": "all"})["data"] == []
    unchanged = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert unchanged["lines"]["data"] == [] and unchanged["default_tax_rates"] == [] and unchanged["total"] == 0


def test_a_refused_update_changes_nothing(stripe_client):
    rate = _rate(stripe_client, 20, description="Taux normal")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.tax_rates.update(rate["id"], params={"description": "Autre", "country": "FRA"})
    assert refused.value.param == "country" and stripe_client.v1.tax_rates.retrieve(rate["id"]).to_dict() == rate.to_dict()

    invoice = _draft(stripe_client, [(1000, [rate])])
    item_id = invoice["lines"]["data"][0]["parent"]["invoice_item_details"]["invoice_item"]
    item = stripe_client.v1.invoice_items.retrieve(item_id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.invoice_items.update(item_id, params={"amount": 5000, "description": "Autre", "tax_rates": ["txr_missing"]})
    assert refused.value.code == "resource_missing" and stripe_client.v1.invoice_items.retrieve(item_id).to_dict() == item.to_dict()
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.update(invoice["id"], params={"description": "Autre", "default_tax_rates": ["txr_missing"]})
    assert stripe_client.v1.invoices.retrieve(invoice["id"]).to_dict() == invoice.to_dict()
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.invoices.update(invoice["id"], params={"description": "Autre", "auto_advance": True, "days_until_due": -1})
    assert refused.value.param == "days_until_due"
    assert stripe_client.v1.invoices.retrieve(invoice["id"]).to_dict() == invoice.to_dict()

    reduced = _rate(stripe_client, 5.5)
    moved = stripe_client.v1.invoice_items.update(item_id, params={"tax_rates": [reduced["id"]]})
    assert [r["id"] for r in moved["tax_rates"]] == [reduced["id"]]
    retaxed = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert _plain(retaxed["total_taxes"]) == [_tax(55, reduced, 1000)] and retaxed["total"] == 1055
