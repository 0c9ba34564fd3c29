"""Stripe's test cards, ready-made test payment methods and tokens, and what each one does."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# behaviours
SUCCEED = "succeed"
AUTH_ON_SESSION = "auth_on_session"  # 3-D Secure on session; fine off session once set up
AUTH_ALWAYS = "auth_always"  # authentication on every payment; off session -> authentication_required
DECLINE = "decline"  # declined at setup/attach and at every charge
CHARGE_FAILS = "charge_fails"  # attaches and sets up fine, every charge is declined
DISPUTE = "dispute"  # succeeds, then a fraudulent chargeback is opened
INQUIRY = "inquiry"  # succeeds, then an inquiry (no funds withdrawn) is opened
REFUND_FAILS = "refund_fails"  # succeeds; a refund of it starts succeeded, then fails (Stripe's 4000 0000 0000 5126)
BYPASS_PENDING = "bypass_pending"  # succeeds; the funds go straight to the available balance (4000 0000 0000 0077)


@dataclass(frozen=True)
class Card:
    number: str
    behaviour: str = SUCCEED
    decline_code: str | None = None  # for DECLINE / CHARGE_FAILS
    error_code: str = "card_declined"

    @property
    def brand(self) -> str:
        return brand_of(self.number)

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.number.encode()).hexdigest()[:16]


TEST_CARDS: dict[str, Card] = {
    c.number: c
    for c in (
        Card("4242424242424242"),
        Card("4000056655665556"),
        Card("5555555555554444"),
        Card("2223003122003222"),
        Card("378282246310005"),
        Card("4000002500003155", AUTH_ON_SESSION),
        Card("4000002760003184", AUTH_ALWAYS),
        Card("4000000000003220", AUTH_ALWAYS),
        Card("4000000000009995", DECLINE, "insufficient_funds"),
        Card("4000000000000002", DECLINE, "generic_decline"),
        Card("4000000000009987", DECLINE, "lost_card"),
        Card("4000000000009979", DECLINE, "stolen_card"),
        Card("4000000000000069", DECLINE, "expired_card", "expired_card"),
        Card("4000000000000127", DECLINE, "incorrect_cvc", "incorrect_cvc"),
        Card("4000000000000341", CHARGE_FAILS, "generic_decline"),
        Card("4000000000000259", DISPUTE),
        Card("4000000000001976", INQUIRY),
        Card("4000000000005126", REFUND_FAILS),
        Card("4000000000000077", BYPASS_PENDING),
        Card("4000003720000278", BYPASS_PENDING),
    )
}

# Stripe's ready-made test PaymentMethods (pm_card_*) and tokens (tok_*), by card number.
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_createDispute": "4000000000000259",
    "pm_card_createDisputeInquiry": "4000000000001976",
    "pm_card_refundFail": "4000000000005126",
    "pm_card_bypassPending": "4000000000000077",
    "pm_card_bypassPendingInternational": "4000003720000278",
}
TEST_TOKENS: dict[str, str] = {
    "tok_visa": "4242424242424242",
    "tok_visa_debit": "4000056655665556",
    "tok_mastercard": "5555555555554444",
    "tok_amex": "378282246310005",
    "tok_chargeDeclined": "4000000000000002",
    "tok_chargeDeclinedInsufficientFunds": "4000000000009995",
    "tok_chargeCustomerFail": "4000000000000341",
    "tok_createDispute": "4000000000000259",
    "tok_threeDSecure2Required": "4000000000003220",
    "tok_bypassPending": "4000000000000077",
}

DECLINE_MESSAGES = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "lost_card": "Your card was declined.",
    "stolen_card": "Your card was declined.",
    "generic_decline": "Your card was declined.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
}
DECLINE_MESSAGES_FR = {
    "insufficient_funds": "Votre carte a été refusée : fonds insuffisants.",
    "expired_card": "Votre carte a expiré.",
    "incorrect_cvc": "Le code de sécurité de votre carte est incorrect.",
    "authentication_required": "Votre banque demande une authentification pour ce paiement.",
    "payment_intent_authentication_failure": "L'authentification 3-D Secure a échoué. Réessayez ou utilisez une autre carte.",
}


def card_for(number: str) -> Card:
    return TEST_CARDS.get(number) or Card(number)


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if re.match(r"^(5[1-5]|2[2-7])", number):
        return "mastercard"
    if re.match(r"^3[47]", number):
        return "amex"
    if number.startswith("6"):
        return "discover"
    return "unknown"


def luhn_ok(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def decline_message_fr(code: str | None) -> str:
    return DECLINE_MESSAGES_FR.get(code or "", "Votre carte a été refusée.")


@dataclass
class Outcome:
    """What a payment (or setup) attempt with a card does."""

    kind: str  # "succeeded" | "requires_action" | "declined"
    code: str | None = None  # error code: card_declined, authentication_required, ...
    decline_code: str | None = None

    @property
    def message(self) -> str:
        return DECLINE_MESSAGES.get(self.decline_code or self.code or "", "Your card was declined.")

    @property
    def doc_url(self) -> str | None:
        """Stripe's page for the error code (a declined outcome always has one)."""
        return f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}" if self.code else None


def payment_outcome(card: Card, *, off_session: bool, set_up: bool, authenticated: bool) -> Outcome:
    """A charge attempt. ``set_up``: the card went through a SetupIntent (or saved on-session payment)."""
    if card.behaviour in (DECLINE, CHARGE_FAILS):
        return Outcome("declined", card.error_code, card.decline_code)
    needs_auth = card.behaviour == AUTH_ALWAYS or (card.behaviour == AUTH_ON_SESSION and not (off_session and set_up))
    if needs_auth and not authenticated:
        if off_session:
            return Outcome("declined", "authentication_required", "authentication_required")
        return Outcome("requires_action")
    return Outcome("succeeded")


def setup_outcome(card: Card, *, authenticated: bool) -> Outcome:
    """A SetupIntent (or an attach) with a card."""
    if card.behaviour == DECLINE:
        return Outcome("declined", card.error_code, card.decline_code)
    if card.behaviour in (AUTH_ON_SESSION, AUTH_ALWAYS) and not authenticated:
        return Outcome("requires_action")
    return Outcome("succeeded")


class CardInputError(ValueError):
    """A card typed on a hosted page is malformed; ``field`` names the input, message is French."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def parse_card_form(number: str, expiry: str, cvc: str, name: str, *, now_year: int, now_month: int) -> list[CardInputError]:
    """Check the fields of a hosted card form; returns the errors (empty when the card is acceptable)."""
    errors: list[CardInputError] = []
    digits = re.sub(r"[\s-]", "", number or "")
    if not digits:
        errors.append(CardInputError("card-number", "Saisissez le numéro de carte."))
    elif not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_ok(digits):
        errors.append(CardInputError("card-number", "Le numéro de carte est invalide."))
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", expiry or "")
    if not (expiry or "").strip():
        errors.append(CardInputError("card-expiry", "Saisissez la date d'expiration (MM/AA)."))
    elif not match or not 1 <= int(match.group(1)) <= 12:
        errors.append(CardInputError("card-expiry", "La date d'expiration doit être au format MM/AA."))
    else:
        month, year = expiry_values(expiry)
        if (year, month) < (now_year, now_month):
            errors.append(CardInputError("card-expiry", "La date d'expiration de la carte est dépassée."))
    cvc = (cvc or "").strip()
    if not cvc:
        errors.append(CardInputError("card-cvc", "Saisissez le code de sécurité (CVC)."))
    elif not re.fullmatch(r"\d{3,4}", cvc):
        errors.append(CardInputError("card-cvc", "Le code de sécurité doit comporter 3 ou 4 chiffres."))
    if not (name or "").strip():
        errors.append(CardInputError("cardholder-name", "Saisissez le nom du titulaire de la carte."))
    return errors


def expiry_values(expiry: str) -> tuple[int, int]:
    month, year = re.split(r"\s*/\s*", expiry.strip())
    year_number = int(year)
    if year_number < 100:
        year_number += 2000
    return int(month), year_number


def normalise_number(number: str) -> str:
    return re.sub(r"[\s-]", "", number or "")
