"""Payout reconciliation: a payout must equal the sum of the nets of its balance
transactions, and every one of them must have its ledger entry. Otherwise it stays
unreconciled, with the difference and the missing entries shown to a person.

The balance check: the ledger's Stripe account (5115, what Stripe holds for us, in transit or
available) must equal Stripe's own balance (available + pending), currency by currency, to the
cent. A SEPA debit or a card payment still pending at Stripe is in both; a payment Stripe has
not settled into a balance transaction (a debit still ``processing``) is in neither."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.db import Sessions, insert_ignore, must_get, transaction, utcnow
from funding.ledger.models import Entry, Posting
from funding.payments.books import source_key, stripe_org
from funding.payments.models import Payout, PayoutStatus
from funding.stripe_gateway import StripeGateway, stripe_id

if TYPE_CHECKING:
    from funding.settings import Settings


async def remember_payout(session: AsyncSession, payout: dict[str, Any]) -> None:
    inserted = await insert_ignore(
        session, Payout,
        {"id": payout["id"], "amount": int(payout["amount"]), "currency": payout["currency"].upper(),
         "status": payout.get("status", "pending"), "arrival_date": payout.get("arrival_date"), "reconciled": False,
         "missing_entries": "[]"},
        ["id"],
    )
    if inserted is None:
        row = await must_get(session, Payout, payout["id"])
        status = payout.get("status", row.status)
        # Paid is final for our purpose, except that the bank may still send a paid payout back.
        movable = row.status not in (PayoutStatus.PAID, PayoutStatus.FAILED) or status == PayoutStatus.FAILED
        if movable and status != row.status:
            row.status = status
            row.reconciled = False


@dataclass
class PayoutCheck:
    payout_id: str
    amount: int
    currency: str
    transactions_net: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def difference(self) -> int:
        return self.amount - self.transactions_net

    @property
    def ok(self) -> bool:
        return self.difference == 0 and not self.missing


async def check_payout(sessions: Sessions, gw: StripeGateway, payout: dict[str, Any]) -> PayoutCheck:
    """Compare the payout with its balance transactions (Stripe) and our entries (ledger)."""
    check = PayoutCheck(payout["id"], int(payout["amount"]), payout["currency"].upper())
    txn_ids = []
    if payout.get("automatic", True):
        async for txn in gw.list_all("balance_transactions", {"payout": payout["id"]}):
            txn_ids.append(txn["id"])
            if txn["type"] != "payout":  # the payout's own transaction is what we compare against
                check.transactions_net += int(txn["net"])
    else:
        # Stripe refuses to list by a manual payout (400: "only automatic"): it draws on the
        # balance, not on given transactions; only its own entry (and failure's) is checked.
        check.transactions_net = check.amount
    for key in ("balance_transaction", "failure_balance_transaction"):  # a failed payout: both, netting to 0 on 512
        if bt := payout.get(key):
            txn_ids.append(bt["id"] if isinstance(bt, dict) else bt)
    async with sessions() as session:
        keys = {source_key(t) for t in txn_ids}
        present = set((await session.scalars(select(Entry.source_key).where(Entry.source_key.in_(keys)))).all()) if keys else set()
    check.missing = sorted({t for t in txn_ids if source_key(t) not in present})
    async with transaction(sessions) as session:
        await remember_payout(session, payout)
        row = await must_get(session, Payout, payout["id"])
        row.reconciled = check.ok
        row.transactions_net = check.transactions_net
        row.difference = check.difference
        row.missing_entries = json.dumps(check.missing)
        row.checked_at = utcnow()
    return check


async def reconcile(sessions: Sessions, gw: StripeGateway, *, only_unreconciled: bool = True, limit: int = 100) -> list[PayoutCheck]:
    """Check paid payouts: those not reconciled yet, or all of them."""
    checks = []
    async for payout in _payouts(gw, ("paid", "failed")):
        if only_unreconciled:
            async with sessions() as session:
                row = await session.get(Payout, payout["id"])
            if row is not None and row.reconciled:
                continue
        checks.append(await check_payout(sessions, gw, payout))
        if len(checks) >= limit:
            break
    return checks


async def _payouts(gw: StripeGateway, statuses: tuple[str, ...]) -> AsyncIterator[dict[str, Any]]:
    seen = set()
    for status in statuses:
        async for payout in gw.list_all("payouts", {"status": status}):
            if payout["id"] not in seen and payout.get("status", status) == status:
                seen.add(payout["id"])
                yield payout


async def reconcile_job(sessions: Sessions, settings: Settings, gw: StripeGateway | None = None) -> int:
    """Worker job: check payouts that are paid but not reconciled yet (known from webhooks)."""
    async with sessions() as session:
        ids = (await session.scalars(select(Payout.id).where(Payout.status.in_((PayoutStatus.PAID, PayoutStatus.FAILED)),
                                                             Payout.reconciled.is_(False))
                                     .limit(20))).all()
    if not ids:
        return 0
    own = gw is None
    gw = gw or StripeGateway(settings)
    try:
        for payout_id in ids:
            await check_payout(sessions, gw, await gw.retrieve("payouts", payout_id))
    finally:
        if own:
            await gw.aclose()
    return len(ids)


STRIPE_ACCOUNT = "5115"


@dataclass
class BalanceCheck:
    currency: str
    ledger: int  # the balance of 5115 in the books (debit > 0)
    stripe: int  # Stripe's balance (available + pending) and the payouts in transit not booked yet

    @property
    def difference(self) -> int:
        return self.ledger - self.stripe

    @property
    def ok(self) -> bool:
        return self.difference == 0


async def balance_check(sessions: Sessions, gw: StripeGateway) -> list[BalanceCheck]:
    """The books' Stripe account against Stripe's balance, per currency (both sides listed, zeros too)."""
    balance = await gw.get("/v1/balance")
    stripe_side: dict[str, int] = {}
    for bucket in ("available", "pending"):
        for part in balance.get(bucket) or []:
            currency = str(part["currency"]).upper()
            stripe_side[currency] = stripe_side.get(currency, 0) + int(part["amount"])
    # A payout on its way to the bank has left Stripe's balance but is booked (5115 -> 512) only once it
    # arrives: until then it is still on 5115, so it counts on Stripe's side too.
    in_transit: list[tuple[str, str, int]] = []
    for status in ("pending", "in_transit"):
        async for payout in gw.list_all("payouts", {"status": status}):
            if payout.get("status", status) == status and (txn := stripe_id(payout.get("balance_transaction"))):
                in_transit.append((source_key(txn), str(payout["currency"]).upper(), int(payout["amount"])))
    async with sessions() as session:
        org_id, _site_id = await stripe_org(session)
        keys = [key for key, _c, _a in in_transit]
        booked = set(await session.scalars(select(Entry.source_key).where(Entry.source_key.in_(keys)))) if keys else set()
        for key, currency, amount in in_transit:
            if key not in booked:
                stripe_side[currency] = stripe_side.get(currency, 0) + amount
        books = dict((await session.execute(
            select(Posting.currency, func.sum(Posting.amount)).join(Entry, Entry.id == Posting.entry_id)
            .where(Entry.org_id == org_id, Posting.account_number == STRIPE_ACCOUNT)
            .group_by(Posting.currency))).all())
    currencies = sorted(set(stripe_side) | set(books))
    return [BalanceCheck(c, int(books.get(c) or 0), stripe_side.get(c, 0)) for c in currencies]
