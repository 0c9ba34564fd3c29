"""The printed document carries every mention of CGI art. 242 nonies A and Code de commerce
L441-9 and L441-10, read back from the PDF's text."""

from __future__ import annotations

import datetime as dt

from funding.invoicing.document import DocumentKind
from funding.invoicing.pdf import document_html, document_pdf, environment


def test_an_invoice_to_an_individual_has_every_mention_and_no_company_one(document, pdf_text):
    text = pdf_text(document_pdf(document()))

    for mention in [
        "Entre-Lab", "12 rue de la Coutellerie", "63300 Thiers", "SIREN : 912345675",
        "N° TVA intracommunautaire : FR65912345675",
        "Camille Martin", "4 rue Durolle",
        "Facture n° F-2026-0042", "Date d'émission : 1 décembre 2026", "Date de la prestation : 1 décembre 2026",
        "Bureau fermé, décembre 2026 du 1 décembre 2026 au 31 décembre 2026 1 250,00 € 20 % 250,00 €",
        "Taux Base HT Montant TVA 20 % 250,00 € 50,00 €",
        "Total HT 250,00 €", "Total TVA 50,00 €", "Total TTC 300,00 €", "Net à payer 300,00 €",
        "Date d'échéance : 31 décembre 2026",
        "Conditions de paiement : Paiement par carte à l'émission, sans escompte",
        "Pénalités de retard : trois fois le taux d'intérêt légal",
    ]:
        assert mention in text
    assert text.count("SIREN") == 1  # the seller's: an individual has none
    assert "Indemnité forfaitaire" not in text
    assert "293 B" not in text
    assert "Avoir" not in text


def test_an_invoice_to_a_company_names_its_siren_vat_number_and_the_40_euro_indemnity(cases, pdf_text):
    doc = cases["company"]()
    assert doc.service_end == dt.date(2026, 12, 31)

    text = pdf_text(document_pdf(doc))

    for mention in [
        "Coutellerie du Pirou SARL", "3 place du Pirou Bâtiment B 63300 Thiers", "SIREN : 552081317", "N° TVA intracommunautaire : FR03552081317",
        "Période de la prestation : du 1 décembre 2026 au 31 décembre 2026",
        "Indemnité forfaitaire pour frais de recouvrement : 40 € (art. L441-10 du Code de commerce)",
    ]:
        assert mention in text
    assert "Date de la prestation" not in text


def test_a_seller_under_293_b_says_so_and_shows_no_vat_number(cases, pdf_text):
    text = pdf_text(document_pdf(cases["vat_exempt"]()))

    assert "Les Ateliers de Celles" in text and "SIREN : 732829320" in text
    assert text.count("TVA non applicable, art. 293 B du CGI") == 2  # under the seller, and under the totals
    assert text.count("N° TVA intracommunautaire") == 1  # the buyer's, not the seller's
    assert "Atelier coutellerie, 3 heures 3 40,00 € 0 % 120,00 €" in text
    assert "Total HT 120,00 € Total TVA 0,00 € Total TTC 120,00 €" in text


def test_mixed_rates_give_one_vat_line_per_rate_and_french_amounts(cases, pdf_text):
    text = pdf_text(document_pdf(cases["mixed_rates"]()))

    for mention in [
        "Poste nomade, 10 jours 10 123,45 € 20 % 1 234,50 €",
        "Plateau repas 4 12,50 € 10 % 50,00 €",
        "Jus de pomme en bouteille 6 2,90 € 5,5 % 17,40 €",
        "Revue de l'association 1 8,00 € 2,1 % 8,00 €",
        "20 % 1 234,50 € 246,90 € 10 % 50,00 € 5,00 € 5,5 % 17,40 € 0,96 € 2,1 % 8,00 € 0,17 €",
        "Total HT 1 309,90 € Total TVA 253,03 € Total TTC 1 562,93 € Déjà réglé 1,00 € Net à payer 1 561,93 €",
    ]:
        assert mention in text


def test_the_amounts_use_the_french_grouping_of_funding_money(document, line):
    html = document_html(document(lines=(line("Poste nomade, 10 jours", 10, 12345, 200),)))

    assert "1\u202f234,50\xa0€" in html  # funding.money.format_money(123450, "EUR", "fr")


def test_a_credit_note_says_avoir_and_names_the_invoice_it_credits(cases, pdf_text):
    doc = cases["credit_note"]()
    assert doc.kind == DocumentKind.CREDIT_NOTE
    text = pdf_text(document_pdf(doc))

    assert "Avoir n° F-2026-0057" in text
    assert "Avoir sur la facture n° F-2026-0042" in text
    assert "Facture n°" not in text
    assert "Montant de l'avoir 300,00 €" in text
    assert "Indemnité forfaitaire pour frais de recouvrement : 40 €" in text


def test_every_case_prints_on_one_a4_page_with_its_totals(case, pdf_text):
    _, doc = case
    pdf = document_pdf(doc)

    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert text.endswith("1 / 1")
    assert f"{doc.title} n° {doc.number}" in text


def test_a_user_text_is_escaped_not_interpreted(document, line):
    html = document_html(document(lines=(line("<b>Café</b> & thé", 1, 100, 55),)))

    assert "&lt;b&gt;Café&lt;/b&gt; &amp; thé" in html


def test_another_document_can_extend_the_template_and_replace_its_blocks(document, flat):
    page = environment().from_string(
        '{% extends "invoicing/document.html" %}{% block body %}<p>Reçu n° {{ doc.number }}</p>{% endblock %}'
        "{% block totals %}{% endblock %}")

    html = flat(page.render(doc=document()))

    assert "<p>Reçu n° F-2026-0042</p>" in html
    assert "Prix unitaire HT" not in html and "Total TTC" not in html
    assert "SIREN : 912345675" in html and "Pénalités de retard" in html
