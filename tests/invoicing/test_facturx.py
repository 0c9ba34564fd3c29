"""Factur-X (EN 16931): the CII XML is valid against the official XSD, says what the document
says, and travels inside the PDF/A-3, from which it comes back unchanged."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from funding.invoicing.facturx import check_xsd, facturx_pdf, facturx_xml

NS = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
      "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
      "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"}
SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
AGREEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"


def parsed(xml: bytes) -> ET.Element:
    return ET.fromstring(xml)  # noqa: S314 - our own XML, built by the test


def texts(root: ET.Element, path: str) -> list[str]:
    return [node.text or "" for node in root.findall(path, NS)]


def test_every_case_is_valid_against_the_en16931_xsd(case):
    _, doc = case
    xml = facturx_xml(doc)

    check_xsd(xml)
    assert facturx.get_level(etree.fromstring(xml)) == "en16931"


def test_the_check_refuses_an_xml_the_xsd_does_not_allow(cases):
    xml = facturx_xml(cases["individual"]()).replace(b"<ram:TypeCode>380</ram:TypeCode>", b"")

    with pytest.raises(Exception, match="not valid against the official XML Schema"):
        check_xsd(xml)


def test_an_invoice_is_type_380_with_its_totals_dates_and_notes(cases):
    root = parsed(facturx_xml(cases["mixed_rates"]()))

    assert texts(root, "rsm:ExchangedDocument/ram:TypeCode") == ["380"]
    assert texts(root, "rsm:ExchangedDocument/ram:ID") == ["F-2026-0042"]
    assert texts(root, "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString") == ["20261201"]
    assert texts(root, f"{SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString") == ["20261231"]
    totals = f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    assert [texts(root, f"{totals}/ram:{name}") for name in
            ("LineTotalAmount", "TaxBasisTotalAmount", "TaxTotalAmount", "GrandTotalAmount", "TotalPrepaidAmount",
             "DuePayableAmount")] == [["1309.90"], ["1309.90"], ["253.03"], ["1562.93"], ["1.00"], ["1561.93"]]
    breakdown = [(texts(tax, "ram:CategoryCode"), texts(tax, "ram:RateApplicablePercent"), texts(tax, "ram:BasisAmount"),
                  texts(tax, "ram:CalculatedAmount")) for tax in root.findall(f"{SETTLEMENT}/ram:ApplicableTradeTax", NS)]
    assert breakdown == [(["S"], ["20.0"], ["1234.50"], ["246.90"]), (["S"], ["10.0"], ["50.00"], ["5.00"]),
                         (["S"], ["5.5"], ["17.40"], ["0.96"]), (["S"], ["2.1"], ["8.00"], ["0.17"])]
    assert texts(root, "rsm:ExchangedDocument/ram:IncludedNote/ram:SubjectCode") == ["PMD"]  # an individual: no PMT


def test_seller_and_company_buyer_carry_their_siren_0002_and_vat_number_va(cases):
    root = parsed(facturx_xml(cases["company"]()))

    for party, siren, vat in (("SellerTradeParty", "912345675", "FR65912345675"),
                              ("BuyerTradeParty", "552081317", "FR03552081317")):
        legal = root.find(f"{AGREEMENT}/ram:{party}/ram:SpecifiedLegalOrganization/ram:ID", NS)
        tax = root.find(f"{AGREEMENT}/ram:{party}/ram:SpecifiedTaxRegistration/ram:ID", NS)
        assert legal is not None and (legal.text, legal.get("schemeID")) == (siren, "0002")
        assert tax is not None and (tax.text, tax.get("schemeID")) == (vat, "VA")
    address = f"{AGREEMENT}/ram:BuyerTradeParty/ram:PostalTradeAddress"
    assert [texts(root, f"{address}/ram:{name}") for name in ("PostcodeCode", "LineOne", "LineTwo", "CityName", "CountryID")] == [
        ["63300"], ["3 place du Pirou"], ["Bâtiment B"], ["Thiers"], ["FR"]]
    period = f"{SETTLEMENT}/ram:BillingSpecifiedPeriod"
    assert texts(root, f"{period}/ram:StartDateTime/udt:DateTimeString") == ["20261201"]
    assert texts(root, f"{period}/ram:EndDateTime/udt:DateTimeString") == ["20261231"]
    assert texts(root, "rsm:ExchangedDocument/ram:IncludedNote/ram:SubjectCode") == ["PMD", "PMT"]


def test_an_individual_buyer_has_no_legal_organisation(cases):
    root = parsed(facturx_xml(cases["individual"]()))

    assert root.find(f"{AGREEMENT}/ram:BuyerTradeParty/ram:SpecifiedLegalOrganization", NS) is None
    assert texts(root, f"{AGREEMENT}/ram:BuyerTradeParty/ram:Name") == ["Camille Martin"]
    delivery = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeDelivery"
    assert texts(root, f"{delivery}/ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/udt:DateTimeString") == ["20261201"]


def test_a_seller_under_293_b_is_category_e_with_its_exemption_reason(cases):
    root = parsed(facturx_xml(cases["vat_exempt"]()))

    tax = f"{SETTLEMENT}/ram:ApplicableTradeTax"
    assert texts(root, f"{tax}/ram:CategoryCode") == ["E"]
    assert texts(root, f"{tax}/ram:ExemptionReason") == ["TVA non applicable, art. 293 B du CGI"]
    assert texts(root, f"{tax}/ram:ExemptionReasonCode") == ["VATEX-FR-FRANCHISE"]
    assert texts(root, f"{tax}/ram:RateApplicablePercent") == ["0.0"]
    assert root.find(f"{AGREEMENT}/ram:SellerTradeParty/ram:SpecifiedTaxRegistration", NS) is None
    lines = "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem"
    assert texts(root, f"{lines}/ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode") == ["E"]


def test_a_zero_rate_from_a_vat_liable_seller_is_category_z(document, line):
    root = parsed(facturx_xml(document(lines=(line("Cotisation annuelle", 1, 3000, 0),))))

    assert texts(root, f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:CategoryCode") == ["Z"]
    assert root.find(f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:ExemptionReason", NS) is None


def test_a_credit_note_is_type_381_and_references_the_invoice_it_credits(cases):
    root = parsed(facturx_xml(cases["credit_note"]()))

    assert texts(root, "rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    assert texts(root, f"{SETTLEMENT}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == ["F-2026-0042"]
    assert texts(root, f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount") == ["300.00"]


def test_the_pdf_is_pdf_a_3_and_gives_back_the_same_xml(case, pdf_text):
    _, doc = case
    pdf = facturx_pdf(doc)

    filename, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert (filename, xml) == ("factur-x.xml", facturx_xml(doc))
    metadata = PdfReader(io.BytesIO(pdf)).xmp_metadata
    assert metadata is not None
    xmp = metadata.stream.get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp and b"<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    assert b"EN 16931" in xmp  # the Factur-X conformance level
    assert f"{doc.title} n° {doc.number}" in pdf_text(pdf)  # still the printed document
