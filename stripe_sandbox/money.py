"""Currencies, fees, balance transactions, disputes' money movements, payouts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
THREE_DECIMAL = {"bhd", "jod", "kwd", "omr", "tnd"}
SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£", "chf": "CHF", "jpy": "¥"}
DAY = 86_400
AVAILABLE_AFTER = 2 * DAY
FEE_PER_MILLE = 15  # 1.5 %
FIXED_FEE_HUNDREDTHS = 25  # 0.25 of the currency's main unit
DISPUTE_FEE_UNITS = 20
BANK_ACCOUNT = "ba_sandbox000000000000000001"
MINIMUMS = {"eur": 50, "usd": 50, "gbp": 30, "chf": 50, "jpy": 50}


def exponent(currency: str) -> int:
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def div_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounding halves away from zero."""
    sign = -1 if (numerator < 0) != (denominator < 0) else 1
    n, d = abs(numerator), abs(denominator)
    return sign * ((2 * n + d) // (2 * d))


def processing_fee(amount: int, currency: str) -> int:
    """round(1.5 % of amount) + 0.25 in the currency's minor units; integers only."""
    fixed = div_half_up(FIXED_FEE_HUNDREDTHS * 10 ** exponent(currency), 100)
    return div_half_up(amount * FEE_PER_MILLE, 1000) + fixed


def dispute_fee(currency: str) -> int:
    return DISPUTE_FEE_UNITS * 10 ** exponent(currency)


def format_amount(amount: int, currency: str) -> str:
    """French display: 1 234,50 €."""
    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**exp) if exp else (abs(amount), 0)
    text = f"{major:,}".replace(",", "\u202f")
    if exp:
        text += "," + str(minor).zfill(exp)
    return f"{sign}{text}\u00a0{SYMBOLS.get(currency.lower(), currency.upper())}"


def day_end(ts: int) -> int:
    """The next UTC midnight strictly after ``ts``."""
    return (ts // DAY + 1) * DAY


def fee_details(amount: int, currency: str, description: str) -> list[dict[str, Any]]:
    if not amount:
        return []
    return [{"amount": amount, "application": None, "currency": currency, "description": description, "type": "stripe_fee"}]


def add_balance_transaction(
    sb: Sandbox,
    *,
    amount: int,
    currency: str,
    type: str,
    category: str,
    source: str,
    fee: int = 0,
    fee_description: str = "Stripe processing fees",
    available_on: int | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    now = sb.now()
    txn = {
        "id": sb.store.new_id("balance_transaction"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": now if available_on is None else available_on,
        "balance_type": "payments",
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details(fee, currency, fee_description),
        "net": amount - fee,
        "reporting_category": category,
        "source": source,
        "status": "pending",
        "type": type,
    }
    return sb.store.put("balance_transaction", txn)


def view_balance_transaction(sb: Sandbox, txn: dict[str, Any]) -> dict[str, Any]:
    txn = dict(txn)
    txn["status"] = "available" if txn["available_on"] <= sb.now() else "pending"
    return txn


def charge_transaction(sb: Sandbox, charge: dict[str, Any], *, bypass_pending: bool = False) -> dict[str, Any]:
    """The charge's balance transaction: pending for Stripe's delay, or available at once for the bypass cards."""
    amount, currency = charge["amount"], charge["currency"]
    return add_balance_transaction(
        sb,
        amount=amount,
        currency=currency,
        type="charge",
        category="charge",
        source=charge["id"],
        fee=processing_fee(amount, currency),
        available_on=sb.now() if bypass_pending else sb.now() + AVAILABLE_AFTER,
        description=charge.get("description"),
    )


def refund_failure_transaction(sb: Sandbox, refund: dict[str, Any]) -> dict[str, Any]:
    """A failed refund's money back in the balance: the mirror of the refund's transaction."""
    return add_balance_transaction(
        sb,
        amount=refund["amount"],
        currency=refund["currency"],
        type="refund_failure",
        category="refund_failure",
        source=refund["id"],
        description="REFUND FAILURE",
    )


def refund_transaction(sb: Sandbox, refund: dict[str, Any]) -> dict[str, Any]:
    return add_balance_transaction(
        sb,
        amount=-refund["amount"],
        currency=refund["currency"],
        type="refund",
        category="refund",
        source=refund["id"],
        description="REFUND FOR CHARGE",
    )


# disputes ---------------------------------------------------------------


def open_dispute(sb: Sandbox, charge: dict[str, Any], *, inquiry: bool) -> dict[str, Any]:
    now = sb.now()
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    dispute = {
        "id": sb.store.new_id("dispute"),
        "object": "dispute",
        "amount": charge["amount"],
        "balance_transactions": [],
        "charge": charge["id"],
        "created": now,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {key: None for key in EVIDENCE_FIELDS} | {"enhanced_evidence": {}},
        "evidence_details": {
            "due_by": now + 7 * DAY,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": inquiry,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge.get("payment_intent"),
        "payment_method_details": {
            "card": {
                "brand": card.get("brand", "visa"),
                "case_type": "inquiry" if inquiry else "chargeback",
                "network_reason_code": "10.4" if not inquiry else "83",
                "network": card.get("network", "visa"),
            },
            "type": "card",
        },
        "reason": "fraudulent",
        "status": "warning_needs_response" if inquiry else "needs_response",
    }
    sb.store.put("dispute", dispute)
    previous = {"disputed": charge["disputed"]}
    charge["disputed"] = True
    sb.emit("charge.dispute.created", dispute)
    if not inquiry:
        txn = add_balance_transaction(
            sb,
            amount=-dispute["amount"],
            currency=dispute["currency"],
            type="adjustment",
            category="dispute",
            source=dispute["id"],
            fee=dispute_fee(dispute["currency"]),
            fee_description="Dispute fee",
            description=f"Chargeback withdrawal for {charge['id']}",
        )
        dispute["balance_transactions"].append(txn["id"])
        sb.emit("charge.dispute.funds_withdrawn", dispute)
    sb.emit("charge.updated", charge, previous)
    return dispute


def close_dispute(sb: Sandbox, dispute: dict[str, Any], *, won: bool) -> None:
    inquiry = dispute["status"].startswith("warning")
    previous = {"status": dispute["status"]}
    if inquiry:
        dispute["status"] = "warning_closed"
    else:
        dispute["status"] = "won" if won else "lost"
    if won and not inquiry:
        txn = add_balance_transaction(
            sb,
            amount=dispute["amount"],
            currency=dispute["currency"],
            type="adjustment",
            category="dispute_reversal",
            source=dispute["id"],
            description=f"Chargeback reversal for {dispute['charge']}",
        )
        dispute["balance_transactions"].append(txn["id"])
        sb.emit("charge.dispute.funds_reinstated", dispute)
    sb.emit("charge.dispute.closed", dispute, previous)


EVIDENCE_FIELDS = [
    "access_activity_log", "billing_address", "cancellation_policy", "cancellation_policy_disclosure", "cancellation_rebuttal",
    "customer_communication", "customer_email_address", "customer_name", "customer_purchase_ip", "customer_signature",
    "duplicate_charge_documentation", "duplicate_charge_explanation", "duplicate_charge_id", "product_description", "receipt",
    "refund_policy", "refund_policy_disclosure", "refund_refusal_explanation", "service_date", "service_documentation",
    "shipping_address", "shipping_carrier", "shipping_date", "shipping_documentation", "shipping_tracking_number",
    "uncategorized_file", "uncategorized_text",
]


# balance and payouts ----------------------------------------------------


def balance(sb: Sandbox) -> dict[str, Any]:
    now = sb.now()
    available: dict[str, int] = {}
    pending: dict[str, int] = {}
    for txn in sb.store.all("balance_transaction"):
        bucket = available if txn["available_on"] <= now else pending
        bucket[txn["currency"]] = bucket.get(txn["currency"], 0) + txn["net"]
    currencies = sorted(set(available) | set(pending)) or ["eur"]

    def rows(bucket: dict[str, int]) -> list[dict[str, Any]]:
        return [{"amount": bucket.get(c, 0), "currency": c, "source_types": {"card": bucket.get(c, 0)}} for c in currencies]

    return {
        "object": "balance",
        "available": rows(available),
        "connect_reserved": [{"amount": 0, "currency": c} for c in currencies],
        "livemode": False,
        "pending": rows(pending),
    }


def available_amount(sb: Sandbox, currency: str) -> int:
    now = sb.now()
    return sum(t["net"] for t in sb.store.all("balance_transaction") if t["currency"] == currency and t["available_on"] <= now)


def create_payout(
    sb: Sandbox,
    amount: int,
    currency: str,
    *,
    automatic: bool,
    metadata: dict[str, str],
    description: str | None,
    transactions: list[dict[str, Any]],
) -> dict[str, Any]:
    now = sb.now()
    payout: dict[str, Any] = {
        "id": sb.store.new_id("payout"),
        "object": "payout",
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": day_end(now),
        "automatic": automatic,
        "balance_transaction": None,
        "created": now,
        "currency": currency,
        "description": description or "STRIPE PAYOUT",
        "destination": BANK_ACCOUNT,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": metadata,
        "method": "standard",
        "original_payout": None,
        "payout_method": None,
        "reconciliation_status": "completed" if automatic else "not_applicable",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": None,
        "status": "in_transit",
        "trace_id": {"status": "pending", "value": None},
        "type": "bank_account",
    }
    failures = sb.store.data.setdefault("payout_failures", [])
    if failures:  # armed by fail_next_payouts: this payout will fail when it should arrive
        payout["_fail_with"] = failures.pop(0)
    sb.store.put("payout", payout)
    txn = add_balance_transaction(
        sb, amount=-amount, currency=currency,
        type="payout", category="payout", source=payout["id"], description=payout["description"],
    )
    txn["_payout"] = payout["id"]
    payout["balance_transaction"] = txn["id"]
    for item in transactions:
        item["_payout"] = payout["id"]
    sb.emit("payout.created", payout)
    return payout


def _unpaid(sb: Sandbox) -> list[dict[str, Any]]:
    return [t for t in sb.store.all("balance_transaction") if t["type"] != "payout" and not t.get("_payout")]


def payouts_next_due(sb: Sandbox) -> int | None:
    if sb.store.clock is not None:
        return None
    due: list[int] = []
    if sb.payout_schedule == "daily":
        unpaid = _unpaid(sb)
        if unpaid:
            at = day_end(min(t["available_on"] for t in unpaid))
            done = sb.store.data.get("payouts_through") or 0
            due.append(at if at > done else done + DAY)
    due += [p["arrival_date"] for p in sb.store.all("payout") if p["status"] == "in_transit"]
    return min(due) if due else None


# Stripe's payout failure codes and their messages (API reference, "Payout failures").
PAYOUT_FAILURES = {
    "account_closed": "The bank account has been closed.",
    "account_frozen": "The bank account has been frozen.",
    "bank_account_restricted": "The bank account has restrictions on either the type, or the number, of payouts allowed.",
    "could_not_process": "The bank could not process this payout.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The routing number seems correct, but the account number is invalid.",
    "no_account": "The bank account details on file are probably incorrect. No bank account could be located with those details.",
    "declined": "The bank has declined this transfer.",
}


def fail_next_payouts(sb: Sandbox, failure_code: str = "account_closed", count: int = 1) -> None:
    """The next ``count`` payouts created fail on their arrival date with ``failure_code``."""
    if failure_code not in PAYOUT_FAILURES:
        raise ValueError(f"failure_code: one of {', '.join(PAYOUT_FAILURES)}")
    sb.store.data.setdefault("payout_failures", []).extend([failure_code] * int(count))


def fail_payout(sb: Sandbox, payout: dict[str, Any], failure_code: str = "account_closed") -> dict[str, Any]:
    """The bank sends the payout back (at arrival, or days after it was paid, as Stripe allows):
    status ``failed``, ``failure_code``/``failure_message``, and a ``payout_failure`` balance
    transaction (reporting category ``payout_reversal``) that puts the amount back in the Stripe
    balance, where the next payout takes it (it belongs to no payout yet)."""
    if failure_code not in PAYOUT_FAILURES:
        raise ValueError(f"failure_code: one of {', '.join(PAYOUT_FAILURES)}")
    if payout["status"] not in ("pending", "in_transit", "paid"):
        raise ValueError(f"payout {payout['id']} is {payout['status']}: only a pending, in-transit or paid payout can fail")
    previous = {"status": payout["status"], "failure_code": None, "failure_message": None, "failure_balance_transaction": None}
    txn = add_balance_transaction(
        sb, amount=payout["amount"], currency=payout["currency"], type="payout_failure", category="payout_reversal",
        source=payout["id"], description=f"Payout failure for {payout['id']}",
    )
    payout.pop("_fail_with", None)
    payout.update(status="failed", failure_code=failure_code, failure_message=PAYOUT_FAILURES[failure_code],
                  failure_balance_transaction=txn["id"])
    sb.emit("payout.failed", payout, previous)
    return payout


def run_payouts(sb: Sandbox) -> None:
    if sb.store.clock is not None:  # payouts belong to the account, never to a test clock
        return
    now = sb.now()
    for payout in sb.store.all("payout"):
        if payout["status"] == "in_transit" and payout["arrival_date"] <= now and payout.get("_fail_with"):
            fail_payout(sb, payout, payout["_fail_with"])
        elif payout["status"] == "in_transit" and payout["arrival_date"] <= now:
            payout["status"] = "paid"
            payout["trace_id"] = {"status": "supported", "value": f"SANDBOX{payout['id'][-10:].upper()}"}
            sb.emit("payout.paid", payout, {"status": "in_transit"})
    if sb.payout_schedule != "daily":
        return
    cutoff = (now // DAY) * DAY  # midnight that just passed
    if cutoff <= (sb.store.data.get("payouts_through") or 0):
        return
    pools: dict[str, list[dict[str, Any]]] = {}
    for txn in _unpaid(sb):
        if txn["available_on"] < cutoff:
            pools.setdefault(txn["currency"], []).append(txn)
    for currency, txns in sorted(pools.items()):
        total = sum(t["net"] for t in txns)
        if total > 0:
            create_payout(sb, total, currency, automatic=True, metadata={}, description=None, transactions=txns)
    sb.store.data["payouts_through"] = cutoff
