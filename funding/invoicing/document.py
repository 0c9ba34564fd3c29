"""An invoice or a credit note (avoir) as plain data, checked whole when it is built.

Nothing here reads the database or Stripe: whoever has the figures (Stripe's invoice, a
credit note) builds an :class:`InvoiceDocument`, and a document that exists is one that can
be issued — every legal mention present (CGI art. 242 nonies A, Code de commerce L441-9),
every total adding up. Amounts are integer minor units, VAT rates per mille (200 = 20 %).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from funding.errors import FundingError
from funding.money import MoneyError, check_currency, format_money
from funding.orgs.service import luhn_ok

# The French rates, per mille: normal, intermediate, reduced, super-reduced, none.
VAT_RATES = (200, 100, 55, 21, 0)
VAT_EXEMPT_MENTION = "TVA non applicable, art. 293 B du CGI"
RECOVERY_INDEMNITY_MENTION = "Indemnité forfaitaire pour frais de recouvrement : 40 € (art. L441-10 du Code de commerce)"


class InvoiceDocumentError(FundingError):
    """A document that cannot be issued as it is; the message says what is wrong, in French."""


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


def rate_label(rate: int) -> str:
    """``55`` → ``5,5 %``, ``200`` → ``20 %``."""
    units, tenths = divmod(rate, 10)
    return f"{units},{tenths} %" if tenths else f"{units} %"


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    address: tuple[str, ...]
    siren: str | None = None
    vat_number: str | None = None
    is_company: bool = False
    country: str = "FR"  # ISO 3166-1 alpha-2, for the Factur-X address

    def _check(self, role: str) -> None:
        if not self.name.strip():
            raise InvoiceDocumentError(f"le nom du {role} manque")
        if not any(line.strip() for line in self.address):
            raise InvoiceDocumentError(f"l'adresse du {role} {self.name} manque")
        if self.siren is not None and not (re.fullmatch(r"\d{9}", self.siren) and luhn_ok(self.siren)):
            raise InvoiceDocumentError(f"SIREN du {role} {self.name} invalide : {self.siren} (9 chiffres, clé de Luhn)")
        if self.vat_number is not None and not re.fullmatch(r"[A-Z]{2}[0-9A-Z]{2,13}", self.vat_number):
            raise InvoiceDocumentError(f"numéro de TVA du {role} {self.name} invalide : {self.vat_number}")


@dataclass(frozen=True, slots=True)
class DocumentLine:
    description: str
    quantity: int
    unit_amount_ht: int
    vat_rate: int
    amount_ht: int
    vat_amount: int
    period_start: dt.date | None = None
    period_end: dt.date | None = None

    def _check(self, n: int, money: Callable[[int], str]) -> None:
        where = f"ligne {n} ({self.description or 'sans description'})"
        if not self.description.strip():
            raise InvoiceDocumentError(f"ligne {n} : la description manque")
        if self.vat_rate not in VAT_RATES:
            known = ", ".join(rate_label(rate) for rate in VAT_RATES)
            raise InvoiceDocumentError(f"{where} : taux de TVA inconnu ({self.vat_rate} ‰ ; taux possibles : {known})")
        if self.quantity < 1:
            raise InvoiceDocumentError(f"{where} : la quantité doit être d'au moins 1 ({self.quantity})")
        if self.amount_ht != self.quantity * self.unit_amount_ht:
            raise InvoiceDocumentError(
                f"{where} : le montant HT ({money(self.amount_ht)}) n'est pas quantité × prix unitaire HT "
                f"({self.quantity} × {money(self.unit_amount_ht)})")
        # One minor unit of rounding either way, as Stripe rounds each line's tax.
        if abs(self.vat_amount * 1000 - self.amount_ht * self.vat_rate) > 1000:
            raise InvoiceDocumentError(
                f"{where} : la TVA ({money(self.vat_amount)}) n'est pas {rate_label(self.vat_rate)} de {money(self.amount_ht)}")
        if (self.period_start is None) != (self.period_end is None):
            raise InvoiceDocumentError(f"{where} : une période a un début et une fin")
        if self.period_start and self.period_end and self.period_start > self.period_end:
            raise InvoiceDocumentError(f"{where} : la période finit avant de commencer")


@dataclass(frozen=True, slots=True)
class VatSummary:
    """The lines of one rate: their base and their VAT."""

    rate: int
    base_ht: int
    vat_amount: int

    @property
    def label(self) -> str:
        return rate_label(self.rate)


def vat_summaries(lines: Iterable[DocumentLine]) -> tuple[VatSummary, ...]:
    """One summary per rate present, highest rate first."""
    bases: dict[int, list[int]] = {}
    for line in lines:
        base = bases.setdefault(line.vat_rate, [0, 0])
        base[0] += line.amount_ht
        base[1] += line.vat_amount
    return tuple(VatSummary(rate, ht, vat) for rate, (ht, vat) in sorted(bases.items(), reverse=True))


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """An invoice or a credit note, checked when it is built (:class:`InvoiceDocumentError`).

    ``service_date`` is the date of the service, or the first day of its period when
    ``service_end`` is given. ``amount_paid`` is what was already paid (a card charged at
    issue); ``amount_due`` is what is left. A credit note names ``credited_invoice_number``.
    """

    kind: DocumentKind
    number: str
    issue_date: dt.date
    service_date: dt.date
    due_date: dt.date
    currency: str
    seller: Party
    buyer: Party
    lines: tuple[DocumentLine, ...]
    total_ht: int
    total_vat: int
    total_ttc: int
    payment_terms: str
    late_penalty: str
    service_end: dt.date | None = None
    amount_paid: int = 0
    vat_exempt: bool = False
    credited_invoice_number: str | None = None
    vat_summaries: tuple[VatSummary, ...] = field(init=False)

    def __post_init__(self) -> None:
        self._check_identity()
        self.seller._check("vendeur")
        self.buyer._check("client")
        self._check_vat_status()
        if not self.lines:
            raise InvoiceDocumentError(f"{self.title} {self.number} : aucune ligne")
        for n, line in enumerate(self.lines, 1):
            line._check(n, self._money)
        object.__setattr__(self, "vat_summaries", vat_summaries(self.lines))
        self._check_totals()

    @property
    def title(self) -> str:
        return "Avoir" if self.kind == DocumentKind.CREDIT_NOTE else "Facture"

    @property
    def amount_due(self) -> int:
        return self.total_ttc - self.amount_paid

    def _money(self, amount: int) -> str:
        return format_money(amount, self.currency)

    def _check_identity(self) -> None:
        if not self.number.strip():
            raise InvoiceDocumentError("le numéro du document manque")
        try:
            check_currency(self.currency)
        except MoneyError as exc:
            raise InvoiceDocumentError(f"{self.title} {self.number} : {exc}") from None
        if self.currency != self.currency.upper():
            raise InvoiceDocumentError(f"{self.title} {self.number} : devise en majuscules ({self.currency.upper()})")
        if self.due_date < self.issue_date:
            raise InvoiceDocumentError(f"{self.title} {self.number} : l'échéance précède la date d'émission")
        if self.service_end is not None and self.service_end < self.service_date:
            raise InvoiceDocumentError(f"{self.title} {self.number} : la période de la prestation finit avant de commencer")
        if not self.payment_terms.strip() or not self.late_penalty.strip():
            raise InvoiceDocumentError(f"{self.title} {self.number} : conditions de paiement et taux des pénalités de retard obligatoires")
        if self.kind == DocumentKind.CREDIT_NOTE and not (self.credited_invoice_number or "").strip():
            raise InvoiceDocumentError(f"avoir {self.number} : le numéro de la facture annulée manque")
        if self.kind == DocumentKind.INVOICE and self.credited_invoice_number is not None:
            raise InvoiceDocumentError(f"facture {self.number} : seul un avoir se rapporte à une autre facture")

    def _check_vat_status(self) -> None:
        if self.seller.siren is None:
            raise InvoiceDocumentError(f"le SIREN du vendeur {self.seller.name} manque")
        if self.vat_exempt:
            if any(line.vat_rate for line in self.lines):
                raise InvoiceDocumentError(f"{self.title} {self.number} : un vendeur non assujetti (art. 293 B du CGI) ne facture pas de TVA")
        elif self.seller.vat_number is None:
            raise InvoiceDocumentError(f"le numéro de TVA intracommunautaire du vendeur {self.seller.name} manque")
        if self.buyer.is_company and self.buyer.siren is None:
            raise InvoiceDocumentError(f"le client {self.buyer.name} est une entreprise : son SIREN est obligatoire")

    def _check_totals(self) -> None:
        lines_ht = sum(line.amount_ht for line in self.lines)
        lines_vat = sum(line.vat_amount for line in self.lines)
        where, money = f"{self.title} {self.number}", self._money
        if self.total_ht != lines_ht:
            raise InvoiceDocumentError(f"{where} : le total HT ({money(self.total_ht)}) n'est pas la somme des lignes ({money(lines_ht)})")
        if self.total_vat != lines_vat:
            raise InvoiceDocumentError(
                f"{where} : le total de TVA ({money(self.total_vat)}) n'est pas la somme des lignes ({money(lines_vat)})")
        if self.total_ttc != self.total_ht + self.total_vat:
            raise InvoiceDocumentError(
                f"{where} : le total TTC ({money(self.total_ttc)}) n'est pas total HT + TVA ({money(self.total_ht + self.total_vat)})")
        if not 0 <= self.amount_paid <= max(self.total_ttc, 0):
            raise InvoiceDocumentError(f"{where} : le montant déjà payé ({money(self.amount_paid)}) dépasse le total TTC")
