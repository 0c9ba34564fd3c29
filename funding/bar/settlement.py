"""Settlement of tabs: the cut-off turns each open tab into a batch, billed once through Stripe.

Cut-off (the worker on the monthly cut-off day, setting BAR_CUTOFF_DAY; or staff, for a
member who leaves): for each member with open lines, a batch is inserted (unique per site,
member and cut-off key) and claims the lines with one INSERT … SELECT … ON CONFLICT DO
NOTHING into ``bar_batch_lines``, whose primary key is the line: a line rung while the
cut-off runs is either claimed or left for the next batch, never lost, never billed twice.

Billing (network, outside any transaction; idempotency key per batch, ``bar-batch:<id>``):
1. the member has a live subscription: an invoice item on its next invoice (metadata
   ``bar_batch_id`` and ``entrelab_booked=1``: the revenue is already in the books);
2. else a payment method on file (``_on_file``: the customer's default for invoices first,
   whatever its type; else a saved card; else a bank account with an active SEPA mandate): an
   off-session PaymentIntent (purpose ``bar_tab``). A SEPA debit names its mandate and is
   ``processing`` for days: the batch is ``billed`` (in transit: neither paid nor due; the
   receivable stays open in the books, as nothing reaches the balance before the bank pays),
   and the member is told the debit's day (SEPA's pre-notification); then ``succeeded`` (paid)
   or ``payment_failed`` (due, the member emailed once with the bank's reason);
3. else, or when the card is declined: the batch is due and the member pays it from
   their area (Checkout, purpose ``bar_tab``).
A member's departure bills by card, by debit or from their area only: no next invoice will come.
Statuses only move forwards (conditional UPDATEs); Stripe's events confirm them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import cast

from sqlalchemy import func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from funding.auth.models import User
from funding.bar.models import Batch, BatchLine, BatchMethod, BatchStatus, SaleLine
from funding.bar.till import BarError, local_today, open_lines
from funding.db import dialect_insert, dialect_of, digits, insert_ignore, must_get, rowcount, transaction, utcnow
from funding.i18n import gettext as _
from funding.mail.compose import render
from funding.mail.service import enqueue
from funding.orgs.models import Site
from funding.payments.calls import adopt, create_once, find_ours, key_prefix
from funding.payments.models import PaymentPurpose
from funding.payments.tax_rates import label as vat_label
from funding.payments.tax_rates import tax_rate_ids
from funding.payments.verify import StripeMismatch, check_row
from funding.settings import Settings
from funding.stripe_gateway import GatewayError, StripeGateway, StripeRefused, StripeUnknown

log = logging.getLogger("funding.bar")
PURPOSE = PaymentPurpose.BAR_TAB
DEPARTURE = "depart"


async def cut_tab(session: AsyncSession, site: Site, member_id: int, key: str, *, now: dt.datetime | None = None) -> Batch | None:
    """Claim the member's open lines at this site into a new batch under ``key``.

    None when this cut-off already happened for the member, when there was nothing to
    claim, or when the open lines net to a credit (they stay open, carried forward)."""
    async with session.begin_nested() as savepoint:
        batch_id = await insert_ignore(session, Batch, {
            "site_id": site.id, "org_id": site.org_id, "member_id": member_id, "key": key[:60], "amount": 0,
            "currency": "EUR", "line_count": 0, "status": BatchStatus.READY, "created_at": now or utcnow(),
        }, ["site_id", "member_id", "key"])
        if batch_id is None:
            await savepoint.rollback()
            return None
        claim = (dialect_insert(dialect_of(session))(BatchLine)
                 .from_select(["sale_line_id", "batch_id"],
                              select(SaleLine.id, literal(batch_id)).where(open_lines(site.id, member_id)))
                 .on_conflict_do_nothing(index_elements=["sale_line_id"]).returning(BatchLine.sale_line_id))
        claimed = (await session.scalars(claim)).all()
        if not claimed:
            await savepoint.rollback()
            return None
        amount, currency = (await session.execute(
            select(func.sum(SaleLine.amount), func.min(SaleLine.currency)).join(BatchLine, BatchLine.sale_line_id == SaleLine.id)
            .where(BatchLine.batch_id == batch_id))).one()
        if amount < 0:
            await savepoint.rollback()
            return None
        await session.execute(update(Batch).where(Batch.id == batch_id).values(
            amount=int(amount), currency=currency, line_count=len(claimed), status=BatchStatus.READY if amount else BatchStatus.EMPTY))
    return await session.get(Batch, batch_id, populate_existing=True)


async def members_with_open_tabs(session: AsyncSession, site_id: int) -> list[int]:
    claimed = select(BatchLine.sale_line_id)
    members = (await session.scalars(
        select(SaleLine.member_id).distinct().where(SaleLine.site_id == site_id, SaleLine.member_id.is_not(None),
                                                    SaleLine.id.not_in(claimed)).order_by(SaleLine.member_id))).all()
    return cast("list[int]", list(members))  # the query keeps tab lines only: member_id IS NOT NULL


def cutoff_key(day: dt.date) -> str:
    return day.strftime("%Y-%m")


async def cut_off(sessions: async_sessionmaker, *, key: str, site_ids: list[int] | None = None,
                  now: dt.datetime | None = None) -> list[int]:
    """The cut-off of every open tab (of the given sites): one transaction per tab, so one
    member's problem never holds the others back. Returns the new batches' ids."""
    async with sessions() as session:
        query = select(Site)
        if site_ids is not None:
            query = query.where(Site.id.in_(site_ids))
        sites = (await session.scalars(query.order_by(Site.id))).all()
        todo = [(site, member) for site in sites for member in await members_with_open_tabs(session, site.id)]
    made = []
    for site, member_id in todo:
        async with transaction(sessions) as session:
            batch = await cut_tab(session, site, member_id, key, now=now)
            if batch is not None:
                made.append(batch.id)
    return made


async def cutoff_job(sessions, settings: Settings, gw: StripeGateway) -> int:
    """Worker: on and after the cut-off day, batch this month's open tabs (once per member and month)."""
    today = local_today()
    if today.day < settings.bar_cutoff_day:
        return 0
    return len(await cut_off(sessions, key=cutoff_key(today)))


async def settle_departure(session: AsyncSession, site: Site, member_id: int, *, now: dt.datetime | None = None) -> Batch:
    """A member who leaves: their open tab becomes a batch now, billed by card or paid from their area."""
    now = now or utcnow()
    batch = await cut_tab(session, site, member_id, f"{DEPARTURE}-{now.strftime('%Y%m%d%H%M%S%f')}", now=now)
    if batch is None:
        raise BarError(_("Rien à régler : l'ardoise de ce membre est vide (ou à son crédit)."))
    return batch


# --- billing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    method: BatchMethod
    resource: str | None = None
    params: dict | None = None
    reason: str = ""
    items: tuple[tuple[int, dict], ...] = ()  # invoice items: (VAT rate per mille, params), one per rate


async def amounts_by_rate(session: AsyncSession, batch_id: int) -> dict[int, int]:
    """What the batch's lines come to per VAT rate (per mille), TTC."""
    rows = (await session.execute(
        select(SaleLine.vat_rate, func.sum(SaleLine.amount)).join(BatchLine, BatchLine.sale_line_id == SaleLine.id)
        .where(BatchLine.batch_id == batch_id).group_by(SaleLine.vat_rate).order_by(SaleLine.vat_rate))).all()
    return {int(rate): int(amount) for rate, amount in rows if amount}


def _meta(batch: Batch) -> dict:
    return {"purpose": PURPOSE, "bar_batch_id": str(batch.id), "site_id": str(batch.site_id),
            "org_id": str(batch.org_id), "user_id": str(batch.member_id)}


@dataclass(frozen=True)
class OnFile:
    """A payment method saved on the member's Stripe customer that a batch can be charged with off session."""
    payment_method: str
    kind: str                   # "card" or "sepa_debit"
    mandate: str | None = None  # sepa_debit: the active mandate the debit is made under


async def _sepa_on_file(gw: StripeGateway, customer_id: str, pm_id: str) -> OnFile | None:
    from funding.coworking.mandates import live_mandate

    mandate = await live_mandate(gw, customer_id, pm_id)
    return OnFile(pm_id, "sepa_debit", mandate) if mandate else None


async def _on_file(gw: StripeGateway, customer_id: str) -> OnFile | None:
    """What a batch is charged with off session, in this order of preference:
    1. the customer's default payment method for invoices, whatever its type — the means the
       member chose last (a card; or a bank account, if its SEPA mandate is still active);
    2. else a saved card (an immediate answer, as before SEPA);
    3. else a bank account whose SEPA mandate is active (a former desk member, a pass holder
       who signed a mandate): a debit that processes for days.
    A bank account without an active mandate is never debited (Stripe would refuse it)."""
    customer = await gw.retrieve("customers", customer_id, expand=["invoice_settings.default_payment_method"])
    default = (customer.get("invoice_settings") or {}).get("default_payment_method")
    if isinstance(default, str):  # not expanded (an older answer): its type is asked
        default = await gw.retrieve("payment_methods", default)
    if isinstance(default, dict) and default.get("id"):
        if default.get("type") == "sepa_debit":
            if (found := await _sepa_on_file(gw, customer_id, default["id"])) is not None:
                return found
        else:
            return OnFile(default["id"], str(default.get("type") or "card"))
    cards = await gw.call("customers.payment_methods", "list", customer_id, params={"type": "card", "limit": 1})
    if cards.get("data"):
        return OnFile(cards["data"][0]["id"], "card")
    accounts = await gw.call("customers.payment_methods", "list", customer_id, params={"type": "sepa_debit", "limit": 10})
    for pm in accounts.get("data") or []:
        if (found := await _sepa_on_file(gw, customer_id, pm["id"])) is not None:
            return found
    return None


async def plan_for(sessions: async_sessionmaker, gw: StripeGateway, batch: Batch) -> Plan:
    """How this batch will be billed, from the member's coworking record and Stripe customer."""
    from funding.coworking.service import active_subscription, member_for_user, stripe_customer_id

    async with sessions() as session:
        member = await member_for_user(session, batch.member_id)
        customer = stripe_customer_id(member) if member is not None else None
        sub = await active_subscription(session, member) if member is not None and customer else None
        site = await must_get(session, Site, batch.site_id)
        on_invoice = sub is not None and not batch.key.startswith(DEPARTURE)
        by_rate = await amounts_by_rate(session, batch.id) if on_invoice else {}
    label = (f"Ardoise du bar — {site.name} ({batch.line_count} consommation(s), arrêtée le "
             f"{batch.created_at.strftime('%d/%m/%Y')})")[:200]
    if customer is None:
        return Plan(BatchMethod.DUE, reason="no_customer")
    if on_invoice and sub is not None:
        # One line per VAT rate, each with its (inclusive) Tax Rate: the invoice states the VAT of the tab.
        rates = await tax_rate_ids(sessions, gw, by_rate)
        return Plan(BatchMethod.INVOICE_ITEM, "invoice_items", items=tuple(
            (rate, {"customer": customer, "subscription": sub.stripe_subscription_id, "amount": amount,
                    "currency": batch.currency.lower(), "tax_rates": [rates[rate]],
                    "description": f"{label} — TVA {vat_label(rate)}"[:250],
                    "metadata": {**_meta(batch), "entrelab_booked": "1", "vat_rate": str(rate)}})
            for rate, amount in by_rate.items()))
    means = await _on_file(gw, customer)
    if means is None or (means.kind == "sepa_debit" and batch.currency.upper() != "EUR"):
        return Plan(BatchMethod.DUE, reason="no_card")
    params = {"amount": batch.amount, "currency": batch.currency.lower(), "customer": customer,
              "payment_method": means.payment_method, "off_session": True, "confirm": True, "description": label,
              "metadata": _meta(batch)}
    if means.kind == "sepa_debit":  # a debit under the member's mandate: processing for days, then paid or failed
        params |= {"allowed_payment_method_types": ["sepa_debit"], "mandate": means.mandate}
    return Plan(BatchMethod.PAYMENT_INTENT, "payment_intents", params)


async def bill(sessions: async_sessionmaker, gw: StripeGateway, batch_id: int) -> str:
    """Bill one ready batch once; returns its status afterwards."""
    async with sessions() as session:
        batch = await session.get(Batch, batch_id)
    if batch is None or batch.status != BatchStatus.READY:
        return batch.status if batch else "missing"
    plan = await plan_for(sessions, gw, batch)
    if plan.method == BatchMethod.DUE:
        await _transition(sessions, batch, (BatchStatus.READY,), BatchStatus.DUE, error=plan.reason)
        return BatchStatus.DUE
    if plan.method == BatchMethod.INVOICE_ITEM:
        return await _bill_items(sessions, gw, batch, plan)
    if plan.resource is None or plan.params is None:
        raise RuntimeError(f"a {plan.method} plan without its Stripe call")
    try:  # asked first: a restored backup, or a reply lost more than 24 h ago, never bills twice
        obj = await _charged_already(sessions, gw, batch)
    except GatewayError as exc:  # Stripe could not be asked: nothing made; the next round
        log.warning("bar batch %s: not billed this round (%s)", batch.id, exc)
        return BatchStatus.READY
    try:
        if obj is None:
            obj = await create_once(sessions, gw, ref=f"bar-batch:{batch.id}", resource=plan.resource, params=plan.params)
    except StripeRefused as exc:
        await _transition(sessions, batch, (BatchStatus.READY,), BatchStatus.DUE, method=plan.method, error=str(exc)[:500])
        return BatchStatus.DUE
    except StripeUnknown:
        return BatchStatus.READY  # the sweep settles the request; Stripe's event or the next round completes it
    if obj.get("status") == "processing" and isinstance(obj.get("latest_charge"), str):
        try:  # a debit under way: its charge says the day the bank takes it, for the member's notice
            obj = await gw.retrieve("payment_intents", obj["id"], expand=["latest_charge"])
        except GatewayError as exc:
            log.info("bar batch %s: debit day not known yet (%s); Stripe's event tells it", batch.id, exc)
    return await apply_payment_intent(sessions, obj)


async def _charged_already(sessions: async_sessionmaker, gw: StripeGateway, batch: Batch) -> dict | None:
    """The batch's off-session PaymentIntent that already took the money, found at Stripe by our metadata."""
    found = [pi for pi in await find_ours(sessions, gw, "payment_intents", {"bar_batch_id": str(batch.id)})
             if pi.get("status") in ("succeeded", "processing", "requires_capture")
             and (pi.get("metadata") or {}).get("purpose") == PURPOSE]
    if found:
        log.info("bar batch %s: already charged at Stripe (%s): adopted, nothing created", batch.id, found[0]["id"])
        await adopt(sessions, gw, ref=f"bar-batch:{batch.id}", resource="payment_intents", obj=found[0])
        return found[0]
    return None


async def _items_made(sessions: async_sessionmaker, gw: StripeGateway, batch: Batch, customer: str) -> dict[str, dict]:
    """The batch's invoice items already at Stripe (invoice items cannot be searched: the
    customer's are listed), by VAT rate."""
    prefix = await key_prefix(sessions, gw)
    made: dict[str, dict] = {}
    async for item in gw.list_all("invoice_items", {"customer": customer}):
        meta = item.get("metadata") or {}
        if meta.get("entrelab_installation") == prefix and meta.get("bar_batch_id") == str(batch.id) and not item.get("deleted"):
            made.setdefault(str(meta.get("vat_rate")), item)
    return made


async def _bill_items(sessions: async_sessionmaker, gw: StripeGateway, batch: Batch, plan: Plan) -> str:
    """The batch's invoice items, one per VAT rate, each created once (its own key). Refused
    half-way: the items already made are deleted, so the batch is due in full or billed in full."""
    made: list[str] = []
    customer = plan.items[0][1]["customer"] if plan.items else None
    try:
        there = await _items_made(sessions, gw, batch, customer) if customer else {}
    except GatewayError as exc:  # the customer's items could not be listed: nothing made this round
        log.warning("bar batch %s: items not billed this round (%s)", batch.id, exc)
        return BatchStatus.READY
    try:
        for rate, params in plan.items:
            ref = f"bar-batch:{batch.id}:vat-{rate}"
            if (item := there.get(str(rate))) is not None:  # made before local state was lost: adopted, not made again
                await adopt(sessions, gw, ref=ref, resource="invoice_items", obj=item)
                made.append(item["id"])
                continue
            made.append((await create_once(sessions, gw, ref=ref, resource="invoice_items", params=params))["id"])
    except StripeRefused as exc:
        for item_id in made:
            with contextlib.suppress(StripeRefused):  # already on an invoice, or gone: Stripe says no
                await gw.call("invoice_items", "delete", item_id)
        await _transition(sessions, batch, (BatchStatus.READY,), BatchStatus.DUE, method=plan.method, error=str(exc)[:500])
        return BatchStatus.DUE
    except StripeUnknown:
        return BatchStatus.READY  # the sweep settles the request; the next round completes the others (same keys)
    await _transition(sessions, batch, (BatchStatus.READY,), BatchStatus.BILLED, method=plan.method,
                      stripe_invoice_item_id=made[0] if made else None)
    return BatchStatus.BILLED


async def apply_payment_intent(sessions: async_sessionmaker, pi: dict) -> str:
    async with transaction(sessions) as session:
        return await record_payment_intent(session, pi) or "missing"


async def record_payment_intent(session: AsyncSession, pi: dict) -> str | None:
    """A PaymentIntent of a batch (off-session, or the member's Checkout) as Stripe says it is now."""
    raw = str((pi.get("metadata") or {}).get("bar_batch_id") or "")
    if (pi.get("metadata") or {}).get("purpose") != PURPOSE or not digits(raw):
        return None
    batch = await session.get(Batch, int(raw))
    if batch is None:
        return None
    status = pi.get("status")
    method = BatchMethod.CHECKOUT if (pi.get("metadata") or {}).get("payment_id") else BatchMethod.PAYMENT_INTENT
    if status == "succeeded":
        if batch.status != BatchStatus.PAID:
            check_row(batch.id, batch.amount, batch.currency, pi, id_key="bar_batch_id", what="lot d'ardoise")
        await mark(session, batch, (BatchStatus.READY, BatchStatus.BILLED, BatchStatus.DUE), BatchStatus.PAID, method=method,
                   stripe_payment_intent_id=pi["id"], debit=debit_of(pi))
    elif status in ("processing",):  # a SEPA debit in transit: neither paid nor due; the receivable stays open
        await mark(session, batch, (BatchStatus.READY,), BatchStatus.BILLED, method=BatchMethod.PAYMENT_INTENT,
                   stripe_payment_intent_id=pi["id"], debit=debit_of(pi))
    elif status in ("requires_payment_method", "requires_action", "canceled") and batch.method == BatchMethod.PAYMENT_INTENT:
        error = ((pi.get("last_payment_error") or {}).get("code")) or status
        await mark(session, batch, (BatchStatus.READY, BatchStatus.BILLED), BatchStatus.DUE, error=error, debit=debit_of(pi))
    await session.refresh(batch)
    return batch.status


def debit_of(pi: dict) -> dict | None:
    """A batch's off-session SEPA debit, for the member's email: the day the bank debits the
    account (its charge, when expanded, says it), or the bank's reason when it failed. None for a card."""
    error: dict = pi.get("last_payment_error") or {}
    failed_with: dict = error["payment_method"] if isinstance(error.get("payment_method"), dict) else {}
    charge: dict = pi["latest_charge"] if isinstance(pi.get("latest_charge"), dict) else {}
    details: dict = charge.get("payment_method_details") or {}
    types = pi.get("allowed_payment_method_types") or pi.get("payment_method_types") or []
    if "sepa_debit" not in (details.get("type"), failed_with.get("type")) and types != ["sepa_debit"]:
        return None
    day = (details.get("sepa_debit") or {}).get("expected_debit_date")
    return {"day": dt.date.fromisoformat(day) if day else None, "reason": error.get("code")}


async def _transition(sessions, batch: Batch, sources: tuple[BatchStatus, ...], target: BatchStatus, **values) -> None:
    async with transaction(sessions) as session:
        await mark(session, await must_get(session, Batch, batch.id), sources, target, **values)


async def mark(session: AsyncSession, batch: Batch, sources: tuple[BatchStatus, ...], target: BatchStatus, *,
               error: str | None = None, debit: dict | None = None,
               **values) -> bool:
    """sources → target, once (a conditional UPDATE); the member hears of it when it matters
    (``debit``: the batch's SEPA debit, see ``debit_of``)."""
    now = utcnow()
    stamp = {BatchStatus.BILLED: {"billed_at": now}, BatchStatus.PAID: {"paid_at": now}}.get(target, {})
    if error is not None:
        values["last_error"] = error
    for key in ("stripe_payment_intent_id", "stripe_invoice_item_id", "stripe_invoice_id"):
        if key in values and getattr(batch, key):
            values.pop(key)  # ids are written once
    result = await session.execute(update(Batch).where(Batch.id == batch.id, Batch.status.in_(sources))
                                   .values(status=target, **stamp, **values))
    if rowcount(result) != 1:
        return False
    await session.refresh(batch)
    await _tell_member(session, batch, debit)
    return True


async def _tell_member(session: AsyncSession, batch: Batch, debit: dict | None = None) -> None:
    user = await must_get(session, User, batch.member_id)
    site = await must_get(session, Site, batch.site_id)
    about = {"name": user.name, "site": site.name, "amount": batch.amount, "currency": batch.currency,
             "lines": batch.line_count}
    if batch.status == BatchStatus.DUE:
        await enqueue(session, to=user.email, user_id=user.id, org_id=batch.org_id, dedupe_key=f"bar-batch:{batch.id}:due",
                      **render("bar/tab_due", user.locale, **about, path="/bar/ardoise", debit=debit is not None,
                               reason=(debit or {}).get("reason")))
    elif batch.status == BatchStatus.BILLED and batch.method == BatchMethod.PAYMENT_INTENT and debit is not None:
        # SEPA's pre-notification: the amount and the day the bank debits the account, once per batch.
        await enqueue(session, to=user.email, user_id=user.id, org_id=batch.org_id, dedupe_key=f"bar-batch:{batch.id}:debit",
                      **render("bar/tab_debit", user.locale, **about, day=debit.get("day")))
    elif batch.status == BatchStatus.PAID and batch.method in (BatchMethod.PAYMENT_INTENT, BatchMethod.CHECKOUT):
        await enqueue(session, to=user.email, user_id=user.id, org_id=batch.org_id, dedupe_key=f"bar-batch:{batch.id}:paid",
                      **render("bar/tab_paid", user.locale, **about, charged=batch.method == BatchMethod.PAYMENT_INTENT,
                               debit=debit is not None))
    elif batch.status == BatchStatus.BILLED and batch.method == BatchMethod.INVOICE_ITEM:
        await enqueue(session, to=user.email, user_id=user.id, org_id=batch.org_id, dedupe_key=f"bar-batch:{batch.id}:billed",
                      **render("bar/tab_billed", user.locale, **about))


async def billing_job(sessions, settings: Settings, gw: StripeGateway, *, limit: int = 50) -> int:
    """Worker: bill the ready batches (each at most once: the key is the batch)."""
    async with sessions() as session:
        ids = (await session.scalars(select(Batch.id).where(Batch.status == BatchStatus.READY).order_by(Batch.id).limit(limit))).all()
    done = 0
    for batch_id in ids:
        try:
            if await bill(sessions, gw, batch_id) != BatchStatus.READY:
                done += 1
        except Exception:  # one batch's trouble never holds back the others; the next round retries
            log.exception("bar batch %s: billing failed; retried next round", batch_id)
    return done


# --- confirmation from invoices --------------------------------------------------------------


async def record_invoice(session: AsyncSession, invoice: dict) -> list[int]:
    """Which batches an invoice carries (metadata of its lines), and their state from it."""
    touched = []
    status = invoice.get("status")
    billed: dict[str, int] = {}  # by batch: what the invoice's lines (one per VAT rate) bill of it
    for line in (invoice.get("lines") or {}).get("data") or []:
        raw = str((line.get("metadata") or {}).get("bar_batch_id") or "")
        billed[raw] = billed.get(raw, 0) + int(line.get("amount") or 0)
    for line in (invoice.get("lines") or {}).get("data") or []:
        raw = str((line.get("metadata") or {}).get("bar_batch_id") or "")
        if not digits(raw):
            continue
        batch = await session.get(Batch, int(raw))
        if batch is None:
            continue
        touched.append(batch.id)
        if not batch.stripe_invoice_id:
            await session.execute(update(Batch).where(Batch.id == batch.id, Batch.stripe_invoice_id.is_(None))
                                  .values(stripe_invoice_id=invoice["id"]))
        if status == "paid":
            if batch.status != BatchStatus.PAID and billed[raw] != batch.amount:
                raise StripeMismatch(f"invoice {invoice.get('id')} : {billed[raw]} facturés chez Stripe pour le lot "
                                     f"d'ardoise {batch.id} de {batch.amount}")
            await mark(session, batch, (BatchStatus.READY, BatchStatus.BILLED, BatchStatus.DUE), BatchStatus.PAID)
        elif status == "open":
            await mark(session, batch, (BatchStatus.READY,), BatchStatus.BILLED, method=BatchMethod.INVOICE_ITEM)
        elif status in ("void", "uncollectible"):
            await mark(session, batch, (BatchStatus.READY, BatchStatus.BILLED), BatchStatus.DUE, error=f"invoice {status}")
    return touched
