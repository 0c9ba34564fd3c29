"""Credit Notes in the sandbox, through the stripe SDK: their shape, what they do to open and paid invoices, void, preview, pages.

Amounts are computed by hand. The invoice of most tests (``_open``) has two lines:
10 000 at TVA 20 % (exclusive: 2 000 of tax) and 5 000 at TVA 5,5 % (275), total 17 275.
"""

from __future__ import annotations

import copy

import httpx
import pytest
import stripe

from tests.support.sandbox import make_client, make_sandbox, types_since

# every field of a credit_note and a credit_note_line_item in today's API (2026-10-28.endive)
NOTE_FIELDS = {
    "id", "object", "amount", "amount_shipping", "created", "currency", "customer", "customer_account", "customer_balance_transaction",
    "discount_amount", "discount_amounts", "effective_at", "invoice", "lines", "livemode", "memo", "metadata", "number",
    "out_of_band_amount", "pdf", "post_payment_amount", "pre_payment_amount", "pretax_credit_amounts", "reason", "refunds",
    "shipping_cost", "status", "subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax", "total_taxes", "type", "voided_at",
}
LINE_FIELDS = {
    "id", "object", "amount", "description", "discount_amount", "discount_amounts", "invoice_line_item", "livemode", "metadata",
    "pretax_credit_amounts", "quantity", "tax_rates", "taxes", "type", "unit_amount", "unit_amount_decimal",
}


@pytest.fixture
def rates(stripe_client):
    def make(percentage, name):
        return stripe_client.v1.tax_rates.create(params={"display_name": name, "percentage": percentage, "inclusive": False})

    return make(20, "TVA"), make(5.5, "TVA réduite")


def _open(client, rates, *, card=False):
    """A finalized invoice of 10 000 at 20 % and 5 000 at 5,5 %; with ``card``, its customer can pay it."""
    customer = client.v1.customers.create(params={"email": "avoir@example.org", "name": "Camille Martin"})
    if card:
        pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer["id"]})
        client.v1.customers.update(customer["id"], params={"invoice_settings": {"default_payment_method": pm["id"]}})
    draft = client.v1.invoices.create(params={"customer": customer["id"], "auto_advance": False})
    for amount, rate, label in ((10_000, rates[0], "Poste nomade"), (5_000, rates[1], "Repas")):
        client.v1.invoice_items.create(params={
            "customer": customer["id"], "invoice": draft["id"], "amount": amount, "currency": "eur", "description": label, "tax_rates": [rate["id"]],
        })
    return client.v1.invoices.finalize_invoice(draft["id"])


def _paid(client, rates):
    invoice = _open(client, rates, card=True)
    return client.v1.invoices.pay(invoice["id"])


def _line(invoice, index, **credit):
    return {"type": "invoice_line_item", "invoice_line_item": invoice["lines"]["data"][index]["id"], **credit}


def _objects(sb):
    with sb.lock:
        return copy.deepcopy(sb.store.data["objects"])


def _refused(sb, call, **params):
    """``call(params)`` is refused with a 400 and changes nothing in the sandbox; returns the error."""
    before = _objects(sb)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        call(params=params)
    assert refused.value.http_status == 400
    assert _objects(sb) == before
    return refused.value


def test_a_line_credit_on_an_open_invoice_has_stripes_shape_and_lowers_what_is_due(stripe_client, sb, rates):
    invoice = _open(stripe_client, rates)
    assert invoice["status"] == "open" and invoice["total"] == 17_275 and invoice["number"].startswith("SBX-")
    start = len(sb.events)
    note = stripe_client.v1.credit_notes.create(params={
        "invoice": invoice["id"], "lines": [_line(invoice, 0, amount=2_500)], "reason": "order_change", "memo": "Deux jours offerts",
        "metadata": {"ticket": "42"},
    })
    assert set(note.to_dict()) == NOTE_FIELDS and note["id"].startswith("cn_") and note["object"] == "credit_note"
    assert (note["number"], note["status"], note["type"], note["invoice"], note["customer"]) == (
        invoice["number"] + "-CN-01", "issued", "pre_payment", invoice["id"], invoice["customer"],
    )
    # 2 500 at 20 % exclusive: 500 of tax on top
    assert (note["subtotal"], note["subtotal_excluding_tax"], note["total_excluding_tax"], note["total"], note["amount"]) == (2_500, 2_500, 2_500, 3_000, 3_000)
    assert (note["pre_payment_amount"], note["post_payment_amount"], note["refunds"], note["out_of_band_amount"]) == (3_000, 0, [], None)
    assert [t.to_dict() for t in note["total_taxes"]] == [{
        "amount": 500, "tax_behavior": "exclusive", "tax_rate_details": {"tax_rate": rates[0]["id"]}, "taxability_reason": "standard_rated",
        "taxable_amount": 2_500, "type": "tax_rate_details",
    }]
    assert note["memo"] == "Deux jours offerts" and note["reason"] == "order_change" and note["metadata"].to_dict() == {"ticket": "42"}
    assert note["pdf"].endswith(f"/credit_notes/{note['id']}/pdf") and note["effective_at"] == note["created"] and note["voided_at"] is None
    [line] = note["lines"]["data"]
    assert set(line.to_dict()) == LINE_FIELDS and line["id"].startswith("cnli_") and line["object"] == "credit_note_line_item"
    assert (line["type"], line["invoice_line_item"], line["amount"], line["description"]) == (
        "invoice_line_item", invoice["lines"]["data"][0]["id"], 2_500, "Poste nomade",
    )
    assert [r["id"] for r in line["tax_rates"]] == [rates[0]["id"]] and [t["amount"] for t in line["taxes"]] == [500]
    assert note["lines"]["url"] == f"/v1/credit_notes/{note['id']}/lines"

    after = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert (after["status"], after["total"], after["amount_due"], after["amount_remaining"]) == ("open", 17_275, 14_275, 14_275)
    assert (after["pre_payment_credit_notes_amount"], after["post_payment_credit_notes_amount"]) == (3_000, 0)
    pi = stripe_client.v1.payment_intents.list(params={"customer": invoice["customer"]})["data"][0]
    assert pi["amount"] == 14_275  # what is left to collect
    assert types_since(sb, start) == ["credit_note.created", "invoice.updated"]
    changed = sb.events[-1]["data"]["previous_attributes"]
    assert changed["amount_due"] == 17_275 and changed["amount_remaining"] == 17_275 and changed["pre_payment_credit_notes_amount"] == 0

    assert stripe_client.v1.credit_notes.retrieve(note["id"]).to_dict() == note.to_dict()
    second = stripe_client.v1.credit_notes.create(params={"invoice": invoice["id"], "lines": [_line(invoice, 1, quantity=1)]})
    assert second["number"] == invoice["number"] + "-CN-02" and second["total"] == 5_275  # the whole line, 5 000 + 275


def test_custom_lines_take_their_own_tax_rates_and_quantity(stripe_client, rates):
    invoice = _open(stripe_client, rates)
    note = stripe_client.v1.credit_notes.create(params={"invoice": invoice["id"], "lines": [
        {"type": "custom_line_item", "description": "Geste commercial", "unit_amount": 1_000, "quantity": 2, "tax_rates": [rates[1]["id"]]},
        {"type": "custom_line_item", "description": "Sans TVA", "unit_amount": 333},
    ]})
    first, second = note["lines"]["data"]
    assert (first["amount"], first["quantity"], first["unit_amount"], str(first["unit_amount_decimal"])) == (2_000, 2, 1_000, "1000")
    assert set(first.to_dict()) == LINE_FIELDS - {"invoice_line_item"}  # as Stripe's example shows a custom line
    assert [t["amount"] for t in first["taxes"]] == [110] and second["taxes"] == [] and second["tax_rates"] == []
    assert (note["subtotal"], note["total"]) == (2_333, 2_443)


def test_a_credit_on_a_tax_inclusive_line_holds_its_tax_as_the_line_does(stripe_client):
    included = stripe_client.v1.tax_rates.create(params={"display_name": "TVA", "percentage": 20, "inclusive": True})
    customer = stripe_client.v1.customers.create(params={"email": "ttc@example.org"})
    draft = stripe_client.v1.invoices.create(params={"customer": customer["id"], "auto_advance": False, "default_tax_rates": [included["id"]]})
    stripe_client.v1.invoice_items.create(params={"customer": customer["id"], "invoice": draft["id"], "amount": 1_200, "currency": "eur"})
    invoice = stripe_client.v1.invoices.finalize_invoice(draft["id"])
    note = stripe_client.v1.credit_notes.create(params={"invoice": invoice["id"], "lines": [_line(invoice, 0, amount=601)]})
    # 601 TTC: taxable 601 / 1,2 = 500,83 -> 501, tax 100; the invoice's default rate applies to its line without rates
    [tax] = note["lines"]["data"][0]["taxes"]
    assert (tax["amount"], tax["taxable_amount"], tax["tax_behavior"]) == (100, 501, "inclusive")
    assert (note["subtotal"], note["subtotal_excluding_tax"], note["total_excluding_tax"], note["total"]) == (601, 501, 501, 601)
    assert stripe_client.v1.invoices.retrieve(invoice["id"])["amount_due"] == 599


def test_crediting_all_that_is_due_marks_the_open_invoice_paid(stripe_client, sb, rates):
    invoice = _open(stripe_client, rates)
    start = len(sb.events)
    note = stripe_client.v1.credit_notes.create(params={"invoice": invoice["id"], "lines": [_line(invoice, 0), _line(invoice, 1)]})
    assert note["total"] == 17_275 and note["pre_payment_amount"] == 17_275 and note["type"] == "pre_payment"
    after = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert (after["status"], after["amount_due"], after["amount_remaining"], after["amount_paid"]) == ("paid", 0, 0, 0)
    assert after["status_transitions"]["paid_at"] is not None
    events = types_since(sb, start)
    assert events[:2] == ["credit_note.created", "invoice.updated"] and "invoice.paid" in events and "payment_intent.canceled" in events
    pi = stripe_client.v1.payment_intents.list(params={"customer": invoice["customer"]})["data"][0]
    assert pi["status"] == "canceled"
    # nothing more can be credited, and a note on a paid invoice cannot be voided
    _refused(sb, stripe_client.v1.credit_notes.create, invoice=invoice["id"], amount=1, out_of_band_amount=1)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.credit_notes.void_credit_note(note["id"])


def test_on_a_paid_invoice_refunds_credit_and_out_of_band_must_add_up_to_the_note(stripe_client, sb, rates):
    invoice = _paid(stripe_client, rates)
    assert invoice["status"] == "paid"
    lines = [_line(invoice, 0, amount=1_000)]  # 1 200 with tax
    for wrong in ({}, {"credit_amount": 1_000}, {"out_of_band_amount": 1_000, "credit_amount": 300}):
        error = _refused(sb, stripe_client.v1.credit_notes.create, invoice=invoice["id"], lines=lines, **wrong)
        assert "post_payment_amount" in error.user_message
    start = len(sb.events)
    note = stripe_client.v1.credit_notes.create(params={
        "invoice": invoice["id"], "lines": lines, "refund_amount": 500, "credit_amount": 400, "out_of_band_amount": 300,
    })
    assert (note["type"], note["pre_payment_amount"], note["post_payment_amount"], note["out_of_band_amount"]) == ("post_payment", 0, 1_200, 300)
    [link] = note["refunds"]
    refund = stripe_client.v1.refunds.retrieve(link["refund"])
    assert (link["amount_refunded"], link["type"], refund["amount"], refund["status"]) == (500, "refund", 500, "succeeded")
    assert stripe_client.v1.customers.retrieve(invoice["customer"])["balance"] == -400  # a credit for the next invoice
    after = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert (after["status"], after["amount_paid"], after["amount_due"]) == ("paid", 17_275, 17_275)
    assert (after["pre_payment_credit_notes_amount"], after["post_payment_credit_notes_amount"]) == (0, 1_200)
    assert types_since(sb, start) == ["refund.created", "charge.refunded", "credit_note.created", "invoice.updated"]

    # an existing refund of the invoice's payment is linked, wholly or in part, never twice over
    charge = refund["charge"]
    other = stripe_client.v1.refunds.create(params={"charge": charge, "amount": 600})
    linked = stripe_client.v1.credit_notes.create(params={
        "invoice": invoice["id"], "amount": 500, "refunds": [{"refund": other["id"], "amount_refunded": 500}],
    })
    assert [r.to_dict() for r in linked["refunds"]] == [{"amount_refunded": 500, "payment_record_refund": None, "refund": other["id"], "type": "refund"}]
    assert linked["lines"]["data"] == [] and linked["total"] == 500
    error = _refused(sb, stripe_client.v1.credit_notes.create, invoice=invoice["id"], amount=200, refunds=[{"refund": other["id"]}])
    assert error.param == "refunds[0][refund]"  # all of it by default, and only 100 is left to link
    both = stripe_client.v1.credit_notes.create(params={
        "invoice": invoice["id"], "amount": 1_100, "refunds": [{"refund": other["id"], "amount_refunded": 100}], "credit_amount": 1_000,
    })
    assert both["post_payment_amount"] == 1_100 and stripe_client.v1.customers.retrieve(invoice["customer"])["balance"] == -1_400
    # a refund larger than what is left on the charge is refused whole: no refund, no note
    stripe_client.v1.refunds.create(params={"charge": charge, "amount": 15_000})  # 1 175 left unrefunded
    error = _refused(sb, stripe_client.v1.credit_notes.create, invoice=invoice["id"], amount=1_200, refund_amount=1_200)
    assert error.code == "amount_too_large"


@pytest.mark.stripe_refusal
def test_refused_credit_notes_change_nothing(stripe_client, sb, rates):
    invoice = _open(stripe_client, rates)
    create = stripe_client.v1.credit_notes.create
    draft = stripe_client.v1.invoices.create(params={"customer": invoice["customer"], "auto_advance": False})
    assert _refused(sb, create, invoice=draft["id"], amount=100).param == "invoice"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        create(params={"invoice": "in_missing", "amount": 100})
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert _refused(sb, create, invoice=invoice["id"]).param == "lines"  # neither lines nor amount
    assert _refused(sb, create, invoice=invoice["id"], amount=100, reason="goodwill").param == "reason"
    assert _refused(sb, create, invoice=invoice["id"], lines=[_line(invoice, 0, amount=10_001)]).param == "lines[0][amount]"
    assert _refused(sb, create, invoice=invoice["id"], lines=[_line(invoice, 0, quantity=2)]).param == "lines[0][quantity]"
    assert _refused(sb, create, invoice=invoice["id"], lines=[{"type": "invoice_line_item", "invoice_line_item": "il_other"}]).param == (
        "lines[0][invoice_line_item]"
    )
    assert _refused(sb, create, invoice=invoice["id"], lines=[_line(invoice, 0, tax_rates=[rates[1]["id"]])]).param == "lines[0][tax_rates]"
    # a valid first line does not get through when a later one is refused
    assert _refused(sb, create, invoice=invoice["id"], lines=[_line(invoice, 0, amount=100), {"type": "custom_line_item"}]).param == "lines[1][unit_amount]"
    assert _refused(sb, create, invoice=invoice["id"], amount=17_276).param == "amount"  # more than the invoice total
    assert _refused(sb, create, invoice=invoice["id"], lines=[_line(invoice, 0, amount=100)], amount=100).param == "amount"  # 120 with tax
    assert _refused(sb, create, invoice=invoice["id"], amount=100, refund_amount=100).param == "refund_amount"  # nothing was charged
    # two notes together cannot credit more than the invoice
    create(params={"invoice": invoice["id"], "amount": 17_000})
    assert _refused(sb, create, invoice=invoice["id"], amount=276).param == "amount"


def test_preview_shows_the_note_without_issuing_it(stripe_client, sb, rates):
    invoice = _open(stripe_client, rates)
    params = {"invoice": invoice["id"], "lines": [_line(invoice, 0, amount=2_500), _line(invoice, 1, amount=1_000)]}
    before = _objects(sb)
    preview = stripe_client.v1.credit_notes.preview(params=params)
    lines = stripe_client.v1.credit_notes.preview_lines.list(params=params | {"limit": 1})
    assert _objects(sb) == before
    assert (preview["total"], preview["pre_payment_amount"], preview["number"]) == (4_055, 4_055, invoice["number"] + "-CN-01")
    assert set(preview.to_dict()) == NOTE_FIELDS and lines["has_more"] is True and lines["url"] == "/v1/credit_notes/preview/lines"
    assert [line["amount"] for line in lines["data"]] == [2_500]
    note = stripe_client.v1.credit_notes.create(params=params)
    assert {k: note[k] for k in ("total", "subtotal", "number", "type")} == {k: preview[k] for k in ("total", "subtotal", "number", "type")}
    assert [t.to_dict() for t in note["total_taxes"]] == [t.to_dict() for t in preview["total_taxes"]]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.credit_notes.preview(params={"invoice": invoice["id"], "amount": 20_000})


@pytest.mark.stripe_refusal
def test_lists_lines_and_updates(stripe_client, sb, rates):
    first, second = _open(stripe_client, rates), _open(stripe_client, rates)
    a = stripe_client.v1.credit_notes.create(params={"invoice": first["id"], "amount": 100})
    b = stripe_client.v1.credit_notes.create(params={"invoice": first["id"], "amount": 200})
    c = stripe_client.v1.credit_notes.create(params={"invoice": second["id"], "lines": [_line(second, 0, amount=10), _line(second, 1, amount=20)]})
    assert [n["id"] for n in stripe_client.v1.credit_notes.list()["data"]] == [c["id"], b["id"], a["id"]]
    assert [n["id"] for n in stripe_client.v1.credit_notes.list(params={"invoice": first["id"]})["data"]] == [b["id"], a["id"]]
    assert [n["id"] for n in stripe_client.v1.credit_notes.list(params={"customer": second["customer"]})["data"]] == [c["id"]]
    page = stripe_client.v1.credit_notes.list(params={"limit": 1, "starting_after": c["id"]})
    assert [n["id"] for n in page["data"]] == [b["id"]] and page["has_more"] is True
    lines = stripe_client.v1.credit_notes.line_items.list(c["id"], params={"limit": 1})
    assert [line["amount"] for line in lines["data"]] == [10] and lines["has_more"] is True
    assert lines["url"] == f"/v1/credit_notes/{c['id']}/lines"

    start = len(sb.events)
    changed = stripe_client.v1.credit_notes.update(a["id"], params={"memo": "Remise fidélité", "metadata": {"k": "v"}})
    assert changed["memo"] == "Remise fidélité" and changed["metadata"].to_dict() == {"k": "v"} and changed["total"] == 100
    assert types_since(sb, start) == ["credit_note.updated"]
    assert sb.events[-1]["data"]["previous_attributes"] == {"memo": None, "metadata": {"k": None}}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.credit_notes.update(a["id"], params={"memo": "x", "reason": "duplicate"})
    assert refused.value.param == "reason" and stripe_client.v1.credit_notes.retrieve(a["id"])["memo"] == "Remise fidélité"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.credit_notes.retrieve("cn_missing")
    assert missing.value.http_status == 404


def test_voiding_gives_the_invoice_back_what_the_note_took(stripe_client, sb, rates):
    invoice = _open(stripe_client, rates)
    note = stripe_client.v1.credit_notes.create(params={"invoice": invoice["id"], "lines": [_line(invoice, 1, amount=5_000)]})
    start = len(sb.events)
    voided = stripe_client.v1.credit_notes.void_credit_note(note["id"])
    assert voided["status"] == "void" and voided["voided_at"] is not None and voided["total"] == 5_275
    after = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert (after["amount_due"], after["amount_remaining"], after["pre_payment_credit_notes_amount"]) == (17_275, 17_275, 0)
    pi = stripe_client.v1.payment_intents.list(params={"customer": invoice["customer"]})["data"][0]
    assert pi["amount"] == 17_275
    assert types_since(sb, start) == ["credit_note.voided", "invoice.updated"]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.credit_notes.void_credit_note(note["id"])
    # a void note no longer counts: the whole line can be credited again, under the next number
    again = stripe_client.v1.credit_notes.create(params={"invoice": invoice["id"], "lines": [_line(invoice, 1)]})
    assert again["total"] == 5_275 and again["number"] == invoice["number"] + "-CN-02"


def test_hosted_credit_note_and_pdf_state_totals_and_vat_per_rate(stripe_client, rates):
    invoice = _open(stripe_client, rates)
    note = stripe_client.v1.credit_notes.create(params={
        "invoice": invoice["id"], "lines": [_line(invoice, 0, amount=1_000), _line(invoice, 1, amount=300)], "reason": "duplicate",
    })
    html = httpx.get(note["pdf"].removesuffix("/pdf")).text
    assert f"Avoir {note['number']}" in html and invoice["number"] in html and "facturation en double" in html
    assert "Total HT" in html and "13,00\u00a0€" in html
    assert "TVA 20 % sur 10,00\u00a0€" in html and "2,00\u00a0€" in html
    assert "TVA réduite 5,5 % sur 3,00\u00a0€" in html and "0,17\u00a0€" in html
    assert "Total TTC" in html and "15,17\u00a0€" in html
    pdf = httpx.get(note["pdf"])
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert b"Total HT : 13,00" in pdf.content and b"TVA 20 % sur 10,00" in pdf.content and b"Total TTC : 15,17" in pdf.content
    assert httpx.get(note["pdf"].replace(note["id"], "cn_missing")).status_code == 404


def test_credit_notes_survive_a_restart_and_still_void(server, tmp_path):
    path = tmp_path / "state.json"
    make_sandbox(server, state_path=path)
    client = make_client(server)
    rate = client.v1.tax_rates.create(params={"display_name": "TVA", "percentage": 20, "inclusive": False})
    invoice = _open(client, (rate, rate))
    note = client.v1.credit_notes.create(params={"invoice": invoice["id"], "lines": [_line(invoice, 0, amount=1_000)]})

    make_sandbox(server, state_path=path)
    client = make_client(server)
    assert client.v1.credit_notes.retrieve(note["id"]).to_dict() == note.to_dict()
    assert client.v1.credit_notes.void_credit_note(note["id"])["status"] == "void"
    assert client.v1.invoices.retrieve(invoice["id"])["amount_due"] == invoice["amount_due"]
