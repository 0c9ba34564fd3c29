"""The card on file, as Stripe's payment method has it (brand, last four digits, expiry), for the
backer's space and the member area. Read from Stripe when the page is shown, never stored: a card
changed in the Billing Portal or on a new Checkout shows at once. Stripe unreachable: no card
line, the page still renders."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from funding.stripe_gateway import GatewayError, StripeGateway, stripe_id

log = logging.getLogger("funding.payments")

BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "cartes_bancaires": "CB",
          "discover": "Discover", "diners": "Diners Club", "jcb": "JCB", "unionpay": "UnionPay"}


@dataclass(frozen=True)
class CardOnFile:
    brand: str
    last4: str
    exp_month: int
    exp_year: int

    @property
    def label(self) -> str:
        return f"{BRANDS.get(self.brand, self.brand.title())} •••• {self.last4}"

    @property
    def expiry(self) -> str:
        return f"{self.exp_month:02d}/{self.exp_year}"


def card_of(pm: object) -> CardOnFile | None:
    """The card of a payment method object (None for an id, another kind or a partial object)."""
    card = pm.get("card") if isinstance(pm, dict) else None
    if not isinstance(card, dict) or not card.get("last4"):
        return None
    try:
        return CardOnFile(str(card.get("brand") or ""), str(card["last4"]), int(card["exp_month"]), int(card["exp_year"]))
    except (KeyError, TypeError, ValueError):
        return None


async def payment_method_card(gw: StripeGateway, pm_id: str | None) -> CardOnFile | None:
    if not pm_id:
        return None
    try:
        return card_of(await gw.retrieve("payment_methods", pm_id))
    except GatewayError as exc:
        log.info("card on file %s not shown: %s", pm_id, exc)
        return None


async def customer_card(gw: StripeGateway, customer_id: str | None, *, subscription_id: str | None = None) -> CardOnFile | None:
    """The card Stripe charges for this customer: the customer's default for invoices, else the
    subscription's own default, else the card saved last."""
    if not customer_id:
        return None
    try:
        customer = await gw.retrieve("customers", customer_id, expand=["invoice_settings.default_payment_method"])
        found = card_of((customer.get("invoice_settings") or {}).get("default_payment_method"))
        if found is None and subscription_id:
            sub = await gw.retrieve("subscriptions", subscription_id, expand=["default_payment_method"])
            found = card_of(sub.get("default_payment_method"))
        if found is None:
            listed = await gw.get(f"/v1/customers/{customer_id}/payment_methods", {"type": "card", "limit": 1})
            found = next((c for c in (card_of(pm) for pm in listed.get("data") or []) if c), None)
        return found
    except GatewayError as exc:
        log.info("card on file of %s not shown: %s", customer_id, exc)
        return None


# --- a SEPA Direct Debit mandate on file -------------------------------------------------------


@dataclass(frozen=True)
class MandateOnFile:
    """The bank account a SEPA Direct Debit takes from, and the mandate the customer signed."""

    bank_code: str
    last4: str
    reference: str

    @property
    def label(self) -> str:
        return f"{self.bank_code} •••• {self.last4}" if self.bank_code else f"•••• {self.last4}"


async def subscription_mandate(gw: StripeGateway, customer_id: str | None, subscription_id: str | None) -> MandateOnFile | None:
    """The SEPA mandate a subscription is debited under (its default payment method, else the
    customer's), read from Stripe: the account from the payment method, the reference from the
    mandate its latest debit used. None for a card, or when Stripe does not answer."""
    if not customer_id or not subscription_id:
        return None
    try:
        sub = await gw.retrieve("subscriptions", subscription_id, expand=["default_payment_method"])
        pm = sub.get("default_payment_method")
        if not isinstance(pm, dict):
            customer = await gw.retrieve("customers", customer_id, expand=["invoice_settings.default_payment_method"])
            pm = (customer.get("invoice_settings") or {}).get("default_payment_method")
        sepa = pm.get("sepa_debit") if isinstance(pm, dict) else None
        if not isinstance(pm, dict) or not isinstance(sepa, dict) or not sepa.get("last4"):
            return None
        charges = await gw.get("/v1/charges", {"customer": customer_id, "limit": 10})
        mandate_id = next((((c.get("payment_method_details") or {}).get("sepa_debit") or {}).get("mandate")
                           for c in charges.get("data") or [] if c.get("payment_method") == pm.get("id")
                           and ((c.get("payment_method_details") or {}).get("sepa_debit") or {}).get("mandate")), None)
        if not mandate_id:  # no debit yet under this account (set up in the portal, or by a SetupIntent)
            intents = await gw.get("/v1/setup_intents", {"customer": customer_id, "payment_method": str(pm.get("id")), "limit": 5})
            mandate_id = next((stripe_id(s["mandate"]) for s in intents.get("data") or [] if s.get("mandate")), None)
        reference = ""
        if mandate_id:
            mandate = await gw.retrieve("mandates", str(mandate_id))
            reference = str((((mandate.get("payment_method_details") or {}).get("sepa_debit")) or {}).get("reference") or "")
        return MandateOnFile(str(sepa.get("bank_code") or ""), str(sepa["last4"]), reference)
    except GatewayError as exc:
        log.info("mandate of %s not shown: %s", subscription_id, exc)
        return None
