"""Factur-X, profile EN 16931: the document's CII XML, embedded in its PDF made PDF/A-3.

``facturx_xml(doc)`` writes the UN/CEFACT Cross Industry Invoice the way EN 16931 reads it:
type 380 (invoice) or 381 (credit note, naming the invoice it credits), the seller's and a
company buyer's SIREN as legal organisation (scheme 0002) and their VAT numbers as VAT
registrations (VA), a tax breakdown per rate (category S; Z at 0 %; E with its reason for a
seller under art. 293 B). ``facturx_pdf(doc)`` prints the PDF as PDF/A-3b and lets the
``factur-x`` library embed the XML (checked against the official XSD first).
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

from facturx import generate_from_binary, xml_check_xsd

from funding.invoicing.document import (
    RECOVERY_INDEMNITY_MENTION,
    VAT_EXEMPT_MENTION,
    DocumentKind,
    DocumentLine,
    InvoiceDocument,
    Party,
)
from funding.invoicing.pdf import document_pdf
from funding.money import exponent

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
for _prefix, _uri in (("rsm", RSM), ("ram", RAM), ("udt", UDT)):
    ET.register_namespace(_prefix, _uri)

EN16931 = "urn:cen.eu:en16931:2017"
TYPE_CODES = {DocumentKind.INVOICE: "380", DocumentKind.CREDIT_NOTE: "381"}
SIREN_SCHEME = "0002"  # ISO 6523 ICD of the French SIRENE register
VATEX_FRANCHISE = "VATEX-FR-FRANCHISE"  # CEF VATEX code of the franchise en base (art. 293 B)
UNIT_ONE = "C62"  # UN/ECE rec. 20: "one", a unit without dimension
POSTCODE_CITY = re.compile(r"(\d{5})\s+(.+)")


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    ns, _, name = tag.partition(":")
    node = ET.SubElement(parent, f"{{{RAM if ns == 'ram' else RSM if ns == 'rsm' else UDT}}}{name}", attrs)
    if text is not None:
        node.text = text
    return node


def _date(parent: ET.Element, tag: str, day: dt.date) -> None:
    _el(_el(parent, tag), "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _amount(amount: int, currency: str) -> str:
    return str(Decimal(amount).scaleb(-exponent(currency)))


def _percent(rate: int) -> str:
    return str(Decimal(rate).scaleb(-1))


def _category(doc: InvoiceDocument, rate: int) -> str:
    if doc.vat_exempt:
        return "E"
    return "S" if rate else "Z"


def _party(parent: ET.Element, tag: str, party: Party, *, legal_id: bool) -> None:
    node = _el(parent, tag)
    _el(node, "ram:Name", party.name)
    if legal_id and party.siren:
        _el(_el(node, "ram:SpecifiedLegalOrganization"), "ram:ID", party.siren, schemeID=SIREN_SCHEME)
    address = _el(node, "ram:PostalTradeAddress")
    lines = [line.strip() for line in party.address if line.strip()]
    match = POSTCODE_CITY.fullmatch(lines[-1]) if len(lines) > 1 else None
    if match:
        lines.pop()
        _el(address, "ram:PostcodeCode", match.group(1))
    if len(lines) > 3:
        lines[2:] = [", ".join(lines[2:])]
    for name, line in zip(("LineOne", "LineTwo", "LineThree"), lines, strict=False):
        _el(address, f"ram:{name}", line)
    if match:
        _el(address, "ram:CityName", match.group(2))
    _el(address, "ram:CountryID", party.country)
    if party.vat_number:
        _el(_el(node, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_number, schemeID="VA")


def _line(parent: ET.Element, doc: InvoiceDocument, n: int, line: DocumentLine) -> None:
    item = _el(parent, "ram:IncludedSupplyChainTradeLineItem")
    _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(n))
    _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.description)
    price = _el(_el(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
    _el(price, "ram:ChargeAmount", _amount(line.unit_amount_ht, doc.currency))
    _el(_el(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", str(line.quantity), unitCode=UNIT_ONE)
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:TypeCode", "VAT")
    _el(tax, "ram:CategoryCode", _category(doc, line.vat_rate))
    _el(tax, "ram:RateApplicablePercent", _percent(line.vat_rate))
    if line.period_start and line.period_end:
        _period(settlement, line.period_start, line.period_end)
    summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(line.amount_ht, doc.currency))


def _period(parent: ET.Element, start: dt.date, end: dt.date) -> None:
    period = _el(parent, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", start)
    _date(period, "ram:EndDateTime", end)


def facturx_xml(doc: InvoiceDocument) -> bytes:
    """The CII XML of ``doc``, Factur-X profile EN 16931 (UTF-8, with its declaration)."""
    money = doc.currency
    root = ET.Element(f"{{{RSM}}}CrossIndustryInvoice")
    _el(_el(_el(root, "rsm:ExchangedDocumentContext"), "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", EN16931)
    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", doc.number)
    _el(header, "ram:TypeCode", TYPE_CODES[doc.kind])
    _date(header, "ram:IssueDateTime", doc.issue_date)
    notes = [("PMD", f"Pénalités de retard : {doc.late_penalty}")]
    if doc.buyer.is_company:
        notes.append(("PMT", RECOVERY_INDEMNITY_MENTION))
    for code, text in notes:
        note = _el(header, "ram:IncludedNote")
        _el(note, "ram:Content", text)
        _el(note, "ram:SubjectCode", code)

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for n, line in enumerate(doc.lines, 1):
        _line(transaction, doc, n, line)
    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    _party(agreement, "ram:SellerTradeParty", doc.seller, legal_id=True)
    _party(agreement, "ram:BuyerTradeParty", doc.buyer, legal_id=doc.buyer.is_company)
    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    if doc.service_end is None:
        _date(_el(delivery, "ram:ActualDeliverySupplyChainEvent"), "ram:OccurrenceDateTime", doc.service_date)

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:InvoiceCurrencyCode", money)
    for vat in doc.vat_summaries:
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:CalculatedAmount", _amount(vat.vat_amount, money))
        _el(tax, "ram:TypeCode", "VAT")
        if doc.vat_exempt:
            _el(tax, "ram:ExemptionReason", VAT_EXEMPT_MENTION)
        _el(tax, "ram:BasisAmount", _amount(vat.base_ht, money))
        _el(tax, "ram:CategoryCode", _category(doc, vat.rate))
        if doc.vat_exempt:
            _el(tax, "ram:ExemptionReasonCode", VATEX_FRANCHISE)
        _el(tax, "ram:RateApplicablePercent", _percent(vat.rate))
    if doc.service_end is not None:
        _period(settlement, doc.service_date, doc.service_end)
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
    _el(terms, "ram:Description", doc.payment_terms)
    _date(terms, "ram:DueDateDateTime", doc.due_date)
    totals = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(totals, "ram:LineTotalAmount", _amount(doc.total_ht, money))
    _el(totals, "ram:TaxBasisTotalAmount", _amount(doc.total_ht, money))
    _el(totals, "ram:TaxTotalAmount", _amount(doc.total_vat, money), currencyID=money)
    _el(totals, "ram:GrandTotalAmount", _amount(doc.total_ttc, money))
    _el(totals, "ram:TotalPrepaidAmount", _amount(doc.amount_paid, money))
    _el(totals, "ram:DuePayableAmount", _amount(doc.amount_due, money))
    if doc.credited_invoice_number:
        _el(_el(settlement, "ram:InvoiceReferencedDocument"), "ram:IssuerAssignedID", doc.credited_invoice_number)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def check_xsd(xml: bytes) -> None:
    """Raises unless ``xml`` is valid against the Factur-X EN 16931 XSD shipped by ``factur-x``."""
    xml_check_xsd(xml, flavor="factur-x", level="en16931")


def facturx_pdf(doc: InvoiceDocument) -> bytes:
    """The PDF of ``doc`` as PDF/A-3b with its Factur-X XML embedded (``factur-x.xml``, relationship Data)."""
    pdf = document_pdf(doc, pdf_variant="pdf/a-3b")
    result: bytes = generate_from_binary(pdf, facturx_xml(doc), flavor="factur-x", level="en16931", check_xsd=True,
                                         lang="fr-FR")
    return result
