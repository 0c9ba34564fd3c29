"""The SEPA Direct Debit mandate a member pays by (bank code, last four digits of the IBAN, the
mandate's reference), for the member area. Read from Stripe when the page is shown, never stored;
Stripe unreachable: no mandate line, the page still renders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from funding.stripe_gateway import GatewayError, StripeGateway, stripe_id

log = logging.getLogger("funding.coworking")


@dataclass(frozen=True)
class DebitOnFile:
    bank_code: str
    last4: str
    reference: str | None  # the mandate's reference, as the bank statement shows it
    active: bool


def _sepa(pm: object) -> dict[str, Any] | None:
    if isinstance(pm, dict) and pm.get("type") == "sepa_debit" and isinstance(pm.get("sepa_debit"), dict):
        return pm
    return None


async def _mandate_id(gw: StripeGateway, customer_id: str, pm_id: str) -> str | None:
    """The mandate of a sepa_debit method: on its debits' charges, else on the SetupIntent that set it up."""
    charges = await gw.get("/v1/charges", {"customer": customer_id, "limit": 20})
    for charge in charges.get("data") or []:
        details = (charge.get("payment_method_details") or {}).get("sepa_debit") or {}
        if charge.get("payment_method") == pm_id and details.get("mandate"):
            return str(details["mandate"])
    intents = await gw.get("/v1/setup_intents", {"customer": customer_id, "payment_method": pm_id, "limit": 5})
    for seti in intents.get("data") or []:
        if seti.get("mandate"):
            return stripe_id(seti["mandate"])
    return None


async def live_mandate(gw: StripeGateway, customer_id: str, pm_id: str) -> str | None:
    """The id of the sepa_debit method's mandate when it is active (a new debit may be made under
    it), else None. Raises GatewayError when Stripe cannot be asked."""
    mandate_id = await _mandate_id(gw, customer_id, pm_id)
    if mandate_id is None:
        return None
    return mandate_id if (await gw.retrieve("mandates", mandate_id)).get("status") == "active" else None


async def debit_on_file(gw: StripeGateway, customer_id: str | None, *, subscription_id: str | None = None,
                        quiet: bool = True) -> DebitOnFile | None:
    """The SEPA mandate Stripe debits for this member: the subscription's default method, else the
    customer's default for invoices; None when that is a card (or nothing). ``quiet``: Stripe
    unreachable gives None (a page still renders); else the GatewayError is raised (a retry)."""
    if not customer_id:
        return None
    try:
        pm = None
        if subscription_id:
            sub = await gw.retrieve("subscriptions", subscription_id, expand=["default_payment_method"])
            pm = sub.get("default_payment_method")
        if not pm:
            customer = await gw.retrieve("customers", customer_id, expand=["invoice_settings.default_payment_method"])
            pm = (customer.get("invoice_settings") or {}).get("default_payment_method")
        found = _sepa(pm)
        if found is None:
            return None
        details = found["sepa_debit"]
        reference, active = None, True
        mandate_id = await _mandate_id(gw, customer_id, str(found["id"]))
        if mandate_id:
            mandate = await gw.retrieve("mandates", mandate_id)
            reference = ((mandate.get("payment_method_details") or {}).get("sepa_debit") or {}).get("reference")
            active = mandate.get("status") == "active"
        return DebitOnFile(str(details.get("bank_code") or ""), str(details.get("last4") or ""), reference, active)
    except GatewayError as exc:
        if not quiet:
            raise
        log.info("mandate of %s not shown: %s", customer_id, exc)
        return None


async def debits_processing(gw: StripeGateway, invoice_ids: list[str]) -> set[str]:
    """Which of these open invoices are being paid by a bank debit that is still processing (the
    invoice stays open for days meanwhile): its payment's PaymentIntent is ``processing``."""
    found: set[str] = set()
    for invoice_id in invoice_ids:
        try:
            payments = await gw.get("/v1/invoice_payments", {"invoice": invoice_id, "limit": 5})
            for record in payments.get("data") or []:
                pi_id = stripe_id((record.get("payment") or {}).get("payment_intent"))
                if record.get("status") == "open" and pi_id and (await gw.retrieve("payment_intents", pi_id)).get("status") == "processing":
                    found.add(invoice_id)
                    break
        except GatewayError as exc:
            log.info("payments of invoice %s not shown: %s", invoice_id, exc)
    return found


async def debit_of_invoice(gw: StripeGateway, invoice: dict[str, Any]) -> dict[str, Any] | None:
    """An open invoice (fetched with ``expand=["payments"]``) being paid by a SEPA debit: its
    amount and the day the bank debits the account (the charge's ``expected_debit_date``), for
    the member's pre-notification; None otherwise."""
    if invoice.get("status") != "open":
        return None
    for payment in (invoice.get("payments") or {}).get("data") or []:
        pi_id = stripe_id((payment.get("payment") or {}).get("payment_intent"))
        if payment.get("status") != "open" or not pi_id:
            continue
        pi = await gw.retrieve("payment_intents", pi_id, expand=["latest_charge"])
        charge = pi.get("latest_charge")
        details = (charge.get("payment_method_details") or {}) if isinstance(charge, dict) else {}
        sepa = details.get("sepa_debit") if details.get("type") == "sepa_debit" else None
        if pi.get("status") == "processing" and isinstance(sepa, dict):
            return {"object": "entrelab.sepa_debit", "invoice": invoice["id"], "payment_intent": pi_id,
                    "amount": int(pi.get("amount") or 0), "currency": str(pi.get("currency") or "eur").upper(),
                    "date": sepa.get("expected_debit_date"), "mandate": sepa.get("mandate"), "last4": sepa.get("last4") or ""}
    return None
