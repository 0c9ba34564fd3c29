"""A document that cannot be issued is refused when it is built, with a French message."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from funding.errors import FundingError
from funding.invoicing.document import DocumentKind, DocumentLine, InvoiceDocumentError, Party, VatSummary


def test_a_company_buyer_without_siren_is_refused(document):
    company = Party("Coutellerie du Pirou SARL", ("3 place du Pirou", "63300 Thiers"), is_company=True)

    with pytest.raises(InvoiceDocumentError, match="le client Coutellerie du Pirou SARL est une entreprise : son SIREN est obligatoire"):
        document(buyer=company)


def test_the_refusal_is_a_funding_error_answered_400(document):
    with pytest.raises(FundingError) as refused:
        document(buyer=Party("SARL sans SIREN", ("1 rue", "63300 Thiers"), is_company=True))

    assert refused.value.status == 400


def test_an_individual_needs_no_siren(document):
    assert document().buyer.siren is None


@pytest.mark.parametrize("rate", [196, 50, 70, -200, 2000])
def test_an_unknown_vat_rate_is_refused(document, rate):
    bad = DocumentLine("Bureau", 1, 1000, rate, 1000, 1000 * rate // 1000)

    with pytest.raises(InvoiceDocumentError, match=rf"ligne 1 \(Bureau\) : taux de TVA inconnu \({rate} ‰ ; taux possibles : "
                                                   r"20 %, 10 %, 5,5 %, 2,1 %, 0 %\)"):
        document(lines=(bad,))


@pytest.mark.parametrize(("changes", "message"), [
    ({"total_ht": 24999}, r"le total HT \(249,99\s€\) n'est pas la somme des lignes \(250,00\s€\)"),
    ({"total_vat": 5001, "total_ttc": 30001}, r"le total de TVA \(50,01\s€\) n'est pas la somme des lignes \(50,00\s€\)"),
    ({"total_ttc": 30100}, r"le total TTC \(301,00\s€\) n'est pas total HT \+ TVA \(300,00\s€\)"),
    ({"amount_paid": 30001}, r"le montant déjà payé \(300,01\s€\) dépasse le total TTC"),
    ({"amount_paid": -1}, r"le montant déjà payé"),
])
def test_totals_that_do_not_add_up_are_refused(document, changes, message):
    with pytest.raises(InvoiceDocumentError, match=r"^Facture F-2026-0042 : " + message):
        document(**changes)


def test_a_line_whose_amount_is_not_quantity_times_unit_price_is_refused(document):
    with pytest.raises(InvoiceDocumentError, match=r"le montant HT \(30,00\s€\) n'est pas quantité × prix unitaire HT \(3 × 12,00\s€\)"):
        document(lines=(DocumentLine("Repas", 3, 1200, 100, 3000, 300),))


def test_a_line_vat_off_by_more_than_a_cent_is_refused_and_a_rounded_one_is_kept(document):
    with pytest.raises(InvoiceDocumentError, match=r"la TVA \(0,93\s€\) n'est pas 5,5 % de 17,40\s€"):
        document(lines=(DocumentLine("Jus", 6, 290, 55, 1740, 93),))

    assert document(lines=(DocumentLine("Jus", 6, 290, 55, 1740, 95),)).total_vat == 95  # 95,7 rounded down by Stripe


def test_a_credit_note_names_the_invoice_it_credits_and_an_invoice_names_none(document):
    with pytest.raises(InvoiceDocumentError, match="avoir A-1 : le numéro de la facture annulée manque"):
        document(kind=DocumentKind.CREDIT_NOTE, number="A-1")
    with pytest.raises(InvoiceDocumentError, match="seul un avoir se rapporte à une autre facture"):
        document(credited_invoice_number="F-1")


def test_a_seller_under_293_b_charges_no_vat_and_a_liable_one_shows_its_vat_number(document, line):
    exempt = Party("Les Ateliers de Celles", ("Le Bourg", "63250 Celles-sur-Durolle"), siren="732829320", is_company=True)

    with pytest.raises(InvoiceDocumentError, match=r"un vendeur non assujetti \(art. 293 B du CGI\) ne facture pas de TVA"):
        document(seller=exempt, vat_exempt=True)
    with pytest.raises(InvoiceDocumentError, match="le numéro de TVA intracommunautaire du vendeur Les Ateliers de Celles manque"):
        document(seller=exempt, lines=(line("Atelier", 1, 4000, 0),))
    assert document(seller=exempt, vat_exempt=True, lines=(line("Atelier", 1, 4000, 0),)).total_ttc == 4000


@pytest.mark.parametrize(("seller", "message"), [
    (Party("Entre-Lab", ("12 rue de la Coutellerie", "63300 Thiers"), vat_number="FR65912345675"), "le SIREN du vendeur Entre-Lab manque"),
    (Party("Entre-Lab", ("63300 Thiers",), siren="912345676", vat_number="FR65912345675"),
     r"SIREN du vendeur Entre-Lab invalide : 912345676 \(9 chiffres, clé de Luhn\)"),
    (Party("Entre-Lab", (), siren="912345675", vat_number="FR65912345675"), "l'adresse du vendeur Entre-Lab manque"),
    (Party("Entre-Lab", ("63300 Thiers",), siren="912345675", vat_number="fr 65"), "numéro de TVA du vendeur Entre-Lab invalide"),
])
def test_a_seller_without_its_identity_is_refused(document, seller, message):
    with pytest.raises(InvoiceDocumentError, match=message):
        document(seller=seller)


@pytest.mark.parametrize(("changes", "message"), [
    ({"lines": ()}, "Facture F-2026-0042 : aucune ligne"),
    ({"due_date": dt.date(2026, 11, 30)}, "l'échéance précède la date d'émission"),
    ({"service_end": dt.date(2026, 11, 30)}, "la période de la prestation finit avant de commencer"),
    ({"late_penalty": " "}, "conditions de paiement et taux des pénalités de retard obligatoires"),
    ({"currency": "EURO"}, "devise inconnue : EURO"),
    ({"number": ""}, "le numéro du document manque"),
])
def test_a_document_missing_a_mandatory_mention_is_refused(document, changes, message):
    with pytest.raises(InvoiceDocumentError, match=message):
        document(**changes)


def test_a_line_period_must_have_both_ends_in_order(document):
    with pytest.raises(InvoiceDocumentError, match="une période a un début et une fin"):
        document(lines=(DocumentLine("Bureau", 1, 1000, 200, 1000, 200, period_start=dt.date(2026, 12, 1)),))
    with pytest.raises(InvoiceDocumentError, match="la période finit avant de commencer"):
        document(lines=(DocumentLine("Bureau", 1, 1000, 200, 1000, 200, dt.date(2026, 12, 2), dt.date(2026, 12, 1)),))


def test_vat_is_summed_per_rate_highest_first(cases):
    doc = cases["mixed_rates"]()

    assert doc.vat_summaries == (VatSummary(200, 123450, 24690), VatSummary(100, 5000, 500), VatSummary(55, 1740, 96),
                                 VatSummary(21, 800, 17))
    assert [vat.label for vat in doc.vat_summaries] == ["20 %", "10 %", "5,5 %", "2,1 %"]
    assert doc.amount_due == 156293 - 100


def test_a_document_cannot_be_changed_once_checked(document):
    doc = document()

    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.total_ht = 1
